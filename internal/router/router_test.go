package router_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/peerllm/peerllm/internal/router"
)

func host(id, owner string, ttftMs int, mpt float64) router.Candidate {
	return router.Candidate{ID: id, Owner: owner, Region: "eu", Tier: "standard",
		TTFT: time.Duration(ttftMs) * time.Millisecond, MsPerToken: mpt, Capacity: 4, Successes: 100}
}

func TestChoose(t *testing.T) {
	tests := []struct {
		name       string
		cands      []router.Candidate
		want       router.Want
		main, back string // "" means none
		full       bool
	}{
		{"fastest is main, backup from another owner",
			[]router.Candidate{host("a", "o1", 50, 5), host("b", "o1", 60, 5), host("c", "o2", 300, 30)},
			router.Want{}, "a", "c", false},
		{"same owner backup only when no other owner",
			[]router.Candidate{host("a", "o1", 50, 5), host("b", "o1", 60, 5)},
			router.Want{}, "a", "b", false},
		{"single host has no backup",
			[]router.Candidate{host("a", "o1", 50, 5)},
			router.Want{}, "a", "", false},
		{"excluded host is skipped",
			[]router.Candidate{host("a", "o1", 50, 5), host("b", "o2", 60, 5)},
			router.Want{Exclude: map[string]bool{"a": true}}, "b", "", false},
		{"full host is skipped",
			[]router.Candidate{func() router.Candidate { c := host("a", "o1", 50, 5); c.InFlight = 4; return c }(), host("b", "o2", 90, 9)},
			router.Want{}, "b", "", false},
		{"all full",
			[]router.Candidate{func() router.Candidate { c := host("a", "o1", 50, 5); c.InFlight = 4; return c }()},
			router.Want{}, "", "", true},
		{"no candidates", nil, router.Want{}, "", "", false},
		{"failures lower the score",
			[]router.Candidate{func() router.Candidate { c := host("a", "o1", 50, 5); c.Failures = 100; return c }(), host("b", "o2", 60, 5)},
			router.Want{}, "b", "a", false},
		{"divergences lower the score",
			[]router.Candidate{func() router.Candidate { c := host("a", "o1", 50, 5); c.Divergences = 100; return c }(), host("b", "o2", 60, 5)},
			router.Want{}, "b", "a", false},
		{"strikes lower the score",
			[]router.Candidate{func() router.Candidate { c := host("a", "o1", 50, 5); c.Strikes = 1; return c }(), host("b", "o2", 60, 5)},
			router.Want{}, "b", "a", false},
		{"enterprise preferred",
			[]router.Candidate{host("a", "o1", 50, 5), func() router.Candidate { c := host("b", "o2", 70, 6); c.Tier = "enterprise"; return c }()},
			router.Want{Tier: "enterprise"}, "b", "a", false},
		{"enterprise main even when much slower",
			[]router.Candidate{host("a", "o1", 5, 1), func() router.Candidate { c := host("b", "o2", 400, 40); c.Tier = "enterprise"; return c }()},
			router.Want{Tier: "enterprise"}, "b", "a", false},
		{"standard main when no enterprise host is free",
			[]router.Candidate{host("a", "o1", 50, 5), func() router.Candidate { c := host("b", "o2", 50, 5); c.Tier = "enterprise"; c.InFlight = 4; return c }()},
			router.Want{Tier: "enterprise"}, "a", "", false},
		{"region preferred",
			[]router.Candidate{host("a", "o1", 50, 5), func() router.Candidate { c := host("b", "o2", 55, 5); c.Region = "us"; return c }()},
			router.Want{Region: "us"}, "b", "a", false},
		{"unmeasured host gets the median, not zero",
			[]router.Candidate{host("a", "o1", 50, 5), host("b", "o2", 500, 50), host("c", "o3", 0, 0)},
			router.Want{}, "a", "c", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch := router.Choose(tt.cands, tt.want, nil)
			name := func(i int) string {
				if i < 0 {
					return ""
				}
				return tt.cands[i].ID
			}
			if name(ch.Main) != tt.main || name(ch.Backup) != tt.back || ch.Full != tt.full {
				t.Fatalf("Choose = main %q backup %q full %v; want %q %q %v",
					name(ch.Main), name(ch.Backup), ch.Full, tt.main, tt.back, tt.full)
			}
		})
	}
}

// TestPowerOfTwoSpreadsLoad checks that near-equal hosts share the work and
// that a clearly slower host is never the main.
func TestPowerOfTwoSpreadsLoad(t *testing.T) {
	cands := []router.Candidate{host("a", "o1", 50, 5), host("b", "o2", 52, 5), host("c", "o3", 51, 5), host("slow", "o4", 900, 90)}
	rng := rand.New(rand.NewPCG(1, 2))
	counts := map[string]int{}
	for range 3000 {
		ch := router.Choose(cands, router.Want{}, rng)
		counts[cands[ch.Main].ID]++
		if cands[ch.Backup].Owner == cands[ch.Main].Owner {
			t.Fatal("backup has the main's owner")
		}
	}
	if counts["slow"] != 0 {
		t.Fatalf("slow host chosen as main %d times", counts["slow"])
	}
	for _, id := range []string{"a", "b", "c"} {
		if counts[id] < 500 {
			t.Fatalf("near-equal host %s got %d of 3000 (counts %v): stampede", id, counts[id], counts)
		}
	}
}

func TestLoadLowersScore(t *testing.T) {
	idle, busy := host("a", "o", 50, 5), host("a", "o", 50, 5)
	busy.InFlight = 3
	p := router.Prior(nil)
	if router.Score(busy, router.Want{}, p) <= router.Score(idle, router.Want{}, p) {
		t.Fatal("a loaded host must score worse than the same host idle")
	}
}
