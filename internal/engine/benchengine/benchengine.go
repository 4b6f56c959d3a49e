// Package benchengine is the bench engine: a real engine.Engine that produces
// tokens instantly (or at a set pace) without a model, for tests and
// benchmarks of everything around an engine (the host agent, the
// orchestrator's dispatch, failover and streaming). It is never served by
// default: a host runs it only with `peerllm host --engine bench`, and it
// advertises Engine "bench" so an orchestrator can tell.
//
// Its output is a pure function of the prompt (or messages), the sampling
// seed (ignored for greedy decoding, as in a real engine) and the token's
// index in the completion, so a continuation from any prefix yields exactly
// the tokens an uninterrupted run would have: the property failover relies
// on, checkable token for token. Anything may import it; the orchestrator's
// production code must not (it imports no engine implementation).
package benchengine

import (
	"context"
	"fmt"
	"hash/fnv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/peerllm/peerllm/internal/engine"
	"github.com/peerllm/peerllm/internal/engine/stopseq"
)

// Token ids, laid out like a Llama SentencePiece vocabulary: special tokens,
// then the 256 byte-fallback tokens, then words.
const (
	BOS       = 1
	EOS       = 2
	byteBase  = 3
	wordBase  = byteBase + 256
	vocabSize = wordBase + len(words)
)

// words is the bench vocabulary. Every word starts with a space, so any run
// of tokens reads as text.
var words = [...]string{
	" the", " a", " little", " cat", " dog", " sat", " on", " mat", " and", " ran",
	" to", " park", " with", " her", " his", " friend", " happy", " sun", " was", " big",
	" red", " ball", " tree", " bird", " sang", " day", " it", " they", " played", " home",
	" went", " saw", " toy", " box", " fish", " blue", " sky", " girl", " boy", " said",
	" hello", " one", " time", " there", " lived", " small", " house", " near", " river", " jumped",
	".", ",", " very", " fast", " slow", " nice", " good", " loved", " warm", " bright",
	" smiled", " asked", " looked", " found",
}

// twoByte are the characters the bench engine emits split over two
// byte-fallback tokens when Options.Multibyte is set.
var twoByte = [...]string{"é", "ñ", "ü", "ö", "ß", "ç", "å", "ø"}

// Options configure a bench engine. The zero value is a valid engine.
type Options struct {
	// Model is the advertised model name; default "bench".
	Model string
	// ContextLength is the context window in tokens; default 4096.
	ContextLength int
	// Delay is the time each token takes; default 0 (instant).
	Delay time.Duration
	// Multibyte makes some characters arrive as two byte-fallback tokens
	// whose first piece is not valid UTF-8 on its own, as a real SentencePiece
	// model does for rare characters.
	Multibyte bool
	// EOSAt, when positive, ends every completion with "stop" once it holds
	// EOSAt tokens (counting Continue); default 0: only MaxTokens, a stop
	// sequence or the context window end it.
	EOSAt int
	// BeforeToken, when set, is called before each token is produced with
	// the token's completion index; a non-nil error ends Generate with that
	// error. Tests use it to hold a generation at a known point.
	BeforeToken func(ctx context.Context, index int) error
}

// Engine is the bench engine. It is safe for concurrent use.
type Engine struct {
	opts     Options
	produced atomic.Int64
	closed   atomic.Bool
}

// New returns a bench engine.
func New(opts Options) *Engine {
	if opts.Model == "" {
		opts.Model = "bench"
	}
	if opts.ContextLength <= 0 {
		opts.ContextLength = 4096
	}
	return &Engine{opts: opts}
}

// Info reports the bench model.
func (e *Engine) Info() engine.Info {
	return engine.Info{
		Model:         e.opts.Model,
		Architecture:  "bench",
		ContextLength: e.opts.ContextLength,
		Quantization:  "none",
		VocabSize:     vocabSize,
	}
}

// Close marks the engine closed; Generate fails afterwards.
func (e *Engine) Close() error {
	e.closed.Store(true)
	return nil
}

// Produced is the number of tokens emitted since the engine was created,
// across all calls.
func (e *Engine) Produced() int64 { return e.produced.Load() }

// PromptTokens is how many tokens req's prompt counts as: one per
// whitespace-separated word plus BOS, and three per message for the
// template.
func PromptTokens(req engine.Request) int {
	n := 1
	if req.Prompt != "" {
		n += len(strings.Fields(req.Prompt))
	}
	for _, m := range req.Messages {
		n += 3 + len(strings.Fields(m.Content))
	}
	return n
}

// Piece is the text of token id ("" for special or unknown ids). Byte
// tokens are single raw bytes and may not be valid UTF-8 alone.
func Piece(id int) string {
	switch {
	case id >= wordBase && id < vocabSize:
		return words[id-wordBase]
	case id >= byteBase && id < wordBase:
		return string([]byte{byte(id - byteBase)})
	}
	return ""
}

// Decode joins the pieces of ids.
func Decode(ids []int) string {
	var b strings.Builder
	for _, id := range ids {
		b.WriteString(Piece(id))
	}
	return b.String()
}

