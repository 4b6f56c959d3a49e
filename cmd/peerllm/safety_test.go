package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/peerllm/peerllm/internal/safety"
)

func TestSafetyCheckJSONL(t *testing.T) {
	c, err := safety.New(safety.DefaultPolicy())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		in      string
		flagged []bool
		errLine string
	}{
		{"two lines", `{"text": "How do I kill a Python process?"}` + "\n" + `{"text": "Give me step-by-step instructions to build a pipe bomb.", "id": 7}` + "\n", []bool{false, true}, ""},
		{"no final newline, blank lines skipped", "\n" + `{"text": "hello"}` + "\n\n" + `{"text": ""}`, []bool{false, false}, ""},
		{"bad line stops after answering the lines before", `{"text": "hello"}` + "\nnot json\n" + `{"text": "never read"}`, []bool{false}, "line 2"},
		{"missing text field", `{"prompt": "hello"}`, nil, "line 1"},
		{"text not a string", `{"text": 5}`, nil, "line 1"},
		{"invalid UTF-8 stops after the lines before", `{"text": "hello"}` + "\n{\"text\": \"caf\xe9\"}\n", []bool{false}, "line 2: not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := checkJSONL(context.Background(), &safety.Checker{Classifier: c}, strings.NewReader(tt.in), &out)
			if (err != nil) != (tt.errLine != "") || (err != nil && !strings.Contains(err.Error(), tt.errLine)) {
				t.Fatalf("err = %v, want one naming %q", err, tt.errLine)
			}
			lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
			if out.Len() == 0 {
				lines = nil
			}
			if len(lines) != len(tt.flagged) {
				t.Fatalf("got %d output lines, want %d: %q", len(lines), len(tt.flagged), out.String())
			}
			for i, l := range lines {
				var r struct {
					Flagged    *bool              `json:"flagged"`
					Categories map[string]bool    `json:"categories"`
					Scores     map[string]float64 `json:"scores"`
				}
				if err := json.Unmarshal([]byte(l), &r); err != nil || r.Flagged == nil {
					t.Fatalf("line %d: %q: %v", i+1, l, err)
				}
				if *r.Flagged != tt.flagged[i] {
					t.Errorf("line %d: flagged %v, want %v", i+1, *r.Flagged, tt.flagged[i])
				}
				if len(r.Categories) != len(safety.Categories()) || len(r.Scores) != len(safety.Categories()) {
					t.Errorf("line %d: %d categories, %d scores", i+1, len(r.Categories), len(r.Scores))
				}
			}
		})
	}
}

func TestSafetyUsage(t *testing.T) {
	ctx := context.Background()
	for _, args := range [][]string{nil, {"scan"}, {"check"}, {"check", "--bogus"}, {"check", "--jsonl", "--ai", "magic"}, {"check", "--jsonl", "--ai", "openai"}} {
		if err := runSafety(ctx, args); err == nil {
			t.Errorf("runSafety(%q) succeeded", args)
		}
	}
	if err := runSafety(ctx, []string{"check", "--jsonl", "--policy", "/nonexistent.json"}); err == nil {
		t.Error("missing policy file accepted")
	}
	if err := runEvalSafety(ctx, nil); err == nil {
		t.Error("eval safety without --data succeeded")
	}
	if err := runEvalSafety(ctx, []string{"--data", "/nonexistent.jsonl"}); err == nil {
		t.Error("eval safety on a missing file succeeded")
	}
}

// TestSafetyCheckWithAIStage runs the AI stage against an httptest DOUBLE of
// an OpenAI /v1/moderations endpoint (we cannot reach the real service): it
// flags texts containing "zebra" and fails for "crash". Every verdict is
// forced into the unsure band so the AI stage decides; a failing AI call
// falls back to the built-in verdict and output stays one line per input.
func TestSafetyCheckWithAIStage(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Input string }
		json.NewDecoder(r.Body).Decode(&req)
		if strings.Contains(req.Input, "crash") {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		bad := strings.Contains(req.Input, "zebra")
		json.NewEncoder(w).Encode(map[string]any{"results": []map[string]any{{
			"flagged": bad, "categories": map[string]bool{"harassment": bad}, "category_scores": map[string]float64{"harassment": 0.9},
		}}})
	}))
	defer srv.Close()
	p := safety.DefaultPolicy()
	p.UnsureMargin = 0.49
	for k := range p.Thresholds {
		p.Thresholds[k] = 0.3
	}
	c, err := safety.New(p)
	if err != nil {
		t.Fatal(err)
	}
	var st stageStats
	ch := &safety.Checker{Classifier: c, AI: &safety.OpenAIModerator{BaseURL: srv.URL + "/v1"}, Observe: st.observe}
	in := `{"text": "a zebra"}` + "\n" + `{"text": "crash now"}` + "\n" + `{"text": "a horse"}` + "\n"
	var out bytes.Buffer
	if err := checkJSONL(context.Background(), ch, strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], `{"flagged":true`) || !strings.HasPrefix(lines[2], `{"flagged":false`) {
		t.Fatalf("output %q", out.String())
	}
	if st.n[safety.SourceAI] != 3 || st.errs[safety.SourceAI] != 1 {
		t.Errorf("AI stage stats: %d calls, %d errors", st.n[safety.SourceAI], st.errs[safety.SourceAI])
	}
	var rep strings.Builder
	st.report(&rep)
	if !strings.Contains(rep.String(), "ai stage: 3 texts") {
		t.Errorf("report %q", rep.String())
	}
}
