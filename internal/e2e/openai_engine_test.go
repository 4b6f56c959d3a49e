package e2e

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/peerllm/peerllm/internal/testenv"
)

// TestHostInFrontOfOpenAICompatibleServer: a host with --engine openai serves
// through a real OpenAI-compatible server — here another PeerLLM
// orchestrator with a built-in host, the kind of operator-run backend a
// dedicated fallback host fronts. Greedy text through the chain equals
// llama2.c's, streamed and not.
func TestHostInFrontOfOpenAICompatibleServer(t *testing.T) {
	t.Parallel()
	upstream := newCluster(t, 1, 0, "--no-privacy")
	keyFile := filepath.Join(t.TempDir(), "engine.key")
	if err := os.WriteFile(keyFile, []byte(upstream.key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	front := testenv.StartOrchestrator(t, testenv.OrchestratorOptions{Args: []string{"--no-privacy"}})
	key := front.CreateKey(t, "front")
	front.StartHost(t, testenv.HostOptions{Name: "relay", Owner: "operator", Region: "eu-west", Engine: "openai",
		Args: []string{"--engine-url", upstream.o.API + "/v1", "--engine-key-file", keyFile}})
	front.WaitHosts(t, key, model, 1)

	g := goldenCases(t)[0]
	var first string
	for _, stream := range []bool{false, true} {
		body := map[string]any{"model": model, "prompt": *g.Prompt, "temperature": 0, "max_tokens": 40, "stream": stream}
		if stream {
			body["stream_options"] = map[string]any{"include_usage": true}
		}
		r := complete(ctxTimeout(t, time.Minute), t, nil, front.API, "/v1/completions", key, body, nil)
		if r.Status != 200 {
			t.Fatalf("stream=%v: status %d: %s", stream, r.Status, r.Body)
		}
		want := g.completion()
		if len(r.Text) == 0 || len(r.Text) > len(want) || want[:len(r.Text)] != r.Text {
			t.Fatalf("stream=%v: text is not a prefix of llama2.c's\n got: %q\nwant: %q", stream, r.Text, want)
		}
		if r.Completion != 40 || r.Finish != "length" {
			t.Errorf("stream=%v: %d completion tokens, finish %q; want 40, length", stream, r.Completion, r.Finish)
		}
		if first == "" {
			first = r.Text
		} else if r.Text != first {
			t.Errorf("streamed text differs from the whole answer\n got: %q\nwant: %q", r.Text, first)
		}
	}
}
