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
