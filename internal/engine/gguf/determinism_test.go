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
