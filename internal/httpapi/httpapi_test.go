package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/peerllm/peerllm/internal/auth"
	"github.com/peerllm/peerllm/internal/httpapi"
	"github.com/peerllm/peerllm/internal/pipeline"
	"github.com/peerllm/peerllm/internal/store"
)

// fakeBackend is a double for the dispatcher (which needs live hosts): it
// answers with fixed pieces of text so the wire format can be checked byte
// for byte. The end-to-end tests in internal/e2e run the real one.
type fakeBackend struct {
	models   []httpapi.Model
	generate func(ctx context.Context, req httpapi.GenRequest, emit func(httpapi.Delta) error) (httpapi.GenOutcome, error)
	calls    atomic.Int32
	last     atomic.Value // httpapi.GenRequest
}

func (f *fakeBackend) Models() []httpapi.Model { return f.models }

func (f *fakeBackend) Generate(ctx context.Context, req httpapi.GenRequest, emit func(httpapi.Delta) error) (httpapi.GenOutcome, error) {
	f.calls.Add(1)
	f.last.Store(req)
	return f.generate(ctx, req, emit)
}

func pieces(ps ...string) func(ctx context.Context, req httpapi.GenRequest, emit func(httpapi.Delta) error) (httpapi.GenOutcome, error) {
	return func(ctx context.Context, req httpapi.GenRequest, emit func(httpapi.Delta) error) (httpapi.GenOutcome, error) {
		for i, p := range ps {
			if err := emit(httpapi.Delta{Text: p, Tokens: 1}); err != nil {
				return httpapi.GenOutcome{PromptTokens: 3, CompletionTokens: i + 1}, err
			}
		}
		return httpapi.GenOutcome{FinishReason: "length", PromptTokens: 3, CompletionTokens: len(ps), HostTokens: map[string]int{"h1": len(ps)}}, nil
	}
}

type env struct {
	srv     *httptest.Server
	backend *fakeBackend
	key     string
	keys    *auth.Keys
	admin   string
}

func newEnv(t *testing.T, stages ...pipeline.Stage) *env { return newEnvB(t, stages...) }

func newEnvB(t testing.TB, stages ...pipeline.Stage) *env {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	keys, err := auth.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	_, secret, err := keys.Create(ctx, "test", "", "")
	if err != nil {
		t.Fatal(err)
	}
	adminTok := "admin-token-for-tests-0123456789"
	at, _, err := keys.SetupAdmin(ctx, adminTok)
	if err != nil {
		t.Fatal(err)
	}
	fb := &fakeBackend{models: []httpapi.Model{{Name: "tiny", Hosts: 2, ContextLength: 512}}, generate: pieces("Once", " upon", " a", " time")}
	s := httpapi.New(httpapi.Config{Backend: fb, Keys: keys, Chain: &pipeline.Chain{Stages: stages},
		Admin: &httpapi.Admin{Token: at, Keys: keys, HostURL: "nats://x"}, MaxBodyBytes: 4096})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return &env{srv: srv, backend: fb, key: secret, keys: keys, admin: adminTok}
}

func (e *env) post(t *testing.T, path, key, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", e.srv.URL+path, strings.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func decode[T any](t *testing.T, resp *http.Response) T {
	t.Helper()
	var v T
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return v
}

type apiErr struct {
	Error struct {
		Message string `json:"message"`
		Type    string `json:"type"`
		Param   any    `json:"param"`
		Code    any    `json:"code"`
	} `json:"error"`
}

// events reads an SSE body into its data payloads.
func events(t *testing.T, resp *http.Response) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if d, ok := strings.CutPrefix(line, "data: "); ok {
			out = append(out, d)
		} else if line != "" {
			t.Fatalf("unexpected SSE line %q", line)
		}
	}
	return out
}

