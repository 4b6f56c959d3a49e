package gguf_test

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/peerllm/peerllm/internal/engine/gguf"
)

var allSupported = []gguf.Type{
	gguf.TypeF32, gguf.TypeF16, gguf.TypeBF16,
	gguf.TypeQ4_0, gguf.TypeQ4_1, gguf.TypeQ5_0, gguf.TypeQ5_1, gguf.TypeQ8_0, gguf.TypeQ8_1,
	gguf.TypeQ2_K, gguf.TypeQ3_K, gguf.TypeQ4_K, gguf.TypeQ5_K, gguf.TypeQ6_K, gguf.TypeQ8_K,
}

// randHalf returns a random normal binary16 of magnitude 2^-6 to 2^1.
func randHalf(r *rand.Rand) uint16 {
	return uint16(r.IntN(2))<<15 | uint16(9+r.IntN(8))<<10 | uint16(r.IntN(1024))
}

// randomWeights returns n elements of type t: random quantized values with
// finite, moderate scales.
func randomWeights(r *rand.Rand, t gguf.Type, n int) []byte {
	size, err := gguf.RowBytes(t, n)
	if err != nil {
		panic(err)
	}
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	put16 := func(off int) { binary.LittleEndian.PutUint16(b[off:], randHalf(r)) }
	bb := t.BlockBytes()
	for blk := 0; blk < size; blk += bb {
		switch t {
		case gguf.TypeF32:
			binary.LittleEndian.PutUint32(b[blk:], math.Float32bits(float32(r.NormFloat64())))
		case gguf.TypeF16:
			put16(blk)
		case gguf.TypeBF16:
			binary.LittleEndian.PutUint16(b[blk:], uint16(math.Float32bits(float32(r.NormFloat64()))>>16))
		case gguf.TypeQ4_0, gguf.TypeQ5_0, gguf.TypeQ8_0:
			put16(blk)
		case gguf.TypeQ4_1, gguf.TypeQ5_1, gguf.TypeQ8_1, gguf.TypeQ4_K, gguf.TypeQ5_K:
			put16(blk)
			put16(blk + 2)
		case gguf.TypeQ2_K:
			put16(blk + 80)
			put16(blk + 82)
		case gguf.TypeQ3_K:
			put16(blk + 108)
		case gguf.TypeQ6_K:
			put16(blk + 208)
		case gguf.TypeQ8_K:
			binary.LittleEndian.PutUint32(b[blk:], math.Float32bits(float32(r.Float64()/64)))
		}
	}
	return b
}

func randomVector(r *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return x
}

// checkMatVec compares MatVec with dequantize-then-dot in float64.
func checkMatVec(t *testing.T, p *gguf.Pool, typ gguf.Type, w []byte, rows, cols int, x []float32) {
	t.Helper()
	out := make([]float32, rows)
	p.MatVec(typ, w, rows, cols, x, out)
	rb, _ := gguf.RowBytes(typ, cols)
	row := make([]float32, cols)
	for r := range rows {
		if err := gguf.Dequantize(typ, w[r*rb:(r+1)*rb], row); err != nil {
			t.Fatal(err)
		}
		var want, mag float64
		for i, v := range row {
			want += float64(v) * float64(x[i])
			mag += math.Abs(float64(v) * float64(x[i]))
		}
		if d := math.Abs(float64(out[r]) - want); d > 2e-6*mag+1e-30 || math.IsNaN(float64(out[r])) {
			t.Fatalf("%s %dx%d threads %d row %d: MatVec %v, dequantize-then-dot %v (diff %g, magnitude %g)", typ, rows, cols, p.Threads(), r, out[r], want, d, mag)
		}
	}
}

func TestMatVecRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	pools := []*gguf.Pool{nil, gguf.NewPool(1), gguf.NewPool(2), gguf.NewPool(3)}
	defer func() {
		for _, p := range pools {
			p.Close()
		}
	}()
	for _, typ := range allSupported {
		t.Run(typ.String(), func(t *testing.T) {
			bs := typ.BlockSize()
			shapes := [][2]int{{1, max(bs, 1)}, {3, 2 * max(bs, 32)}, {7, 3 * max(bs, 64)}, {130, 512}, {65, 1024}}
			for _, s := range shapes {
				rows, cols := s[0], s[1]
				if cols%bs != 0 {
					cols = bs
				}
				w := randomWeights(r, typ, rows*cols)
				x := randomVector(r, cols)
				for _, p := range pools {
					checkMatVec(t, p, typ, w, rows, cols, x)
				}
			}
		})
	}
}

// TestMatVecMisaligned runs the F32/F16/BF16 kernels over data that is not
// aligned for a direct view, which takes the byte-decoding path.
func TestMatVecMisaligned(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, typ := range []gguf.Type{gguf.TypeF32, gguf.TypeF16, gguf.TypeBF16} {
		w := randomWeights(r, typ, 4*40)
		shifted := make([]byte, len(w)+1)[1:]
		copy(shifted, w)
		x := randomVector(r, 40)
		checkMatVec(t, nil, typ, shifted, 4, 40, x)
	}
}

