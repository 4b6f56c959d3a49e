package llama

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"github.com/peerllm/peerllm/internal/engine"
)

// checkSampling rejects values out of range.
func checkSampling(s engine.Sampling) error {
	bad := func(f float32) bool { return math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) }
	switch {
	case bad(s.Temperature) || s.Temperature < 0:
		return fmt.Errorf("%w: temperature %v", engine.ErrBadRequest, s.Temperature)
	case s.TopK < 0:
		return fmt.Errorf("%w: top_k %d", engine.ErrBadRequest, s.TopK)
	case bad(s.TopP) || s.TopP < 0 || s.TopP > 1:
		return fmt.Errorf("%w: top_p %v", engine.ErrBadRequest, s.TopP)
	case bad(s.MinP) || s.MinP < 0 || s.MinP > 1:
		return fmt.Errorf("%w: min_p %v", engine.ErrBadRequest, s.MinP)
	case bad(s.RepeatPenalty) || s.RepeatPenalty < 0:
		return fmt.Errorf("%w: repeat_penalty %v", engine.ErrBadRequest, s.RepeatPenalty)
	case s.RepeatLastN < 0:
		return fmt.Errorf("%w: repeat_last_n %d", engine.ErrBadRequest, s.RepeatLastN)
	}
	return nil
}

// splitmix64 is one step of the SplitMix64 generator, a good 64-bit mixer.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// uniform is the random draw in [0, 1) for completion position pos: it
// depends only on seed and pos, so a continuation draws what an
// uninterrupted run would.
func uniform(seed uint64, pos int) float32 {
	r := splitmix64(splitmix64(seed) ^ uint64(pos)*0xd1342543de82ef95)
	return float32(r>>40) / (1 << 24)
}

// candidate is a token with its probability during sampling.
type candidate struct {
	id int
	p  float32
}

// sampler holds reusable buffers for one slot.
type sampler struct {
	cands []candidate
	seen  map[int]bool
}

// sample picks the next token from logits (modified in place). history is
// the whole sequence so far (for the repetition penalty); pos is the
// completion position of the token being chosen.
func (sm *sampler) sample(logits []float32, s engine.Sampling, history []int, pos int) int {
	if s.RepeatPenalty > 0 && s.RepeatPenalty != 1 {
		n := s.RepeatLastN
		if n == 0 {
			n = 64
		}
		start := max(0, len(history)-n)
		if sm.seen == nil {
			sm.seen = make(map[int]bool, n)
		}
		clear(sm.seen)
		for _, id := range history[start:] {
			if id < 0 || id >= len(logits) || sm.seen[id] {
				continue
			}
			sm.seen[id] = true
			if logits[id] > 0 {
				logits[id] /= s.RepeatPenalty
			} else {
				logits[id] *= s.RepeatPenalty
			}
		}
	}
	if s.Temperature == 0 || s.TopK == 1 {
		return argmax(logits)
	}
	cs := sm.cands[:0]
	for i, l := range logits {
		cs = append(cs, candidate{id: i, p: l / s.Temperature})
	}
	sm.cands = cs
	if s.TopK > 0 && s.TopK < len(cs) {
		// Keep the k best without sorting the whole vocabulary: a min-heap
		// of size k, then sort those.
		cs = topK(cs, s.TopK)
	}
	slices.SortFunc(cs, byProb)
	// Softmax over the kept candidates.
	maxv := cs[0].p
	var sum float32
	for i := range cs {
		cs[i].p = expf(cs[i].p - maxv)
		sum += cs[i].p
	}
	for i := range cs {
		cs[i].p /= sum
	}
	if s.MinP > 0 {
		limit := cs[0].p * s.MinP
		n := 1
		for n < len(cs) && cs[n].p >= limit {
			n++
		}
		cs = cs[:n]
	}
	if s.TopP > 0 && s.TopP < 1 {
		var cum float32
		n := len(cs)
		for i := range cs {
			cum += cs[i].p
			if cum >= s.TopP {
				n = i + 1
				break
			}
		}
		cs = cs[:n]
	}
	var total float32
	for _, c := range cs {
		total += c.p
	}
	r := uniform(s.Seed, pos) * total
	var cdf float32
	for _, c := range cs {
		cdf += c.p
		if r < cdf {
			return c.id
		}
	}
	return cs[len(cs)-1].id
}

// byProb orders candidates best first, ties by lower id.
func byProb(a, b candidate) int {
	switch {
	case a.p > b.p:
		return -1
	case a.p < b.p:
		return 1
	}
	return cmp.Compare(a.id, b.id)
}

// topK moves the k best candidates to the front of cs (unordered) and
// returns them.
func topK(cs []candidate, k int) []candidate {
	h := cs[:k]
	// Min-heap on h: h[0] is the worst kept candidate.
	less := func(i, j int) bool { return byProb(h[i], h[j]) > 0 }
	down := func(i int) {
		for {
			l := 2*i + 1
			if l >= k {
				return
			}
			if r := l + 1; r < k && less(r, l) {
				l = r
			}
			if !less(l, i) {
				return
			}
			h[i], h[l] = h[l], h[i]
			i = l
		}
	}
	for i := k/2 - 1; i >= 0; i-- {
		down(i)
	}
	for _, c := range cs[k:] {
		if byProb(c, h[0]) < 0 {
			h[0] = c
			down(0)
		}
	}
	return h
}

// argmax returns the first index of the largest value, as llama2.c does.
func argmax(x []float32) int {
	best, bv := 0, x[0]
	for i, v := range x[1:] {
		if v > bv {
			best, bv = i+1, v
		}
	}
	return best
}