func TestNonStreaming(t *testing.T) {
	e := newEnv(t)
	t.Run("chat", func(t *testing.T) {
		resp := e.post(t, "/v1/chat/completions", e.key, `{"model":"tiny","messages":[{"role":"user","content":"hi"}],"temperature":0,"user":"alice@example.com"}`)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		v := decode[map[string]any](t, resp)
		if v["object"] != "chat.completion" || !strings.HasPrefix(v["id"].(string), "chatcmpl-") {
			t.Fatalf("envelope %v", v)
		}
		c := v["choices"].([]any)[0].(map[string]any)
		msg := c["message"].(map[string]any)
		if msg["content"] != "Once upon a time" || msg["role"] != "assistant" || c["finish_reason"] != "length" {
			t.Fatalf("choice %v", c)
		}
		u := v["usage"].(map[string]any)
		if u["prompt_tokens"] != 3.0 || u["completion_tokens"] != 4.0 || u["total_tokens"] != 7.0 {
			t.Fatalf("usage %v", u)
		}
		req := e.backend.last.Load().(httpapi.GenRequest)
		b, _ := json.Marshal(req)
		if strings.Contains(string(b), "alice") || strings.Contains(string(b), e.key) {
			t.Fatalf("consumer identity reached the backend: %s", b)
		}
	})
	t.Run("completions n=2", func(t *testing.T) {
		resp := e.post(t, "/v1/completions", e.key, `{"model":"tiny","prompt":"Once","n":2,"max_tokens":4,"seed":7}`)
		v := decode[map[string]any](t, resp)
		if v["object"] != "text_completion" {
			t.Fatalf("object %v", v["object"])
		}
		cs := v["choices"].([]any)
		if len(cs) != 2 || cs[1].(map[string]any)["index"] != 1.0 || cs[0].(map[string]any)["text"] != "Once upon a time" {
			t.Fatalf("choices %v", cs)
		}
		if u := v["usage"].(map[string]any); u["completion_tokens"] != 8.0 || u["prompt_tokens"] != 3.0 {
			t.Fatalf("usage %v", u)
		}
	})
}

func TestStreaming(t *testing.T) {
	e := newEnv(t)
	resp := e.post(t, "/v1/chat/completions", e.key, `{"model":"tiny","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}`)
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	evs := events(t, resp)
	if evs[len(evs)-1] != "[DONE]" {
		t.Fatalf("last event %q", evs[len(evs)-1])
	}
	var text strings.Builder
	for i, ev := range evs[:len(evs)-1] {
		var c struct {
			Object  string `json:"object"`
			Choices []struct {
				Delta struct {
					Role    string  `json:"role"`
					Content *string `json:"content"`
				} `json:"delta"`
				FinishReason *string `json:"finish_reason"`
			} `json:"choices"`
			Usage *struct {
				CompletionTokens int `json:"completion_tokens"`
			} `json:"usage"`
		}
		if err := json.Unmarshal([]byte(ev), &c); err != nil {
			t.Fatal(err)
		}
		if c.Object != "chat.completion.chunk" || !strings.Contains(ev, `"usage":`) {
			t.Fatalf("event %d: %s", i, ev)
		}
		switch {
		case i == 0:
			if c.Choices[0].Delta.Role != "assistant" {
				t.Fatalf("first event has no role: %s", ev)
			}
		case i == len(evs)-2:
			if len(c.Choices) != 0 || c.Usage == nil || c.Usage.CompletionTokens != 4 {
				t.Fatalf("usage event %s", ev)
			}
		case i == len(evs)-3:
			if *c.Choices[0].FinishReason != "length" {
				t.Fatalf("finish event %s", ev)
			}
		default:
			text.WriteString(*c.Choices[0].Delta.Content)
			if c.Usage != nil {
				t.Fatalf("usage before the end: %s", ev)
			}
		}
	}
	if text.String() != "Once upon a time" {
		t.Fatalf("text %q", text.String())
	}
}

func TestMidStreamError(t *testing.T) {
	e := newEnv(t)
	e.backend.generate = func(ctx context.Context, req httpapi.GenRequest, emit func(httpapi.Delta) error) (httpapi.GenOutcome, error) {
		emit(httpapi.Delta{Text: "Once", Tokens: 1})
		return httpapi.GenOutcome{}, errors.New("every host died")
	}
	resp := e.post(t, "/v1/completions", e.key, `{"model":"tiny","prompt":"x","stream":true}`)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	evs := events(t, resp)
	last := evs[len(evs)-1]
	if !strings.Contains(last, `"error"`) || strings.Contains(last, "every host died") {
		t.Fatalf("last event %q", last)
	}
	for _, ev := range evs {
		if ev == "[DONE]" {
			t.Fatal("a cut stream ended with [DONE]")
		}
	}
}

