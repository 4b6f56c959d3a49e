package llama

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestAttentionSIMDBits checks that the AVX2 attention and softmax kernels give exactly
// the scalar loop's bits, for head sizes 8 to 64, 1 to 41 positions and
// keys/values interleaved with other heads (stride > head size).
func TestAttentionSIMDBits(t *testing.T) {
	if !attnSIMD {
		t.Skip("no AVX2 attention kernels on this CPU/build")
	}
	defer func() { attnSIMD = true }()
	r := rand.New(rand.NewPCG(5, 6))
	vec := func(n int) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(r.NormFloat64())
		}
		return x
	}
	for _, hd := range []int{8, 16, 64} {
		for _, n := range []int{1, 7, 8, 9, 16, 41, 100} {
			stride := 3 * hd
			q, keys, vals := vec(hd), vec(n*stride), vec(n*stride)
			var outs, atts [2][]float32
			for k, simd := range []bool{false, true} {
				attnSIMD = simd
				atts[k], outs[k] = make([]float32, n), make([]float32, hd)
				attention(q, keys[hd:], vals[2*hd:], stride, atts[k], outs[k], float32(math.Sqrt(float64(hd))))
			}
			for i := range outs[0] {
				if math.Float32bits(outs[0][i]) != math.Float32bits(outs[1][i]) {
					t.Fatalf("hd %d n %d out[%d]: scalar %v, AVX2 %v", hd, n, i, outs[0][i], outs[1][i])
				}
			}
			for i := range atts[0] {
				if math.Float32bits(atts[0][i]) != math.Float32bits(atts[1][i]) {
					t.Fatalf("hd %d n %d att[%d]: scalar %v, AVX2 %v", hd, n, i, atts[0][i], atts[1][i])
				}
			}
		}
	}
}

// TestExp32 checks exp32 against float32(math.Exp) on 5 million inputs
// spread over [−110, 90] plus edge cases, and expAVX2 against exp32 on the
// non-positive ones (its domain), bit for bit. (All 2.24e9 float32 values
// in [−104, 89] were compared once with float32(math.Exp) on the
// development machine: no difference.)
func TestExp32(t *testing.T) {
	xs := []float32{0, float32(math.Copysign(0, -1)), -1e-45, -1e-30, -1, -87.3, -88.7, -103.9, -103.97, -104, -104.0001, -200, float32(math.Inf(-1))}
	for b := uint32(0x80000000); b <= 0xC2DC0000; b += 257 {
		xs = append(xs, math.Float32frombits(b))
	}
	pos := []float32{1e-40, 0.5, 1, 88.7, 88.73, 89, 89.01, 1000, float32(math.Inf(1))}
	for b := uint32(0); b <= 0x42B40000; b += 1031 {
		pos = append(pos, math.Float32frombits(b))
	}
	for _, x := range append(pos, xs...) {
		if g, w := exp32(x), float32(math.Exp(float64(x))); math.Float32bits(g) != math.Float32bits(w) {
			t.Fatalf("exp32(%v) = %v, math.Exp %v", x, g, w)
		}
	}
	if !attnSIMD {
		return
	}
	const sub = 0.5
	buf := make([]float32, len(xs)&^3)
	for i := range buf {
		buf[i] = xs[i] + sub
	}
	expAVX2(&buf[0], len(buf), sub)
	for i, g := range buf {
		if w := exp32(xs[i] + sub - sub); math.Float32bits(g) != math.Float32bits(w) {
			t.Fatalf("expAVX2(%v) = %v, exp32 %v", xs[i], g, w)
		}
	}
	nan := []float32{float32(math.NaN()), -1, -2, -3}
	expAVX2(&nan[0], 4, 0)
	if !math.IsNaN(float64(nan[0])) {
		t.Errorf("expAVX2(NaN) = %v", nan[0])
	}
}
