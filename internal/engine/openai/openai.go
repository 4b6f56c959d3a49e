// Package openai is an engine.Engine over a server speaking the OpenAI HTTP
// API (llama.cpp's llama-server, vLLM, LM Studio, LocalAI, Ollama's /v1), for
// hosts that already run one. It streams /v1/completions for prompts and
// continuations (prompt + ContinueText) and /v1/chat/completions for
// messages, synthesising one Token per streamed chunk. The host agent
// imports it; the orchestrator never does.
package openai

import (
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
	"github.com/peerllm/peerllm/internal/engine/chat"
)

// Config points the engine at a server.
type Config struct {
	// BaseURL is the server root, with or without the /v1 suffix, e.g.
	// "http://127.0.0.1:8080".
	BaseURL string
	// APIKey is sent as a Bearer token; "" sends none.
	APIKey string
	// Model is the model name sent in requests and reported by Info.
	Model string
	// ContextLength is the server's context window in tokens, reported by
	// Info; 0 means 4096.
	ContextLength int
	// UseChat sends Messages to /v1/chat/completions, where the server
	// applies the model's chat template. When false, Messages are rendered
	// here with ChatTemplate and sent to /v1/completions, which makes
	// continuation exact.
	UseChat bool
	// ChatTemplate is the template used when UseChat is false ("" joins
	// the message contents, see chat.Render).
	ChatTemplate string
	// HTTPClient makes the requests; nil means a client without timeouts
	// (each call's context bounds it).
	HTTPClient *http.Client
}

// Engine generates through an OpenAI-compatible server.
type Engine struct {
	cfg    Config
	info   engine.Info
	base   string // BaseURL ending in /v1
	client *http.Client
}

// New returns an engine for cfg. It does not contact the server.
func New(cfg Config) (*Engine, error) {
	if cfg.BaseURL == "" {
		return nil, errors.New("openai engine: empty base URL")
	}
	if cfg.ContextLength == 0 {
		cfg.ContextLength = 4096
	}
	base := strings.TrimSuffix(cfg.BaseURL, "/")
	if !strings.HasSuffix(base, "/v1") {
		base += "/v1"
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{}
	}
	info := engine.Info{Model: cfg.Model, Architecture: "remote", ContextLength: cfg.ContextLength}
	return &Engine{cfg: cfg, info: info, base: base, client: client}, nil
}

// Info reports the model: from Config, or from the server for Connect.
func (e *Engine) Info() engine.Info { return e.info }

// Close releases idle connections.
func (e *Engine) Close() error {
	e.client.CloseIdleConnections()
	return nil
}

// request is the body of /v1/completions and /v1/chat/completions, with the
// llama.cpp (top_k, min_p, repeat_penalty, repeat_last_n) and vLLM
// (repetition_penalty, continue_final_message, add_generation_prompt)
// extensions; servers ignore fields they do not know.
type request struct {
	Model         string         `json:"model,omitempty"`
	Prompt        *string        `json:"prompt,omitempty"`
	Messages      []chatMessage  `json:"messages,omitempty"`
	Stream        bool           `json:"stream"`
	StreamOptions *streamOptions `json:"stream_options,omitempty"`
	MaxTokens     int            `json:"max_tokens,omitempty"`
	Temperature   float32        `json:"temperature"`
	TopP          float32        `json:"top_p,omitempty"`
	Seed          *uint64        `json:"seed,omitempty"`
	Stop          []string       `json:"stop,omitempty"`

	TopK              int     `json:"top_k,omitempty"`
	MinP              float32 `json:"min_p,omitempty"`
	RepeatPenalty     float32 `json:"repeat_penalty,omitempty"`
	RepeatLastN       int     `json:"repeat_last_n,omitempty"`
	RepetitionPenalty float32 `json:"repetition_penalty,omitempty"`

	ContinueFinalMessage bool  `json:"continue_final_message,omitempty"`
	AddGenerationPrompt  *bool `json:"add_generation_prompt,omitempty"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

type chatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// chunk is one streamed event of either endpoint.
type chunk struct {
	Choices []struct {
		Text  string `json:"text"`
		Delta struct {
			Content string `json:"content"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
		Details          *struct {
			CachedTokens int `json:"cached_tokens"`
		} `json:"prompt_tokens_details"`
	} `json:"usage"`
	Error *apiError `json:"error"`
}