func TestBadInput(t *testing.T) {
	e := newEnv(t)
	revokedKey := func() string {
		k, s, err := e.keys.Create(context.Background(), "old", "", "")
		if err != nil {
			t.Fatal(err)
		}
		if err := e.keys.Revoke(context.Background(), k.ID); err != nil {
			t.Fatal(err)
		}
		return s
	}()
	chat := func(extra string) string {
		return `{"model":"tiny","messages":[{"role":"user","content":"hi"}]` + extra + `}`
	}
	cases := []struct {
		name, path, key, body string
		status                int
		code, param           string
		backendErr            error
		msg                   string // in the message, if set
	}{
		{name: "no key", path: "/v1/chat/completions", body: chat(""), status: 401, code: "invalid_api_key"},
		{name: "wrong key", path: "/v1/chat/completions", key: "pk-nope", body: chat(""), status: 401, code: "invalid_api_key"},
		{name: "revoked key", path: "/v1/chat/completions", key: revokedKey, body: chat(""), status: 401, code: "invalid_api_key"},
		{name: "malformed json", path: "/v1/chat/completions", body: `{"model":`, status: 400},
		{name: "not an object", path: "/v1/chat/completions", body: `[1,2]`, status: 400},
		{name: "wrong type", path: "/v1/chat/completions", body: chat(`,"n":"two"`), status: 400, param: "n"},
		{name: "wrong type temperature", path: "/v1/chat/completions", body: chat(`,"temperature":"hot"`), status: 400, param: "temperature"},
		{name: "missing model", path: "/v1/chat/completions", body: `{"messages":[{"role":"user","content":"hi"}]}`, status: 400, param: "model"},
		{name: "missing messages", path: "/v1/chat/completions", body: `{"model":"tiny"}`, status: 400, param: "messages"},
		{name: "bad role", path: "/v1/chat/completions", body: `{"model":"tiny","messages":[{"role":"wizard","content":"hi"}]}`, status: 400, param: "messages[0].role"},
		{name: "unknown model", path: "/v1/chat/completions", body: `{"model":"gpt-9","messages":[{"role":"user","content":"hi"}]}`, status: 404, code: "model_not_found", param: "model"},
		{name: "n too big", path: "/v1/chat/completions", body: chat(`,"n":99`), status: 400, param: "n"},
		{name: "temperature out of range", path: "/v1/chat/completions", body: chat(`,"temperature":3`), status: 400, param: "temperature"},
		{name: "top_p out of range", path: "/v1/chat/completions", body: chat(`,"top_p":1.5`), status: 400, param: "top_p"},
		{name: "max_tokens zero", path: "/v1/chat/completions", body: chat(`,"max_tokens":0`), status: 400, param: "max_tokens"},
		{name: "max_completion_tokens negative", path: "/v1/chat/completions", body: chat(`,"max_completion_tokens":-5`), status: 400, param: "max_completion_tokens"},
		{name: "max_tokens over the context", path: "/v1/chat/completions", body: chat(`,"max_tokens":512`), status: 400, code: "context_length_exceeded", param: "max_tokens"},
		{name: "max_completion_tokens over the context", path: "/v1/completions", body: `{"model":"tiny","prompt":"x","max_completion_tokens":4096}`, status: 400, code: "context_length_exceeded", param: "max_completion_tokens"},
		{name: "seed over int64", path: "/v1/chat/completions", body: chat(`,"seed":9223372036854775808`), status: 400, param: "seed", msg: "out of range"},
		{name: "n over int", path: "/v1/chat/completions", body: chat(`,"n":99999999999999999999`), status: 400, param: "n", msg: "out of range"},
		{name: "n fractional", path: "/v1/chat/completions", body: chat(`,"n":1.5`), status: 400, param: "n", msg: "expected an integer"},
		{name: "too many stops", path: "/v1/chat/completions", body: chat(`,"stop":["a","b","c","d","e"]`), status: 400, param: "stop"},
		{name: "stop wrong type", path: "/v1/chat/completions", body: chat(`,"stop":5`), status: 400, param: "stop"},
		{name: "stream_options without stream", path: "/v1/chat/completions", body: chat(`,"stream_options":{"include_usage":true}`), status: 400, param: "stream_options"},
		{name: "bad redundancy", path: "/v1/chat/completions", body: chat(`,"redundancy":"triple"`), status: 400, param: "redundancy"},
		{name: "body too large", path: "/v1/completions", body: `{"model":"tiny","prompt":"` + strings.Repeat("a", 5000) + `"}`, status: 413},
		{name: "invalid utf-8", path: "/v1/completions", body: "{\"model\":\"tiny\",\"prompt\":\"\xff\xfe\"}", status: 400, code: "invalid_encoding"},
		{name: "empty prompt", path: "/v1/completions", body: `{"model":"tiny","prompt":""}`, status: 400, param: "prompt"},
		{name: "empty prompt in array", path: "/v1/completions", body: `{"model":"tiny","prompt":[""]}`, status: 400, param: "prompt"},
		{name: "prompt wrong type", path: "/v1/completions", body: `{"model":"tiny","prompt":{"a":1}}`, status: 400, param: "prompt"},
		{name: "context length", path: "/v1/completions", body: `{"model":"tiny","prompt":"long"}`, status: 400, code: "context_length_exceeded", param: "prompt", backendErr: httpapi.ErrContextLength},
		{name: "no host", path: "/v1/completions", body: `{"model":"tiny","prompt":"x","stream":true}`, status: 503, code: "no_host_available", backendErr: httpapi.ErrNoHost},
		{name: "overloaded", path: "/v1/completions", body: `{"model":"tiny","prompt":"x"}`, status: 429, code: "overloaded", backendErr: httpapi.ErrOverloaded},
		{name: "internal", path: "/v1/completions", body: `{"model":"tiny","prompt":"x"}`, status: 500, code: "internal_error", backendErr: errors.New("secret internal detail")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.backend.calls.Load()
			e.backend.generate = pieces("never")
			if c.backendErr != nil {
				e.backend.generate = func(context.Context, httpapi.GenRequest, func(httpapi.Delta) error) (httpapi.GenOutcome, error) {
					return httpapi.GenOutcome{}, c.backendErr
				}
			}
			key := e.key
			if c.key != "" || c.name == "no key" {
				key = c.key
			}
			resp := e.post(t, c.path, key, c.body)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, c.status)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("content type %q", ct)
			}
			v := decode[apiErr](t, resp)
			if v.Error.Message == "" || v.Error.Type == "" || strings.Contains(v.Error.Message, "secret internal") {
				t.Fatalf("error object %+v", v.Error)
			}
			if c.code != "" && v.Error.Code != c.code {
				t.Fatalf("code %v, want %s", v.Error.Code, c.code)
			}
			if c.param != "" && v.Error.Param != c.param {
				t.Fatalf("param %v, want %s", v.Error.Param, c.param)
			}
			if !strings.Contains(v.Error.Message, c.msg) {
				t.Fatalf("message %q, want one with %q", v.Error.Message, c.msg)
			}
			if c.status == 503 && resp.Header.Get("Retry-After") == "" {
				t.Fatal("503 without Retry-After")
			}
			if c.backendErr == nil && e.backend.calls.Load() != before {
				t.Fatal("a bad request reached the backend")
			}
		})
	}
}

