package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/peerllm/peerllm/internal/ledger"
	"github.com/peerllm/peerllm/internal/testenv"
)

var t0 = time.Date(2026, 11, 10, 12, 0, 0, 0, time.UTC)

const priceJSON = `{"currency":"USD","versions":[
 {"version":1,"effective":"2026-01-01T00:00:00Z","models":{"stories260K":{"input_per_million":100000,"output_per_million":300000},"*":{"input_per_million":1000000,"output_per_million":2000000}}},
 {"version":2,"published":"2026-06-01T00:00:00Z","effective":"2026-12-01T00:00:00Z","models":{"stories260K":{"input_per_million":110000,"output_per_million":330000}}}
]}`

func prices(t testing.TB) *ledger.PriceList {
	t.Helper()
	pl, err := ledger.ParsePriceList(strings.NewReader(priceJSON), ledger.DefaultPricingRules())
	if err != nil {
		t.Fatal(err)
	}
	return pl
}

// clock is a test clock that moves only when told.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// eachStore runs fn on SQLite and (when available) PostgreSQL.
func eachStore(t *testing.T, fn func(t *testing.T, open func() *ledger.Ledger, clk *clock)) {
	for _, d := range testenv.Databases(t) {
		t.Run(d.Name, func(t *testing.T) {
			clk := &clock{now: t0}
			open := func() *ledger.Ledger {
				db := testenv.OpenStore(t, d)
				l, err := ledger.Open(context.Background(), db, prices(t), ledger.Options{Now: clk.Now})
				if err != nil {
					t.Fatal(err)
				}
				return l
			}
			fn(t, open, clk)
		})
	}
}

func mustCheck(t *testing.T, l *ledger.Ledger) {
	t.Helper()
	ps, err := l.Check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) > 0 {
		t.Fatalf("ledger check found problems: %v", ps)
	}
}

func TestChargeSplitsNinetyFivePercentProRata(t *testing.T) {
	eachStore(t, func(t *testing.T, open func() *ledger.Ledger, clk *clock) {
		ctx := context.Background()
		l := open()
		acct, err := l.CreateAccount(ctx, ledger.Account{Name: "school"})
		if err != nil {
			t.Fatal(err)
		}
		// 10,000 prompt + 20,000 completion tokens at 0.1/0.3 per million
		// micro... = 1,000 + 6,000 = 7,000 micro-units.
		if _, err := l.Reserve(ctx, ledger.Reservation{RequestID: "r1", AccountID: acct.ID, Model: "stories260K", PromptTokens: 10_000, MaxCompletionTokens: 20_000}); err != nil {
			t.Fatal(err)
		}
		rec, err := l.Settle(ctx, "r1", ledger.Usage{PromptTokens: 10_000, CompletionTokens: 20_000,
			HostTokens: map[string]int64{"a": 20_000, "b": 12_000, "c": 1}, Status: "completed"})
		if err != nil {
			t.Fatal(err)
		}
		if rec.Charged != 7000 {
			t.Fatalf("charged %d, want 7000", rec.Charged)
		}
		var hosts int64
		for _, v := range rec.Hosts {
			hosts += v
		}
		if hosts != 6650 || rec.Platform != 350 {
			t.Fatalf("hosts %d platform %d, want 6650 and 350", hosts, rec.Platform)
		}
		// 6650 × 20000/32001 = 4156.1 → 4156; ×12000/32001 = 2493.67 → 2493 (+1 by largest remainder); ×1/32001 → 0.
		if rec.Hosts["a"] != 4156 || rec.Hosts["b"] != 2494 || rec.Hosts["c"] != 0 {
			t.Fatalf("shares %v", rec.Hosts)
		}
		again, err := l.Settle(ctx, "r1", ledger.Usage{PromptTokens: 99, CompletionTokens: 99, HostTokens: map[string]int64{"z": 1}})
		if err != nil {
			t.Fatal(err)
		}
		if !again.Duplicate || again.Charged != 7000 || again.Hosts["a"] != 4156 {
			t.Fatalf("second settle of the same request: %+v", again)
		}
		s, err := l.Summary(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if s.RevenueMicros != 7000 || s.HostsMicros != 6650 || s.PlatformMicros != 350 || s.Requests != 1 {
			t.Fatalf("summary %+v", s)
		}
		pay, err := l.Payouts(ctx, "2026-11")
		if err != nil {
			t.Fatal(err)
		}
		if len(pay) != 3 || pay[2].Micros != 0 || pay[0].HostID != "a" || pay[0].Micros != 4156 || pay[0].Tokens != 20_000 {
			t.Fatalf("payouts %+v", pay)
		}
		mustCheck(t, l)
	})
}

func TestChargeRules(t *testing.T) {
	eachStore(t, func(t *testing.T, open func() *ledger.Ledger, clk *clock) {
		ctx := context.Background()
		l := open()
		acct, _ := l.CreateAccount(ctx, ledger.Account{Name: "x"})
		cases := []struct {
			name   string
			usage  ledger.Usage
			charge int64
		}{
			{"failed before any token is free", ledger.Usage{PromptTokens: 1000, Status: "failed"}, 0},
			{"content filtered pays delivered tokens", ledger.Usage{PromptTokens: 1_000_000, CompletionTokens: 10, HostTokens: map[string]int64{"h": 12}, Status: "content_filter"}, 100_003},
			{"rounds half up once per request", ledger.Usage{PromptTokens: 5, CompletionTokens: 0 + 1, HostTokens: map[string]int64{"h": 1}}, 1},
			{"enterprise multiplier moves money between hosts only", ledger.Usage{PromptTokens: 0, CompletionTokens: 1_000_000, HostTokens: map[string]int64{"std": 1_000_000, "ent": 1_000_000}, HostMultipliers: map[string]int64{"ent": 1500}}, 300_000},
		}
		for i, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				id := fmt.Sprintf("rule%d", i)
				if _, err := l.Reserve(ctx, ledger.Reservation{RequestID: id, AccountID: acct.ID, Model: "stories260K", PromptTokens: c.usage.PromptTokens, MaxCompletionTokens: 1_000_000}); err != nil {
					t.Fatal(err)
				}
				rec, err := l.Settle(ctx, id, c.usage)
				if err != nil {
					t.Fatal(err)
				}
				if rec.Charged != c.charge {
					t.Fatalf("charged %d, want %d", rec.Charged, c.charge)
				}
				if c.usage.HostMultipliers != nil {
					// 285,000 split 1000:1500 → 114,000 and 171,000.
					if rec.Hosts["std"] != 114_000 || rec.Hosts["ent"] != 171_000 || rec.Platform != 15_000 {
						t.Fatalf("multiplier split %+v", rec)
					}
				}
			})
		}
		mustCheck(t, l)
	})
}

