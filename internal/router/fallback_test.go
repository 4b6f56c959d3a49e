package router_test

import (
	"math/rand/v2"
	"testing"

	"github.com/peerllm/peerllm/internal/router"
)

// fb is a fast operator-run fallback host: faster than every community host,
// so only the fallback rule keeps it out.
func fb(id string, inflight int) router.Candidate {
	c := host(id, "operator", 1, 0.1)
	c.Fallback, c.InFlight = true, inflight
	return c
}

func full(c router.Candidate) router.Candidate { c.InFlight = c.Capacity; return c }

func TestFallbackOnlyWhenNoCommunityHostCan(t *testing.T) {
	tests := []struct {
		name       string
		cands      []router.Candidate
		want       router.Want
		main, back string
		full       bool
	}{
		{"community host free: fallback not used, not even as backup",
			[]router.Candidate{fb("f", 0), host("a", "o1", 500, 50)}, router.Want{}, "a", "", false},
		{"community hosts full: fallback takes the task",
			[]router.Candidate{fb("f", 0), full(host("a", "o1", 50, 5))}, router.Want{}, "f", "", false},
		{"community host excluded (failed this request): fallback",
			[]router.Candidate{fb("f", 0), host("a", "o1", 50, 5)}, router.Want{Exclude: map[string]bool{"a": true}}, "f", "", false},
		{"only fallback hosts: a fallback backs up a fallback",
			[]router.Candidate{fb("f", 0), fb("g", 1)}, router.Want{}, "f", "g", false},
		{"everything full",
			[]router.Candidate{full(fb("f", 0)), full(host("a", "o1", 50, 5))}, router.Want{}, "", "", true},
	}
	name := func(cands []router.Candidate, i int) string {
		if i < 0 {
			return ""
		}
		return cands[i].ID
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, rng := range []*rand.Rand{nil, rand.New(rand.NewPCG(1, 2))} {
				ch := router.Choose(tt.cands, tt.want, rng)
				if got := name(tt.cands, ch.Main); got != tt.main {
					t.Errorf("main = %q, want %q", got, tt.main)
				}
				if got := name(tt.cands, ch.Backup); got != tt.back {
					t.Errorf("backup = %q, want %q", got, tt.back)
				}
				if ch.Full != tt.full {
					t.Errorf("full = %v, want %v", ch.Full, tt.full)
				}
			}
		})
	}
	if !router.CommunityFree([]router.Candidate{fb("f", 0), host("a", "o1", 1, 1)}, router.Want{}) {
		t.Error("CommunityFree = false with a free community host")
	}
	if router.CommunityFree([]router.Candidate{fb("f", 0), full(host("a", "o1", 1, 1))}, router.Want{}) {
		t.Error("CommunityFree = true with every community host full")
	}
}