// refuse is a stage that refuses prompts containing "forbidden" and ends
// answers at the word "stop".
type refuse struct{}

func (refuse) Name() string { return "test-refuse" }

func (refuse) Admit(ctx context.Context, req *pipeline.Request) (pipeline.NewFilter, error) {
	for _, s := range req.Texts() {
		if strings.Contains(s, "forbidden") {
			return nil, &pipeline.Refusal{Code: "content_policy_violation", Message: "The prompt was refused.", Categories: []string{"violence"}}
		}
	}
	req.Prompt = strings.ReplaceAll(req.Prompt, "Alice", "Person1")
	return func() pipeline.Filter { return &stopAt{} }, nil
}

type stopAt struct{}

func (*stopAt) Write(s string) (string, *pipeline.Stop) {
	if strings.Contains(s, "stop") {
		return "", &pipeline.Stop{Reason: "content_filter", Categories: []string{"test"}}
	}
	return s, nil
}
func (*stopAt) Close() (string, *pipeline.Stop) { return "", nil }

func TestStages(t *testing.T) {
	e := newEnv(t, refuse{})
	t.Run("refused", func(t *testing.T) {
		before := e.backend.calls.Load()
		resp := e.post(t, "/v1/completions", e.key, `{"model":"tiny","prompt":"a forbidden thing"}`)
		v := decode[apiErr](t, resp)
		if resp.StatusCode != 400 || v.Error.Code != "content_policy_violation" || !strings.Contains(v.Error.Message, "violence") {
			t.Fatalf("%d %+v", resp.StatusCode, v)
		}
		if e.backend.calls.Load() != before {
			t.Fatal("refused request reached the backend")
		}
	})
	t.Run("rewritten and filtered", func(t *testing.T) {
		e.backend.generate = pieces("one", " two", " stop", " three")
		resp := e.post(t, "/v1/completions", e.key, `{"model":"tiny","prompt":"Alice says"}`)
		v := decode[map[string]any](t, resp)
		c := v["choices"].([]any)[0].(map[string]any)
		if c["text"] != "one two" || c["finish_reason"] != "content_filter" {
			t.Fatalf("choice %v", c)
		}
		if p := e.backend.last.Load().(httpapi.GenRequest).Engine.Prompt; p != "Person1 says" {
			t.Fatalf("backend saw prompt %q", p)
		}
	})
}

