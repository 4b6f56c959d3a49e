package llama

import (
	"fmt"
	"math"

	"github.com/peerllm/peerllm/internal/engine/gguf"
)

// config is the shape of a Llama model.
type config struct {
	dim        int // embedding size
	hidden     int // feed-forward size
	layers     int
	heads      int
	kvHeads    int
	headDim    int
	ropeDim    int // rotated dimensions per head (== headDim for Llama)
	vocab      int
	ctx        int // trained context length
	eps        float32
	ropeTheta  float32
	ropeScale  float32   // linear scaling: positions are divided by it (1 = off)
	ropeFactor []float32 // per-frequency divisors (llama3 rope_freqs), nil = off
	// roundActivations rounds matrix-product inputs like llama.cpp (GGUF).
	roundActivations bool
}

func (c config) kvDim() int { return c.kvHeads * c.headDim }

// validate rejects shapes that cannot be a model, so a corrupt header fails
// with an error instead of a panic or a giant allocation.
func (c config) validate() error {
	const big = 1 << 20
	switch {
	case c.dim <= 0 || c.dim > big, c.hidden <= 0 || c.hidden > 4*big,
		c.layers <= 0 || c.layers > 1024, c.heads <= 0 || c.heads > c.dim,
		c.kvHeads <= 0 || c.kvHeads > c.heads, c.vocab <= 0 || c.vocab > 4*big,
		c.ctx <= 0 || c.ctx > 1<<24:
		return fmt.Errorf("absurd model dimensions (dim %d, hidden %d, layers %d, heads %d/%d, vocab %d, context %d)",
			c.dim, c.hidden, c.layers, c.heads, c.kvHeads, c.vocab, c.ctx)
	}
	if c.dim%c.heads != 0 || c.heads%c.kvHeads != 0 {
		return fmt.Errorf("heads %d/%d do not divide dim %d", c.heads, c.kvHeads, c.dim)
	}
	if c.headDim <= 0 || c.ropeDim <= 0 || c.ropeDim > c.headDim || c.ropeDim%2 != 0 {
		return fmt.Errorf("bad head size %d / rope dimensions %d", c.headDim, c.ropeDim)
	}
	return nil
}

// matrix is a weight matrix of rows×cols kept in its file encoding.
type matrix struct {
	typ        gguf.Type
	data       []byte
	rows, cols int
}

// typeInfo gives block size (elements) and bytes per block of a tensor type
// the gguf kernels can multiply.
func typeInfo(t gguf.Type) (block, bytes int, ok bool) {
	if !t.Supported() {
		return 0, 0, false
	}
	return t.BlockSize(), t.BlockBytes(), true
}

// typeName names a tensor type for Info.Quantization.
func typeName(t gguf.Type) string { return t.String() }

func newMatrix(t gguf.Type, data []byte, rows, cols int) (matrix, error) {
	block, bb, ok := typeInfo(t)
	if !ok {
		return matrix{}, fmt.Errorf("unsupported tensor type %s", typeName(t))
	}
	if rows <= 0 || cols <= 0 || cols%block != 0 {
		return matrix{}, fmt.Errorf("bad %s matrix %dx%d", typeName(t), rows, cols)
	}
	need := int64(rows) * int64(cols/block) * int64(bb)
	if int64(len(data)) < need {
		return matrix{}, fmt.Errorf("%s matrix %dx%d needs %d bytes, have %d", typeName(t), rows, cols, need, len(data))
	}
	return matrix{typ: t, data: data[:need], rows: rows, cols: cols}, nil
}

func (m matrix) rowBytes() int {
	block, bb, _ := typeInfo(m.typ)
	return m.cols / block * bb
}

// row dequantizes row r into dst (len cols).
func (m matrix) row(r int, dst []float32) error {
	rb := m.rowBytes()
	if m.typ == gguf.TypeF32 {
		copy(dst, f32s(m.data[r*rb:(r+1)*rb]))
		return nil
	}
	return gguf.Dequantize(m.typ, m.data[r*rb:(r+1)*rb], dst)
}

type layer struct {
	attnNorm, ffnNorm []float32
	wq, wk, wv, wo    matrix
	gate, down, up    matrix // w1, w2, w3 in llama2.c
}

type weights struct {
	embed   matrix // vocab × dim
	layers  []layer
	outNorm []float32
	output  matrix // vocab × dim (may share data with embed)
}

// model is a loaded Llama network: shape, weights and the RoPE frequencies.
type model struct {
	cfg   config
	w     weights
	freqs []float32 // ropeDim/2 inverse frequencies, scaling applied
}

func newModel(cfg config, w weights) *model {
	m := &model{cfg: cfg, w: w}
	half := cfg.ropeDim / 2
	m.freqs = make([]float32, half)
	for i := 0; i < half; i++ {
		// As llama2.c: freq = 1 / theta^(headDimIndex/headSize), in float32.
		e := float32(2*i) / float32(cfg.ropeDim)
		f := 1 / float32(math.Pow(float64(cfg.ropeTheta), float64(e)))
		if cfg.ropeScale > 0 && cfg.ropeScale != 1 {
			f /= cfg.ropeScale
		}
		if i < len(cfg.ropeFactor) && cfg.ropeFactor[i] > 0 {
			f /= cfg.ropeFactor[i]
		}
		m.freqs[i] = f
	}
	return m
}

// parameters counts the model's weights.
func (m *model) parameters() int64 {
	c := m.cfg
	n := int64(c.vocab) * int64(c.dim)
	if &m.w.output.data[0] != &m.w.embed.data[0] {
		n += int64(c.vocab) * int64(c.dim)
	}
	per := int64(2*c.dim) + int64(c.dim)*int64(c.dim)*2 + int64(c.dim)*int64(c.kvDim())*2 + 3*int64(c.dim)*int64(c.hidden)
	return n + per*int64(c.layers) + int64(c.dim)
}

// quantization names the weight encoding: one type name, or "mixed".
func (m *model) quantization() string {
	seen := map[gguf.Type]bool{}
	add := func(x matrix) { seen[x.typ] = true }
	add(m.w.output)
	for _, l := range m.w.layers {
		for _, x := range []matrix{l.wq, l.wk, l.wv, l.wo, l.gate, l.down, l.up} {
			add(x)
		}
	}
	if len(seen) == 1 {
		for t := range seen {
			return typeName(t)
		}
	}
	return "mixed"
}

// bytesPerToken is how many weight bytes one forward pass reads.
func (m *model) bytesPerToken() int64 {
	n := int64(m.w.output.rowBytes() * m.w.output.rows)
	for _, l := range m.w.layers {
		for _, x := range []matrix{l.wq, l.wk, l.wv, l.wo, l.gate, l.down, l.up} {
			n += int64(x.rowBytes() * x.rows)
		}
	}
	return n
}
