package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/peerllm/peerllm/internal/testenv"
)

// TestBadInput: malformed or impossible requests get real HTTP statuses and
// OpenAI error objects, and nothing reaches a host.
func TestBadInput(t *testing.T) {
	o := testenv.StartOrchestrator(t, testenv.OrchestratorOptions{})
	key := o.CreateKey(t, "bad")
	_, rec := recordedHost(t, o, "rec2")
	o.WaitHosts(t, key, model, 1)
	seenBefore := len(rec.Seen())

	// Far more tokens than any host's context: more than 64 bytes for
	// each token of context (the API's bound without a tokenizer).
	var ctxLen int
	var models struct {
		Data []struct {
			ContextLength int `json:"context_length"`
		}
	}
	o.Do(t, "GET", "/v1/models", key, nil, &models)
	for _, m := range models.Data {
		ctxLen = max(ctxLen, m.ContextLength)
	}
	long := strings.Repeat("The quick brown fox jumps over the lazy dog. ", ctxLen*64/45+1)
	cases := []struct {
		name, path, key, body string
		status                int
		code, param           string
	}{
		{"no key", "/v1/completions", "-", `{"model":"stories260K","prompt":"x"}`, 401, "invalid_api_key", ""},
		{"malformed json", "/v1/completions", "", `{"model":"stories260K",`, 400, "", ""},
		{"wrong type", "/v1/completions", "", `{"model":"stories260K","prompt":"x","max_tokens":"ten"}`, 400, "", "max_tokens"},
		{"unknown model", "/v1/chat/completions", "", `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`, 404, "model_not_found", "model"},
		{"temperature out of range", "/v1/completions", "", `{"model":"stories260K","prompt":"x","temperature":-1}`, 400, "", "temperature"},
		{"n out of range", "/v1/completions", "", `{"model":"stories260K","prompt":"x","n":0}`, 400, "", "n"},
		{"body too large", "/v1/completions", "", `{"model":"stories260K","prompt":"` + strings.Repeat("a", 2<<20) + `"}`, 413, "", ""},
		{"invalid utf-8", "/v1/completions", "", "{\"model\":\"stories260K\",\"prompt\":\"a\xc3\x28\"}", 400, "invalid_encoding", ""},
		{"context length", "/v1/completions", "", `{"model":"stories260K","prompt":"` + long + `"}`, 400, "context_length_exceeded", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", o.API+c.path, bytes.NewReader([]byte(c.body)))
			switch c.key {
			case "":
				req.Header.Set("Authorization", "Bearer "+key)
			case "-":
			default:
				req.Header.Set("Authorization", "Bearer "+c.key)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, raw)
			}
			var e struct {
				Error struct {
					Message, Type string
					Code, Param   any
				}
			}
			if err := json.Unmarshal(raw, &e); err != nil || e.Error.Message == "" || e.Error.Type == "" {
				t.Fatalf("not an OpenAI error object: %s", raw)
			}
			if c.code != "" && e.Error.Code != c.code {
				t.Errorf("code %v, want %s", e.Error.Code, c.code)
			}
			if c.param != "" && e.Error.Param != c.param {
				t.Errorf("param %v, want %s", e.Error.Param, c.param)
			}
		})
	}
	if seen := rec.Seen()[seenBefore:]; strings.Contains(seen, ".task") {
		t.Errorf("a bad request reached the host:\n%.300s", seen)
	}

	t.Run("no host", func(t *testing.T) {
		o2 := testenv.StartOrchestrator(t, testenv.OrchestratorOptions{})
		k2 := o2.CreateKey(t, "nohost")
		r := complete(ctxTimeout(t, 30e9), t, nil, o2.API, "/v1/completions", k2, map[string]any{"model": model, "prompt": "x", "stream": true}, nil)
		if r.Status != 503 || !strings.Contains(r.Body, "no_host_available") {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
	})
}
