package ledger_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/peerllm/peerllm/internal/ledger"
	"github.com/peerllm/peerllm/internal/testenv"
)

// BenchmarkRequestPath measures what billing adds to one request: a hold
// (Reserve), one checkpoint and the balanced record (Settle), against a
// monthly budget, on each store.
func BenchmarkRequestPath(b *testing.B) {
	run := 0
	for _, d := range testenv.Databases(b) {
		b.Run(d.Name, func(b *testing.B) {
			ctx := context.Background()
			db := testenv.OpenStore(b, d)
			l, err := ledger.Open(ctx, db, prices(b), ledger.Options{Now: func() time.Time { return t0 }})
			if err != nil {
				b.Fatal(err)
			}
			// The body runs again for each b.N on the same store.
			if _, err := l.Account(ctx, "school"); err != nil {
				if _, err := l.CreateAccount(ctx, ledger.Account{ID: "school", Name: "School", MonthlyBudget: ledger.MaxAmount}); err != nil {
					b.Fatal(err)
				}
			}
			run++
			u := ledger.Usage{PromptTokens: 20, CompletionTokens: 100, HostTokens: map[string]int64{"a": 100, "b": 80}}
			b.ResetTimer()
			for i := range b.N {
				id := fmt.Sprintf("req_%d_%d", run, i)
				if _, err := l.Reserve(ctx, ledger.Reservation{RequestID: id, AccountID: "school", KeyID: "k", Model: "stories260K", PromptTokens: 64, MaxCompletionTokens: 256}); err != nil {
					b.Fatal(err)
				}
				if err := l.Checkpoint(ctx, id, u); err != nil {
					b.Fatal(err)
				}
				if _, err := l.Settle(ctx, id, u); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCheckpoint measures the write at a segment boundary, which the
// next segment waits for.
func BenchmarkCheckpoint(b *testing.B) {
	run := 0
	for _, d := range testenv.Databases(b) {
		b.Run(d.Name, func(b *testing.B) {
			ctx := context.Background()
			db := testenv.OpenStore(b, d)
			l, err := ledger.Open(ctx, db, prices(b), ledger.Options{Now: func() time.Time { return t0 }})
			if err != nil {
				b.Fatal(err)
			}
			run++
			id := fmt.Sprint("cp", run)
			if _, err := l.Account(ctx, "c"); err != nil {
				if _, err := l.CreateAccount(ctx, ledger.Account{ID: "c", Name: "C"}); err != nil {
					b.Fatal(err)
				}
			}
			if _, err := l.Reserve(ctx, ledger.Reservation{RequestID: id, AccountID: "c", Model: "stories260K", PromptTokens: 64, MaxCompletionTokens: 256}); err != nil {
				b.Fatal(err)
			}
			u := ledger.Usage{PromptTokens: 20, CompletionTokens: 100, HostTokens: map[string]int64{"a": 100, "b": 80}}
			b.ResetTimer()
			for range b.N {
				if err := l.Checkpoint(ctx, id, u); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
