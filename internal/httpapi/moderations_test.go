package httpapi_test

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/peerllm/peerllm/internal/auth"
	"github.com/peerllm/peerllm/internal/httpapi"
	"github.com/peerllm/peerllm/internal/pipeline"
	"github.com/peerllm/peerllm/internal/safety"
	"github.com/peerllm/peerllm/internal/stages"
	"github.com/peerllm/peerllm/internal/store"
)

// newScreenEnv is newEnv with the real screening: /v1/moderations served by
// the built-in classifier, and meters that see each Outcome.
func newScreenEnv(t *testing.T, meter pipeline.Meter, st ...pipeline.Stage) *env {
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
	cl, err := safety.New(safety.DefaultPolicy())
	if err != nil {
		t.Fatal(err)
	}
	fb := &fakeBackend{models: []httpapi.Model{{Name: "tiny", Hosts: 2, ContextLength: 512}}, generate: pieces("Once", " upon")}
	chain := &pipeline.Chain{Stages: st}
	if meter != nil {
		chain.Meters = []pipeline.Meter{meter}
	}
	s := httpapi.New(httpapi.Config{Backend: fb, Keys: keys, Chain: chain, MaxBodyBytes: 1 << 20,
		Moderator: &stages.Screening{Checker: &safety.Checker{Classifier: cl}}})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return &env{srv: srv, backend: fb, key: secret, keys: keys}
}

func TestModerations(t *testing.T) {
	e := newScreenEnv(t, nil)
	type result struct {
		Flagged        bool               `json:"flagged"`
		Categories     map[string]bool    `json:"categories"`
		CategoryScores map[string]float64 `json:"category_scores"`
	}
	type answer struct {
		ID      string   `json:"id"`
		Model   string   `json:"model"`
		Results []result `json:"results"`
	}
	cases := []struct {
		name    string
		key     string
		body    string
		status  int
		flagged []bool
	}{
		{"string", e.key, `{"input":"I will kill you and your whole family tonight."}`, 200, []bool{true}},
		{"array with a model", e.key, `{"model":"omni-moderation-latest","input":["How do I kill a python process?","I will kill you and your whole family tonight."]}`, 200, []bool{false, true}},
		{"text objects", e.key, `{"input":[{"type":"text","text":"The weather is lovely today and we went for a walk in the park."}]}`, 200, []bool{false}},
		{"empty string", e.key, `{"input":""}`, 200, []bool{false}},
		{"image object", e.key, `{"input":[{"type":"image_url","image_url":{"url":"https://x"}}]}`, 400, nil},
		{"missing input", e.key, `{"model":"x"}`, 400, nil},
		{"null input", e.key, `{"input":null}`, 400, nil},
		{"empty array", e.key, `{"input":[]}`, 400, nil},
		{"number", e.key, `{"input":42}`, 400, nil},
		{"mixed bad item", e.key, `{"input":["ok", 3]}`, 400, nil},
		{"too many", e.key, `{"input":[` + strings.TrimSuffix(strings.Repeat(`"a",`, 257), ",") + `]}`, 400, nil},
		{"not json", e.key, `input=hello`, 400, nil},
		{"model not a string", e.key, `{"input":"hello","model":5}`, 400, nil},
		{"trailing garbage", e.key, `{"input":"hello"} extra`, 400, nil},
		{"empty body", e.key, ``, 400, nil},
		{"no key", "", `{"input":"hello"}`, 401, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.post(t, "/v1/moderations", tc.key, tc.body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.status != 200 {
				if v := decode[apiErr](t, resp); v.Error.Message == "" || v.Error.Type == "" {
					t.Errorf("error body %+v", v)
				}
				return
			}
			v := decode[answer](t, resp)
			if !strings.HasPrefix(v.ID, "modr-") || v.Model != stages.ModerationModel || len(v.Results) != len(tc.flagged) {
				t.Fatalf("answer %+v", v)
			}
			for i, r := range v.Results {
				if r.Flagged != tc.flagged[i] || len(r.Categories) != len(safety.Categories()) || len(r.CategoryScores) != len(r.Categories) {
					t.Errorf("result %d: %+v", i, r)
				}
			}
		})
	}
	if e.backend.calls.Load() != 0 {
		t.Error("a moderation input reached the backend")
	}
}

// outcomes records the Outcomes a chain meters.
type outcomes struct {
	mu  sync.Mutex
	all []pipeline.Outcome
}

func (o *outcomes) Meter(_ context.Context, out pipeline.Outcome) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.all = append(o.all, out)
}

// TestStopNamesTheHost: an output stop carries the id of the host whose
// delta completed the stopped window, so strikes hit the right host.
func TestStopNamesTheHost(t *testing.T) {
	var got outcomes
	e := newScreenEnv(t, &got, refuse{})
	e.backend.generate = func(ctx context.Context, req httpapi.GenRequest, emit func(httpapi.Delta) error) (httpapi.GenOutcome, error) {
		for _, d := range []httpapi.Delta{{Text: "one", Tokens: 1, Host: "h1"}, {Text: " two", Tokens: 1, Host: "h1"}, {Text: " stop", Tokens: 1, Host: "h2"}} {
			if err := emit(d); err != nil {
				return httpapi.GenOutcome{}, err
			}
		}
		return httpapi.GenOutcome{FinishReason: "length"}, nil
	}
	for _, stream := range []string{"false", "true"} {
		resp := e.post(t, "/v1/completions", e.key, `{"model":"tiny","prompt":"hi","stream":`+stream+`}`)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		resp.Body.Close()
	}
	// Meters run after the answer is sent: wait for both, with a deadline.
	for deadline := time.Now().Add(10 * time.Second); ; {
		got.mu.Lock()
		n := len(got.all)
		got.mu.Unlock()
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d outcomes metered, want 2", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	got.mu.Lock()
	defer got.mu.Unlock()
	for _, o := range got.all {
		if len(o.Stops) != 1 || o.Stops[0].Host != "h2" || o.FinishReasons[0] != "content_filter" {
			t.Errorf("stops %+v finish %v", o.Stops, o.FinishReasons)
		}
	}
}
