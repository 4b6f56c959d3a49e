package llama

import (
	"context"
	"fmt"
	"time"

	"github.com/peerllm/peerllm/internal/engine/gguf"
)

// Shape is the size of a synthetic Llama model (head size Dim/Heads).
type Shape struct {
	Dim, Hidden, Layers, Heads, KVHeads, Vocab, Context int
}

// Shape110M is a ~110M-parameter Llama with tied embeddings, the size of a
// small real model: dim 768, 12 layers, 12 heads, FFN 2048, vocab 32000.
var Shape110M = Shape{Dim: 768, Hidden: 2048, Layers: 12, Heads: 12, KVHeads: 12, Vocab: 32000, Context: 1024}

func (s Shape) config() config {
	hd := s.Dim / max(s.Heads, 1)
	return config{dim: s.Dim, hidden: s.Hidden, layers: s.Layers, heads: s.Heads, kvHeads: s.KVHeads,
		headDim: hd, ropeDim: hd, vocab: s.Vocab, ctx: s.Context, eps: 1e-5, ropeTheta: 10000}
}

// Parameters is the number of weights of a model of shape s (tied output).
func (s Shape) Parameters() int64 {
	kv := int64(s.KVHeads * (s.Dim / max(s.Heads, 1)))
	d, h := int64(s.Dim), int64(s.Hidden)
	perLayer := 2*d*d + 2*kv*d + 3*d*h + 2*d
	return int64(s.Vocab)*d + int64(s.Layers)*perLayer + d
}

// WriteRandomModel writes a GGUF file of shape s with seeded random weights
// in typ (F32, F16 or Q8_0; norms F32) and a placeholder SentencePiece
// vocabulary, for benchmarks: the same arithmetic as a real model of that
// shape, no meaningful text.
func WriteRandomModel(path string, s Shape, typ gguf.Type) error {
	switch typ {
	case gguf.TypeF32, gguf.TypeF16, gguf.TypeQ8_0:
	default:
		return fmt.Errorf("random model: type %s not supported (F32, F16, Q8_0)", typ)
	}
	if err := s.config().validate(); err != nil {
		return fmt.Errorf("random model: %w", err)
	}
	return writeRandomGGUF(path, s.config(), typ)
}

// WeightBytesPerToken is how many bytes of weight matrices one position's
// forward pass reads (every matrix once; the embedding row is negligible).
func (e *Engine) WeightBytesPerToken() int64 { return e.m.bytesPerToken() }

// BenchDecode runs the forward pass for positions 0 to n-1 on a fresh KV
// cache with the engine's thread count, feeding at each position the
// greedy choice of the previous one (BOS first) and never stopping at an
// end token: the work of decoding n tokens, as llama2.c's run -n n does
// before its first end token. It returns the wall time of the n passes.
func (e *Engine) BenchDecode(ctx context.Context, n int) (time.Duration, error) {
	if n < 1 || n > e.ctxLen {
		return 0, fmt.Errorf("bench decode: %d positions, context is %d", n, e.ctxLen)
	}
	st := newState(e.m.cfg, e.ctxLen, e.threads)
	defer st.pool.Close()
	st.reserve(e.m.cfg, n)
	tok := e.tok.bosID()
	t0 := time.Now()
	for pos := range n {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if err := e.m.forward(st, tok, pos, true); err != nil {
			return 0, err
		}
		tok = argmax(st.logits)
	}
	return time.Since(t0), nil
}
