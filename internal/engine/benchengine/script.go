package benchengine

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/peerllm/peerllm/internal/engine"
)

// Scripts of the fault-injection engine (Options of NewScript). They exist
// for tests of the orchestrator's screens and are reachable only with
// `peerllm host --engine bench --bench-script NAME`.
const (
	// ScriptEcho answers with its input: the prompt, or the messages'
	// contents joined by newlines. It stands in for a model that repeats
	// what it was told (names, addresses...), so a test can check that the
	// stand-ins a host receives come back restored.
	ScriptEcho = "echo"
	// ScriptUnsafe answers any prompt with a harmless sentence followed by a
	// threatening one: a host that produces harm nobody asked for.
	ScriptUnsafe = "unsafe"
)

// UnsafeAnswer is the text of ScriptUnsafe: one safe sentence, then an unsafe
// one, then a safe one.
const UnsafeAnswer = "Once upon a time there was a little cat. " +
	"I will kill you and your whole family tonight, you worthless piece of trash. " +
	"The end."

// Script is a fault-injection engine for tests: it answers with a text
// chosen by its script (ScriptEcho, ScriptUnsafe) instead of words, one byte
// per token (byte-fallback ids), so every multi-byte character and every
// word arrives split across tokens and, with small segments, across
// segments. Like Engine, its output is a pure function of the request, so a
// continuation from any prefix is exact. It ignores stop sequences and
// sampling, and finishes with "stop" at the end of its text. Never serve it
// to real consumers.
type Script struct {
	opts   Options
	script string
}

// NewScript returns the fault-injection engine running script; opts'
// Model, ContextLength and Delay apply, the rest is ignored.
func NewScript(opts Options, script string) (*Script, error) {
	switch script {
	case ScriptEcho, ScriptUnsafe:
	default:
		return nil, fmt.Errorf("bench script %q: want %s or %s", script, ScriptEcho, ScriptUnsafe)
	}
	if opts.Model == "" {
		opts.Model = "bench"
	}
	if opts.ContextLength <= 0 {
		opts.ContextLength = 4096
	}
	return &Script{opts: opts, script: script}, nil
}

// Info reports the model; Architecture is "bench-script" so an orchestrator
// can tell it from a real model.
func (s *Script) Info() engine.Info {
	return engine.Info{Model: s.opts.Model, Architecture: "bench-script", ContextLength: s.opts.ContextLength,
		Quantization: "none", VocabSize: vocabSize}
}

// Close implements engine.Engine.
func (s *Script) Close() error { return nil }

// Answer is the full text s produces for req.
func (s *Script) Answer(req engine.Request) string {
	if s.script == ScriptUnsafe {
		return UnsafeAnswer
	}
	if req.Messages == nil {
		return req.Prompt
	}
	parts := make([]string, len(req.Messages))
	for i, m := range req.Messages {
		parts[i] = m.Content
	}
	return strings.Join(parts, "\n")
}

// Generate emits the bytes of Answer(req) after req.Continue, one token each.
func (s *Script) Generate(ctx context.Context, req engine.Request, emit func(engine.Token) error) (res engine.Result, err error) {
	start := time.Now()
	if err := validate(req); err != nil {
		return res, err
	}
	prompt := PromptTokens(req)
	if prompt+len(req.Continue) >= s.opts.ContextLength {
		return res, fmt.Errorf("%d prompt and %d continued tokens in a %d-token context: %w",
			prompt, len(req.Continue), s.opts.ContextLength, engine.ErrContextLength)
	}
	res.Usage.PromptTokens = prompt
	res.Usage.PromptEval = time.Since(start)
	genStart := time.Now()
	defer func() { res.Usage.Generation = time.Since(genStart) }()
	text := s.Answer(req)
	end := min(len(text), s.opts.ContextLength-prompt)
	if req.MaxTokens > 0 {
		end = min(end, len(req.Continue)+req.MaxTokens)
	}
	for i := len(req.Continue); i < end; i++ {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		t0 := time.Now()
		if s.opts.Delay > 0 {
			timer := time.NewTimer(s.opts.Delay)
			select {
			case <-ctx.Done():
				timer.Stop()
				return res, ctx.Err()
			case <-timer.C:
			}
		}
		id := byteBase + int(text[i])
		if err := emit(engine.Token{ID: id, Text: Piece(id), Index: i, Elapsed: time.Since(t0)}); err != nil {
			return res, err
		}
		res.Usage.CompletionTokens++
	}
	res.FinishReason = "length"
	if end == len(text) {
		res.FinishReason = "stop"
	}
	return res, nil
}

// Kind names the engine kind a host advertises: "bench-script".
func (s *Script) Kind() string { return "bench-script" }
