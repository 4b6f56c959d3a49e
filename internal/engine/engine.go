// Package engine defines the contract between a host agent and the thing that
// turns a prompt into tokens. Implementations live in sub-packages (llama, the
// built-in pure-Go engine; openai and ollama, adapters for engines a host
// already runs). The host agent imports this package and the implementations;
// the orchestrator imports neither.
package engine

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Sentinel errors a caller branches on. Implementations wrap them with context.
var (
	// ErrContextLength means the prompt plus the continuation does not fit in
	// the model's context window.
	ErrContextLength = errors.New("prompt exceeds the model's context length")
	// ErrBadRequest means the request itself is invalid (empty prompt and
	// messages, a negative max tokens, a sampling value out of range).
	ErrBadRequest = errors.New("invalid generation request")
)

// Info describes the model an engine serves.
type Info struct {
	Model         string // name the host advertises, e.g. "stories260K"
	Architecture  string // e.g. "llama"
	ContextLength int    // tokens
	Quantization  string // e.g. "F32", "Q8_0", "Q4_K_M", "mixed"
	Parameters    int64  // total parameter count
	VocabSize     int
}

// Message is one chat turn. Role is "system", "user", "assistant" or "tool".
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Sampling selects the next token. The zero value is greedy decoding.
type Sampling struct {
	Temperature   float32 `json:"temperature,omitempty"`    // 0 means greedy (argmax)
	TopK          int     `json:"top_k,omitempty"`          // 0 means off
	TopP          float32 `json:"top_p,omitempty"`          // 0 or 1 means off
	MinP          float32 `json:"min_p,omitempty"`          // 0 means off
	RepeatPenalty float32 `json:"repeat_penalty,omitempty"` // 0 or 1 means off
	RepeatLastN   int     `json:"repeat_last_n,omitempty"`  // window for RepeatPenalty; 0 means 64
	// Seed makes sampling reproducible. The random draw for a position depends
	// only on Seed and the position, so a continuation on another host samples
	// exactly what an uninterrupted run would have.
	Seed uint64 `json:"seed,omitempty"`
}

// Request is one generation call. Exactly one of Prompt and Messages is set.
type Request struct {
	// Prompt is raw text, encoded with the model's BOS token.
	Prompt string `json:"prompt,omitempty"`
	// Messages are rendered with the model's chat template (or, for a model
	// with none, concatenated as documented by the implementation).
	Messages []Message `json:"messages,omitempty"`
	// Continue holds completion token ids already produced for this prompt, by
	// this host or another one. Generation resumes after them exactly as if
	// this engine had produced them itself; they are not emitted again.
	Continue []int `json:"continue,omitempty"`
	// ContinueText is the decoded text of Continue, for engines that cannot
	// take token ids (HTTP engines append it to the prompt). The built-in
	// engine uses Continue and ignores it.
	ContinueText string `json:"continue_text,omitempty"`
	// MaxTokens is how many new tokens this call may produce beyond Continue;
	// 0 means until end of sequence or a full context.
	MaxTokens int      `json:"max_tokens,omitempty"`
	Stop      []string `json:"stop,omitempty"`
	Sampling  Sampling `json:"sampling"`
}

// Token is one generated token.
type Token struct {
	ID int
	// Text is the token's decoded bytes as it would be printed. It may be an
	// incomplete UTF-8 sequence (byte-fallback tokens); callers that need valid
	// UTF-8 join pieces before converting.
	Text string
	// Index is the token's position in the completion, counting Continue: the
	// first token after a three-token continuation has Index 3.
	Index int
	// Elapsed is the time spent producing this token.
	Elapsed time.Duration
}

// Usage counts the work of one Generate call.
type Usage struct {
	PromptTokens     int           // prompt tokens, including BOS and template tokens
	CachedTokens     int           // of PromptTokens+len(Continue), how many were reused from a cache
	CompletionTokens int           // tokens produced by this call (not counting Continue)
	PromptEval       time.Duration // time to evaluate the prompt and continuation
	Generation       time.Duration // time spent producing completion tokens
}

// Result is how a Generate call ended.
type Result struct {
	// FinishReason is "stop" (end of sequence or a stop sequence) or "length"
	// (MaxTokens or the context window reached).
	FinishReason string
	Usage        Usage
}

// Engine generates text with one loaded model. Implementations are safe for
// concurrent use; they may serialise calls internally.
type Engine interface {
	// Info reports the model served. It does not block.
	Info() Info
	// Generate produces tokens for req, calling emit once per token in order
	// from the calling goroutine. If emit returns an error, generation stops
	// and Generate returns that error. When ctx is cancelled Generate returns
	// ctx.Err() within one token's time. A prompt that does not fit returns an
	// error wrapping ErrContextLength before any token is emitted.
	Generate(ctx context.Context, req Request, emit func(Token) error) (Result, error)
	// Close releases the model (memory maps, connections). Generate must not
	// be called after Close.
	Close() error
}

// Validate reports whether r is well formed: exactly one of Prompt and
// Messages, a non-negative MaxTokens and sampling values in range. The error
// wraps ErrBadRequest. Engines call it before any work.
func (r Request) Validate() error {
	s := r.Sampling
	switch {
	case r.Prompt == "" && len(r.Messages) == 0:
		return fmt.Errorf("no prompt or messages: %w", ErrBadRequest)
	case r.Prompt != "" && len(r.Messages) > 0:
		return fmt.Errorf("both prompt and messages: %w", ErrBadRequest)
	case r.MaxTokens < 0:
		return fmt.Errorf("max tokens %d: %w", r.MaxTokens, ErrBadRequest)
	case s.Temperature < 0, s.TopK < 0, s.TopP < 0, s.TopP > 1, s.MinP < 0, s.MinP > 1, s.RepeatPenalty < 0, s.RepeatLastN < 0:
		return fmt.Errorf("sampling out of range: %w", ErrBadRequest)
	}
	return nil
}