func TestAdmin(t *testing.T) {
	e := newEnv(t)
	do := func(method, path, token, body string) *http.Response {
		req, _ := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	if r := do("GET", "/admin/v1/keys", e.key, ""); r.StatusCode != 401 {
		t.Fatalf("consumer key on admin API: %d", r.StatusCode)
	}
	r := do("POST", "/admin/v1/keys", e.admin, `{"name":"demo","key":"pk-demo-0123456789abcdef0123456789abcdef"}`)
	if r.StatusCode != 201 {
		t.Fatalf("create: %d", r.StatusCode)
	}
	created := decode[struct {
		Key    auth.Key
		Secret string
	}](t, r)
	if created.Secret != "pk-demo-0123456789abcdef0123456789abcdef" {
		t.Fatalf("secret %q", created.Secret)
	}
	if r := e.post(t, "/v1/completions", created.Secret, `{"model":"tiny","prompt":"x"}`); r.StatusCode != 200 {
		t.Fatalf("new key: %d", r.StatusCode)
	}
	if r := do("POST", "/admin/v1/keys", e.admin, `{"name":"again","key":"pk-demo-0123456789abcdef0123456789abcdef"}`); r.StatusCode != 409 {
		t.Fatalf("importing an existing key: %d, want 409", r.StatusCode)
	}
	if r := do("POST", "/admin/v1/keys", e.admin, `{"name":"sp","key":"pk-has a space-0123456789abcdef0123456789"}`); r.StatusCode != 400 {
		t.Fatalf("importing a key with a space: %d, want 400", r.StatusCode)
	}
	if r := do("DELETE", "/admin/v1/keys/"+created.Key.ID, e.admin, ""); r.StatusCode != 200 {
		t.Fatalf("revoke: %d", r.StatusCode)
	}
	if r := e.post(t, "/v1/completions", created.Secret, `{"model":"tiny","prompt":"x"}`); r.StatusCode != 401 {
		t.Fatalf("revoked key: %d", r.StatusCode)
	}
	if r := do("DELETE", "/admin/v1/keys/key_nope", e.admin, ""); r.StatusCode != 404 {
		t.Fatalf("revoke unknown: %d", r.StatusCode)
	}
}

func TestStreamingChoices(t *testing.T) {
	e := newEnv(t)
	seeds := make(chan uint64, 3)
	e.backend.generate = func(ctx context.Context, req httpapi.GenRequest, emit func(httpapi.Delta) error) (httpapi.GenOutcome, error) {
		seeds <- req.Engine.Sampling.Seed
		return pieces("Once", " upon", " a", " time")(ctx, req, emit)
	}
	resp := e.post(t, "/v1/chat/completions", e.key, `{"model":"tiny","messages":[{"role":"user","content":"hi"}],"stream":true,"n":3,"temperature":0.7}`)
	evs := events(t, resp)
	if evs[len(evs)-1] != "[DONE]" {
		t.Fatalf("last event %q", evs[len(evs)-1])
	}
	texts := map[int]string{}
	roles := map[int]int{}
	finishes := map[int]string{}
	for _, ev := range evs[:len(evs)-1] {
		var c struct {
			Choices []struct {
				Index int `json:"index"`
				Delta struct {
					Role    string `json:"role"`
					Content string `json:"content"`
				} `json:"delta"`
				FinishReason *string `json:"finish_reason"`
			} `json:"choices"`
		}
		if err := json.Unmarshal([]byte(ev), &c); err != nil || len(c.Choices) != 1 {
			t.Fatalf("event %s: %v", ev, err)
		}
		ch := c.Choices[0]
		if ch.Delta.Role != "" {
			roles[ch.Index]++
		}
		if _, done := finishes[ch.Index]; done {
			t.Fatalf("choice %d has events after its finish", ch.Index)
		}
		texts[ch.Index] += ch.Delta.Content
		if ch.FinishReason != nil {
			finishes[ch.Index] = *ch.FinishReason
		}
	}
	for i := 0; i < 3; i++ {
		if texts[i] != "Once upon a time" || roles[i] != 1 || finishes[i] != "length" {
			t.Fatalf("choice %d: text %q roles %d finish %q", i, texts[i], roles[i], finishes[i])
		}
	}
	// Each choice samples with its own seed.
	close(seeds)
	seen := map[uint64]bool{}
	for s := range seeds {
		seen[s] = true
	}
	if len(seen) != 3 {
		t.Fatalf("seeds %v, want 3 different", seen)
	}
}

func TestWrongMethodAndUnknownRoute(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name, method, path string
		status             int
		code, allow        string
	}{
		{"GET on chat", "GET", "/v1/chat/completions", 405, "method_not_allowed", "POST"},
		{"DELETE on completions", "DELETE", "/v1/completions", 405, "method_not_allowed", "POST"},
		{"POST on models", "POST", "/v1/models", 405, "method_not_allowed", "GET"},
		{"POST on healthz", "POST", "/healthz", 405, "method_not_allowed", "GET"},
		{"PUT on admin keys", "PUT", "/admin/v1/keys", 405, "method_not_allowed", "GET, POST"},
		{"GET on a key id", "GET", "/admin/v1/keys/key_x", 405, "method_not_allowed", "DELETE"},
		{"unknown route", "GET", "/v1/embeddings", 404, "not_found", ""},
		{"unknown root", "POST", "/nope", 404, "not_found", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, e.srv.URL+c.path, strings.NewReader("{}"))
			req.Header.Set("Authorization", "Bearer "+e.key)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, c.status)
			}
			if got := resp.Header.Get("Allow"); got != c.allow {
				t.Fatalf("Allow %q, want %q", got, c.allow)
			}
			v := decode[apiErr](t, resp)
			if v.Error.Code != c.code || v.Error.Message == "" || v.Error.Type != "invalid_request_error" {
				t.Fatalf("error object %+v", v.Error)
			}
		})
	}
}

