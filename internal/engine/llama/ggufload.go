package llama

import (
	"fmt"
	"strings"

	"github.com/peerllm/peerllm/internal/engine/chat"
	"github.com/peerllm/peerllm/internal/engine/gguf"
)

// loadGGUF maps a GGUF file and builds the model and tokenizer from it.
func (e *Engine) loadGGUF(path string, opts Options) error {
	f, err := gguf.Open(path)
	if err != nil {
		return err
	}
	e.closers = append(e.closers, f.Close)
	arch, _ := f.String("general.architecture")
	if arch != "llama" {
		return fmt.Errorf("unsupported architecture %q (the built-in engine runs llama)", arch)
	}
	cfg, err := ggufConfig(f, arch)
	if err != nil {
		return err
	}
	w, err := ggufWeights(f, &cfg)
	if err != nil {
		return err
	}
	tok, err := ggufTokenizer(f)
	if err != nil {
		return fmt.Errorf("tokenizer: %w", err)
	}
	e.tok = tok
	// GGUF models round activations as llama.cpp's CPU backend does, so
	// quantized models track llama.cpp's logits to ~1e-5 instead of ~1e-1
	// (docs/GGUF.md). F32 weights are not rounded either way.
	cfg.roundActivations = true
	e.m = newModel(cfg, w)
	if ft, ok := f.Uint("general.file_type"); ok {
		e.fileType = fileTypeName(ft)
	}
	e.template, _ = f.String("tokenizer.chat_template")
	if eot := chat.Detect(e.template).EndOfTurn(); eot != "" {
		e.stops = append(e.stops, eot)
	}
	return nil
}

func ggufConfig(f *gguf.File, arch string) (config, error) {
	u := func(key string, def int) int {
		if v, ok := f.Uint(arch + "." + key); ok && v < 1<<31 {
			return int(v)
		}
		return def
	}
	c := config{
		dim: u("embedding_length", 0), hidden: u("feed_forward_length", 0), layers: u("block_count", 0),
		heads: u("attention.head_count", 0), ctx: u("context_length", 0),
		eps: 1e-5, ropeTheta: 10000, ropeScale: 1,
	}
	c.kvHeads = u("attention.head_count_kv", c.heads)
	if c.heads > 0 {
		c.headDim = u("attention.key_length", c.dim/c.heads)
	}
	c.ropeDim = u("rope.dimension_count", c.headDim)
	if v, ok := f.Float(arch + ".attention.layer_norm_rms_epsilon"); ok {
		c.eps = float32(v)
	}
	if v, ok := f.Float(arch + ".rope.freq_base"); ok && v > 0 {
		c.ropeTheta = float32(v)
	}
	st, _ := f.String(arch + ".rope.scaling.type")
	if v, ok := f.Float(arch + ".rope.scaling.factor"); ok && v > 0 && (st == "linear" || st == "") {
		c.ropeScale = float32(v)
	}
	if st != "" && st != "none" && st != "linear" {
		return c, fmt.Errorf("unsupported rope scaling %q", st)
	}
	if t, ok := f.Tensor("token_embd.weight"); ok && len(t.Dims) == 2 {
		c.vocab = int(min(t.Dims[1], 1<<31))
	}
	if c.headDim*c.heads != c.dim {
		return c, fmt.Errorf("head size %d × %d heads is not the embedding size %d", c.headDim, c.heads, c.dim)
	}
	return c, c.validate()
}

