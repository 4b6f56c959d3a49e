package ollama_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/peerllm/peerllm/internal/engine"
	"github.com/peerllm/peerllm/internal/engine/chat"
	"github.com/peerllm/peerllm/internal/engine/enginetest"
)

// ollamaServer is a DOUBLE of Ollama's native API, which cannot run here.
// Shapes follow Ollama's docs/api.md: /api/generate and /api/chat stream one
// JSON object per line ({"model","created_at","response"|"message","done":
// false}) and end with {"done": true, "done_reason", "prompt_eval_count",
// "prompt_eval_duration", "eval_count", "eval_duration", ...}; errors are
// {"error": "..."}; /api/tags lists models with "details"; /api/show returns
// "details" and "model_info" (GGUF metadata keys). With "truncate": false an
// over-long prompt is refused as in ollama/ollama#12061. Tokens come from
// enginetest.Toy.
type ollamaServer struct {
	toy *enginetest.Toy

	mu       sync.Mutex
	bodies   []map[string]any
	finished chan error
}

func newOllamaServer(ctxLen int) *ollamaServer {
	return &ollamaServer{
		toy:      enginetest.NewToy(enginetest.ToyConfig{Model: "toy:latest", ContextLength: ctxLen}),
		finished: make(chan error, 100),
	}
}

func (s *ollamaServer) lastBody() map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bodies[len(s.bodies)-1]
}

func jsonError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

type wireOptions struct {
	Temperature *float32 `json:"temperature"`
	TopP        float32  `json:"top_p"`
	Seed        uint64   `json:"seed"`
	NumPredict  int      `json:"num_predict"`
	NumCtx      int      `json:"num_ctx"`
	Stop        []string `json:"stop"`
}

type wireRequest struct {
	Model    string           `json:"model"`
	Name     string           `json:"name"`
	Prompt   string           `json:"prompt"`
	Raw      bool             `json:"raw"`
	Messages []engine.Message `json:"messages"`
	Stream   *bool            `json:"stream"`
	Truncate *bool            `json:"truncate"`
	Options  wireOptions      `json:"options"`
}

