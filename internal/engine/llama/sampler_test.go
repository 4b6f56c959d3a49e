package llama

import (
	"math"
	"slices"
	"testing"

	"github.com/peerllm/peerllm/internal/engine"
)

func TestSampler(t *testing.T) {
	logits := func() []float32 { return []float32{1, 5, 3, 5, -2, 4} }
	var sm sampler
	if got := sm.sample(logits(), engine.Sampling{}, nil, 0); got != 1 {
		t.Errorf("greedy picked %d, want the first maximum 1", got)
	}
	// Top-k 1 is greedy whatever the temperature.
	if got := sm.sample(logits(), engine.Sampling{Temperature: 5, TopK: 1, Seed: 3}, nil, 0); got != 1 {
		t.Errorf("top-k 1 picked %d", got)
	}
	// A repetition penalty on 1 and 3 makes 5 the best.
	if got := sm.sample(logits(), engine.Sampling{RepeatPenalty: 2}, []int{1, 3, 1}, 0); got != 5 {
		t.Errorf("penalised greedy picked %d, want 5", got)
	}
	// Top-k 2 only ever samples 1 or 3; min-p 0.9 (after temperature 1)
	// keeps only the two 5s; top-p 0.5 keeps one.
	counts := map[string]map[int]int{}
	cases := map[string]engine.Sampling{
		"top-k": {Temperature: 1, TopK: 2},
		"min-p": {Temperature: 1, MinP: 0.9},
		"top-p": {Temperature: 1, TopP: 0.3},
		"plain": {Temperature: 1},
	}
	for name, s := range cases {
		counts[name] = map[int]int{}
		for pos := range 2000 {
			s.Seed = 11
			counts[name][sm.sample(logits(), s, nil, pos)]++
		}
	}
	for name, allowed := range map[string][]int{"top-k": {1, 3}, "min-p": {1, 3}, "top-p": {1}} {
		for id := range counts[name] {
			if !slices.Contains(allowed, id) {
				t.Errorf("%s sampled %d, allowed %v", name, id, allowed)
			}
		}
	}
	// Without filters every likely token is reached, in proportion to
	// softmax (token 4 has p ≈ 4e-4).
	for _, id := range []int{0, 1, 2, 3, 5} {
		if counts["plain"][id] == 0 {
			t.Errorf("plain sampling never chose %d", id)
		}
	}
	p1 := float64(counts["plain"][1]) / 2000
	want := math.Exp(5) / (math.Exp(1) + 2*math.Exp(5) + math.Exp(3) + math.Exp(-2) + math.Exp(4))
	if math.Abs(p1-want) > 0.05 {
		t.Errorf("token 1 sampled %.3f of the time, softmax says %.3f", p1, want)
	}
	// The draw depends only on (seed, position).
	s := engine.Sampling{Temperature: 1.5, Seed: 99}
	for pos := range 50 {
		a := sm.sample(logits(), s, nil, pos)
		var fresh sampler
		if b := fresh.sample(logits(), s, []int{4, 4}, pos); a != b {
			t.Fatalf("position %d: %d then %d", pos, a, b)
		}
	}
}

func TestTopK(t *testing.T) {
	cs := make([]candidate, 100)
	for i := range cs {
		cs[i] = candidate{id: i, p: float32((i * 37) % 100)}
	}
	got := topK(slices.Clone(cs), 5)
	slices.SortFunc(got, byProb)
	slices.SortFunc(cs, byProb)
	if !slices.Equal(got, cs[:5]) {
		t.Errorf("topK %v, want %v", got, cs[:5])
	}
}