func TestBudgetsRefuseBeforeWork(t *testing.T) {
	eachStore(t, func(t *testing.T, open func() *ledger.Ledger, clk *clock) {
		ctx := context.Background()
		l := open()
		// Each request may cost up to 1,000 output tokens × 0.3 = 300 micro-units.
		school, _ := l.CreateAccount(ctx, ledger.Account{Name: "school", MonthlyBudget: 1000})
		if err := l.SetKeyBudget(ctx, "class-a", school.ID, 600); err != nil {
			t.Fatal(err)
		}
		res := func(id, key string) error {
			_, err := l.Reserve(ctx, ledger.Reservation{RequestID: id, AccountID: school.ID, KeyID: key, Model: "stories260K", MaxCompletionTokens: 1000})
			return err
		}
		if err := res("k1", "class-a"); err != nil {
			t.Fatal(err)
		}
		if err := res("k2", "class-a"); err != nil {
			t.Fatal(err)
		}
		if err := res("k3", "class-a"); !errors.Is(err, ledger.ErrBudgetExceeded) {
			t.Fatalf("third reservation on a 600 key budget: %v", err)
		}
		if err := res("k4", "class-b"); err != nil {
			t.Fatal(err)
		}
		if err := res("k5", "class-b"); !errors.Is(err, ledger.ErrBudgetExceeded) {
			t.Fatalf("account budget: %v", err)
		}
		// Settling releases the unused part of a hold.
		if _, err := l.Settle(ctx, "k1", ledger.Usage{CompletionTokens: 100, HostTokens: map[string]int64{"h": 100}}); err != nil {
			t.Fatal(err)
		}
		if err := res("k6", "class-b"); err != nil {
			t.Fatalf("after settling, 970 of 1000 were committed; want room: %v", err)
		}
		// A new month starts a new budget.
		for _, id := range []string{"k2", "k4", "k6"} {
			if _, err := l.Settle(ctx, id, ledger.Usage{CompletionTokens: 1000, HostTokens: map[string]int64{"h": 1000}}); err != nil {
				t.Fatal(err)
			}
		}
		clk.Set(t0.AddDate(0, 1, 0))
		if err := res("k7", "class-a"); err != nil {
			t.Fatalf("new month: %v", err)
		}
		u, err := l.Usage(ctx, school.ID, "class-a", "2026-11")
		if err != nil {
			t.Fatal(err)
		}
		if u.Requests != 2 || u.SpentMicros != 330 || u.KeyBudgetMicros != 600 {
			t.Fatalf("usage %+v", u)
		}
		mustCheck(t, l)
	})
}

