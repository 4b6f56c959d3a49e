package gguf_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/peerllm/peerllm/internal/engine/gguf"
)

func TestDotType(t *testing.T) {
	want := map[gguf.Type]gguf.Type{
		gguf.TypeF32: gguf.TypeF32, gguf.TypeF16: gguf.TypeF16, gguf.TypeBF16: gguf.TypeBF16,
		gguf.TypeQ4_0: gguf.TypeQ8_0, gguf.TypeQ5_0: gguf.TypeQ8_0, gguf.TypeQ8_0: gguf.TypeQ8_0,
		gguf.TypeQ4_1: gguf.TypeQ8_1, gguf.TypeQ5_1: gguf.TypeQ8_1,
		gguf.TypeQ4_K: gguf.TypeQ8_K, gguf.TypeQ5_K: gguf.TypeQ8_K, gguf.TypeQ6_K: gguf.TypeQ8_K, gguf.TypeQ2_K: gguf.TypeQ8_K,
	}
	for in, w := range want {
		if got := gguf.DotType(in); got != w {
			t.Errorf("DotType(%s) = %s, want %s", in, got, w)
		}
	}
}

func TestRoundActivationsExamples(t *testing.T) {
	q80 := make([]float32, 32)
	copy(q80, []float32{127, 63.5, 62.5, -1, 0.49})
	want80 := make([]float32, 32)
	copy(want80, []float32{127, 64, 62, -1, 0}) // d = 1, ties to even
	q8k := make([]float32, 256)
	copy(q8k, []float32{-2, 1, 0.5, 2})
	d := float32(1) / float32(63.5) // iscale = -127/-2
	want8k := make([]float32, 256)
	copy(want8k, []float32{d * -127, d * 64, d * 32, d * 127}) // 63.5 → 64, 31.75 → 32
	cases := []struct {
		name    string
		t       gguf.Type
		x, want []float32
	}{
		{"Q8_0", gguf.TypeQ4_0, q80, want80},
		{"Q8_K", gguf.TypeQ4_K, q8k, want8k},
		{"F16", gguf.TypeF16, []float32{1 + 1.0/4096, 1 + 3.0/4096, 65536}, []float32{1, 1 + 4.0/4096, float32(math.Inf(1))}},
		{"BF16", gguf.TypeBF16, []float32{1 + 1.0/256, 1 + 3.0/256}, []float32{1, 1 + 4.0/256}},
		{"F32", gguf.TypeF32, []float32{1 + 1.0/4096}, []float32{1 + 1.0/4096}},
		{"zero block", gguf.TypeQ6_K, make([]float32, 256), make([]float32, 256)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := make([]float32, len(c.x))
			if err := gguf.RoundActivations(c.t, c.x, got); err != nil {
				t.Fatal(err)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Fatalf("element %d: %v, want %v", i, got[i], c.want[i])
				}
			}
		})
	}
	if err := gguf.RoundActivations(gguf.TypeQ4_K, make([]float32, 32), make([]float32, 32)); err == nil {
		t.Error("rounding 32 values for a K-quant succeeded")
	}
}

// TestRoundActivationsProperties checks q8 rounding on random data: every
// value is an integer multiple (|q| ≤ 127) of its block's scale, the largest
// magnitude maps to 127, and the error is at most half a step.
func TestRoundActivationsProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	x := randomVector(r, 1024)
	for _, c := range []struct {
		t     gguf.Type
		block int
	}{{gguf.TypeQ8_0, 32}, {gguf.TypeQ6_K, 256}} {
		y := make([]float32, len(x))
		if err := gguf.RoundActivations(c.t, x, y); err != nil {
			t.Fatal(err)
		}
		for b := 0; b < len(x); b += c.block {
			var amax, ymax float64
			for j := b; j < b+c.block; j++ {
				amax = math.Max(amax, math.Abs(float64(x[j])))
				ymax = math.Max(ymax, math.Abs(float64(y[j])))
			}
			step := ymax / 127
			for j := b; j < b+c.block; j++ {
				q := float64(y[j]) / step
				if math.Abs(q-math.Round(q)) > 1e-3 || math.Abs(q) > 127.001 {
					t.Fatalf("%s element %d: %v is %v steps of %v", c.t, j, y[j], q, step)
				}
				if math.Abs(float64(y[j]-x[j])) > step*0.5001+amax*1e-3 {
					t.Fatalf("%s element %d: %v rounded to %v (step %v)", c.t, j, x[j], y[j], step)
				}
			}
		}
	}
}

// TestPoolRoundActivations checks that a rounding pool equals rounding by
// hand and then multiplying, on one and two threads: exactly for the float
// kernels, and within float32 summation error for the integer kernels of
// Q8_0, Q4_0, Q4_K and Q6_K (same rounded values, other summation order).
func TestPoolRoundActivations(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	for _, threads := range []int{1, 2} {
		p := gguf.NewPool(threads)
		p.SetRoundActivations(true)
		for _, typ := range []gguf.Type{gguf.TypeF32, gguf.TypeF16, gguf.TypeBF16, gguf.TypeQ8_0, gguf.TypeQ4_0, gguf.TypeQ5_1, gguf.TypeQ4_K, gguf.TypeQ6_K} {
			rows, cols := 200, 512
			w := randomWeights(r, typ, rows*cols)
			x := randomVector(r, cols)
			got := make([]float32, rows)
			p.MatVec(typ, w, rows, cols, x, got)
			xr := make([]float32, cols)
			if err := gguf.RoundActivations(typ, x, xr); err != nil {
				t.Fatal(err)
			}
			want := make([]float32, rows)
			(*gguf.Pool)(nil).MatVec(typ, w, rows, cols, xr, want)
			exact := typ != gguf.TypeQ8_0 && typ != gguf.TypeQ4_0 && typ != gguf.TypeQ4_K && typ != gguf.TypeQ6_K
			rb, _ := gguf.RowBytes(typ, cols)
			row := make([]float32, cols)
			for i := range got {
				if exact && got[i] != want[i] {
					t.Fatalf("%s threads %d row %d: %v, want %v", typ, threads, i, got[i], want[i])
				}
				if err := gguf.Dequantize(typ, w[i*rb:(i+1)*rb], row); err != nil {
					t.Fatal(err)
				}
				var mag float64
				for k, v := range row {
					mag += math.Abs(float64(v) * float64(xr[k]))
				}
				if d := math.Abs(float64(got[i] - want[i])); d > 2e-6*mag {
					t.Fatalf("%s threads %d row %d: %v, want %v (diff %g, magnitude %g)", typ, threads, i, got[i], want[i], d, mag)
				}
			}
			if typ != gguf.TypeF32 && x[0] == xr[0] && x[1] == xr[1] && x[2] == xr[2] {
				t.Errorf("%s: rounding left the input unchanged", typ)
			}
		}
		w := randomWeights(r, gguf.TypeQ4_K, 64*256)
		x, out := randomVector(r, 256), make([]float32, 64)
		if a := testing.AllocsPerRun(10, func() { p.MatVec(gguf.TypeQ4_K, w, 64, 256, x, out) }); a != 0 {
			t.Errorf("threads %d: %v allocations per rounding MatVec", threads, a)
		}
		p.Close()
	}
}
