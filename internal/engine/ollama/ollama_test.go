package ollama_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/peerllm/peerllm/internal/engine"
	"github.com/peerllm/peerllm/internal/engine/enginetest"
	"github.com/peerllm/peerllm/internal/engine/ollama"
)

const ctxLen = 256

func startDouble(t *testing.T, ctx int) (*ollamaServer, *httptest.Server) {
	t.Helper()
	d := newOllamaServer(ctx)
	srv := httptest.NewServer(d)
	t.Cleanup(srv.Close)
	return d, srv
}

func TestConformance(t *testing.T) {
	_, srv := startDouble(t, ctxLen)
	enginetest.Run(t, func(t *testing.T) engine.Engine {
		e, err := ollama.Connect(context.Background(), ollama.Config{BaseURL: srv.URL, Model: "toy:latest"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		return e
	}, enginetest.Options{Greedy: true, Seeded: true, Messages: true})
}

func TestConnectAndDiscover(t *testing.T) {
	_, srv := startDouble(t, ctxLen)
	e, err := ollama.Connect(context.Background(), ollama.Config{BaseURL: srv.URL + "/", Model: "toy:latest"})
	if err != nil {
		t.Fatal(err)
	}
	want := engine.Info{Model: "toy:latest", Architecture: "llama", ContextLength: ctxLen, Quantization: "F32", Parameters: 260000, VocabSize: 512}
	if got := e.Info(); got != want {
		t.Errorf("Connect Info = %+v, want %+v", got, want)
	}
	if _, err := ollama.Connect(context.Background(), ollama.Config{BaseURL: srv.URL, Model: "missing:1b"}); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("Connect to a missing model: err = %v", err)
	}
	infos, err := ollama.Discover(context.Background(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	wantAll := []engine.Info{
		want,
		// qwen2.5 has no parameter_count in model_info: parsed from "494.03M";
		// its 32768-token trained context is reported as is.
		{Model: "qwen2.5:0.5b", Architecture: "qwen2", ContextLength: 32768, Quantization: "Q4_K_M", Parameters: 494030000},
	}
	if len(infos) != len(wantAll) {
		t.Fatalf("Discover = %+v", infos)
	}
	for i := range wantAll {
		if infos[i] != wantAll[i] {
			t.Errorf("Discover[%d] = %+v, want %+v", i, infos[i], wantAll[i])
		}
	}
	// Connect caps an unconfigured window at the default rather than the
	// trained 32768 (Ollama would otherwise allocate the whole KV cache).
	q, err := ollama.Connect(context.Background(), ollama.Config{BaseURL: srv.URL, Model: "qwen2.5:0.5b"})
	if err != nil {
		t.Fatal(err)
	}
	if q.Info().ContextLength != ollama.DefaultContextLength {
		t.Errorf("qwen context = %d, want %d", q.Info().ContextLength, ollama.DefaultContextLength)
	}
}

func TestRequestMapping(t *testing.T) {
	d, srv := startDouble(t, ctxLen)
	e, err := ollama.New(ollama.Config{BaseURL: srv.URL, Model: "toy:latest", ContextLength: 200, KeepAlive: "5m"})
	if err != nil {
		t.Fatal(err)
	}
	gen := func(req engine.Request) map[string]any {
		t.Helper()
		if _, err := e.Generate(context.Background(), req, func(engine.Token) error { return nil }); err != nil {
			t.Fatal(err)
		}
		return d.lastBody()
	}
	body := gen(engine.Request{
		Prompt: "Once upon", ContinueText: " a time", MaxTokens: 5, Stop: []string{"."},
		Sampling: engine.Sampling{Temperature: 0.5, TopK: 40, TopP: 0.75, MinP: 0.25, RepeatPenalty: 1.5, RepeatLastN: 32, Seed: 9},
	})
	for key, want := range map[string]any{
		"model": "toy:latest", "prompt": "Once upon a time", "raw": true, "stream": true, "truncate": false, "keep_alive": "5m",
	} {
		if body[key] != want {
			t.Errorf("%s = %v, want %v", key, body[key], want)
		}
	}
	opts, _ := body["options"].(map[string]any)
	for key, want := range map[string]any{
		"temperature": 0.5, "top_k": 40.0, "top_p": 0.75, "min_p": 0.25, "seed": 9.0,
		"repeat_penalty": 1.5, "repeat_last_n": 32.0, "num_predict": 5.0, "num_ctx": 200.0,
	} {
		if opts[key] != want {
			t.Errorf("options.%s = %v, want %v", key, opts[key], want)
		}
	}
	if stop, _ := opts["stop"].([]any); len(stop) != 1 || stop[0] != "." {
		t.Errorf("options.stop = %v", opts["stop"])
	}
	greedy, _ := gen(engine.Request{Prompt: "Once upon a time", MaxTokens: 2})["options"].(map[string]any)
	if greedy["temperature"] != 0.0 {
		t.Errorf("greedy temperature = %v, want an explicit 0", greedy["temperature"])
	}
	if _, ok := greedy["seed"]; ok {
		t.Error("greedy request sends a seed")
	}
	chatBody := gen(engine.Request{Messages: []engine.Message{{Role: "user", Content: "Tell a story"}}, ContinueText: " the cat", MaxTokens: 2})
	msgs, _ := chatBody["messages"].([]any)
	if last, _ := msgs[len(msgs)-1].(map[string]any); len(msgs) != 2 || last["role"] != "assistant" || last["content"] != " the cat" {
		t.Errorf("chat continuation messages = %v", msgs)
	}
}

func TestCancelClosesConnection(t *testing.T) {
	d, srv := startDouble(t, 1<<30)
	e, err := ollama.New(ollama.Config{BaseURL: srv.URL, Model: "toy:latest", ContextLength: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	_, err = e.Generate(ctx, engine.Request{Prompt: "Once upon a time"}, func(engine.Token) error {
		if n++; n == 5 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	select {
	case herr := <-d.finished:
		if !errors.Is(herr, context.Canceled) {
			t.Errorf("server handler ended with %v, want its request context cancelled", herr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server kept streaming: the client did not close the connection")
	}
}

func TestServerErrors(t *testing.T) {
	for _, tc := range []struct {
		name, model string
		status      int
		body        string
		want        error
		text        string
		tokens      int
	}{
		{name: "model not found", model: "nope", text: "model 'nope' not found"},
		{name: "stream error", status: 200, body: "{\"model\":\"m\",\"response\":\"a\",\"done\":false}\n{\"error\":\"llama runner process has terminated\"}\n", text: "runner process has terminated", tokens: 1},
		{name: "ends before done", status: 200, body: "{\"model\":\"m\",\"response\":\"a\",\"done\":false}\n", text: "before done", tokens: 1},
		{name: "bad request", status: 400, body: `{"error":"invalid options: num_predict"}`, want: engine.ErrBadRequest, text: "invalid options"},
		{name: "context", status: 400, body: `{"error":"input length exceeds the context length"}`, want: engine.ErrContextLength, text: "context length"},
		{name: "unavailable", status: 503, body: `{"error":"server busy, please try again.  maximum pending requests exceeded"}`, text: "HTTP 503: server busy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := ""
			if tc.status == 0 {
				_, srv := startDouble(t, ctxLen)
				url = srv.URL
			} else {
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.WriteHeader(tc.status)
					w.Write([]byte(tc.body))
				}))
				t.Cleanup(srv.Close)
				url = srv.URL
			}
			model := tc.model
			if model == "" {
				model = "m"
			}
			e, err := ollama.New(ollama.Config{BaseURL: url, Model: model})
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			_, err = e.Generate(context.Background(), engine.Request{Prompt: "hi"}, func(engine.Token) error { n++; return nil })
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("err = %v, want %v containing %q", err, tc.want, tc.text)
			}
			if n != tc.tokens {
				t.Errorf("%d tokens emitted, want %d", n, tc.tokens)
			}
		})
	}
}

func TestUsageFromFinalLine(t *testing.T) {
	_, srv := startDouble(t, ctxLen)
	e, err := ollama.New(ollama.Config{BaseURL: srv.URL, Model: "toy:latest", ContextLength: ctxLen})
	if err != nil {
		t.Fatal(err)
	}
	var toks []engine.Token
	res, err := e.Generate(context.Background(), engine.Request{Prompt: "Once upon a time", MaxTokens: 6, Continue: []int{-1, -1}, ContinueText: " the cat"},
		func(tok engine.Token) error { toks = append(toks, tok); return nil })
	if err != nil {
		t.Fatal(err)
	}
	// The toy counts BOS plus one token a word: "Once upon a time the cat".
	if res.Usage.PromptTokens != 7 || res.Usage.CompletionTokens != 6 || res.FinishReason != "length" {
		t.Errorf("result = %+v", res)
	}
	if len(toks) != 6 || toks[0].Index != 2 || toks[0].ID != -1 {
		t.Errorf("tokens = %+v", toks)
	}
}

// BenchmarkGenerate measures the engine's own per-token cost: the server
// replays a 256-token stream recorded once from the double, over loopback.
func BenchmarkGenerate(b *testing.B) {
	rec := httptest.NewRecorder()
	newOllamaServer(1<<20).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/generate", strings.NewReader(`{"model":"toy:latest","prompt":"Once upon a time","raw":true,"stream":true,"options":{"temperature":0,"num_predict":256}}`)))
	stream, ctype := rec.Body.Bytes(), rec.Header().Get("Content-Type")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", ctype)
		w.Write(stream)
	}))
	defer srv.Close()
	e, err := ollama.New(ollama.Config{BaseURL: srv.URL, Model: "toy:latest", ContextLength: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	const n = 256
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		res, err := e.Generate(context.Background(), engine.Request{Prompt: "Once upon a time", MaxTokens: n}, func(engine.Token) error { return nil })
		if err != nil || res.Usage.CompletionTokens != n {
			b.Fatal(err, res)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "tokens/s")
}
