// Package ollama is an engine.Engine over Ollama's native HTTP API, for hosts
// that already run Ollama: /api/generate in raw mode for prompts and
// continuations, /api/chat for messages (continuing an answer as an
// assistant prefill), streamed as NDJSON; and Discover, which lists the
// models a local Ollama serves (/api/tags, /api/show). The host agent
// imports it; the orchestrator never does.
package ollama

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/peerllm/peerllm/internal/engine"
)

// DefaultBaseURL is where Ollama listens by default.
const DefaultBaseURL = "http://127.0.0.1:11434"

// Config points the engine at an Ollama server and one of its models.
type Config struct {
	BaseURL string // "" means DefaultBaseURL
	Model   string // e.g. "llama3.2:1b"
	// ContextLength is the window to use in tokens, sent as
	// options.num_ctx so Ollama's window and the advertised one agree;
	// 0 means DefaultContextLength (capped by the model's trained
	// context when Connect can read it).
	ContextLength int
	// KeepAlive is how long Ollama keeps the model loaded after a call
	// (e.g. "10m"); "" leaves Ollama's default.
	KeepAlive string
	// HTTPClient makes the requests; nil means a client without timeouts
	// (each call's context bounds it).
	HTTPClient *http.Client
}

// DefaultContextLength is the window used when Config.ContextLength is 0:
// Ollama's own default, small enough not to allocate a huge KV cache.
const DefaultContextLength = 4096

// Engine generates through Ollama.
type Engine struct {
	cfg    Config
	info   engine.Info
	client *http.Client
}

