package gguf

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkHandoff compares small F32 products on the caller with the same
// products forced onto two threads, to place parallelMin.
func BenchmarkHandoff(b *testing.B) {
	r := rand.New(rand.NewPCG(31, 32))
	p := NewPool(2)
	defer p.Close()
	for _, s := range [][2]int{{64, 64}, {172, 64}, {64, 172}, {512, 64}, {128, 256}, {256, 256}} {
		rows, cols := s[0], s[1]
		w := make([]byte, 4*rows*cols)
		for i := range w {
			w[i] = byte(r.Uint32() & 0x3f) // small finite floats
		}
		x := make([]float32, cols)
		out := make([]float32, rows)
		for _, forced := range []bool{false, true} {
			b.Run(fmt.Sprintf("%dx%d/parallel=%v", rows, cols, forced), func(b *testing.B) {
				if forced {
					saved := parallelMin
					parallelMin = 0
					defer func() { parallelMin = saved }()
				} else if rows*cols >= parallelMin {
					b.Skip("above the threshold")
				}
				for b.Loop() {
					p.MatVec(TypeF32, w, rows, cols, x, out)
				}
			})
		}
	}
}