// ggufWeights finds every tensor of the model and checks its shape.
func ggufWeights(f *gguf.File, c *config) (weights, error) {
	var w weights
	var err error
	mat := func(name string, rows, cols int) matrix {
		if err != nil {
			return matrix{}
		}
		t, ok := f.Tensor(name)
		if !ok {
			err = fmt.Errorf("missing tensor %s", name)
			return matrix{}
		}
		if len(t.Dims) != 2 || t.Dims[0] != uint64(cols) || t.Dims[1] != uint64(rows) {
			err = fmt.Errorf("tensor %s has shape %v, want [%d %d]", name, t.Dims, cols, rows)
			return matrix{}
		}
		var m matrix
		m, err = newMatrix(t.Type, t.Data, rows, cols)
		if err != nil {
			err = fmt.Errorf("tensor %s: %w", name, err)
		}
		return m
	}
	vec := func(name string, n int) []float32 {
		if err != nil {
			return nil
		}
		t, ok := f.Tensor(name)
		if !ok {
			err = fmt.Errorf("missing tensor %s", name)
			return nil
		}
		if t.Elements() != uint64(n) {
			err = fmt.Errorf("tensor %s has shape %v, want [%d]", name, t.Dims, n)
			return nil
		}
		if t.Type == gguf.TypeF32 && len(t.Data) == 4*n {
			return f32s(t.Data)
		}
		out := make([]float32, n)
		if derr := gguf.Dequantize(t.Type, t.Data, out); derr != nil {
			err = fmt.Errorf("tensor %s: %w", name, derr)
		}
		return out
	}
	kv := c.kvDim()
	w.embed = mat("token_embd.weight", c.vocab, c.dim)
	w.layers = make([]layer, c.layers)
	for i := range w.layers {
		p := fmt.Sprintf("blk.%d.", i)
		l := &w.layers[i]
		l.attnNorm = vec(p+"attn_norm.weight", c.dim)
		l.wq = mat(p+"attn_q.weight", c.heads*c.headDim, c.dim)
		l.wk = mat(p+"attn_k.weight", kv, c.dim)
		l.wv = mat(p+"attn_v.weight", kv, c.dim)
		l.wo = mat(p+"attn_output.weight", c.dim, c.heads*c.headDim)
		l.ffnNorm = vec(p+"ffn_norm.weight", c.dim)
		l.gate = mat(p+"ffn_gate.weight", c.hidden, c.dim)
		l.down = mat(p+"ffn_down.weight", c.dim, c.hidden)
		l.up = mat(p+"ffn_up.weight", c.hidden, c.dim)
	}
	w.outNorm = vec("output_norm.weight", c.dim)
	if _, ok := f.Tensor("output.weight"); ok {
		w.output = mat("output.weight", c.vocab, c.dim)
	} else {
		w.output = w.embed
	}
	if _, ok := f.Tensor("rope_freqs.weight"); ok {
		c.ropeFactor = vec("rope_freqs.weight", c.ropeDim/2)
	}
	return w, err
}

// ggufTokenizer builds the tokenizer described by the tokenizer.ggml keys.
func ggufTokenizer(f *gguf.File) (tokenizer, error) {
	model, _ := f.String("tokenizer.ggml.model")
	tokens, ok := f.Strings("tokenizer.ggml.tokens")
	if !ok || len(tokens) == 0 {
		return nil, fmt.Errorf("no tokenizer.ggml.tokens")
	}
	types, _ := f.Int32s("tokenizer.ggml.token_type")
	if types != nil && len(types) != len(tokens) {
		return nil, fmt.Errorf("%d token types for %d tokens", len(types), len(tokens))
	}
	id := func(key string, def int) int {
		if v, ok := f.Uint("tokenizer.ggml." + key); ok && v < uint64(len(tokens)) {
			return int(v)
		}
		return def
	}
	flag := func(key string, def bool) bool {
		if v, ok := f.Bool("tokenizer.ggml." + key); ok {
			return v
		}
		return def
	}
	switch model {
	case "llama":
		t := &spm{spacePrefix: flag("add_space_prefix", true)}
		t.addBOS = flag("add_bos_token", true)
		t.tokens = make([]string, len(tokens))
		for i, s := range tokens {
			t.tokens[i] = strings.ReplaceAll(s, "\u2581", " ")
		}
		t.types = types
		scores, _ := f.Float32s("tokenizer.ggml.scores")
		if len(scores) != len(tokens) {
			return nil, fmt.Errorf("%d scores for %d tokens", len(scores), len(tokens))
		}
		t.scores = scores
		t.bos, t.unk = id("bos_token_id", 1), id("unknown_token_id", 0)
		t.eos = endIDs(id("eos_token_id", 2), id("eot_token_id", -1))
		t.index(true)
		return t, nil
	case "gpt2":
		merges, _ := f.Strings("tokenizer.ggml.merges")
		pre, _ := f.String("tokenizer.ggml.pre")
		t, err := newBPE(tokens, types, merges, pre)
		if err != nil {
			return nil, err
		}
		t.addBOS = flag("add_bos_token", false)
		t.bos = id("bos_token_id", -1)
		t.eos = endIDs(id("eos_token_id", -1), id("eot_token_id", -1))
		return t, nil
	}
	return nil, fmt.Errorf("unsupported tokenizer model %q", model)
}

func endIDs(ids ...int) []int {
	var out []int
	for _, id := range ids {
		if id >= 0 {
			out = append(out, id)
		}
	}
	return out
}

// fileTypeName names llama.cpp's general.file_type (llama_ftype), the label
// a quantized file carries ("Q4_K_M"); "" if unknown.
func fileTypeName(ft uint64) string {
	names := map[uint64]string{
		0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1",
		10: "Q2_K", 11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M",
		16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K", 32: "BF16",
	}
	return names[ft]
}
