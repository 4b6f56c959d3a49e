package openai_test

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
	"github.com/peerllm/peerllm/internal/engine/openai"
)

const ctxLen = 256

func startDouble(t *testing.T) (*llamaServer, *httptest.Server) {
	t.Helper()
	d := newLlamaServer(ctxLen)
	srv := httptest.NewServer(d)
	t.Cleanup(srv.Close)
	return d, srv
}

func newEngine(t *testing.T, cfg openai.Config) *openai.Engine {
	t.Helper()
	e, err := openai.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name    string
		useChat bool
		suffix  string
	}{
		{"completions", false, ""},
		{"chat", true, "/v1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, srv := startDouble(t)
			enginetest.Run(t, func(t *testing.T) engine.Engine {
				return newEngine(t, openai.Config{BaseURL: srv.URL + tc.suffix, Model: "toy", ContextLength: ctxLen, UseChat: tc.useChat})
			}, enginetest.Options{Greedy: true, Seeded: true, Messages: true})
		})
	}
}

func TestRequestMapping(t *testing.T) {
	d, srv := startDouble(t)
	e := newEngine(t, openai.Config{BaseURL: srv.URL, Model: "qwen", APIKey: "sk-test", ContextLength: ctxLen})
	gen := func(req engine.Request) map[string]any {
		t.Helper()
		if _, err := e.Generate(context.Background(), req, func(engine.Token) error { return nil }); err != nil {
			t.Fatal(err)
		}
		return d.lastBody()
	}
	sampled := gen(engine.Request{
		Prompt: "Once upon", ContinueText: " a time", MaxTokens: 5, Stop: []string{"."},
		Sampling: engine.Sampling{Temperature: 0.5, TopK: 40, TopP: 0.75, MinP: 0.25, RepeatPenalty: 1.5, RepeatLastN: 32, Seed: 9},
	})
	for key, want := range map[string]any{
		"model": "qwen", "prompt": "Once upon a time", "stream": true, "max_tokens": 5.0,
		"temperature": 0.5, "top_k": 40.0, "top_p": 0.75, "min_p": 0.25, "seed": 9.0,
		"repeat_penalty": 1.5, "repetition_penalty": 1.5, "repeat_last_n": 32.0,
	} {
		if got := sampled[key]; got != want {
			t.Errorf("sampled request %s = %v (%T), want %v", key, got, got, want)
		}
	}
	if stop, _ := sampled["stop"].([]any); len(stop) != 1 || stop[0] != "." {
		t.Errorf("stop = %v", sampled["stop"])
	}
	if so, _ := sampled["stream_options"].(map[string]any); so["include_usage"] != true {
		t.Errorf("stream_options = %v, want include_usage", sampled["stream_options"])
	}
	greedy := gen(engine.Request{Prompt: "Once upon a time", MaxTokens: 2})
	if greedy["temperature"] != 0.0 {
		t.Errorf("greedy temperature = %v, want an explicit 0", greedy["temperature"])
	}
	for _, key := range []string{"seed", "top_k", "top_p", "min_p", "repeat_penalty"} {
		if _, ok := greedy[key]; ok {
			t.Errorf("greedy request sends %s", key)
		}
	}
	if h := d.headers[len(d.headers)-1].Get("Authorization"); h != "Bearer sk-test" {
		t.Errorf("Authorization = %q", h)
	}
}