func TestPrepaidBalance(t *testing.T) {
	eachStore(t, func(t *testing.T, open func() *ledger.Ledger, clk *clock) {
		ctx := context.Background()
		l := open()
		a, _ := l.CreateAccount(ctx, ledger.Account{Name: "prepaid", Prepaid: true})
		r := ledger.Reservation{RequestID: "p1", AccountID: a.ID, Model: "stories260K", MaxCompletionTokens: 1000}
		if _, err := l.Reserve(ctx, r); !errors.Is(err, ledger.ErrInsufficientFunds) {
			t.Fatalf("empty prepaid account: %v", err)
		}
		if err := l.TopUp(ctx, a.ID, 500, "invoice-1"); err != nil {
			t.Fatal(err)
		}
		if err := l.TopUp(ctx, a.ID, 500, "invoice-1"); err != nil {
			t.Fatal(err) // same reference: credited once
		}
		if _, err := l.Reserve(ctx, r); err != nil {
			t.Fatal(err)
		}
		r.RequestID = "p2"
		if _, err := l.Reserve(ctx, r); !errors.Is(err, ledger.ErrInsufficientFunds) {
			t.Fatalf("second hold beyond 500: %v", err)
		}
		if _, err := l.Settle(ctx, "p1", ledger.Usage{CompletionTokens: 1000, HostTokens: map[string]int64{"h": 1000}}); err != nil {
			t.Fatal(err)
		}
		got, _ := l.Account(ctx, a.ID)
		if got.Balance != 200 {
			t.Fatalf("balance %d, want 200", got.Balance)
		}
		mustCheck(t, l)
	})
}

// TestConcurrentReservationsNeverOverspend races many requests for the last
// of a budget: exactly as many as fit get a hold.
func TestConcurrentReservationsNeverOverspend(t *testing.T) {
	eachStore(t, func(t *testing.T, open func() *ledger.Ledger, clk *clock) {
		ctx := context.Background()
		l := open()
		a, _ := l.CreateAccount(ctx, ledger.Account{Name: "race", MonthlyBudget: 3000})
		var ok, refused atomic.Int64
		var wg sync.WaitGroup
		for i := 0; i < 24; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := l.Reserve(ctx, ledger.Reservation{RequestID: fmt.Sprintf("race%d", i), AccountID: a.ID, Model: "stories260K", MaxCompletionTokens: 1000})
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, ledger.ErrBudgetExceeded):
					refused.Add(1)
				default:
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if ok.Load() != 10 || refused.Load() != 14 {
			t.Fatalf("%d holds and %d refusals, want 10 and 14", ok.Load(), refused.Load())
		}
	})
}

// TestCrashBetweenWorkAndSettleLosesNothing: a hold with checkpointed usage
// left by a dead orchestrator is settled by Recover on the next start.
func TestCrashBetweenWorkAndSettleLosesNothing(t *testing.T) {
	eachStore(t, func(t *testing.T, open func() *ledger.Ledger, clk *clock) {
		ctx := context.Background()
		l := open()
		a, _ := l.CreateAccount(ctx, ledger.Account{Name: "crash"})
		if _, err := l.Reserve(ctx, ledger.Reservation{RequestID: "c1", AccountID: a.ID, Model: "stories260K", MaxCompletionTokens: 1000}); err != nil {
			t.Fatal(err)
		}
		if err := l.Checkpoint(ctx, "c1", ledger.Usage{PromptTokens: 0, CompletionTokens: 500, HostTokens: map[string]int64{"h1": 500, "h2": 480}}); err != nil {
			t.Fatal(err)
		}
		// "Restart": a new Ledger on the same store.
		l2 := open()
		clk.Set(t0.Add(time.Hour))
		n, err := l2.Recover(ctx, 10*time.Minute)
		if err != nil || n != 1 {
			t.Fatalf("recover: %d, %v", n, err)
		}
		s, _ := l2.Summary(ctx)
		if s.RevenueMicros != 150 || s.HostsMicros != 142 || s.HeldMicros != 0 {
			t.Fatalf("after recovery: %+v", s)
		}
		mustCheck(t, l2)
	})
}

