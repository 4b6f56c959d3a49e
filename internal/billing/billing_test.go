package billing_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/peerllm/peerllm/internal/billing"
	"github.com/peerllm/peerllm/internal/ledger"
	"github.com/peerllm/peerllm/internal/pipeline"
	"github.com/peerllm/peerllm/internal/testenv"
)

func TestHoldThenSettle(t *testing.T) {
	ctx := context.Background()
	db := testenv.OpenStore(t, testenv.Databases(t)[0])
	pl, err := ledger.ParsePriceList(strings.NewReader(`{"currency":"USD","versions":[{"version":1,"effective":"2026-01-01T00:00:00Z","models":{"tiny":{"input_per_million":1000000,"output_per_million":2000000}}}]}`), ledger.DefaultPricingRules())
	if err != nil {
		t.Fatal(err)
	}
	l, err := ledger.Open(ctx, db, pl, ledger.Options{Now: func() time.Time { return time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	b := billing.New(billing.Config{Ledger: l, Multiplier: func(h string) int64 {
		if h == "ent" {
			return 1200
		}
		return 1000
	}})
	var chain pipeline.Chain
	chain.Stages = []pipeline.Stage{b}
	chain.Meters = []pipeline.Meter{b}

	req := &pipeline.Request{ID: "req_1", Model: "tiny", Prompt: "hello", MaxTokens: 100, N: 1, Account: "school", KeyID: "key_a"}
	if _, err := chain.Admit(ctx, req); err != nil {
		t.Fatal(err)
	}
	chain.Meter(ctx, pipeline.Outcome{RequestID: "req_1", PromptTokens: 3, CompletionTokens: 50, HostTokens: map[string]int{"std": 50, "ent": 50}})
	s, _ := l.Summary(ctx)
	// 3 × 1 + 50 × 2 = 103 micro-units; hosts 97 split 1000:1200.
	if s.RevenueMicros != 103 || s.HostsMicros != 97 || s.HeldMicros != 0 {
		t.Fatalf("summary %+v", s)
	}
	pay, _ := l.Payouts(ctx, "2026-11")
	if len(pay) != 2 || pay[0].HostID != "ent" || pay[0].Micros != 53 {
		t.Fatalf("payouts %+v", pay)
	}

	// A budget the next request could cross is refused with 402 before any host works.
	if err := l.SetKeyBudget(ctx, "key_small", "school", 150); err != nil {
		t.Fatal(err)
	}
	_, err = chain.Admit(ctx, &pipeline.Request{ID: "req_2", Model: "tiny", Prompt: "hi", MaxTokens: 100, N: 1, Account: "school", KeyID: "key_small"})
	var r *pipeline.Refusal
	if !errors.As(err, &r) || r.Status != http.StatusPaymentRequired || r.Code != "budget_exceeded" {
		t.Fatalf("over budget: %v", err)
	}
	_, err = chain.Admit(ctx, &pipeline.Request{ID: "req_4", Model: "tiny", Prompt: "hi", MaxTokens: 1, N: 1, Account: ledger.PlatformAccount})
	if !errors.As(err, &r) || r.Status != http.StatusForbidden || r.Code != "account_not_billable" {
		t.Fatalf("a key on the platform's account: %v", err)
	}
	_, err = chain.Admit(ctx, &pipeline.Request{ID: "req_3", Model: "unpriced", Prompt: "hi", MaxTokens: 1, N: 1, Account: "school"})
	if !errors.As(err, &r) || r.Code != "model_not_priced" {
		t.Fatalf("unpriced model: %v", err)
	}
}

func TestCheckpointIsWhatRecoverCharges(t *testing.T) {
	ctx := context.Background()
	for _, d := range testenv.Databases(t) {
		t.Run(d.Name, func(t *testing.T) {
			db := testenv.OpenStore(t, d)
			pl, err := ledger.ParsePriceList(strings.NewReader(`{"currency":"USD","versions":[{"version":1,"effective":"2026-01-01T00:00:00Z","models":{"tiny":{"input_per_million":1000000,"output_per_million":2000000}}}]}`), ledger.DefaultPricingRules())
			if err != nil {
				t.Fatal(err)
			}
			l, err := ledger.Open(ctx, db, pl, ledger.Options{Now: func() time.Time { return time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC) }})
			if err != nil {
				t.Fatal(err)
			}
			b := billing.New(billing.Config{Ledger: l})
			if _, err := b.Admit(ctx, &pipeline.Request{ID: "req_c", Model: "tiny", Prompt: "hello", MaxTokens: 100, N: 1, Account: "acct"}); err != nil {
				t.Fatal(err)
			}
			b.Checkpoint(ctx, pipeline.Outcome{RequestID: "req_c", PromptTokens: 3, CompletionTokens: 16, HostTokens: map[string]int{"a": 16, "b": 10}})
			// The orchestrator dies here; the next start recovers.
			if n, err := l.Recover(ctx, 0); err != nil || n != 1 {
				t.Fatalf("recover: %d %v", n, err)
			}
			s, _ := l.Summary(ctx)
			if s.RevenueMicros != 3+16*2 || s.HostsMicros != 33 || s.HeldMicros != 0 {
				t.Fatalf("summary %+v", s)
			}
			// A late meter of the same request writes nothing more.
			b.Meter(ctx, pipeline.Outcome{RequestID: "req_c", PromptTokens: 3, CompletionTokens: 40, HostTokens: map[string]int{"a": 40}})
			if s2, _ := l.Summary(ctx); s2 != s {
				t.Fatalf("charged twice: %+v", s2)
			}
		})
	}
}
