package ledger_test

import (
	"context"
	"fmt"
	"math/big"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/peerllm/peerllm/internal/ledger"
	"github.com/peerllm/peerllm/internal/testenv"
)

// FuzzSettle checks each record against the payout rule, computed here
// independently with big integers: the charge is the quoted cost capped by
// the hold, the hosts' pool is ⌊95%⌋ of it when any host has weight, each
// host gets its floored pro rata share or one more, and everything sums to
// the charge. The books check out at the end.
func FuzzSettle(f *testing.F) {
	f.Add(int64(10), int64(100), int64(40), int64(30), int64(0), int64(1000), int64(1200), int64(50))
	f.Add(int64(0), int64(0), int64(0), int64(0), int64(0), int64(1000), int64(1000), int64(0))
	f.Add(int64(5_000_000), int64(4_000_000), int64(1), int64(1), int64(1), int64(1000), int64(99_999), int64(4_000_000))
	f.Add(int64(1), int64(1), int64(7), int64(7), int64(7), int64(1000), int64(1000), int64(1))
	ctx := context.Background()
	db := testenv.OpenStore(f, testenv.Databases(f)[0])
	l, err := ledger.Open(ctx, db, prices(f), ledger.Options{Now: func() time.Time { return t0 }})
	if err != nil {
		f.Fatal(err)
	}
	acct, err := l.CreateAccount(ctx, ledger.Account{Name: "fuzz"})
	if err != nil {
		f.Fatal(err)
	}
	var n atomic.Int64
	f.Fuzz(func(t *testing.T, prompt, maxOut, ha, hb, hc, ma, mb, out int64) {
		if prompt < 0 || maxOut < 0 || prompt > 1e9 || maxOut > 1e9 {
			return
		}
		id := fmt.Sprint("fz", n.Add(1))
		hold, err := l.Reserve(ctx, ledger.Reservation{RequestID: id, AccountID: acct.ID, Model: "other", PromptTokens: prompt, MaxCompletionTokens: maxOut})
		if err != nil {
			t.Fatal(err)
		}
		u := ledger.Usage{PromptTokens: prompt, CompletionTokens: out,
			HostTokens:      map[string]int64{"a": ha, "b": hb, "c": hc},
			HostMultipliers: map[string]int64{"a": ma, "b": mb}}
		rec, err := l.Settle(ctx, id, u)
		if err != nil {
			// Bad input (negative counts, multipliers out of range) is
			// refused and the hold stays: settle it empty to keep going.
			if _, err2 := l.Settle(ctx, id, ledger.Usage{}); err2 != nil {
				t.Fatalf("settle empty after %v: %v", err, err2)
			}
			return
		}
		want := int64(0)
		if out > 0 {
			want, _ = hold.Quote.Cost(prompt, out)
			want = min(want, hold.Amount)
		}
		if rec.Charged != want {
			t.Fatalf("charged %d, want %d", rec.Charged, want)
		}
		weights := map[string]*big.Int{}
		total := new(big.Int)
		for h, tok := range u.HostTokens {
			m, ok := u.HostMultipliers[h]
			if !ok {
				m = 1000
			}
			w := new(big.Int).Mul(big.NewInt(tok), big.NewInt(m))
			if w.Sign() > 0 {
				weights[h] = w
				total.Add(total, w)
			}
		}
		pool := int64(0)
		if total.Sign() > 0 {
			pool = rec.Charged * 95 / 100
		}
		sum := int64(0)
		for h, got := range rec.Hosts {
			w, ok := weights[h]
			if !ok {
				t.Fatalf("host %s without work paid %d", h, got)
			}
			floor := new(big.Int).Quo(new(big.Int).Mul(big.NewInt(pool), w), total).Int64()
			if got != floor && got != floor+1 {
				t.Fatalf("host %s got %d of pool %d, pro rata floor %d", h, got, pool, floor)
			}
			sum += got
		}
		if sum != pool || rec.Platform != rec.Charged-pool {
			t.Fatalf("hosts %d (pool %d), platform %d, charged %d", sum, pool, rec.Platform, rec.Charged)
		}
		mustCheck(t, l)
	})
}

// FuzzParsePriceList: any input is either refused with an error or yields
// a list whose quotes and costs do not panic and are never negative.
func FuzzParsePriceList(f *testing.F) {
	f.Add(priceJSON)
	f.Add(`{"currency":"USD","versions":[{"version":1,"effective":"2026-01-01T00:00:00Z","models":{"*":{"input_per_million":1000000000000,"output_per_million":0}}}]}`)
	f.Add(`{"currency":"XXX","versions":[]}`)
	f.Add(`{"currency":"USD","versions":[{"version":1,"effective":"2026-01-01T00:00:00Z","models":{"m":{"input_per_million":-1,"output_per_million":1}}}]}`)
	f.Fuzz(func(t *testing.T, s string) {
		pl, err := ledger.ParsePriceList(strings.NewReader(s), ledger.DefaultPricingRules())
		if err != nil {
			return
		}
		for _, v := range pl.Versions {
			for _, m := range v.ModelNames() {
				q, err := pl.Quote(m, v.Effective)
				if err != nil {
					continue // a later version with the same effective instant cannot exist; a missing model can
				}
				c, err := q.Cost(1_000_000_000, 1_000_000_000)
				if err != nil || c < 0 {
					t.Fatalf("cost of %s in version %d: %d %v", m, v.Version, c, err)
				}
			}
		}
	})
}
