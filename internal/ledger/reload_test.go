package ledger_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/peerllm/peerllm/internal/ledger"
)

func TestDefaultPriceList(t *testing.T) {
	pl := ledger.DefaultPriceList()
	for _, model := range []string{"stories260K", "any-other-model"} {
		q, err := pl.Quote(model, t0)
		if err != nil || q.Price.InputPerMillion <= 0 || q.Price.OutputPerMillion <= 0 || q.Currency != "USD" {
			t.Fatalf("default price of %s: %+v %v", model, q, err)
		}
	}
}

func TestCheckReplace(t *testing.T) {
	cur := prices(t) // v1 in force, v2 announced for 2026-12-01
	rules := ledger.DefaultPricingRules()
	v3 := `{"version":3,"published":"2026-11-10T00:00:00Z","effective":"%s","models":{"stories260K":{"input_per_million":120000,"output_per_million":360000}}}`
	list := func(versions ...string) string {
		return `{"currency":"USD","versions":[` + strings.Join(versions, ",") + `]}`
	}
	v1 := `{"version":1,"effective":"2026-01-01T00:00:00Z","models":{"stories260K":{"input_per_million":100000,"output_per_million":300000},"*":{"input_per_million":1000000,"output_per_million":2000000}}}`
	v2 := `{"version":2,"published":"2026-06-01T00:00:00Z","effective":"2026-12-01T00:00:00Z","models":{"stories260K":{"input_per_million":110000,"output_per_million":330000}}}`
	v2changed := strings.Replace(v2, "330000", "320000", 1)
	cases := []struct {
		name, json string
		ok         bool
	}{
		{"the same list", list(v1, v2), true},
		{"a new version with the full notice", list(v1, v2, strings.Replace(v3, "%s", "2027-01-10T00:00:00Z", 1)), true},
		// Published on 1 November "on paper", but new to the list on the
		// 10th: 25 days before it takes effect.
		{"a new version with a backdated announcement", list(v1, v2, strings.Replace(strings.Replace(v3, "%s", "2026-12-05T00:00:00Z", 1), "2026-11-10", "2026-11-01", 1)), false},
		{"a published version changed", list(v1, v2changed), false},
		{"a published version removed", list(v1), false},
		{"another currency", strings.Replace(list(v1, v2), "USD", "EUR", 1), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			next, err := ledger.ParsePriceList(strings.NewReader(c.json), rules)
			if err == nil {
				err = ledger.CheckReplace(cur, next, t0, rules)
			}
			if (err == nil) != c.ok {
				t.Fatalf("ok=%v, err=%v", c.ok, err)
			}
		})
	}
}

func TestAccountsAndAmountBounds(t *testing.T) {
	eachStore(t, func(t *testing.T, open func() *ledger.Ledger, clk *clock) {
		ctx := context.Background()
		l := open()
		for _, id := range []string{"b", "a"} {
			if _, err := l.CreateAccount(ctx, ledger.Account{ID: id, Name: strings.ToUpper(id), Prepaid: id == "a"}); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.TopUp(ctx, "a", 700, "r1"); err != nil {
			t.Fatal(err)
		}
		as, err := l.ListAccounts(ctx)
		if err != nil || len(as) != 2 || as[0].ID != "a" || as[0].Balance != 700 || !as[0].Prepaid || as[1].Balance != 0 {
			t.Fatalf("accounts %+v %v", as, err)
		}
		if err := l.TopUp(ctx, "a", ledger.MaxAmount+1, ""); err == nil {
			t.Fatal("a top-up above the bound was accepted")
		}
		if _, err := l.CreateAccount(ctx, ledger.Account{Name: "x", MonthlyBudget: ledger.MaxAmount + 1}); err == nil {
			t.Fatal("a budget above the bound was accepted")
		}
		if err := l.SetKeyBudget(ctx, "k", "a", -1); err == nil {
			t.Fatal("a negative key budget was accepted")
		}
		mustCheck(t, l)
	})
}

// TestConcurrentSettlesCreditNewAccounts: records crediting accounts that
// have no balance yet, settled at the same time, all land (on PostgreSQL a
// read-then-insert of the balance row would collide).
func TestConcurrentSettlesCreditNewAccounts(t *testing.T) {
	eachStore(t, func(t *testing.T, open func() *ledger.Ledger, clk *clock) {
		ctx := context.Background()
		l := open()
		if _, err := l.CreateAccount(ctx, ledger.Account{ID: "c", Name: "C"}); err != nil {
			t.Fatal(err)
		}
		const n = 8
		for i := range n {
			if _, err := l.Reserve(ctx, ledger.Reservation{RequestID: fmt.Sprint("r", i), AccountID: "c", Model: "stories260K", PromptTokens: 10, MaxCompletionTokens: 100}); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = l.Settle(ctx, fmt.Sprint("r", i), ledger.Usage{PromptTokens: 10, CompletionTokens: 100, HostTokens: map[string]int64{"new-a": 60, "new-b": 40}})
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("settle r%d: %v", i, err)
			}
		}
		if s, _ := l.Summary(ctx); s.Requests != n || s.HeldMicros != 0 {
			t.Fatalf("summary %+v", s)
		}
		mustCheck(t, l)
	})
}