func TestCheckFindsTampering(t *testing.T) {
	d := testenv.Databases(t)[0]
	db := testenv.OpenStore(t, d)
	ctx := context.Background()
	l, err := ledger.Open(ctx, db, prices(t), ledger.Options{Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := l.CreateAccount(ctx, ledger.Account{Name: "x"})
	l.Reserve(ctx, ledger.Reservation{RequestID: "t1", AccountID: a.ID, Model: "stories260K", MaxCompletionTokens: 100})
	l.Settle(ctx, "t1", ledger.Usage{CompletionTokens: 100, HostTokens: map[string]int64{"h": 100}})
	mustCheck(t, l)
	if _, err := db.Exec(`UPDATE ledger_postings SET amount_micros = amount_micros + 1 WHERE account_id = 'platform'`); err != nil {
		t.Fatal(err)
	}
	ps, err := l.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, p := range ps {
		kinds[p.Kind] = true
	}
	if !kinds["unbalanced_record"] || !kinds["balance_mismatch"] {
		t.Fatalf("check after tampering: %v", ps)
	}
	// A running spend that budgets read, changed behind the ledger's back.
	if _, err := db.Exec(`UPDATE ledger_spend SET spent_micros = 0`); err != nil {
		t.Fatal(err)
	}
	ps, err = l.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range ps {
		found = found || p.Kind == "spend_mismatch" && p.ID == "account:"+a.ID+"@2026-11"
	}
	if !found {
		t.Fatalf("check after zeroing the spend: %v", ps)
	}
}

// TestPropertyEveryRecordBalances settles many random requests and checks
// the books after each batch.
func TestPropertyEveryRecordBalances(t *testing.T) {
	d := testenv.Databases(t)[0]
	db := testenv.OpenStore(t, d)
	ctx := context.Background()
	l, err := ledger.Open(ctx, db, prices(t), ledger.Options{Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := l.CreateAccount(ctx, ledger.Account{Name: "p"})
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 200; i++ {
		id := fmt.Sprintf("prop%d", i)
		maxOut := int64(rng.Intn(5_000_000))
		prompt := int64(rng.Intn(5_000_000))
		if _, err := l.Reserve(ctx, ledger.Reservation{RequestID: id, AccountID: a.ID, Model: "other", PromptTokens: prompt, MaxCompletionTokens: maxOut}); err != nil {
			t.Fatal(err)
		}
		u := ledger.Usage{PromptTokens: prompt, CompletionTokens: rng.Int63n(maxOut + 1), HostTokens: map[string]int64{}, HostMultipliers: map[string]int64{}}
		for h := 0; h < rng.Intn(4); h++ {
			host := fmt.Sprintf("h%d", rng.Intn(6))
			u.HostTokens[host] += rng.Int63n(1_000_000)
			u.HostMultipliers[host] = 1000 + rng.Int63n(1000)
		}
		rec, err := l.Settle(ctx, id, u)
		if err != nil {
			t.Fatal(err)
		}
		sum := rec.Platform
		for _, v := range rec.Hosts {
			sum += v
		}
		if sum != rec.Charged {
			t.Fatalf("record %s: shares sum to %d, charged %d", id, sum, rec.Charged)
		}
	}
	mustCheck(t, l)
}

// TestSettleRacingReserveNeverOverspends: settlements running beside new
// reservations never let the month's spend pass the budget (a reservation
// must not see the spend from before a settlement and the holds from after
// it).
func TestSettleRacingReserveNeverOverspends(t *testing.T) {
	eachStore(t, func(t *testing.T, open func() *ledger.Ledger, clk *clock) {
		ctx := context.Background()
		l := open()
		a, _ := l.CreateAccount(ctx, ledger.Account{Name: "race2", MonthlyBudget: 2000})
		var wg sync.WaitGroup
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 10; i++ {
					id := fmt.Sprintf("rs%d-%d", g, i)
					// Each may cost up to 300 and costs 210.
					if _, err := l.Reserve(ctx, ledger.Reservation{RequestID: id, AccountID: a.ID, Model: "stories260K", MaxCompletionTokens: 1000}); err != nil {
						if !errors.Is(err, ledger.ErrBudgetExceeded) {
							t.Error(err)
						}
						continue
					}
					if _, err := l.Settle(ctx, id, ledger.Usage{CompletionTokens: 700, HostTokens: map[string]int64{"h": 700}}); err != nil {
						t.Error(err)
					}
				}
			}()
		}
		wg.Wait()
		u, err := l.Usage(ctx, a.ID, "", "2026-11")
		if err != nil {
			t.Fatal(err)
		}
		if u.SpentMicros > 2000 {
			t.Fatalf("spent %d of a 2000 budget", u.SpentMicros)
		}
		mustCheck(t, l)
	})
}
