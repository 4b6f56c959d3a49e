package openai_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/peerllm/peerllm/internal/engine"
	"github.com/peerllm/peerllm/internal/engine/chat"
	"github.com/peerllm/peerllm/internal/engine/enginetest"
)

// llamaServer is a DOUBLE of llama.cpp's llama-server OpenAI endpoints
// (/v1/completions, /v1/chat/completions with "stream": true), which cannot
// run here. Its wire format follows llama.cpp's server README and vLLM's /
// OpenAI's API reference: one "data: {json}" event per token, a finishing
// chunk with finish_reason, a usage chunk when stream_options.include_usage
// is set, then "data: [DONE]"; errors as {"error": {"code", "message",
// "type"}} with type "exceed_context_size_error" for an over-long prompt.
// The tokens come from enginetest.Toy, so they are deterministic.
type llamaServer struct {
	toy *enginetest.Toy

	mu       sync.Mutex
	bodies   []map[string]any // every request body, decoded
	headers  []http.Header
	finished chan error // receives how each streaming handler ended
}

func newLlamaServer(ctxLen int) *llamaServer {
	return &llamaServer{
		toy:      enginetest.NewToy(enginetest.ToyConfig{Model: "toy", ContextLength: ctxLen}),
		finished: make(chan error, 100),
	}
}

func (s *llamaServer) lastBody() map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.bodies) == 0 {
		return nil
	}
	return s.bodies[len(s.bodies)-1]
}

type wireRequest struct {
	Model    string `json:"model"`
	Prompt   string `json:"prompt"`
	Messages []struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	} `json:"messages"`
	Stream        bool `json:"stream"`
	StreamOptions struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	MaxTokens   int      `json:"max_tokens"`
	Temperature *float32 `json:"temperature"`
	TopP        float32  `json:"top_p"`
	Seed        uint64   `json:"seed"`
	Stop        []string `json:"stop"`
}

func writeError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": status, "message": msg, "type": typ}})
}

func (s *llamaServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		switch r.URL.Path {
		case "/v1/models":
			// llama-server lists its one model with GGUF facts in "meta"
			// (the trained context, not the one it runs with).
			fmt.Fprintf(w, `{"object":"list","data":[{"id":"toy.gguf","object":"model","created":1700000000,"owned_by":"llamacpp","meta":{"vocab_type":1,"n_vocab":32,"n_ctx_train":%d,"n_embd":64,"n_params":260000,"size":1185376}}]}`, 2*s.toy.Info().ContextLength)
		case "/props":
			fmt.Fprintf(w, `{"default_generation_settings":{"n_ctx":%d,"params":{"temperature":0.8}},"total_slots":1,"model_path":"/models/toy.gguf","chat_template":""}`, s.toy.Info().ContextLength)
		default:
			writeError(w, 404, "not_found_error", "File Not Found")
		}
		return
	}
	var raw map[string]any
	var req wireRequest
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(&raw); err != nil {
		writeError(w, 400, "invalid_request_error", "invalid JSON")
		return
	}
	b, _ := json.Marshal(raw)
	json.Unmarshal(b, &req)
	s.mu.Lock()
	s.bodies = append(s.bodies, raw)
	s.headers = append(s.headers, r.Header.Clone())
	s.mu.Unlock()

	chatMode := false
	switch r.URL.Path {
	case "/v1/completions":
	case "/v1/chat/completions":
		chatMode = true
	default:
		writeError(w, 404, "not_found_error", "File Not Found")
		return
	}
	if !req.Stream {
		writeError(w, 400, "invalid_request_error", "this double only streams")
		return
	}
	prompt := req.Prompt
	if chatMode {
		msgs := make([]engine.Message, 0, len(req.Messages))
		for _, m := range req.Messages {
			msgs = append(msgs, engine.Message{Role: m.Role, Content: m.Content})
		}
		prefill := ""
		if n := len(msgs); n > 0 && msgs[n-1].Role == "assistant" {
			// llama-server continues a final assistant message (prefill).
			prefill, msgs = msgs[n-1].Content, msgs[:n-1]
		}
		p, err := chat.Render("", msgs, chat.Options{AddGenerationPrompt: true})
		if err != nil {
			writeError(w, 400, "invalid_request_error", err.Error())
			return
		}
		prompt = p + prefill
	}
	if req.Temperature == nil {
		writeError(w, 400, "invalid_request_error", "the double wants an explicit temperature")
		return
	}
	ereq := engine.Request{
		Prompt: prompt, MaxTokens: req.MaxTokens, Stop: req.Stop,
		Sampling: engine.Sampling{Temperature: *req.Temperature, TopP: req.TopP, Seed: req.Seed},
	}
	if n := s.toy.CountTokens(prompt); n >= s.toy.Info().ContextLength {
		writeError(w, 400, "exceed_context_size_error",
			fmt.Sprintf("request (%d tokens) exceeds the available context size (%d tokens), try increasing it", n, s.toy.Info().ContextLength))
		return
	}

	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	fl := w.(http.Flusher)
	send := func(v any) error {
		b, _ := json.Marshal(v)
		if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
			return err
		}
		fl.Flush()
		return nil
	}
	object, id := "text_completion", "cmpl-double"
	if chatMode {
		object, id = "chat.completion.chunk", "chatcmpl-double"
		send(map[string]any{"id": id, "object": object, "created": 1700000000, "model": req.Model,
			"choices": []any{map[string]any{"index": 0, "finish_reason": nil, "delta": map[string]any{"role": "assistant", "content": nil}}}})
	}
	choice := func(text string, finish any) map[string]any {
		if chatMode {
			delta := map[string]any{}
			if text != "" {
				delta["content"] = text
			}
			return map[string]any{"index": 0, "finish_reason": finish, "delta": delta}
		}
		return map[string]any{"index": 0, "text": text, "logprobs": nil, "finish_reason": finish}
	}
	res, err := s.toy.Generate(r.Context(), ereq, func(t engine.Token) error {
		return send(map[string]any{"id": id, "object": object, "created": 1700000000, "model": req.Model,
			"system_fingerprint": "b0-double", "choices": []any{choice(t.Text, nil)}})
	})
	select {
	case s.finished <- err:
	default: // nobody is watching (benchmarks): do not block the handler
	}
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return
		}
		fmt.Fprintf(w, "error: {\"code\":500,\"message\":%q,\"type\":\"server_error\"}\n\n", err.Error())
		return
	}
	send(map[string]any{"id": id, "object": object, "created": 1700000000, "model": req.Model,
		"choices": []any{choice("", res.FinishReason)}})
	if req.StreamOptions.IncludeUsage {
		send(map[string]any{"id": id, "object": object, "created": 1700000000, "model": req.Model, "choices": []any{},
			"usage": map[string]any{"prompt_tokens": res.Usage.PromptTokens, "completion_tokens": res.Usage.CompletionTokens,
				"total_tokens": res.Usage.PromptTokens + res.Usage.CompletionTokens}})
	}
	fmt.Fprint(w, "data: [DONE]\n\n")
	fl.Flush()
}
