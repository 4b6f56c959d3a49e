package gguf_test

import (
	"encoding/binary"
	"flag"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/peerllm/peerllm/internal/engine/gguf"
)

var updateBits = flag.Bool("update-bits", false, "rewrite testdata/matvec-bits.txt")

// TestMatVecBits pins the exact output bits of MatVec (float and rounded
// activations) and Dot for every format. Hosts must agree bit for bit so a
// continuation on another host matches an uninterrupted run; a compiler that
// fused a multiply-add (arm64, GOAMD64=v3) or a changed summation order
// would change these hashes. Run with -update-bits after an intended change.
func TestMatVecBits(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	const rows, cols = 40, 512
	var lines []string
	for _, typ := range allSupported {
		w := randomWeights(r, typ, rows*cols)
		x := randomVector(r, cols)
		for _, round := range []bool{false, true} {
			p := gguf.NewPool(2)
			p.SetRoundActivations(round)
			out := make([]float32, rows)
			p.MatVec(typ, w, rows, cols, x, out)
			p.Close()
			h := fnv.New64a()
			for _, v := range out {
				h.Write(binary.LittleEndian.AppendUint32(nil, math.Float32bits(v)))
			}
			lines = append(lines, fmt.Sprintf("%s round=%v %016x", typ, round, h.Sum64()))
		}
	}
	a, b := randomVector(r, 1000), randomVector(r, 1000)
	lines = append(lines, fmt.Sprintf("Dot %08x", math.Float32bits(gguf.Dot(a, b))))
	got := strings.Join(lines, "\n") + "\n"
	path := filepath.Join("testdata", "matvec-bits.txt")
	if *updateBits {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("MatVec output bits changed (run with -update-bits if intended):\ngot\n%swant\n%s", got, want)
	}
}

// TestSIMDMatchesGo checks that the AVX2 kernels give exactly the bits of
// the Go kernels, for every format, float and rounded activations, lengths
// with and without a tail, one and two threads. (Skipped where the CPU has
// no AVX2: then only the Go kernels run.)
func TestSIMDMatchesGo(t *testing.T) {
	if !gguf.HasAVX2() {
		t.Skip("no AVX2 on this CPU")
	}
	defer gguf.SetSIMD(gguf.SetSIMD(true))
	r := rand.New(rand.NewPCG(43, 44))
	for _, typ := range allSupported {
		for _, cols := range []int{256, 512, 1024} {
			if cols%typ.BlockSize() != 0 {
				continue
			}
			const rows = 9
			w := randomWeights(r, typ, rows*cols)
			x := randomVector(r, cols)
			x[3] = 0
			for _, round := range []bool{false, true} {
				for _, threads := range []int{1, 2} {
					var outs [2][]float32
					for k, simd := range []bool{false, true} {
						gguf.SetSIMD(simd)
						p := gguf.NewPool(threads)
						p.SetRoundActivations(round)
						outs[k] = make([]float32, rows)
						p.MatVec(typ, w, rows, cols, x, outs[k])
						p.Close()
					}
					for i := range outs[0] {
						if math.Float32bits(outs[0][i]) != math.Float32bits(outs[1][i]) {
							t.Fatalf("%s cols %d round %v threads %d row %d: Go %v, AVX2 %v", typ, cols, round, threads, i, outs[0][i], outs[1][i])
						}
					}
				}
			}
		}
	}
	for _, n := range []int{0, 1, 7, 8, 9, 64, 1000, 1003} {
		a, b := randomVector(r, n), randomVector(r, n)
		gguf.SetSIMD(false)
		g := gguf.Dot(a, b)
		gguf.SetSIMD(true)
		if s := gguf.Dot(a, b); math.Float32bits(g) != math.Float32bits(s) {
			t.Errorf("Dot n=%d: Go %v, AVX2 %v", n, g, s)
		}
	}
}

// TestReadBandwidth checks that the bandwidth meter reads: the AVX2 and Go
// sums agree and the figure is positive.
func TestReadBandwidth(t *testing.T) {
	buf := make([]byte, 1<<20+77)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	if bw := gguf.ReadBandwidth(buf, 2, 2); !(bw > 0) {
		t.Fatalf("bandwidth %v", bw)
	}
	if gguf.HasAVX2() {
		defer gguf.SetSIMD(gguf.SetSIMD(true))
		simd := gguf.ReadSum(buf)
		gguf.SetSIMD(false)
		if g := gguf.ReadSum(buf); g != simd {
			t.Errorf("read sum: Go %x, AVX2 %x", g, simd)
		}
	}
}

// TestQuantizeSIMD compares the AVX2 activation quantizer with the Go one on
// random blocks and on zero, tiny, huge and ±0 blocks.
func TestQuantizeSIMD(t *testing.T) {
	if !gguf.HasAVX2() {
		t.Skip("no AVX2 on this CPU")
	}
	defer gguf.SetSIMD(gguf.SetSIMD(true))
	r := rand.New(rand.NewPCG(45, 46))
	x := randomVector(r, 32*64)
	for i := range 32 {
		x[i] = 0                                   // zero block
		x[32+i] = float32(r.NormFloat64()) * 1e-40 // subnormal block
		x[64+i] = float32(r.NormFloat64()) * 1e37  // huge block
		x[96+i] = float32(math.Copysign(0, -1))    // -0 block
		x[128+i] = float32(i%3-1) * 0.5            // ties
	}
	gguf.SetSIMD(false)
	gq, gd := gguf.QuantizeQ8_0(x)
	gguf.SetSIMD(true)
	sq, sd := gguf.QuantizeQ8_0(x)
	for i := range gq {
		if gq[i] != sq[i] {
			t.Fatalf("q[%d] (x %v): Go %d, AVX2 %d", i, x[i], gq[i], sq[i])
		}
	}
	for i := range gd {
		if math.Float32bits(gd[i]) != math.Float32bits(sd[i]) {
			t.Fatalf("d[%d]: Go %v, AVX2 %v", i, gd[i], sd[i])
		}
	}
}
