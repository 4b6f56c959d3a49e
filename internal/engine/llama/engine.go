// Package llama is PeerLLM's built-in Go inference engine (no cgo; AVX2
// assembly for attention on amd64, bit-identical to its Go fallback): it loads
// Llama-architecture models from GGUF files (F32, F16, BF16, Q4_0, Q5_0,
// Q8_0, Q4_K, Q5_K, Q6_K and the other types package gguf multiplies) or
// llama2.c checkpoints,
// tokenizes (SentencePiece-style and byte-level BPE), runs the forward pass
// and samples. On stories260K it prints exactly what llama2.c's run prints.
// The host agent and cmd/peerllm import it; the orchestrator must not.
package llama

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/peerllm/peerllm/internal/engine"
	"github.com/peerllm/peerllm/internal/engine/chat"
)

// Options configure Load.
type Options struct {
	// TokenizerPath is the llama2.c tokenizer for a .bin checkpoint. Default:
	// tokenizer.bin beside the model, else tok512.bin beside it. GGUF files
	// carry their own tokenizer and ignore it.
	TokenizerPath string
	// Name is the model name reported by Info. Default: the file name
	// without its extension ("stories260K"), which is how models are
	// resolved by name; GGUF's general.name is free text.
	Name string
	// Threads is how many cores the matrix products use. Default: all.
	Threads int
	// ContextLength caps the context in tokens. Default (0): the model's.
	ContextLength int
	// Slots is how many generations may run at once, each with its own KV
	// cache. Default 1: calls are served one at a time.
	Slots int
}

// Engine serves one loaded model. It implements engine.Engine.
type Engine struct {
	info     engine.Info
	m        *model
	tok      tokenizer
	template string   // chat template, "" for none
	stops    []string // extra stop sequences (the template's end of turn)
	fileType string   // GGUF general.file_type label, "" if none
	ctxLen   int
	threads  int
	closers  []func() error

	sem     chan struct{} // one token per free slot
	mu      sync.Mutex
	free    []*slot
	closeMu sync.Once
}

var _ engine.Engine = (*Engine)(nil)

// slot is one generation lane: a KV cache and the tokens it holds.
type slot struct {
	st     *state
	tokens []int // tokens whose keys and values are in st, from position 0
	samp   sampler
}

// Load opens the model at path: a GGUF file, or a llama2.c checkpoint (with
// its tokenizer.bin). Weights stay memory-mapped, not copied.
func Load(path string, opts Options) (*Engine, error) {
	if opts.Threads <= 0 {
		opts.Threads = runtime.NumCPU()
	}
	if opts.Slots <= 0 {
		opts.Slots = 1
	}
	if opts.ContextLength < 0 {
		return nil, fmt.Errorf("load %s: negative context length", path)
	}
	e, err := load(path, opts)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	return e, nil
}

func load(path string, opts Options) (*Engine, error) {
	head := make([]byte, 4)
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	n, err := f.ReadAt(head, 0)
	f.Close()
	if n < len(head) {
		return nil, fmt.Errorf("file too short (%d bytes) to be a model", n)
	}
	if err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	e := &Engine{}
	if string(head) == "GGUF" {
		err = e.loadGGUF(path, opts)
	} else {
		err = e.loadBin(path, opts)
	}
	if err != nil {
		e.Close()
		return nil, err
	}
	if e.tok.size() != e.m.cfg.vocab {
		e.Close()
		return nil, fmt.Errorf("tokenizer has %d tokens but the model's vocabulary is %d: they do not belong together", e.tok.size(), e.m.cfg.vocab)
	}
	for _, id := range append([]int{e.tok.bosID()}, e.tok.eosIDs()...) {
		if id >= e.tok.size() {
			e.Close()
			return nil, fmt.Errorf("tokenizer: special token id %d outside the %d-token vocabulary", id, e.tok.size())
		}
	}
	e.ctxLen = e.m.cfg.ctx
	e.threads = opts.Threads
	if opts.ContextLength > 0 && opts.ContextLength < e.ctxLen {
		e.ctxLen = opts.ContextLength
	}
	if opts.Name != "" {
		e.info.Model = opts.Name
	}
	if e.info.Model == "" {
		base := filepath.Base(path)
		e.info.Model = strings.TrimSuffix(base, filepath.Ext(base))
	}
	e.info.Architecture = "llama"
	e.info.ContextLength = e.ctxLen
	// One weight type names itself; a mix takes the file's own label
	// (llama.cpp's "Q4_K_M" is Q4_K with some Q6_K), else "mixed".
	e.info.Quantization = e.m.quantization()
	if e.info.Quantization == "mixed" && e.fileType != "" {
		e.info.Quantization = e.fileType
	}
	e.info.Parameters = e.m.parameters()
	e.info.VocabSize = e.m.cfg.vocab
	e.sem = make(chan struct{}, opts.Slots)
	for range opts.Slots {
		e.sem <- struct{}{}
		e.free = append(e.free, &slot{})
	}
	return e, nil
}

