package e2e

import (
	"testing"
	"time"
)

// TestGolden: greedy completions through the orchestrator reproduce
// llama2.c's exact output for the tiny model, streamed and not, on chat and
// completions, with correct usage.
func TestGolden(t *testing.T) {
	c := newCluster(t, 2, 0)
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