func TestAdminBadBody(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name, body string
		status     int
		param      string
	}{
		{"malformed", `{bad`, 400, ""},
		{"empty", ``, 400, ""},
		{"not an object", `[]`, 400, ""},
		{"wrong type", `{"name":5}`, 400, "name"},
		{"unknown field", `{"name":"x","bogus":1}`, 400, "bogus"},
		{"too large", `{"name":"` + strings.Repeat("a", 70<<10) + `"}`, 413, ""},
		{"invalid utf-8", "{\"name\":\"caf\xe9\"}", 400, ""},
		{"two values", `{"name":"a"}{"name":"b"}`, 400, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", e.srv.URL+"/admin/v1/keys", strings.NewReader(c.body))
			req.Header.Set("Authorization", "Bearer "+e.admin)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, c.status)
			}
			v := decode[apiErr](t, resp)
			if v.Error.Message == "" || v.Error.Type != "invalid_request_error" {
				t.Fatalf("error object %+v", v.Error)
			}
			if strings.Contains(v.Error.Message, "json:") || strings.Contains(v.Error.Message, "Go ") {
				t.Fatalf("message leaks decoder internals: %q", v.Error.Message)
			}
			if c.param != "" && v.Error.Param != c.param {
				t.Fatalf("param %v, want %s", v.Error.Param, c.param)
			}
		})
	}
}