func (e *Engine) loadBin(path string, opts Options) error {
	mp, err := mapFile(path)
	if err != nil {
		return err
	}
	e.closers = append(e.closers, mp.unmap)
	cfg, w, err := loadCheckpoint(mp.data)
	if err != nil {
		return fmt.Errorf("not a GGUF file, and as a llama2.c checkpoint: %w", err)
	}
	tp := opts.TokenizerPath
	if tp == "" {
		dir := filepath.Dir(path)
		tp = filepath.Join(dir, "tokenizer.bin")
		if _, err := os.Stat(tp); err != nil {
			tp = filepath.Join(dir, "tok512.bin")
		}
	}
	data, err := os.ReadFile(tp)
	if err != nil {
		return fmt.Errorf("tokenizer: %w", err)
	}
	tok, err := loadTokenizerBin(data, 0)
	if err != nil {
		return fmt.Errorf("tokenizer %s: %w", tp, err)
	}
	e.tok = tok
	e.m = newModel(cfg, w)
	return nil
}

// Info reports the model served.
func (e *Engine) Info() engine.Info { return e.info }

// Close releases the pool and the memory maps.
func (e *Engine) Close() error {
	var errs []error
	e.closeMu.Do(func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		for _, s := range e.free {
			if s.st != nil {
				s.st.pool.Close()
			}
		}
		for i := len(e.closers) - 1; i >= 0; i-- {
			errs = append(errs, e.closers[i]())
		}
	})
	return errors.Join(errs...)
}

// Encode tokenizes text as a prompt (with BOS when bos is true).
func (e *Engine) Encode(text string, bos bool) []int { return e.tok.encode(text, bos) }

// Piece is the text printed for token id after token prev (see Token.Text).
func (e *Engine) Piece(prev, id int) string { return e.tok.piece(prev, id) }

// BOS is the model's beginning-of-sequence token id.
func (e *Engine) BOS() int { return e.tok.bosID() }

// Generate implements engine.Engine: it encodes the prompt (or renders the
// messages with the model's chat template) and calls Complete.
func (e *Engine) Generate(ctx context.Context, req engine.Request, emit func(engine.Token) error) (engine.Result, error) {
	if (req.Prompt == "") == (len(req.Messages) == 0) {
		return engine.Result{}, fmt.Errorf("%w: exactly one of prompt and messages must be set", engine.ErrBadRequest)
	}
	var ids []int
	stops := req.Stop
	if req.Prompt != "" {
		ids = e.tok.encode(req.Prompt, true)
	} else {
		bos := e.tok.tokenText(e.tok.bosID())
		eos := ""
		if eo := e.tok.eosIDs(); len(eo) > 0 {
			eos = e.tok.tokenText(eo[0])
		}
		text, err := chat.Render(e.template, req.Messages, chat.Options{BOS: bos, EOS: eos, AddGenerationPrompt: true})
		if err != nil {
			return engine.Result{}, err
		}
		// The template writes BOS itself when it wants one.
		ids = e.tok.encode(text, !(bos != "" && strings.HasPrefix(text, bos)))
		stops = append(append([]string(nil), stops...), e.stops...)
	}
	req.Stop = stops
	return e.Complete(ctx, ids, req, emit)
}