// New returns an engine for cfg without contacting the server.
func New(cfg Config) (*Engine, error) {
	if cfg.Model == "" {
		return nil, errors.New("ollama engine: no model name")
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	cfg.BaseURL = strings.TrimSuffix(cfg.BaseURL, "/")
	if cfg.ContextLength <= 0 {
		cfg.ContextLength = DefaultContextLength
	}
	e := &Engine{cfg: cfg, client: cfg.HTTPClient}
	if e.client == nil {
		e.client = &http.Client{}
	}
	e.info = engine.Info{Model: cfg.Model, Architecture: "remote", ContextLength: cfg.ContextLength}
	return e, nil
}

// Connect returns an engine whose Info comes from the server's /api/show
// (architecture, context length, quantization, parameters). A model the
// server does not have is an error.
func Connect(ctx context.Context, cfg Config) (*Engine, error) {
	e, err := New(cfg)
	if err != nil {
		return nil, err
	}
	info, err := show(ctx, e.client, e.cfg.BaseURL, cfg.Model)
	if err != nil {
		return nil, err
	}
	trained := info.ContextLength
	info.ContextLength = e.cfg.ContextLength
	if cfg.ContextLength <= 0 && trained > 0 && trained < info.ContextLength {
		info.ContextLength = trained
	}
	e.info = info
	return e, nil
}

// Info reports the model.
func (e *Engine) Info() engine.Info { return e.info }

// Close releases idle connections.
func (e *Engine) Close() error {
	e.client.CloseIdleConnections()
	return nil
}

type options struct {
	Temperature   float32  `json:"temperature"`
	TopK          int      `json:"top_k,omitempty"`
	TopP          float32  `json:"top_p,omitempty"`
	MinP          float32  `json:"min_p,omitempty"`
	Seed          *uint64  `json:"seed,omitempty"`
	RepeatPenalty float32  `json:"repeat_penalty,omitempty"`
	RepeatLastN   int      `json:"repeat_last_n,omitempty"`
	NumPredict    int      `json:"num_predict,omitempty"`
	NumCtx        int      `json:"num_ctx,omitempty"`
	Stop          []string `json:"stop,omitempty"`
}

type message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// request is the body of /api/generate and /api/chat. Truncate false asks
// Ollama versions that know it to refuse an over-long prompt instead of
// silently dropping its start.
type request struct {
	Model     string    `json:"model"`
	Prompt    *string   `json:"prompt,omitempty"`
	Raw       bool      `json:"raw,omitempty"`
	Messages  []message `json:"messages,omitempty"`
	Stream    bool      `json:"stream"`
	Truncate  bool      `json:"truncate"`
	KeepAlive string    `json:"keep_alive,omitempty"`
	Options   options   `json:"options"`
}

// line is one NDJSON object of either streaming endpoint.
type line struct {
	Response string `json:"response"`
	Message  *struct {
		Content string `json:"content"`
	} `json:"message"`
	Done               bool   `json:"done"`
	DoneReason         string `json:"done_reason"`
	PromptEvalCount    int    `json:"prompt_eval_count"`
	PromptEvalDuration int64  `json:"prompt_eval_duration"` // ns
	EvalDuration       int64  `json:"eval_duration"`        // ns
	Error              string `json:"error"`
}

// Generate streams a completion; see engine.Engine. Token IDs are -1;
// Index counts len(req.Continue) first.
func (e *Engine) Generate(ctx context.Context, req engine.Request, emit func(engine.Token) error) (engine.Result, error) {
	var res engine.Result
	if err := req.Validate(); err != nil {
		return res, fmt.Errorf("ollama engine: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	path, body, prompt := e.build(req)
	start := time.Now()
	resp, err := e.post(ctx, path, body)
	if err != nil {
		return res, err
	}
	defer resp.Body.Close()

	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	first, n := len(req.Continue), 0
	last := start
	done := false
	for !done && sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return res, fmt.Errorf("ollama engine: bad stream line: %w", err)
		}
		if l.Error != "" {
			return res, serverError(0, l.Error)
		}
		text := l.Response
		if l.Message != nil {
			text += l.Message.Content
		}
		if text != "" {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			now := time.Now()
			if n == 0 {
				res.Usage.PromptEval = now.Sub(start)
			}
			tok := engine.Token{ID: -1, Text: text, Index: first + n, Elapsed: now.Sub(last)}
			last = now
			n++
			if err := emit(tok); err != nil {
				return res, err
			}
		}
		if l.Done {
			done = true
			res.FinishReason = "stop"
			if l.DoneReason == "length" {
				res.FinishReason = "length"
			}
			res.Usage.PromptTokens = l.PromptEvalCount
			if l.PromptEvalDuration > 0 {
				res.Usage.PromptEval = time.Duration(l.PromptEvalDuration)
			}
			if l.EvalDuration > 0 {
				res.Usage.Generation = time.Duration(l.EvalDuration)
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if err := sc.Err(); err != nil {
		return res, fmt.Errorf("ollama engine: read stream: %w", err)
	}
	if !done {
		return res, errors.New("ollama engine: stream ended before done")
	}
	res.Usage.CompletionTokens = n
	if res.Usage.PromptTokens == 0 {
		// Ollama omits the count when the whole prompt came from its
		// cache; estimate four bytes a token.
		res.Usage.PromptTokens = 1 + len(prompt)/4
	}
	return res, nil
}

func (e *Engine) build(req engine.Request) (path string, body []byte, prompt string) {
	s := req.Sampling
	opts := options{
		Temperature: s.Temperature, TopK: s.TopK, MinP: s.MinP, RepeatLastN: s.RepeatLastN,
		NumPredict: req.MaxTokens, Stop: req.Stop,
	}
	if s.TopP > 0 && s.TopP < 1 {
		opts.TopP = s.TopP
	}
	if s.Temperature > 0 {
		seed := s.Seed
		opts.Seed = &seed
	}
	if s.RepeatPenalty > 0 && s.RepeatPenalty != 1 {
		opts.RepeatPenalty = s.RepeatPenalty
	}
	opts.NumCtx = e.info.ContextLength
	r := request{Model: e.cfg.Model, Stream: true, KeepAlive: e.cfg.KeepAlive, Options: opts}
	if len(req.Messages) > 0 {
		path = "/api/chat"
		for _, m := range req.Messages {
			r.Messages = append(r.Messages, message{Role: m.Role, Content: m.Content})
			prompt += m.Content
		}
		if req.ContinueText != "" {
			// Ollama continues a final assistant message instead of
			// opening a new turn.
			r.Messages = append(r.Messages, message{Role: "assistant", Content: req.ContinueText})
		}
	} else {
		path = "/api/generate"
		prompt = req.Prompt + req.ContinueText
		r.Prompt = &prompt
		r.Raw = true // the prompt is raw text: no template around it
	}
	body, _ = json.Marshal(r) // plain structs always marshal
	return path, body, prompt
}

func (e *Engine) post(ctx context.Context, path string, body []byte) (*http.Response, error) {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, e.cfg.BaseURL+path, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("ollama engine: %w", err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	resp, err := e.client.Do(hreq)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("ollama engine: post %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, httpError(resp)
	}
	return resp, nil
}

// serverError maps Ollama's {"error": "..."} text onto the engine's errors.
func serverError(status int, msg string) error {
	low := strings.ToLower(msg)
	switch {
	case strings.Contains(low, "context length") || strings.Contains(low, "context window") || strings.Contains(low, "exceeds the context"):
		return fmt.Errorf("ollama engine: server: %s: %w", msg, engine.ErrContextLength)
	case status == http.StatusBadRequest:
		return fmt.Errorf("ollama engine: server rejected the request: %s: %w", msg, engine.ErrBadRequest)
	case status != 0:
		return fmt.Errorf("ollama engine: server: HTTP %d: %s", status, msg)
	}
	return fmt.Errorf("ollama engine: server: %s", msg)
}

func httpError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var env struct {
		Error string `json:"error"`
	}
	msg := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &env) == nil && env.Error != "" {
		msg = env.Error
	}
	if msg == "" {
		msg = resp.Status
	}
	return serverError(resp.StatusCode, msg)
}