func (s *ollamaServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/api/tags" && r.Method == http.MethodGet {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		fmt.Fprint(w, `{"models":[`+
			`{"name":"toy:latest","model":"toy:latest","modified_at":"2025-05-01T10:00:00.000000000Z","size":1185376,"digest":"270cba1bd5109f42","details":{"parent_model":"","format":"gguf","family":"llama","families":["llama"],"parameter_size":"260K","quantization_level":"F32"}},`+
			`{"name":"qwen2.5:0.5b","model":"qwen2.5:0.5b","modified_at":"2025-05-01T10:00:00.000000000Z","size":397821319,"digest":"a8b0c5157701","details":{"parent_model":"","format":"gguf","family":"qwen2","families":["qwen2"],"parameter_size":"494.03M","quantization_level":"Q4_K_M"}}]}`)
		return
	}
	var raw map[string]any
	if err := json.NewDecoder(r.Body).Decode(&raw); err != nil {
		jsonError(w, 400, "invalid JSON")
		return
	}
	var req wireRequest
	b, _ := json.Marshal(raw)
	json.Unmarshal(b, &req)
	s.mu.Lock()
	s.bodies = append(s.bodies, raw)
	s.mu.Unlock()
	model := req.Model
	if model == "" {
		model = req.Name
	}
	switch r.URL.Path {
	case "/api/show":
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		switch model {
		case "toy:latest":
			fmt.Fprintf(w, `{"license":"MIT","modelfile":"FROM toy","parameters":"","template":"{{ .Prompt }}","details":{"parent_model":"","format":"gguf","family":"llama","families":["llama"],"parameter_size":"260K","quantization_level":"F32"},"model_info":{"general.architecture":"llama","general.file_type":0,"general.parameter_count":260000,"llama.context_length":%d,"llama.embedding_length":64,"llama.vocab_size":512,"tokenizer.ggml.model":"llama"},"capabilities":["completion"],"modified_at":"2025-05-01T10:00:00Z"}`, s.toy.Info().ContextLength)
		case "qwen2.5:0.5b":
			fmt.Fprint(w, `{"modelfile":"FROM qwen","parameters":"stop \"<|im_end|>\"","template":"{{- if .System }}...","details":{"parent_model":"","format":"gguf","family":"qwen2","families":["qwen2"],"parameter_size":"494.03M","quantization_level":"Q4_K_M"},"model_info":{"general.architecture":"qwen2","qwen2.context_length":32768,"qwen2.embedding_length":896},"capabilities":["completion","tools"]}`)
		default:
			jsonError(w, 404, fmt.Sprintf("model '%s' not found", model))
		}
		return
	case "/api/generate", "/api/chat":
	default:
		jsonError(w, 404, "404 page not found")
		return
	}
	if model != "toy:latest" {
		jsonError(w, 404, fmt.Sprintf("model '%s' not found, try pulling it first", model))
		return
	}
	if req.Stream != nil && !*req.Stream {
		jsonError(w, 400, "this double only streams")
		return
	}
	chatMode := r.URL.Path == "/api/chat"
	prompt := req.Prompt
	if chatMode {
		msgs, prefill := req.Messages, ""
		if n := len(msgs); n > 0 && msgs[n-1].Role == "assistant" {
			prefill, msgs = msgs[n-1].Content, msgs[:n-1]
		}
		p, err := chat.Render("", msgs, chat.Options{AddGenerationPrompt: true})
		if err != nil {
			jsonError(w, 400, err.Error())
			return
		}
		prompt = p + prefill
	} else if !req.Raw {
		jsonError(w, 400, "the double only serves raw prompts")
		return
	}
	if req.Options.Temperature == nil {
		jsonError(w, 400, "the double wants an explicit temperature")
		return
	}
	window := s.toy.Info().ContextLength
	if req.Options.NumCtx > 0 && req.Options.NumCtx < window {
		window = req.Options.NumCtx
	}
	if n := s.toy.CountTokens(prompt); n >= window && req.Truncate != nil && !*req.Truncate {
		jsonError(w, 400, fmt.Sprintf("input length (%d tokens) exceeds the context length (%d tokens)", n, window))
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	fl := w.(http.Flusher)
	send := func(v map[string]any) error {
		v["model"] = model
		v["created_at"] = time.Now().UTC().Format(time.RFC3339Nano)
		b, _ := json.Marshal(v)
		if _, err := w.Write(append(b, '\n')); err != nil {
			return err
		}
		fl.Flush()
		return nil
	}
	piece := func(text string) map[string]any {
		if chatMode {
			return map[string]any{"message": map[string]any{"role": "assistant", "content": text}, "done": false}
		}
		return map[string]any{"response": text, "done": false}
	}
	ereq := engine.Request{
		Prompt: prompt, MaxTokens: req.Options.NumPredict, Stop: req.Options.Stop,
		Sampling: engine.Sampling{Temperature: *req.Options.Temperature, TopP: req.Options.TopP, Seed: req.Options.Seed},
	}
	res, err := s.toy.Generate(r.Context(), ereq, func(t engine.Token) error { return send(piece(t.Text)) })
	select {
	case s.finished <- err:
	default: // nobody is watching (benchmarks): do not block the handler
	}
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			send(map[string]any{"error": err.Error()})
		}
		return
	}
	final := piece("")
	final["done"] = true
	final["done_reason"] = res.FinishReason
	final["total_duration"] = int64(res.Usage.PromptEval + res.Usage.Generation)
	final["load_duration"] = 1000
	final["prompt_eval_count"] = res.Usage.PromptTokens
	final["prompt_eval_duration"] = int64(res.Usage.PromptEval) + 1
	final["eval_count"] = res.Usage.CompletionTokens
	final["eval_duration"] = int64(res.Usage.Generation) + 1
	if !chatMode {
		final["context"] = []int{1, 2, 3}
	}
	send(final)
}
