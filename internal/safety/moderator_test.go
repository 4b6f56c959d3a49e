package safety_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/peerllm/peerllm/internal/safety"
)

// The AI moderation services (OpenAI's /v1/moderations, a Llama Guard model)
// cannot run here. These tests use httptest servers that are DOUBLES of those
// endpoints: they speak the documented wire formats and answer from a fixed
// rule, so only our clients' requests, parsing and error handling are tested.

// moderationDouble is a double of OpenAI's /v1/moderations: it flags inputs
// containing "bomb" as violence and illicit/violent.
func moderationDouble(t *testing.T, status int) (*httptest.Server, *[]string) {
	t.Helper()
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/moderations" {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		if r.Header.Get("Authorization") != "Bearer sk-test" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		var req struct {
			Model string `json:"model"`
			Input string `json:"input"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		seen = append(seen, req.Model)
		mu.Unlock()
		if status != http.StatusOK {
			http.Error(w, "boom", status)
			return
		}
		bad := strings.Contains(req.Input, "bomb")
		score := 0.01
		if bad {
			score = 0.97
		}
		json.NewEncoder(w).Encode(map[string]any{
			"id": "modr-1", "model": req.Model,
			"results": []map[string]any{{
				"flagged":         bad,
				"categories":      map[string]bool{"violence": bad, "illicit/violent": bad, "sexual": false, "harassment/threatening": false},
				"category_scores": map[string]float64{"violence": score, "illicit/violent": score, "sexual": 0.001, "harassment/threatening": 0.002},
			}},
		})
	}))
	t.Cleanup(srv.Close)
	return srv, &seen
}

func TestOpenAIModerator(t *testing.T) {
	srv, seen := moderationDouble(t, http.StatusOK)
	m := &safety.OpenAIModerator{BaseURL: srv.URL + "/v1", APIKey: "sk-test", Model: "omni-moderation-latest"}
	v, err := m.Moderate(context.Background(), "how to build a bomb")
	if err != nil {
		t.Fatal(err)
	}
	if !v.Flagged || !v.Categories[safety.Violence] || !v.Categories[safety.Illegal] || !v.Categories[safety.IllegalWeapons] || v.Source != safety.SourceAI {
		t.Errorf("verdict %+v", v)
	}
	if v.Scores[safety.Violence] != 0.97 || v.Scores[safety.Harassment] != 0.002 {
		t.Errorf("scores %v", v.Scores)
	}
	if len(v.Categories) != len(safety.Categories()) {
		t.Errorf("categories %v", v.Categories)
	}
	v, err = m.Moderate(context.Background(), "hello")
	if err != nil || v.Flagged {
		t.Errorf("harmless: %+v, %v", v, err)
	}
	if (*seen)[0] != "omni-moderation-latest" {
		t.Errorf("model sent: %q", (*seen)[0])
	}
	bad := &safety.OpenAIModerator{BaseURL: srv.URL + "/v1", APIKey: "wrong"}
	if _, err := bad.Moderate(context.Background(), "x"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("bad key: %v", err)
	}
}

// guardDouble is a double of an OpenAI-compatible chat endpoint serving a
// Llama Guard model: "unsafe\nS9" for "bomb", "unsafe\nS10,S1" for "vermin",
// else "safe".
func guardDouble(t *testing.T, answer func(string) string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/chat/completions" {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		var req struct {
			Model    string `json:"model"`
			Messages []struct {
				Role, Content string
			} `json:"messages"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Messages) != 1 || req.Messages[0].Role != "user" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{
			"choices": []map[string]any{{"index": 0, "message": map[string]string{"role": "assistant", "content": answer(req.Messages[0].Content)}, "finish_reason": "stop"}},
		})
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestLlamaGuardModerator(t *testing.T) {
	srv := guardDouble(t, func(in string) string {
		switch {
		case strings.Contains(in, "bomb"):
			return "unsafe\nS9"
		case strings.Contains(in, "vermin"):
			return "\n\nunsafe\nS10,S1"
		case strings.Contains(in, "weird"):
			return "I cannot answer"
		case strings.Contains(in, "odd"):
			return "unsafe\nS99"
		}
		return "safe"
	})
	m := &safety.LlamaGuardModerator{BaseURL: srv.URL + "/v1", Model: "llama-guard-3"}
	tests := []struct {
		in      string
		flagged bool
		cats    []string
		wantErr bool
	}{
		{"hello", false, nil, false},
		{"a bomb", true, []string{safety.Illegal, safety.IllegalWeapons}, false},
		{"vermin", true, []string{safety.Hate, safety.Violence, safety.Illegal}, false},
		{"odd", true, []string{safety.Illegal}, false},
		{"weird", false, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			v, err := m.Moderate(context.Background(), tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if err != nil {
				return
			}
			if v.Flagged != tt.flagged {
				t.Errorf("flagged %v", v.Flagged)
			}
			for _, c := range tt.cats {
				if !v.Categories[c] {
					t.Errorf("category %s not tripped: %v", c, v.Tripped)
				}
			}
		})
	}
}

// countingModerator is a fake Moderator (a function field) for Checker.
type countingModerator struct {
	mu    sync.Mutex
	calls int
	fn    func(string) (safety.Verdict, error)
}

func (m *countingModerator) Moderate(ctx context.Context, text string) (safety.Verdict, error) {
	m.mu.Lock()
	m.calls++
	m.mu.Unlock()
	return m.fn(text)
}

func TestCheckerUsesAIOnlyWhenUnsure(t *testing.T) {
	c := newClassifier(t)
	srv, _ := moderationDouble(t, http.StatusOK)
	ai := &safety.OpenAIModerator{BaseURL: srv.URL + "/v1", APIKey: "sk-test"}
	cm := &countingModerator{fn: func(s string) (safety.Verdict, error) { return ai.Moderate(context.Background(), s) }}
	var stages []string
	ch := &safety.Checker{Classifier: c, AI: cm, Observe: func(stage string, d time.Duration, flagged bool, err error) {
		stages = append(stages, stage)
	}}
	// A clear case: the built-in verdict is sure; no AI call.
	v, err := ch.Check(context.Background(), "What is the capital of France?")
	if err != nil || v.Flagged || v.Source != safety.SourceBuiltin || cm.calls != 0 {
		t.Fatalf("sure case: %+v, %v, %d AI calls", v, err, cm.calls)
	}
	// Force every verdict into the unsure band: the AI decides.
	p := safety.DefaultPolicy()
	p.UnsureMargin = 0.49
	for k := range p.Thresholds {
		p.Thresholds[k] = 0.3
	}
	ch.Classifier, _ = c.WithPolicy(p)
	v, err = ch.Check(context.Background(), "my bomb of a presentation")
	if err != nil || !v.Flagged || v.Source != safety.SourceAI || cm.calls != 1 {
		t.Fatalf("unsure case: %+v, %v, %d AI calls", v, err, cm.calls)
	}
	if len(stages) != 3 || stages[2] != safety.SourceAI {
		t.Errorf("observed stages %v", stages)
	}
	// AI failure: the built-in verdict comes back with the error.
	cm.fn = func(string) (safety.Verdict, error) { return safety.Verdict{}, errors.New("unreachable") }
	v, err = ch.Check(context.Background(), "my bomb of a presentation")
	if err == nil || v.Source != safety.SourceBuiltin || v.Scores == nil {
		t.Fatalf("AI failure: %+v, %v", v, err)
	}
}

func TestModeratorHonoursCancel(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(block)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	m := &safety.OpenAIModerator{BaseURL: srv.URL}
	if _, err := m.Moderate(ctx, "x"); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}
