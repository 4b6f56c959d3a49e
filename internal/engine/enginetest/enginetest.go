// Package enginetest is the conformance suite every engine.Engine passes:
// token order and indexes, MaxTokens, stop sequences, cancellation, emit
// errors, continuation, usage, context length, bad requests and concurrent
// calls. Engine packages call Run from their tests. It also holds Toy, a
// deterministic reference engine for tests that need an engine without a
// model (HTTP engine doubles, the host agent). Only tests import it.
package enginetest

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/peerllm/peerllm/internal/engine"
)

// Options describe what the engine under test promises beyond the contract.
type Options struct {
	// Greedy means zero Sampling is deterministic: the same request gives
	// the same tokens. It enables the continuation, stop-sequence and
	// concurrent-equality checks.
	Greedy bool
	// Seeded means a non-zero Temperature with the same Seed gives the same
	// tokens.
	Seeded bool
	// Messages means the engine accepts Request.Messages.
	Messages bool
	// Prompt is a prompt the model continues for at least MaxTokens tokens
	// without ending; default "Once upon a time".
	Prompt string
	// MaxTokens is the length of the generations the checks make; default 24.
	MaxTokens int
	// LongPrompt exceeds the model's context; default: Prompt repeated
	// Info().ContextLength times.
	LongPrompt string
}

func (o *Options) defaults() {
	if o.Prompt == "" {
		o.Prompt = "Once upon a time"
	}
	if o.MaxTokens <= 0 {
		o.MaxTokens = 24
	}
}

// run is one Generate call's outcome.
type run struct {
	tokens []engine.Token
	res    engine.Result
	err    error
}

func (r run) text() string {
	var b strings.Builder
	for _, t := range r.tokens {
		b.WriteString(t.Text)
	}
	return b.String()
}

func generate(ctx context.Context, e engine.Engine, req engine.Request) run {
	var r run
	r.res, r.err = e.Generate(ctx, req, func(t engine.Token) error {
		r.tokens = append(r.tokens, t)
		return nil
	})
	return r
}

func mustGenerate(t *testing.T, e engine.Engine, req engine.Request) run {
	t.Helper()
	r := generate(context.Background(), e, req)
	if r.err != nil {
		t.Fatalf("Generate: %v", r.err)
	}
	return r
}

// checkIndexes verifies tokens carry consecutive Index values from first.
func checkIndexes(t *testing.T, toks []engine.Token, first int) {
	t.Helper()
	for i, tok := range toks {
		if tok.Index != first+i {
			t.Fatalf("token %d has Index %d, want %d", i, tok.Index, first+i)
		}
	}
}