// Generate streams a completion; see engine.Engine. Token IDs are -1 (the
// server does not send them); Index counts len(req.Continue) first.
func (e *Engine) Generate(ctx context.Context, req engine.Request, emit func(engine.Token) error) (engine.Result, error) {
	var res engine.Result
	if err := req.Validate(); err != nil {
		return res, fmt.Errorf("openai engine: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	body, path, prompt, err := e.build(req)
	if err != nil {
		return res, fmt.Errorf("openai engine: %w", err)
	}
	start := time.Now()
	resp, err := e.post(ctx, path, body)
	if err != nil {
		return res, err
	}
	defer resp.Body.Close()

	first := len(req.Continue)
	n := 0
	var lastTok time.Time
	var serverUsage bool
	serverCompletion := 0
	err = readSSE(resp.Body, func(data []byte) error {
		var c chunk
		if err := json.Unmarshal(data, &c); err != nil {
			return fmt.Errorf("openai engine: bad stream event: %w", err)
		}
		if c.Error != nil {
			return c.Error.err(0)
		}
		if c.Usage != nil {
			serverUsage = true
			serverCompletion = c.Usage.CompletionTokens
			res.Usage.PromptTokens = c.Usage.PromptTokens
			if c.Usage.Details != nil {
				res.Usage.CachedTokens = c.Usage.Details.CachedTokens
			}
		}
		for _, ch := range c.Choices {
			text := ch.Text + ch.Delta.Content
			if text != "" {
				if err := ctx.Err(); err != nil {
					return err
				}
				now := time.Now()
				if n == 0 {
					res.Usage.PromptEval = now.Sub(start)
					lastTok = start
				}
				tok := engine.Token{ID: -1, Text: text, Index: first + n, Elapsed: now.Sub(lastTok)}
				lastTok = now
				n++
				if err := emit(tok); err != nil {
					return err
				}
			}
			if ch.FinishReason != nil && *ch.FinishReason != "" {
				res.FinishReason = mapFinish(*ch.FinishReason)
			}
		}
		return nil
	})
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	if errors.Is(err, errNoDone) {
		if res.FinishReason == "" {
			return res, fmt.Errorf("openai engine: %w", err)
		}
		err = nil // some servers close right after the finishing chunk
	}
	if err != nil {
		return res, err
	}
	// A server may pack several tokens into one streamed piece (vLLM under
	// load, a server that screens its output in sentences). When it reports
	// the true count, the pieces it packed are emitted as empty tokens after
	// the text, so positions, limits and billing count the model's tokens.
	if serverUsage && n > 0 && serverCompletion > n {
		extra := serverCompletion - n
		if req.MaxTokens > 0 {
			extra = min(extra, req.MaxTokens-n)
		}
		for range extra {
			if err := emit(engine.Token{ID: -1, Index: first + n}); err != nil {
				return res, err
			}
			n++
		}
	}
	res.Usage.CompletionTokens = n
	if n > 0 {
		res.Usage.Generation = time.Since(start) - res.Usage.PromptEval
	}
	if !serverUsage {
		// Without usage from the server, estimate four bytes a token.
		res.Usage.PromptTokens = 1 + len(prompt)/4
	}
	if res.FinishReason == "" {
		res.FinishReason = "stop"
	}
	return res, nil
}

// build makes the request body and picks the endpoint.
func (e *Engine) build(req engine.Request) (body []byte, path, prompt string, err error) {
	r := request{
		Model:         e.cfg.Model,
		Stream:        true,
		StreamOptions: &streamOptions{IncludeUsage: true},
		MaxTokens:     req.MaxTokens,
		Temperature:   req.Sampling.Temperature,
		Stop:          req.Stop,
		TopK:          req.Sampling.TopK,
		MinP:          req.Sampling.MinP,
		RepeatLastN:   req.Sampling.RepeatLastN,
	}
	s := req.Sampling
	if s.TopP > 0 && s.TopP < 1 {
		r.TopP = s.TopP
	}
	if s.Temperature > 0 {
		seed := s.Seed
		r.Seed = &seed
	}
	if s.RepeatPenalty > 0 && s.RepeatPenalty != 1 {
		r.RepeatPenalty, r.RepetitionPenalty = s.RepeatPenalty, s.RepeatPenalty
	}
	path = "/completions"
	switch {
	case len(req.Messages) > 0 && e.cfg.UseChat:
		path = "/chat/completions"
		for _, m := range req.Messages {
			r.Messages = append(r.Messages, chatMessage{Role: m.Role, Content: m.Content})
			prompt += m.Content
		}
		if req.ContinueText != "" {
			// The answer so far as a final assistant message: llama.cpp
			// continues it as a prefill, vLLM when asked to.
			r.Messages = append(r.Messages, chatMessage{Role: "assistant", Content: req.ContinueText})
			r.ContinueFinalMessage = true
			no := false
			r.AddGenerationPrompt = &no
		}
	case len(req.Messages) > 0:
		p, err := chat.Render(e.cfg.ChatTemplate, req.Messages, chat.Options{AddGenerationPrompt: true})
		if err != nil {
			return nil, "", "", err
		}
		prompt = p + req.ContinueText
		r.Prompt = &prompt
	default:
		prompt = req.Prompt + req.ContinueText
		r.Prompt = &prompt
	}
	body, err = json.Marshal(r)
	return body, path, prompt, err
}

func (e *Engine) post(ctx context.Context, path string, body []byte) (*http.Response, error) {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, e.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("openai engine: %w", err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "text/event-stream")
	if e.cfg.APIKey != "" {
		hreq.Header.Set("Authorization", "Bearer "+e.cfg.APIKey)
	}
	resp, err := e.client.Do(hreq)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("openai engine: post %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, httpError(resp)
	}
	return resp, nil
}

// mapFinish maps a server's finish_reason onto "stop" or "length".
func mapFinish(r string) string {
	switch r {
	case "length", "max_tokens", "model_length":
		return "length"
	}
	return "stop" // stop, eos, content_filter, tool_calls, function_call
}

// apiError is the error object of OpenAI, llama.cpp and vLLM responses.
type apiError struct {
	Message string `json:"message"`
	Type    string `json:"type"`
	Code    any    `json:"code"`
}

func (a *apiError) err(status int) error {
	msg := a.Message
	if msg == "" {
		msg = a.Type
	}
	code := fmt.Sprint(a.Code)
	low := strings.ToLower(msg)
	switch {
	case a.Type == "exceed_context_size_error" || code == "context_length_exceeded" ||
		strings.Contains(low, "context length") || strings.Contains(low, "context size") ||
		strings.Contains(low, "context window"):
		return fmt.Errorf("openai engine: server: %s: %w", msg, engine.ErrContextLength)
	case status == http.StatusBadRequest || status == http.StatusUnprocessableEntity:
		return fmt.Errorf("openai engine: server rejected the request: %s: %w", msg, engine.ErrBadRequest)
	case status != 0:
		return fmt.Errorf("openai engine: server: HTTP %d: %s", status, msg)
	}
	return fmt.Errorf("openai engine: server: %s", msg)
}

// httpError turns a non-200 response into an error, keeping the server's
// message (bounded) and mapping context overflows to ErrContextLength.
func httpError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var env struct {
		Error json.RawMessage `json:"error"`
	}
	a := &apiError{}
	if json.Unmarshal(b, &env) == nil && len(env.Error) > 0 {
		if json.Unmarshal(env.Error, a) != nil {
			// vLLM and some proxies send "error" as a plain string.
			_ = json.Unmarshal(env.Error, &a.Message)
		}
	}
	if a.Message == "" && a.Type == "" {
		a.Message = strings.TrimSpace(string(b))
		if a.Message == "" {
			a.Message = resp.Status
		}
	}
	return a.err(resp.StatusCode)
}
