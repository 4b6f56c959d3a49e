package llama

import (
	"math"
	"sync"

	"github.com/peerllm/peerllm/internal/engine/gguf"
)

// state is the scratch memory and KV cache of one generation slot.
type state struct {
	x, xb, xb2 []float32   // dim
	hb, hb2    []float32   // hidden
	q, k, v    []float32   // dim, kvDim, kvDim
	atts       [][]float32 // per attention goroutine, ctx scores each
	parMin     int         // positions×dim from which heads run in parallel
	logits     []float32   // vocab
	cos, sin   []float32   // ropeDim/2
	// keys and vals hold, per layer, positions × kvDim floats; they grow in
	// chunks up to the context length so a small request stays small.
	keys, vals [][]float32
	capPos     int // positions allocated in keys/vals
	maxPos     int // context length
	pool       *gguf.Pool
}

// newState allocates a slot's buffers; its pool runs the matrix products
// (a Pool serialises its calls, so each slot has its own).
func newState(c config, ctx, threads int) *state {
	s := &state{pool: gguf.NewPool(threads),
		x: make([]float32, c.dim), xb: make([]float32, c.dim), xb2: make([]float32, c.dim),
		hb: make([]float32, c.hidden), hb2: make([]float32, c.hidden),
		q: make([]float32, c.dim), k: make([]float32, c.kvDim()), v: make([]float32, c.kvDim()),
		logits: make([]float32, c.vocab),
		cos:    make([]float32, c.ropeDim/2), sin: make([]float32, c.ropeDim/2),
		keys: make([][]float32, c.layers), vals: make([][]float32, c.layers),
		maxPos: ctx,
	}
	s.pool.SetRoundActivations(c.roundActivations)
	s.parMin = parallelAttention
	n := 1
	if threads > 1 && ctx*c.dim >= parallelAttention {
		n = min(threads, c.heads)
	}
	for range n {
		s.atts = append(s.atts, make([]float32, ctx))
	}
	return s
}

// reserve makes room in the KV cache for positions [0, n).
func (s *state) reserve(c config, n int) {
	if n <= s.capPos {
		return
	}
	newCap := max(n, min(s.maxPos, max(256, 2*s.capPos)))
	kv := c.kvDim()
	for l := range s.keys {
		k := make([]float32, newCap*kv)
		copy(k, s.keys[l])
		s.keys[l] = k
		v := make([]float32, newCap*kv)
		copy(v, s.vals[l])
		s.vals[l] = v
	}
	s.capPos = newCap
}

// parallelAttention is the positions×dim above which a token's attention
// heads are split across goroutines (below it, starting them costs more
// than the arithmetic).
const parallelAttention = 1 << 18

// rmsnorm writes weight * (x / rms(x)) to o, in llama2.c's float order.
func rmsnorm(o, x, weight []float32, eps float32) {
	var ss float32
	for _, v := range x {
		ss += v * v
	}
	ss /= float32(len(x))
	ss += eps
	ss = 1 / float32(math.Sqrt(float64(ss)))
	for j := range o {
		o[j] = weight[j] * (ss * x[j])
	}
}

// expf is exp32: float32(math.Exp) without its per-host last-bit variations.
func expf(x float32) float32 { return exp32(x) }

// softmax normalises x in place, with exp32 (bit-identical to
// float32(math.Exp) on all its inputs here, and the same on every host).
// With AVX2 the maximum, the exponentials and the final divisions run in
// vector lanes: exp and the divisions are the same operations, and the
// maximum can differ from the scalar loop's only in the sign of a zero,
// which v − max then exp do not see. The sum stays scalar and in order.
func softmax(x []float32) {
	n8 := len(x) &^ 7
	var maxv float32
	if attnSIMD && n8 >= 8 {
		maxv = maxAVX2(&x[0], n8)
		for _, v := range x[n8:] {
			if v > maxv {
				maxv = v
			}
		}
	} else {
		maxv = x[0]
		for _, v := range x[1:] {
			if v > maxv {
				maxv = v
			}
		}
	}
	var sum float32
	if attnSIMD && len(x) >= 4 {
		n4 := len(x) &^ 3
		expAVX2(&x[0], n4, maxv)
		for i := n4; i < len(x); i++ {
			x[i] = exp32(x[i] - maxv)
		}
		for _, e := range x {
			sum += e
		}
	} else {
		for i, v := range x {
			e := exp32(v - maxv)
			x[i] = e
			sum += e
		}
	}
	i := 0
	if attnSIMD && n8 >= 8 {
		divAVX2(&x[0], n8, sum)
		i = n8
	}
	for ; i < len(x); i++ {
		x[i] /= sum
	}
}

// matvec computes out = w · x on the slot's pool.
func (s *state) matvec(w matrix, x, out []float32) {
	s.pool.MatVec(w.typ, w.data, w.rows, w.cols, x, out)
}

// rope rotates adjacent pairs (v[2i], v[2i+1]) of each head by pos·freq[i],
// as llama2.c and llama.cpp's normal mode do.
func (m *model) rope(s *state, vec []float32, heads int) {
	hd, rd := m.cfg.headDim, m.cfg.ropeDim
	for h := 0; h < heads; h++ {
		v := vec[h*hd : h*hd+rd]
		for i := 0; i < rd/2; i++ {
			fcr, fci := s.cos[i], s.sin[i]
			v0, v1 := v[2*i], v[2*i+1]
			v[2*i] = v0*fcr - v1*fci
			v[2*i+1] = v0*fci + v1*fcr
		}
	}
}