// Run runs the conformance suite as subtests of t. newEngine is called for
// each subtest and may share one loaded model between calls; the suite
// closes nothing, so newEngine registers Close with t.Cleanup if it should.
func Run(t *testing.T, newEngine func(t *testing.T) engine.Engine, opts Options) {
	opts.defaults()
	base := func() engine.Request {
		return engine.Request{Prompt: opts.Prompt, MaxTokens: opts.MaxTokens}
	}

	t.Run("Info", func(t *testing.T) {
		info := newEngine(t).Info()
		if info.Model == "" {
			t.Error("Info().Model is empty")
		}
		if info.ContextLength <= 0 {
			t.Errorf("Info().ContextLength = %d, want > 0", info.ContextLength)
		}
	})

	t.Run("TokensInOrderAndUsage", func(t *testing.T) {
		r := mustGenerate(t, newEngine(t), base())
		if len(r.tokens) == 0 {
			t.Fatal("no tokens")
		}
		checkIndexes(t, r.tokens, 0)
		if r.res.Usage.CompletionTokens != len(r.tokens) {
			t.Errorf("Usage.CompletionTokens = %d, emitted %d", r.res.Usage.CompletionTokens, len(r.tokens))
		}
		if r.res.Usage.PromptTokens <= 0 {
			t.Errorf("Usage.PromptTokens = %d, want > 0", r.res.Usage.PromptTokens)
		}
	})

	t.Run("MaxTokens", func(t *testing.T) {
		for _, n := range []int{1, 3, opts.MaxTokens} {
			req := base()
			req.MaxTokens = n
			r := mustGenerate(t, newEngine(t), req)
			switch {
			case len(r.tokens) == n && r.res.FinishReason == "length":
			case len(r.tokens) < n && r.res.FinishReason == "stop":
			default:
				t.Errorf("MaxTokens %d: %d tokens, finish %q; want %d and \"length\" (or fewer and \"stop\")",
					n, len(r.tokens), r.res.FinishReason, n)
			}
		}
	})

	t.Run("StopSequence", func(t *testing.T) {
		if !opts.Greedy {
			t.Skip("needs a deterministic engine")
		}
		e := newEngine(t)
		ref := mustGenerate(t, e, base())
		stop, want, ok := pickStop(ref.tokens)
		if !ok {
			t.Skip("reference output has no usable stop sequence")
		}
		req := base()
		req.Stop = []string{"never-appears-\x00", stop}
		r := mustGenerate(t, e, req)
		if r.res.FinishReason != "stop" {
			t.Errorf("finish %q, want \"stop\"", r.res.FinishReason)
		}
		if got := r.text(); got != want {
			t.Errorf("text with stop %q = %q, want %q", stop, got, want)
		}
		checkIndexes(t, r.tokens, 0)
	})

	t.Run("CancelMidStream", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req := base()
		req.MaxTokens = 0 // until the end: only cancellation stops it early
		n, after := 0, 0
		_, err := newEngine(t).Generate(ctx, req, func(engine.Token) error {
			n++
			if ctx.Err() != nil {
				after++
			}
			if n == 3 {
				cancel()
			}
			return nil
		})
		if n < 3 {
			t.Skipf("generation ended after %d tokens, before the cancel point", n)
		}
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if after > 1 {
			t.Errorf("%d tokens emitted after cancellation, want at most 1", after)
		}
	})

	t.Run("CancelledBeforeStart", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		r := generate(ctx, newEngine(t), base())
		if !errors.Is(r.err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", r.err)
		}
		if len(r.tokens) != 0 {
			t.Errorf("%d tokens emitted with a cancelled context", len(r.tokens))
		}
	})

	t.Run("EmitErrorStops", func(t *testing.T) {
		errStop := errors.New("consumer went away")
		n := 0
		_, err := newEngine(t).Generate(context.Background(), base(), func(engine.Token) error {
			n++
			if n == 2 {
				return errStop
			}
			return nil
		})
		if !errors.Is(err, errStop) {
			t.Fatalf("err = %v, want the emit error", err)
		}
		if n != 2 {
			t.Errorf("emit called %d times, want 2", n)
		}
	})

	t.Run("Continuation", func(t *testing.T) {
		if !opts.Greedy {
			t.Skip("needs a deterministic engine")
		}
		e := newEngine(t)
		first := opts.MaxTokens / 3
		rest := opts.MaxTokens - first
		whole := mustGenerate(t, e, base())
		if len(whole.tokens) < opts.MaxTokens {
			t.Skipf("reference ended after %d tokens", len(whole.tokens))
		}
		req := base()
		req.MaxTokens = first
		head := mustGenerate(t, e, req)
		req.MaxTokens = rest
		for _, tok := range head.tokens {
			req.Continue = append(req.Continue, tok.ID)
		}
		req.ContinueText = head.text()
		tail := mustGenerate(t, e, req)
		checkIndexes(t, tail.tokens, len(head.tokens))
		if got, want := head.text()+tail.text(), whole.text(); got != want {
			t.Errorf("%d then %d tokens:\n%q\nwant (%d at once):\n%q", first, rest, got, opts.MaxTokens, want)
		}
		for i, tok := range append(head.tokens, tail.tokens...) {
			if i < len(whole.tokens) && tok.ID != whole.tokens[i].ID {
				t.Fatalf("token %d has id %d, want %d", i, tok.ID, whole.tokens[i].ID)
			}
		}
		if tail.res.Usage.CompletionTokens != len(tail.tokens) {
			t.Errorf("continuation Usage.CompletionTokens = %d, emitted %d", tail.res.Usage.CompletionTokens, len(tail.tokens))
		}
	})

	t.Run("ContinuationMessages", func(t *testing.T) {
		if !opts.Greedy || !opts.Messages {
			t.Skip("needs a deterministic engine that takes messages")
		}
		e := newEngine(t)
		req := base()
		req.Prompt = ""
		req.Messages = []engine.Message{{Role: "user", Content: opts.Prompt}}
		whole := mustGenerate(t, e, req)
		if len(whole.tokens) < opts.MaxTokens {
			t.Skipf("reference ended after %d tokens", len(whole.tokens))
		}
		first := opts.MaxTokens / 2
		req.MaxTokens = first
		head := mustGenerate(t, e, req)
		req.MaxTokens = opts.MaxTokens - first
		for _, tok := range head.tokens {
			req.Continue = append(req.Continue, tok.ID)
		}
		req.ContinueText = head.text()
		tail := mustGenerate(t, e, req)
		checkIndexes(t, tail.tokens, len(head.tokens))
		if got, want := head.text()+tail.text(), whole.text(); got != want {
			t.Errorf("chat continued:\n%q\nwant:\n%q", got, want)
		}
	})

	t.Run("Deterministic", func(t *testing.T) {
		if !opts.Greedy && !opts.Seeded {
			t.Skip("engine promises no determinism")
		}
		e := newEngine(t)
		req := base()
		if !opts.Greedy {
			req.Sampling = engine.Sampling{Temperature: 0.8, Seed: 42}
		}
		a, b := mustGenerate(t, e, req), mustGenerate(t, e, req)
		if a.text() != b.text() {
			t.Errorf("same request, different output:\n%q\n%q", a.text(), b.text())
		}
	})

	t.Run("Seeded", func(t *testing.T) {
		if !opts.Seeded {
			t.Skip("engine does not promise seeded sampling")
		}
		e := newEngine(t)
		req := base()
		req.Sampling = engine.Sampling{Temperature: 1, TopP: 0.95, Seed: 7}
		a, b := mustGenerate(t, e, req), mustGenerate(t, e, req)
		if a.text() != b.text() {
			t.Errorf("seed 7 twice, different output:\n%q\n%q", a.text(), b.text())
		}
	})

	t.Run("ContextLength", func(t *testing.T) {
		e := newEngine(t)
		long := opts.LongPrompt
		if long == "" {
			long = strings.Repeat(" "+opts.Prompt, e.Info().ContextLength)
		}
		req := base()
		req.Prompt = long
		r := generate(context.Background(), e, req)
		if !errors.Is(r.err, engine.ErrContextLength) {
			t.Fatalf("err = %v, want ErrContextLength", r.err)
		}
		if len(r.tokens) != 0 {
			t.Errorf("%d tokens emitted for an over-long prompt", len(r.tokens))
		}
	})

	t.Run("BadRequest", func(t *testing.T) {
		e := newEngine(t)
		for name, req := range map[string]engine.Request{
			"empty":         {MaxTokens: 4},
			"negative max":  {Prompt: opts.Prompt, MaxTokens: -1},
			"negative temp": {Prompt: opts.Prompt, MaxTokens: 4, Sampling: engine.Sampling{Temperature: -1}},
		} {
			r := generate(context.Background(), e, req)
			if !errors.Is(r.err, engine.ErrBadRequest) {
				t.Errorf("%s: err = %v, want ErrBadRequest", name, r.err)
			}
			if len(r.tokens) != 0 {
				t.Errorf("%s: %d tokens emitted", name, len(r.tokens))
			}
		}
	})

	t.Run("Messages", func(t *testing.T) {
		if !opts.Messages {
			t.Skip("engine does not take messages")
		}
		req := base()
		req.Prompt = ""
		req.Messages = []engine.Message{
			{Role: "system", Content: "You tell stories."},
			{Role: "user", Content: opts.Prompt},
		}
		r := mustGenerate(t, newEngine(t), req)
		if len(r.tokens) == 0 && r.res.FinishReason != "stop" {
			t.Errorf("no tokens and finish %q", r.res.FinishReason)
		}
		checkIndexes(t, r.tokens, 0)
	})

	t.Run("Concurrent", func(t *testing.T) {
		e := newEngine(t)
		ref := mustGenerate(t, e, base())
		const n = 4
		runs := make([]run, n)
		var wg sync.WaitGroup
		for i := range runs {
			wg.Go(func() { runs[i] = generate(context.Background(), e, base()) })
		}
		wg.Wait()
		for i, r := range runs {
			if r.err != nil {
				t.Errorf("call %d: %v", i, r.err)
				continue
			}
			if opts.Greedy && r.text() != ref.text() {
				t.Errorf("call %d: concurrent output %q differs from sequential %q", i, r.text(), ref.text())
			}
		}
	})
}

// pickStop chooses a stop sequence from a reference output: two tokens
// starting at a token boundary past the start, whose first occurrence is at
// that boundary. It returns the stop string and the text expected before it.
func pickStop(toks []engine.Token) (stop, before string, ok bool) {
	var full strings.Builder
	offs := make([]int, len(toks))
	for i, t := range toks {
		offs[i] = full.Len()
		full.WriteString(t.Text)
	}
	text := full.String()
	for j := len(toks) / 2; j+1 < len(toks); j++ {
		s := toks[j].Text + toks[j+1].Text
		if strings.TrimSpace(s) == "" {
			continue
		}
		if strings.Index(text, s) == offs[j] {
			return s, text[:offs[j]], true
		}
	}
	return "", "", false
}