func TestChatContinuationPrefill(t *testing.T) {
	d, srv := startDouble(t)
	e := newEngine(t, openai.Config{BaseURL: srv.URL, Model: "toy", ContextLength: ctxLen, UseChat: true})
	_, err := e.Generate(context.Background(), engine.Request{
		Messages:     []engine.Message{{Role: "user", Content: "Tell a story"}},
		Continue:     []int{-1, -1},
		ContinueText: " the cat",
		MaxTokens:    3,
	}, func(engine.Token) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	body := d.lastBody()
	msgs, _ := body["messages"].([]any)
	last, _ := msgs[len(msgs)-1].(map[string]any)
	if len(msgs) != 2 || last["role"] != "assistant" || last["content"] != " the cat" {
		t.Errorf("messages = %v, want the user turn then the assistant prefix", msgs)
	}
	if body["continue_final_message"] != true || body["add_generation_prompt"] != false {
		t.Errorf("continue_final_message/add_generation_prompt = %v/%v", body["continue_final_message"], body["add_generation_prompt"])
	}
}

func TestCancelClosesConnection(t *testing.T) {
	d := newLlamaServer(1 << 30) // never runs out of context: only a disconnect stops it
	srv := httptest.NewServer(d)
	t.Cleanup(srv.Close)
	e := newEngine(t, openai.Config{BaseURL: srv.URL, Model: "toy", ContextLength: 1 << 30})
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	_, err := e.Generate(ctx, engine.Request{Prompt: "Once upon a time"}, func(engine.Token) error {
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
		name   string
		status int
		body   string
		want   error
		text   string
	}{
		{"llama.cpp context", 400, `{"error":{"code":400,"message":"request (600 tokens) exceeds the available context size (512 tokens), try increasing it","type":"exceed_context_size_error"}}`, engine.ErrContextLength, "exceeds the available context size"},
		{"openai context", 400, `{"error":{"message":"This model's maximum context length is 4097 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}`, engine.ErrContextLength, "maximum context length"},
		{"vllm bad request", 400, `{"object":"error","message":"top_k must be -1 or at least 1","type":"BadRequestError","code":400,"error":"top_k must be -1 or at least 1"}`, engine.ErrBadRequest, "top_k"},
		{"unauthorized", 401, `{"error":{"code":401,"message":"Invalid API Key","type":"authentication_error"}}`, nil, "HTTP 401: Invalid API Key"},
		{"plain 503", 503, `Loading model`, nil, "HTTP 503: Loading model"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.status)
				w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			e := newEngine(t, openai.Config{BaseURL: srv.URL, Model: "m"})
			_, err := e.Generate(context.Background(), engine.Request{Prompt: "hi"}, func(engine.Token) error {
				t.Error("token emitted on an error response")
				return nil
			})
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("err = %v, want %v containing %q", err, tc.want, tc.text)
			}
		})
	}
}

func TestStreamProblems(t *testing.T) {
	for _, tc := range []struct {
		name, stream, want string
		tokens             int
	}{
		{"error event mid-stream", "data: {\"choices\":[{\"text\":\"a\",\"finish_reason\":null}]}\n\nerror: {\"code\":500,\"message\":\"slot crashed\",\"type\":\"server_error\"}\n\n", "slot crashed", 1},
		{"error object mid-stream", "data: {\"choices\":[{\"text\":\"a\",\"finish_reason\":null}]}\n\ndata: {\"error\":{\"message\":\"out of memory\"}}\n\n", "out of memory", 1},
		{"cut before finish", "data: {\"choices\":[{\"text\":\"a\",\"finish_reason\":null}]}\n\n", "without [DONE]", 1},
		{"garbage", "data: {not json\n\n", "bad stream event", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				w.Write([]byte(tc.stream))
			}))
			defer srv.Close()
			e := newEngine(t, openai.Config{BaseURL: srv.URL, Model: "m"})
			n := 0
			_, err := e.Generate(context.Background(), engine.Request{Prompt: "hi"}, func(engine.Token) error { n++; return nil })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
			if n != tc.tokens {
				t.Errorf("%d tokens emitted, want %d", n, tc.tokens)
			}
		})
	}
}