// forward feeds token at position pos and, if wantLogits, leaves the next
// token's logits in s.logits.
func (m *model) forward(s *state, token, pos int, wantLogits bool) error {
	c := m.cfg
	s.reserve(c, pos+1)
	if err := m.w.embed.row(token, s.x); err != nil {
		return err
	}
	for i, f := range m.freqs {
		val := float32(pos) * f
		s.cos[i] = float32(math.Cos(float64(val)))
		s.sin[i] = float32(math.Sin(float64(val)))
	}
	kvDim := c.kvDim()
	for l := range m.w.layers {
		ly := &m.w.layers[l]
		rmsnorm(s.xb, s.x, ly.attnNorm, c.eps)
		kc := s.keys[l][pos*kvDim : (pos+1)*kvDim]
		vc := s.vals[l][pos*kvDim : (pos+1)*kvDim]
		s.matvec(ly.wq, s.xb, s.q)
		s.matvec(ly.wk, s.xb, kc)
		s.matvec(ly.wv, s.xb, vc)
		m.rope(s, s.q, c.heads)
		m.rope(s, kc, c.kvHeads)

		if n := len(s.atts); n > 1 && (pos+1)*c.dim >= s.parMin {
			// Long contexts: heads in parallel, each group with its own
			// score buffer. Per-head arithmetic is unchanged, so results
			// are identical to the serial loop.
			var wg sync.WaitGroup
			for g := 1; g < n; g++ {
				wg.Add(1)
				go func(l, from, to int) {
					defer wg.Done()
					m.attendHeads(s, l, pos, from, to, s.atts[g])
				}(l, c.heads*g/n, c.heads*(g+1)/n)
			}
			m.attendHeads(s, l, pos, 0, c.heads/n, s.atts[0])
			wg.Wait()
		} else {
			m.attendHeads(s, l, pos, 0, c.heads, s.atts[0])
		}
		s.matvec(ly.wo, s.xb, s.xb2)
		for i := range s.x {
			s.x[i] += s.xb2[i]
		}

		rmsnorm(s.xb, s.x, ly.ffnNorm, c.eps)
		s.matvec(ly.gate, s.xb, s.hb)
		s.matvec(ly.up, s.xb, s.hb2)
		for i, v := range s.hb {
			v = v * (1 / (1 + expf(-v)))
			s.hb[i] = v * s.hb2[i]
		}
		s.matvec(ly.down, s.hb, s.xb)
		for i := range s.x {
			s.x[i] += s.xb[i]
		}
	}
	if !wantLogits {
		return nil
	}
	rmsnorm(s.x, s.x, m.w.outNorm, c.eps)
	s.matvec(m.w.output, s.x, s.logits)
	return nil
}

// attendHeads runs attention for heads [from, to) of layer l at pos,
// writing each head's output into s.xb; att is a scratch score buffer.
func (m *model) attendHeads(s *state, l, pos, from, to int, att []float32) {
	c := m.cfg
	kvDim, hd := c.kvDim(), c.headDim
	group := c.heads / c.kvHeads
	scale := float32(math.Sqrt(float64(hd)))
	keys, vals := s.keys[l][:(pos+1)*kvDim], s.vals[l][:(pos+1)*kvDim]
	for h := from; h < to; h++ {
		off := (h / group) * hd
		attention(s.q[h*hd:(h+1)*hd], keys[off:], vals[off:], kvDim, att[:pos+1], s.xb[h*hd:(h+1)*hd], scale)
	}
}

// attention computes one head: scores of q against each position's key
// (keys[t*stride:][:len(q)]), softmax, and the weighted sum of values into
// out, in llama2.c's float order. With AVX2 and a head size that is a
// multiple of 8, eight positions (scores) or eight elements (values) run in
// vector lanes, each lane doing the scalar loop's operations in its order,
// so the bits are the same.
func attention(q, keys, vals []float32, stride int, att, out []float32, scale float32) {
	hd := len(q)
	n := len(att)
	simd := attnSIMD && hd%8 == 0 && hd > 0 && n > 0
	t0 := 0
	if simd && n >= 8 {
		n8 := n &^ 7
		_ = keys[(n8-1)*stride+hd-1] // the kernel reads these
		attnScoresAVX2(&q[0], &keys[0], 4*stride, hd, n8, scale, &att[0])
		t0 = n8
	}
	for t := t0; t < n; t++ {
		k := keys[t*stride : t*stride+hd]
		k = k[:len(q)]
		var score float32
		for i, qv := range q {
			score += qv * k[i]
		}
		att[t] = score / scale
	}
	softmax(att)
	out = out[:hd]
	if simd {
		_ = vals[(n-1)*stride+hd-1]
		attnValuesAVX2(&att[0], n, &vals[0], 4*stride, hd, &out[0])
		return
	}
	clear(out)
	for t, a := range att {
		v := vals[t*stride : t*stride+hd]
		v = v[:len(out)]
		for i := range out {
			out[i] += a * v[i]
		}
	}
}
