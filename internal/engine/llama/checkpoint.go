package llama

import (
	"encoding/binary"
	"fmt"

	"github.com/peerllm/peerllm/internal/engine/gguf"
)

// loadCheckpoint reads a llama2.c checkpoint from a mapped file: a header of
// seven int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size,
// seq_len; a negative vocab_size means a separate classifier follows) and the
// F32 weights in llama2.c order. The weights stay in the mapping.
func loadCheckpoint(data []byte) (config, weights, error) {
	const header = 7 * 4
	if len(data) < header {
		return config{}, weights{}, fmt.Errorf("checkpoint truncated: %d bytes", len(data))
	}
	var h [7]int
	for i := range h {
		h[i] = int(int32(binary.LittleEndian.Uint32(data[4*i:])))
	}
	shared := h[5] > 0
	vocab := h[5]
	if vocab < 0 {
		vocab = -vocab
	}
	c := config{
		dim: h[0], hidden: h[1], layers: h[2], heads: h[3], kvHeads: h[4], vocab: vocab, ctx: h[6],
		eps: 1e-5, ropeTheta: 10000, ropeScale: 1,
	}
	if c.heads > 0 {
		c.headDim = c.dim / c.heads
		c.ropeDim = c.headDim
	}
	if err := c.validate(); err != nil {
		return config{}, weights{}, fmt.Errorf("checkpoint header: %w", err)
	}
	kv := c.kvDim()
	per := int64(2*c.dim) + int64(c.dim)*int64(c.dim)*2 + int64(c.dim)*int64(kv)*2 + 3*int64(c.dim)*int64(c.hidden)
	need := int64(c.vocab)*int64(c.dim) + per*int64(c.layers) + int64(c.dim) + int64(c.ctx)*int64(c.headDim)
	if !shared {
		need += int64(c.vocab) * int64(c.dim)
	}
	if have := int64(len(data)-header) / 4; have < need {
		return config{}, weights{}, fmt.Errorf("checkpoint truncated: %d weights for a %d-weight model", have, need)
	}

	off := header
	take := func(n int) []byte {
		b := data[off : off+4*n]
		off += 4 * n
		return b
	}
	vec := func(n int) []float32 { return f32s(take(n)) }
	mat := func(rows, cols int) matrix {
		m, _ := newMatrix(gguf.TypeF32, take(rows*cols), rows, cols)
		return m
	}
	var w weights
	w.embed = mat(c.vocab, c.dim)
	w.layers = make([]layer, c.layers)
	// The file groups each kind of weight across all layers.
	for l := range w.layers {
		w.layers[l].attnNorm = vec(c.dim)
	}
	for l := range w.layers {
		w.layers[l].wq = mat(c.dim, c.dim)
	}
	for l := range w.layers {
		w.layers[l].wk = mat(kv, c.dim)
	}
	for l := range w.layers {
		w.layers[l].wv = mat(kv, c.dim)
	}
	for l := range w.layers {
		w.layers[l].wo = mat(c.dim, c.dim)
	}
	for l := range w.layers {
		w.layers[l].ffnNorm = vec(c.dim)
	}
	for l := range w.layers {
		w.layers[l].gate = mat(c.hidden, c.dim)
	}
	for l := range w.layers {
		w.layers[l].down = mat(c.dim, c.hidden)
	}
	for l := range w.layers {
		w.layers[l].up = mat(c.hidden, c.dim)
	}
	w.outNorm = vec(c.dim)
	take(c.ctx * c.headDim) // legacy freq_cis_real and freq_cis_imag
	if shared {
		w.output = w.embed
	} else {
		w.output = mat(c.vocab, c.dim)
	}
	return c, w, nil
}
