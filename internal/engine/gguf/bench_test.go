package gguf_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/peerllm/peerllm/internal/engine/gguf"
)

// BenchmarkMatVec reports weight bytes read per second (MB/s), wall and CPU
// time per weight for a 1024×2048 matrix of each format, on one and two
// threads.
func BenchmarkMatVec(b *testing.B) {
	const rows, cols = 1024, 2048
	r := rand.New(rand.NewPCG(11, 12))
	x := randomVector(r, cols)
	out := make([]float32, rows)
	for _, typ := range allSupported {
		w := randomWeights(r, typ, rows*cols)
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/t%d", typ, threads), func(b *testing.B) {
				p := gguf.NewPool(threads)
				defer p.Close()
				b.SetBytes(int64(len(w)))
				cpu0 := cpuTime()
				for b.Loop() {
					p.MatVec(typ, w, rows, cols, x, out)
				}
				weights := float64(b.N) * rows * cols
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/weights, "ns/weight")
				// CPU time summed over threads: robust to waiting for a core
				// on a shared machine, and shows the cost of parallelism.
				b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/weights, "cpu-ns/weight")
			})
		}
	}
}

// BenchmarkMatVecShapes covers the small matrices of stories260K and the
// sizes around the single-thread threshold.
func BenchmarkMatVecShapes(b *testing.B) {
	r := rand.New(rand.NewPCG(13, 14))
	for _, s := range [][2]int{{64, 64}, {172, 64}, {512, 64}, {128, 256}, {256, 256}, {512, 512}} {
		rows, cols := s[0], s[1]
		w := randomWeights(r, gguf.TypeF32, rows*cols)
		x := randomVector(r, cols)
		out := make([]float32, rows)
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("F32/%dx%d/t%d", rows, cols, threads), func(b *testing.B) {
				p := gguf.NewPool(threads)
				defer p.Close()
				b.SetBytes(int64(len(w)))
				for b.Loop() {
					p.MatVec(gguf.TypeF32, w, rows, cols, x, out)
				}
			})
		}
	}
}

// BenchmarkDequantize reports encoded bytes decoded per second.
func BenchmarkDequantize(b *testing.B) {
	const n = 1 << 16
	r := rand.New(rand.NewPCG(15, 16))
	out := make([]float32, n)
	for _, typ := range allSupported {
		w := randomWeights(r, typ, n)
		b.Run(typ.String(), func(b *testing.B) {
			b.SetBytes(int64(len(w)))
			for b.Loop() {
				if err := gguf.Dequantize(typ, w, out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParse parses the small synthetic test file.
func BenchmarkParse(b *testing.B) {
	data := validSpec().bytes()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := gguf.Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMatMul compares 8 vectors in one MatMul with 8 MatVec calls
// (prompt processing), one thread; CPU ns per weight per vector.
func BenchmarkMatMul(b *testing.B) {
	const rows, cols, n = 1024, 2048, 8
	r := rand.New(rand.NewPCG(17, 18))
	x := randomVector(r, n*cols)
	out := make([]float32, n*rows)
	for _, typ := range []gguf.Type{gguf.TypeF32, gguf.TypeQ8_0, gguf.TypeQ4_K, gguf.TypeQ6_K} {
		w := randomWeights(r, typ, rows*cols)
		for _, batched := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/batched=%v", typ, batched), func(b *testing.B) {
				p := gguf.NewPool(1)
				defer p.Close()
				cpu0 := cpuTime()
				for b.Loop() {
					if batched {
						p.MatMul(typ, w, rows, cols, x, n, out)
						continue
					}
					for i := range n {
						p.MatVec(typ, w, rows, cols, x[i*cols:(i+1)*cols], out[i*rows:(i+1)*rows])
					}
				}
				b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/(float64(b.N)*rows*cols*n), "cpu-ns/weight/vector")
			})
		}
	}
}

// BenchmarkKernels compares the Go and AVX2 kernels in one run (one thread,
// 1024×2048), with activations rounded as the engine uses them for GGUF
// models (integer kernels for Q8_0, Q4_0, Q4_K).
func BenchmarkKernels(b *testing.B) {
	const rows, cols = 1024, 2048
	r := rand.New(rand.NewPCG(19, 20))
	x := randomVector(r, cols)
	out := make([]float32, rows)
	for _, typ := range []gguf.Type{gguf.TypeF32, gguf.TypeF16, gguf.TypeBF16, gguf.TypeQ8_0, gguf.TypeQ4_0, gguf.TypeQ4_K, gguf.TypeQ6_K} {
		w := randomWeights(r, typ, rows*cols)
		for _, simd := range []bool{false, true} {
			name := "go"
			if simd {
				name = "avx2"
			}
			b.Run(fmt.Sprintf("%s/%s", typ, name), func(b *testing.B) {
				if simd && !gguf.HasAVX2() {
					b.Skip("no AVX2")
				}
				defer gguf.SetSIMD(gguf.SetSIMD(simd))
				p := gguf.NewPool(1)
				defer p.Close()
				p.SetRoundActivations(true)
				b.SetBytes(int64(len(w)))
				cpu0 := cpuTime()
				for b.Loop() {
					p.MatVec(typ, w, rows, cols, x, out)
				}
				b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/(float64(b.N)*rows*cols), "cpu-ns/weight")
			})
		}
	}
}