// acquire takes the free slot whose cache shares the longest prefix with seq.
func (e *Engine) acquire(ctx context.Context, seq []int) (*slot, error) {
	select {
	case <-e.sem:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	best, bestN := 0, -1
	for i, s := range e.free {
		if n := commonPrefix(s.tokens, seq); n > bestN {
			best, bestN = i, n
		}
	}
	s := e.free[best]
	e.free = append(e.free[:best], e.free[best+1:]...)
	return s, nil
}

func (e *Engine) release(s *slot) {
	e.mu.Lock()
	e.free = append(e.free, s)
	e.mu.Unlock()
	e.sem <- struct{}{}
}

func commonPrefix(a, b []int) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// isEnd reports whether id ends generation (EOS, end of turn, or BOS, which
// llama2.c treats as a sequence delimiter).
func (e *Engine) isEnd(id int) bool {
	if id == e.tok.bosID() {
		return true
	}
	for _, x := range e.tok.eosIDs() {
		if id == x {
			return true
		}
	}
	return false
}

// Complete generates after the prompt token ids (which should start with
// BOS), honouring req's Continue, MaxTokens, Stop and Sampling; req.Prompt
// and req.Messages are ignored. Unlike Generate it accepts a prompt that is
// only BOS, as llama2.c's run does without -i.
func (e *Engine) Complete(ctx context.Context, prompt []int, req engine.Request, emit func(engine.Token) error) (engine.Result, error) {
	var res engine.Result
	if len(prompt) == 0 {
		return res, fmt.Errorf("%w: empty prompt", engine.ErrBadRequest)
	}
	if req.MaxTokens < 0 {
		return res, fmt.Errorf("%w: negative max tokens", engine.ErrBadRequest)
	}
	if err := checkSampling(req.Sampling); err != nil {
		return res, err
	}
	vocab := e.m.cfg.vocab
	for _, id := range prompt {
		if id < 0 || id >= vocab {
			return res, fmt.Errorf("%w: prompt token %d outside the vocabulary", engine.ErrBadRequest, id)
		}
	}
	for _, id := range req.Continue {
		if id < 0 || id >= vocab {
			return res, fmt.Errorf("%w: continue token %d outside the vocabulary", engine.ErrBadRequest, id)
		}
	}
	seq := make([]int, 0, len(prompt)+len(req.Continue)+max(req.MaxTokens, 16))
	seq = append(append(seq, prompt...), req.Continue...)
	if len(seq) > e.ctxLen {
		return res, fmt.Errorf("%d prompt and continuation tokens, context is %d: %w", len(seq), e.ctxLen, engine.ErrContextLength)
	}
	res.Usage.PromptTokens = len(prompt)
	s, err := e.acquire(ctx, seq)
	if err != nil {
		return res, err
	}
	defer e.release(s)
	if s.st == nil {
		s.st = newState(e.m.cfg, e.ctxLen, e.threads)
	}

	t0 := time.Now()
	start := min(commonPrefix(s.tokens, seq), len(seq)-1)
	res.Usage.CachedTokens = start
	s.tokens = append(s.tokens[:start], seq[start:]...)
	for pos := start; pos < len(seq); pos++ {
		if err := ctx.Err(); err != nil {
			s.tokens = s.tokens[:pos]
			return res, err
		}
		if err := e.m.forward(s.st, seq[pos], pos, pos == len(seq)-1); err != nil {
			s.tokens = s.tokens[:pos]
			return res, err
		}
	}
	res.Usage.PromptEval = time.Since(t0)

	out := newStopper(req.Stop, e.continueText(prompt, req.Continue), emit)
	t1 := time.Now()
	last := t1
	res.FinishReason = "length"
	for i := 0; req.MaxTokens == 0 || i < req.MaxTokens; i++ {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		index := len(req.Continue) + i
		next := s.samp.sample(s.st.logits, req.Sampling, seq, index)
		res.Usage.CompletionTokens++
		if e.isEnd(next) {
			res.FinishReason = "stop"
			break
		}
		now := time.Now()
		tok := engine.Token{ID: next, Text: e.tok.piece(seq[len(seq)-1], next), Index: index, Elapsed: now.Sub(last)}
		last = now
		seq = append(seq, next)
		stopped, err := out.add(tok)
		if err != nil {
			return res, err
		}
		if stopped {
			res.FinishReason = "stop"
			break
		}
		if req.MaxTokens > 0 && i+1 == req.MaxTokens {
			break
		}
		pos := len(seq) - 1
		if pos >= e.ctxLen {
			break
		}
		if err := e.m.forward(s.st, next, pos, true); err != nil {
			return res, err
		}
		s.tokens = append(s.tokens, next)
	}
	res.Usage.Generation = time.Since(t1)
	if res.FinishReason != "stop" || !out.stopped {
		if err := out.flush(); err != nil {
			return res, err
		}
	}
	return res, nil
}

// continueText is the printed text of the continuation tokens.
func (e *Engine) continueText(prompt, cont []int) string {
	if len(cont) == 0 {
		return ""
	}
	var b strings.Builder
	prev := prompt[len(prompt)-1]
	for _, id := range cont {
		b.WriteString(e.tok.piece(prev, id))
		prev = id
	}
	return b.String()
}
