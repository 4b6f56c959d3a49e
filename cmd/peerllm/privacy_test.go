package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/peerllm/peerllm/internal/privacy"
	"github.com/peerllm/peerllm/internal/testenv"
)

func TestPrivacyScanJSONL(t *testing.T) {
	in := `{"text": "Mail jane@corp.example.org or call +44 20 7946 0958"}` + "\n\n" + `{"text": "Grüße → 10.1.2.3"}` + "\n"
	tests := []struct {
		name, mode string
		want       []string // anonymized lines
	}{
		{"surrogates", "surrogates", []string{"Mail alex.carter@example.com or call +1 202-555-0100", "Grüße → 192.0.2.1"}},
		{"placeholders", "placeholders", []string{"Mail [EMAIL_ADDRESS_1] or call [PHONE_NUMBER_1]", "Grüße → [IP_ADDRESS_1]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := runPrivacyScan(context.Background(), []string{"--jsonl", "--mode", tt.mode}, strings.NewReader(in), &out); err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("got %d lines: %s", len(lines), out.String())
			}
			for i, l := range lines {
				var got struct {
					Entities []struct {
						Type       string
						Start, End int
						Text       string
						Score      float64
					}
					Anonymized string
				}
				if err := json.Unmarshal([]byte(l), &got); err != nil {
					t.Fatal(err)
				}
				if got.Anonymized != tt.want[i] {
					t.Errorf("line %d anonymized %q, want %q", i, got.Anonymized, tt.want[i])
				}
				if i == 1 && (len(got.Entities) != 1 || got.Entities[0].Start != 8 || got.Entities[0].End != 16) {
					t.Errorf("offsets must be code points: %+v", got.Entities)
				}
			}
		})
	}
	for _, bad := range [][]string{{}, {"--mode", "x", "--jsonl"}, {"--jsonl", "--min-score", "NOPE=1"}} {
		var out bytes.Buffer
		if err := runPrivacyScan(context.Background(), bad, strings.NewReader(""), &out); err == nil {
			t.Errorf("args %v accepted", bad)
		}
	}
	var out bytes.Buffer
	if err := runPrivacyScan(context.Background(), []string{"--jsonl"}, strings.NewReader(`{"txt": 1}`), &out); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("bad line: %v", err)
	}
	out.Reset()
	if err := runPrivacyScan(context.Background(), []string{"--jsonl"}, strings.NewReader("{\"text\": \"ok\"}\n{\"text\": \"caf\xe9\"}\n"), &out); err == nil || !strings.Contains(err.Error(), "line 2: not valid UTF-8") {
		t.Errorf("invalid UTF-8: %v", err)
	}
}

// TestEvalPrivacyDevData guards the figures in docs/PRIVACY.md from
// regressions on the development data (not a measure of held-out quality).
func TestEvalPrivacyDevData(t *testing.T) {
	data := filepath.Join(testenv.SharedDir(t), "evaldata", "presidio-synth-dev", "synth-dev.json")
	var out bytes.Buffer
	if err := evalPrivacy(context.Background(), []string{"--data", data, "--json"}, &out); err != nil {
		t.Fatal(err)
	}
	var rep privacy.EvalReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	min := map[string]float64{"CREDIT_CARD": 0.99, "EMAIL_ADDRESS": 0.99, "IBAN_CODE": 0.99, "US_SSN": 0.99, "IP_ADDRESS": 0.99,
		"PHONE_NUMBER": 0.9, "PERSON": 0.85, "STREET_ADDRESS": 0.65, "ORGANIZATION": 0.6}
	for _, ts := range rep.Types {
		if m, ok := min[ts.Type]; ok && ts.OverlapR < m {
			t.Errorf("%s overlap recall %.3f < %.2f", ts.Type, ts.OverlapR, m)
		}
	}
	if rep.OrdinaryShare > 0.03 {
		t.Errorf("ordinary words hidden %.3f > 3%%", rep.OrdinaryShare)
	}
	var txt bytes.Buffer
	if err := evalPrivacy(context.Background(), []string{"--data", data, "--split", "holdout"}, &txt); err != nil || !strings.Contains(txt.String(), "ordinary words hidden") {
		t.Fatalf("table output: %v\n%s", err, txt.String())
	}
}

func TestEvalPrivacyPlain(t *testing.T) {
	data := filepath.Join(t.TempDir(), "p.jsonl")
	lines := `{"prompt": "How do I bake bread at home?"}` + "\n" + `{"text": "Mail jane@example.org please"}` + "\n"
	if err := os.WriteFile(data, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := evalPrivacy(context.Background(), []string{"--plain", data, "--json"}, &out); err != nil {
		t.Fatal(err)
	}
	var rep privacy.PlainReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	// "jane@example.org" is three words (jane, example, org), all hidden.
	if rep.Texts != 2 || rep.Words != 12 || rep.Hidden != 3 || rep.ByType["EMAIL_ADDRESS"] != 1 {
		t.Fatalf("report %+v", rep)
	}
}

// TestEvalPrivacyWithSanitizer runs the evaluation with the LLM sanitizer
// against a labelled test double of an operator's OpenAI-compatible server
// that knows one name the scanner cannot find.
func TestEvalPrivacyWithSanitizer(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "d.json")
	recs := `[{"full_text":"zqx vrbl signed it","spans":[{"entity_type":"PERSON","entity_value":"zqx vrbl","start_position":0,"end_position":8}]},
	{"full_text":"nothing here","spans":[]}]`
	if err := os.WriteFile(data, []byte(recs), 0o600); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.Header.Get("Authorization") != "Bearer sekrit" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		content := `{"entities":[{"type":"PERSON","text":"zqx vrbl"}]}`
		_ = json.NewEncoder(w).Encode(map[string]any{"choices": []any{map[string]any{"message": map[string]any{"role": "assistant", "content": content}}}})
	}))
	defer srv.Close()
	t.Setenv("TEST_SANITIZER_KEY", "sekrit")
	run := func(extra ...string) privacy.EvalReport {
		var out bytes.Buffer
		if err := evalPrivacy(context.Background(), append([]string{"--data", data, "--json"}, extra...), &out); err != nil {
			t.Fatal(err)
		}
		var rep privacy.EvalReport
		if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
			t.Fatal(err)
		}
		return rep
	}
	if rep := run(); rep.Overall.OverlapR != 0 {
		t.Fatalf("the scanner alone should miss the lower-case name: %+v", rep.Overall)
	}
	rep := run("--llm-url", srv.URL, "--llm-model", "m", "--llm-key-env", "TEST_SANITIZER_KEY")
	if rep.Overall.OverlapR != 1 || rep.SecondFailures != 0 || calls.Load() != 2 {
		t.Fatalf("with the sanitizer: %+v failures %d calls %d", rep.Overall, rep.SecondFailures, calls.Load())
	}
	if rep := run("--llm-url", srv.URL, "--llm-model", "m"); rep.SecondFailures != 2 {
		t.Fatalf("without the key every call fails: %d", rep.SecondFailures)
	}
}