// requestKey hashes what the stream depends on: the prompt or messages and,
// unless decoding is greedy, the sampling seed.
func requestKey(req engine.Request) uint64 {
	h := fnv.New64a()
	h.Write([]byte(req.Prompt))
	for _, m := range req.Messages {
		h.Write([]byte{0})
		h.Write([]byte(m.Role))
		h.Write([]byte{0})
		h.Write([]byte(m.Content))
	}
	k := h.Sum64()
	if req.Sampling.Temperature > 0 {
		k ^= mix(req.Sampling.Seed + 0x9e3779b97f4a7c15)
	}
	return k
}

// tokenID is the word token at index i of the stream with key.
func tokenID(key uint64, i int) int {
	h := mix(key ^ uint64(i)*0xbf58476d1ce4e5b9)
	return wordBase + int(h%uint64(len(words)))
}

// token is the token at index i, honouring Multibyte: when the hash of an
// even index picks it, the character twoByte[...] is emitted as its two
// bytes at indexes i and i+1.
func (e *Engine) token(key uint64, i int) engine.Token {
	if e.opts.Multibyte {
		even := i &^ 1
		if h := mix(key ^ uint64(even)*0x94d049bb133111eb); h%6 == 0 {
			ch := twoByte[(h>>8)%uint64(len(twoByte))]
			id := byteBase + int(ch[i-even])
			return engine.Token{ID: id, Text: Piece(id), Index: i}
		}
	}
	id := tokenID(key, i)
	return engine.Token{ID: id, Text: Piece(id), Index: i}
}

// Token is the token e produces at completion index i for req, honouring
// Options.Multibyte. Tests use it to compute expected streams.
func (e *Engine) Token(req engine.Request, i int) engine.Token {
	return e.token(requestKey(req), i)
}

func mix(x uint64) uint64 {
	// splitmix64 finaliser
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

func validate(req engine.Request) error {
	if err := req.Validate(); err != nil {
		return err
	}
	for _, id := range req.Continue {
		if id < 0 || id >= vocabSize {
			return fmt.Errorf("continue token %d outside the vocabulary: %w", id, engine.ErrBadRequest)
		}
	}
	return nil
}

// Generate emits the deterministic stream for req after req.Continue. It
// stops at MaxTokens ("length"), at the context window ("length"), at
// Options.EOSAt ("stop") or where one of req.Stop begins ("stop"): tokens
// that might begin a stop sequence are held until they cannot, and the
// output ends exactly before the stop text. The stop search covers the text
// of Continue too, so a continuation stops where an uninterrupted run would.
func (e *Engine) Generate(ctx context.Context, req engine.Request, emit func(engine.Token) error) (res engine.Result, err error) {
	if e.closed.Load() {
		return engine.Result{}, fmt.Errorf("bench engine %s: closed", e.opts.Model)
	}
	start := time.Now()
	if err := validate(req); err != nil {
		return engine.Result{}, err
	}
	prompt := PromptTokens(req)
	if prompt+len(req.Continue) >= e.opts.ContextLength {
		return engine.Result{}, fmt.Errorf("%d prompt and %d continued tokens in a %d-token context: %w",
			prompt, len(req.Continue), e.opts.ContextLength, engine.ErrContextLength)
	}
	res.Usage.PromptTokens = prompt
	key := requestKey(req)
	stop := stopseq.New(req.Stop, Decode(req.Continue))
	res.Usage.PromptEval = time.Since(start)
	genStart := time.Now()
	// res is a named result, so this sets Generation on every return.
	defer func() { res.Usage.Generation = time.Since(genStart) }()
	// end is the first completion index that does not fit.
	end := e.opts.ContextLength - prompt
	if req.MaxTokens > 0 {
		end = min(end, len(req.Continue)+req.MaxTokens)
	}
	for i := len(req.Continue); ; i++ {
		if e.opts.EOSAt > 0 && i >= e.opts.EOSAt {
			res.FinishReason = "stop"
			break
		}
		if i >= end {
			res.FinishReason = "length"
			break
		}
		if err := ctx.Err(); err != nil {
			return res, err
		}
		t0 := time.Now()
		if e.opts.BeforeToken != nil {
			if err := e.opts.BeforeToken(ctx, i); err != nil {
				return res, err
			}
		}
		if e.opts.Delay > 0 {
			timer := time.NewTimer(e.opts.Delay)
			select {
			case <-ctx.Done():
				timer.Stop()
				return res, ctx.Err()
			case <-timer.C:
			}
		}
		tok := e.token(key, i)
		tok.Elapsed = time.Since(t0)
		n, stopped, err := stop.Add(tok, emit)
		e.produced.Add(int64(n))
		res.Usage.CompletionTokens += n
		if err != nil {
			return res, err
		}
		if stopped {
			res.FinishReason = "stop"
			return res, nil
		}
	}
	n, err := stop.Flush(emit)
	e.produced.Add(int64(n))
	res.Usage.CompletionTokens += n
	if err != nil {
		return res, err
	}
	return res, nil
}

// Kind names the engine kind a host advertises for this engine: "bench".
func (e *Engine) Kind() string { return "bench" }