func TestFinishReasonsAndUsage(t *testing.T) {
	for _, tc := range []struct{ server, want string }{
		{"stop", "stop"}, {"length", "length"}, {"eos", "stop"}, {"content_filter", "stop"},
	} {
		t.Run(tc.server, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				w.Write([]byte(": keep-alive comment\n\n" +
					"data: {\"choices\":[{\"text\":\"Hel\",\"finish_reason\":null}]}\n\n" +
					"data: {\"choices\":[{\"text\":\"lo\",\"finish_reason\":null}]}\n\n" +
					"data: {\"choices\":[{\"text\":\"\",\"finish_reason\":\"" + tc.server + "\"}]}\n\n" +
					"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":2,\"total_tokens\":9,\"prompt_tokens_details\":{\"cached_tokens\":4}}}\n\n" +
					"data: [DONE]\n\n"))
			}))
			defer srv.Close()
			e := newEngine(t, openai.Config{BaseURL: srv.URL, Model: "m"})
			var toks []engine.Token
			res, err := e.Generate(context.Background(), engine.Request{Prompt: "hi", Continue: []int{5, 6, 7}}, func(tok engine.Token) error {
				toks = append(toks, tok)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.FinishReason != tc.want {
				t.Errorf("finish = %q, want %q", res.FinishReason, tc.want)
			}
			if len(toks) != 2 || toks[0].Text != "Hel" || toks[0].Index != 3 || toks[1].Index != 4 || toks[0].ID != -1 {
				t.Errorf("tokens = %+v", toks)
			}
			u := res.Usage
			if u.PromptTokens != 7 || u.CompletionTokens != 2 || u.CachedTokens != 4 {
				t.Errorf("usage = %+v", u)
			}
		})
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := openai.New(openai.Config{}); err == nil {
		t.Error("New accepted an empty base URL")
	}
	e := newEngine(t, openai.Config{BaseURL: "http://127.0.0.1:1", Model: "m"})
	if info := e.Info(); info.Model != "m" || info.ContextLength != 4096 {
		t.Errorf("Info = %+v", info)
	}
}

// BenchmarkGenerate measures the engine's own per-token cost: the server
// replays a 256-token stream recorded once from the double, over loopback.
func BenchmarkGenerate(b *testing.B) {
	rec := httptest.NewRecorder()
	newLlamaServer(1<<20).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/completions", strings.NewReader(`{"model":"toy","prompt":"Once upon a time","stream":true,"stream_options":{"include_usage":true},"max_tokens":256,"temperature":0}`)))
	stream, ctype := rec.Body.Bytes(), rec.Header().Get("Content-Type")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", ctype)
		w.Write(stream)
	}))
	defer srv.Close()
	e, err := openai.New(openai.Config{BaseURL: srv.URL, Model: "toy", ContextLength: 1 << 20})
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

func TestDiscoverAndConnect(t *testing.T) {
	_, srv := startDouble(t)
	infos, err := openai.Discover(context.Background(), openai.Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	// The trained context (512) is narrowed to the running one from /props.
	want := engine.Info{Model: "toy.gguf", Architecture: "remote", ContextLength: ctxLen, Parameters: 260000, VocabSize: 32}
	if len(infos) != 1 || infos[0] != want {
		t.Fatalf("Discover = %+v, want [%+v]", infos, want)
	}
	e, err := openai.Connect(context.Background(), openai.Config{BaseURL: srv.URL + "/v1"})
	if err != nil {
		t.Fatal(err)
	}
	if e.Info() != want {
		t.Errorf("Connect Info = %+v, want %+v", e.Info(), want)
	}
	if _, err := openai.Connect(context.Background(), openai.Config{BaseURL: srv.URL, Model: "other"}); err == nil {
		t.Error("Connect accepted a model the server does not serve")
	}

	// vLLM: max_model_len in the list, no /props.
	vllm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/models" || r.Header.Get("Authorization") != "Bearer k" {
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"object":"error","message":"Not Found","type":"NotFoundError","code":404}`))
			return
		}
		w.Write([]byte(`{"object":"list","data":[{"id":"Qwen/Qwen2.5-0.5B-Instruct","object":"model","created":1700000000,"owned_by":"vllm","root":"Qwen/Qwen2.5-0.5B-Instruct","parent":null,"max_model_len":32768,"permission":[]}]}`))
	}))
	defer vllm.Close()
	v, err := openai.Connect(context.Background(), openai.Config{BaseURL: vllm.URL, APIKey: "k", Model: "Qwen/Qwen2.5-0.5B-Instruct"})
	if err != nil {
		t.Fatal(err)
	}
	if info := v.Info(); info.ContextLength != 32768 || info.Model != "Qwen/Qwen2.5-0.5B-Instruct" {
		t.Errorf("vLLM Info = %+v", info)
	}
	if _, err := openai.Discover(context.Background(), openai.Config{BaseURL: vllm.URL}); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("Discover without the API key: err = %v, want the 404", err)
	}
}
