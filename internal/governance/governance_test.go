package governance_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/peerllm/peerllm/internal/governance"
	"github.com/peerllm/peerllm/internal/testenv"
)

func TestEnterpriseBar(t *testing.T) {
	p := governance.Policy{}
	good := governance.Figures{Uptime: 0.999, Tasks: 1000, Successes: 998, TTFT: 300 * time.Millisecond, MsPerTok: 20}
	cases := []struct {
		name    string
		claimed string
		f       func(governance.Figures) governance.Figures
		tier    string
		demote  bool
	}{
		{"meets the bar", "enterprise", func(f governance.Figures) governance.Figures { return f }, "enterprise", false},
		{"too young to judge", "enterprise", func(f governance.Figures) governance.Figures { f.Tasks, f.Uptime = 10, 0.1; return f }, "enterprise", false},
		{"low uptime", "enterprise", func(f governance.Figures) governance.Figures { f.Uptime = 0.98; return f }, "standard", true},
		{"failures", "enterprise", func(f governance.Figures) governance.Figures { f.Successes = 900; return f }, "standard", true},
		{"slow first token", "enterprise", func(f governance.Figures) governance.Figures { f.TTFT = 3 * time.Second; return f }, "standard", true},
		{"slow tokens", "enterprise", func(f governance.Figures) governance.Figures { f.MsPerTok = 250; return f }, "standard", true},
		{"standard stays standard", "standard", func(f governance.Figures) governance.Figures { f.Uptime = 0.1; return f }, "standard", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := p.EvaluateTier(c.claimed, c.f(good))
			if v.Tier != c.tier || v.Demote != c.demote {
				t.Fatalf("got %+v", v)
			}
		})
	}
	if p.Multiplier("enterprise") != 1200 || p.Multiplier("standard") != 1000 {
		t.Fatal("multipliers")
	}
}

func TestSeatFormula(t *testing.T) {
	p := governance.Policy{}
	cases := []struct {
		peak, capacity float64
		want           int
	}{
		{0, 1, 3},    // never fewer than MinSeats
		{10, 2, 8},   // 10 × 1.5 / 2 = 7.5 → 8
		{100, 4, 38}, // 37.5 → 38
		{1, 0, 3},    // a zero capacity counts as 1
		{40, 1, 60},
	}
	for _, c := range cases {
		if got := p.SeatsFor(c.peak, c.capacity); got != c.want {
			t.Errorf("SeatsFor(%v, %v) = %d, want %d", c.peak, c.capacity, got, c.want)
		}
	}
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func TestSeatsWaitlistInOrder(t *testing.T) {
	for _, d := range testenv.Databases(t) {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			clk := &clock{t: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}
			s, err := governance.OpenSeats(ctx, testenv.OpenStore(t, d), governance.Policy{}, clk.now)
			if err != nil {
				t.Fatal(err)
			}
			admit := func(id string) governance.Seat {
				t.Helper()
				clk.add(time.Second)
				st, err := s.Admit(ctx, id, "eu")
				if err != nil {
					t.Fatal(err)
				}
				return st
			}
			// No demand yet: MinSeats (3) seats.
			for _, id := range []string{"h1", "h2", "h3"} {
				if st := admit(id); st.State != governance.SeatActive {
					t.Fatalf("%s: %+v", id, st)
				}
			}
			if st := admit("h4"); st.State != governance.SeatWaiting || st.Position != 1 {
				t.Fatalf("h4: %+v", st)
			}
			if st := admit("h5"); st.State != governance.SeatWaiting || st.Position != 2 {
				t.Fatalf("h5: %+v", st)
			}
			// An active host keeps its seat on reconnect.
			if st := admit("h2"); st.State != governance.SeatActive {
				t.Fatalf("h2 lost its seat: %+v", st)
			}
			// Demand grows: 4 streams × 1.5 / 1 = 6 seats; the waitlist is
			// admitted in order as it comes back.
			s.Observe("eu", 4, map[string]float64{"h1": 1, "h2": 1, "h3": 1})
			if st := admit("h5"); st.State != governance.SeatActive {
				t.Fatalf("h5 after growth: %+v", st)
			}
			// h1 falls silent beyond the active window: it loses its seat and
			// rejoins at the back of the line.
			for i := 0; i < 11; i++ {
				clk.add(time.Minute)
				for _, id := range []string{"h2", "h3", "h4", "h5"} {
					if err := s.Touch(ctx, id); err != nil {
						t.Fatal(err)
					}
				}
			}
			if st := admit("h4"); st.State != governance.SeatActive {
				t.Fatalf("h4: %+v", st)
			}
			regions, err := s.Regions(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(regions) != 1 || regions[0].Seats != 6 || regions[0].Active != 4 || regions[0].Waiting != 1 {
				t.Fatalf("regions %+v", regions)
			}
			if st := admit("h1"); st.State != governance.SeatActive {
				t.Fatalf("h1 coming back with seats free: %+v", st)
			}
		})
	}
}

func TestFederationReadiness(t *testing.T) {
	p := governance.Policy{}
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	got := p.Readiness([]governance.RegionFacts{
		{Region: "us", RevenueMicros: 60_000_000_000, ActiveHosts: 80},
		{Region: "eu", RevenueMicros: 60_000_000_000, ActiveHosts: 49},
		{Region: "af", RevenueMicros: 1_000_000, ActiveHosts: 70},
	}, now)
	want := map[string]bool{"us": true, "eu": false, "af": false}
	for _, r := range got {
		if r.Ready != want[r.Region] {
			t.Errorf("%s: %+v", r.Region, r)
		}
	}
	if governance.GrossUp(95, 95) != 100 {
		t.Fatal("gross up")
	}
}
