package e2e

import (
	"testing"
	"time"
)

// TestGolden: greedy completions through the orchestrator reproduce
// llama2.c's exact output for the tiny model, streamed and not, on chat and
// completions, with correct usage.
func TestGolden(t *testing.T) {
	// Exactness against llama2.c needs the prompt and answer unchanged:
	// "Lily and Tom" are names, which the privacy stage would replace, and
	// the answer screen must not cut a golden text (screening_test.go tests
	// both stages).
	c := newCluster(t, 2, 0, "--no-privacy", "--no-safety")
	for _, g := range goldenCases(t) {
		for _, stream := range []bool{false, true} {
			name := g.Name + map[bool]string{false: "/whole", true: "/stream"}[stream]
			t.Run(name, func(t *testing.T) {
				body := map[string]any{"model": model, "prompt": *g.Prompt, "temperature": 0,
					"max_tokens": len(g.Generated), "stream": stream}
				if stream {
					body["stream_options"] = map[string]any{"include_usage": true}
				}
				r := complete(ctxTimeout(t, time.Minute), t, nil, c.o.API, "/v1/completions", c.key, body, nil)
				if r.Status != 200 {
					t.Fatalf("status %d: %s", r.Status, r.Body)
				}
				if r.Text != g.completion() {
					t.Fatalf("text differs from llama2.c\n got: %q\nwant: %q", r.Text, g.completion())
				}
				if r.Finish != "length" {
					t.Errorf("finish_reason %q, want length", r.Finish)
				}
				if stream && !r.Done {
					t.Error("stream did not end with [DONE]")
				}
				if r.Completion != len(g.Generated) || r.PromptTokens != len(g.PromptIDs) {
					t.Errorf("usage prompt=%d completion=%d, want %d and %d", r.PromptTokens, r.Completion, len(g.PromptIDs), len(g.Generated))
				}
			})
		}
	}
}

// TestSampling: n choices sample with seeds seed, seed+1, …; the same seed
// gives the same answers again, on whichever hosts run them.
func TestSampling(t *testing.T) {
	c := newCluster(t, 2, 0)
	ask := func(path string) []string {
		body := map[string]any{"model": model, "n": 2, "temperature": 0.9, "seed": 42, "max_tokens": 40, "redundancy": "off"}
		if path == "/v1/chat/completions" {
			body["messages"] = []map[string]string{{"role": "user", "content": "Once upon a time"}}
		} else {
			body["prompt"] = "Once upon a time"
		}
		var out struct {
			Choices []struct {
				Index   int
				Text    string
				Message struct{ Content string }
			}
		}
		if code := c.o.Do(t, "POST", path, c.key, body, &out); code != 200 || len(out.Choices) != 2 {
			t.Fatalf("%s: %d %+v", path, code, out)
		}
		texts := make([]string, 2)
		for _, ch := range out.Choices {
			texts[ch.Index] = ch.Text + ch.Message.Content
		}
		return texts
	}
	for _, path := range []string{"/v1/completions", "/v1/chat/completions"} {
		t.Run(path, func(t *testing.T) {
			first, again := ask(path), ask(path)
			if first[0] != again[0] || first[1] != again[1] {
				t.Fatalf("same seed, different answers:\n%q\n%q", first, again)
			}
			if first[0] == first[1] {
				t.Fatalf("both choices sampled the same text %q", first[0])
			}
			if first[0] == "" || first[1] == "" {
				t.Fatalf("empty choice %q", first)
			}
		})
	}
}