// TestMatVecGolden multiplies every matrix of the shared models by a random
// vector, on one and two threads.
func TestMatVecGolden(t *testing.T) {
	dir, models := loadGolden(t)
	r := rand.New(rand.NewPCG(5, 6))
	p := gguf.NewPool(2)
	defer p.Close()
	for _, m := range models {
		f, err := gguf.Open(filepath.Join(dir, m.File))
		if err != nil {
			t.Fatal(err)
		}
		for i := range f.Tensors {
			ti := &f.Tensors[i]
			if len(ti.Dims) != 2 {
				continue
			}
			cols, rows := int(ti.Dims[0]), int(ti.Dims[1])
			x := randomVector(r, cols)
			checkMatVec(t, nil, ti.Type, ti.Data, rows, cols, x)
			checkMatVec(t, p, ti.Type, ti.Data, rows, cols, x)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestMatMul(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	p := gguf.NewPool(2)
	defer p.Close()
	for _, typ := range []gguf.Type{gguf.TypeF32, gguf.TypeQ8_0, gguf.TypeQ4_K, gguf.TypeQ6_K} {
		for _, n := range []int{1, 3, 9} {
			rows, cols := 70, 512
			w := randomWeights(r, typ, rows*cols)
			x := randomVector(r, n*cols)
			out := make([]float32, n*rows)
			p.MatMul(typ, w, rows, cols, x, n, out)
			one := make([]float32, rows)
			for i := range n {
				(*gguf.Pool)(nil).MatVec(typ, w, rows, cols, x[i*cols:(i+1)*cols], one)
				for r := range rows {
					if out[i*rows+r] != one[r] {
						t.Fatalf("%s n=%d: vector %d row %d: MatMul %v, MatVec %v", typ, n, i, r, out[i*rows+r], one[r])
					}
				}
			}
		}
	}
}

func TestMatVecPanics(t *testing.T) {
	cases := []struct {
		name string
		f    func()
	}{
		{"unsupported", func() {
			(*gguf.Pool)(nil).MatVec(gguf.TypeIQ2_XXS, make([]byte, 66), 1, 256, make([]float32, 256), make([]float32, 1))
		}},
		{"partial block", func() {
			(*gguf.Pool)(nil).MatVec(gguf.TypeQ8_0, make([]byte, 34), 1, 16, make([]float32, 16), make([]float32, 1))
		}},
		{"short weights", func() {
			(*gguf.Pool)(nil).MatVec(gguf.TypeQ8_0, make([]byte, 34), 2, 32, make([]float32, 32), make([]float32, 2))
		}},
		{"short out", func() {
			(*gguf.Pool)(nil).MatVec(gguf.TypeF32, make([]byte, 8), 2, 1, make([]float32, 1), make([]float32, 1))
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			c.f()
		})
	}
}

func TestMatVecNoAlloc(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	p := gguf.NewPool(2)
	defer p.Close()
	for _, shape := range [][2]int{{8, 256}, {512, 512}} {
		w := randomWeights(r, gguf.TypeQ4_K, shape[0]*shape[1])
		x := randomVector(r, shape[1])
		out := make([]float32, shape[0])
		allocs := testing.AllocsPerRun(20, func() { p.MatVec(gguf.TypeQ4_K, w, shape[0], shape[1], x, out) })
		if allocs != 0 {
			t.Errorf("%v: %v allocations per MatVec", shape, allocs)
		}
	}
}

func TestDot(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, n := range []int{0, 1, 7, 8, 9, 64, 1001} {
		a, b := randomVector(r, n), randomVector(r, n+3)
		var want, mag float64
		for i := range a {
			want += float64(a[i]) * float64(b[i])
			mag += math.Abs(float64(a[i]) * float64(b[i]))
		}
		if got := gguf.Dot(a, b); math.Abs(float64(got)-want) > 1e-6*mag {
			t.Errorf("n=%d: Dot %v, want %v", n, got, want)
		}
	}
}

func ExamplePool_MatVec() {
	p := gguf.NewPool(2)
	defer p.Close()
	// A 2×3 F32 matrix [[1 2 3] [4 5 6]], stored row after row.
	var w []byte
	for _, v := range []float32{1, 2, 3, 4, 5, 6} {
		w = binary.LittleEndian.AppendUint32(w, math.Float32bits(v))
	}
	out := make([]float32, 2)
	p.MatVec(gguf.TypeF32, w, 2, 3, []float32{1, 0, -1}, out)
	fmt.Println(out)
	// Output: [-2 -2]
}

// TestPoolCloseStopsWorkers checks that Close leaves no goroutine behind.
func TestPoolCloseStopsWorkers(t *testing.T) {
	before := runtime.NumGoroutine()
	p := gguf.NewPool(4)
	if n := runtime.NumGoroutine(); n < before+3 {
		t.Fatalf("%d goroutines after NewPool(4), %d before", n, before)
	}
	w := randomWeights(rand.New(rand.NewPCG(1, 1)), gguf.TypeF32, 256*256)
	p.MatVec(gguf.TypeF32, w, 256, 256, make([]float32, 256), make([]float32, 256))
	p.Close()
	p.Close()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines after Close, %d before", runtime.NumGoroutine(), before)
		}
		runtime.Gosched()
	}
}

// TestPoolConcurrentCallers runs large and small products from several
// goroutines on one Pool; every result must match a single-threaded run.
func TestPoolConcurrentCallers(t *testing.T) {
	r := rand.New(rand.NewPCG(25, 26))
	p := gguf.NewPool(2)
	defer p.Close()
	type tc struct {
		rows, cols int
		w          []byte
		x, want    []float32
	}
	var cases []tc
	for _, s := range [][2]int{{300, 256}, {8, 256}, {200, 512}} {
		c := tc{rows: s[0], cols: s[1], w: randomWeights(r, gguf.TypeQ4_K, s[0]*s[1]), x: randomVector(r, s[1])}
		c.want = make([]float32, c.rows)
		(*gguf.Pool)(nil).MatVec(gguf.TypeQ4_K, c.w, c.rows, c.cols, c.x, c.want)
		cases = append(cases, c)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				c := cases[(g+i)%len(cases)]
				out := make([]float32, c.rows)
				p.MatVec(gguf.TypeQ4_K, c.w, c.rows, c.cols, c.x, out)
				for k := range out {
					if out[k] != c.want[k] {
						errs <- fmt.Sprintf("goroutine %d: %dx%d row %d: %v, want %v", g, c.rows, c.cols, k, out[k], c.want[k])
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
