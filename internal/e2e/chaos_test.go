package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/peerllm/peerllm/internal/testenv"
)

// TestChaos breaks hosts while they stream an answer. Every time, the
// consumer must receive exactly the uninterrupted greedy text, a proper
// finish, usage and [DONE].
func TestChaos(t *testing.T) {
	g := goldenCases(t)[0]
	want := g.completion()
	cases := []struct {
		name string
		mode string
		// act breaks hosts once the answer is under way; it returns how
		// many hosts it broke.
		act func(t *testing.T, c *cluster) int
	}{
		{"kill -9 the streaming host", "off", func(t *testing.T, c *cluster) int {
			busy := busyHosts(t, c.hosts)
			for _, h := range busy {
				h.Kill()
			}
			return len(busy)
		}},
		{"SIGSTOP the streaming host", "off", func(t *testing.T, c *cluster) int {
			busy := busyHosts(t, c.hosts)
			for _, h := range busy {
				h.Pause()
			}
			return len(busy)
		}},
		{"kill -9 the main of a hedged answer", "hedged", func(t *testing.T, c *cluster) int {
			busy := busyHosts(t, c.hosts)
			for _, h := range busy {
				h.Kill()
			}
			return len(busy)
		}},
		{"SIGSTOP one of main and backup", "parallel", func(t *testing.T, c *cluster) int {
			busy := busyHosts(t, c.hosts)
			if len(busy) == 0 {
				return 0
			}
			busy[0].Pause()
			return 1
		}},
		{"kill two of three one after the other", "parallel", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // mostly waiting on throttled hosts
			c := newCluster(t, 3, 40)
			// The chaos happens from the consumer's read loop, once enough
			// of the answer has arrived. A host is "busy" by its in-flight
			// gauge; between two segments none may be, so an action that
			// found nobody to break is retried on the next event.
			broke := 0
			killed := map[*testenv.Host]bool{}
			kill := func() {
				for _, h := range busyHosts(t, c.hosts) {
					if !killed[h] {
						killed[h] = true
						h.Kill()
						broke++
						return
					}
				}
			}
			onText := func(text string) {
				n := len(text)
				switch {
				case tc.act != nil && broke == 0 && n > len(want)/4:
					broke = tc.act(t, c)
				case tc.act == nil && broke == 0 && n > len(want)/4:
					kill()
				case tc.act == nil && broke == 1 && n > len(want)/2:
					kill()
				}
			}
			body := map[string]any{"model": model, "prompt": *g.Prompt, "temperature": 0,
				"max_tokens": len(g.Generated), "stream": true, "stream_options": map[string]any{"include_usage": true},
				"redundancy": tc.mode}
			r := complete(ctxTimeout(t, 2*time.Minute), t, nil, c.o.API, "/v1/completions", c.key, body, onText)
			if tc.act == nil && broke < 2 || broke < 1 {
				t.Fatalf("broke %d hosts; the answer finished before the chaos", broke)
			}
			if r.ErrorEvent != "" {
				t.Fatalf("error event: %s", r.ErrorEvent)
			}
			if r.Text != want {
				t.Fatalf("text differs from the uninterrupted answer\n got: %q\nwant: %q", r.Text, want)
			}
			if !r.Done || r.Finish != "length" {
				t.Fatalf("done=%v finish=%q", r.Done, r.Finish)
			}
			if r.Completion != len(g.Generated) || r.PromptTokens != len(g.PromptIDs) {
				t.Fatalf("usage prompt=%d completion=%d, want %d and %d", r.PromptTokens, r.Completion, len(g.PromptIDs), len(g.Generated))
			}
			for _, h := range c.hosts {
				h.Resume()
			}
		})
	}
}

// TestConsumerDisconnect: a consumer that goes away mid-stream gets its host
// tasks cancelled.
func TestConsumerDisconnect(t *testing.T) {
	c := newCluster(t, 2, 20)
	g := goldenCases(t)[0]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	body := map[string]any{"model": model, "prompt": *g.Prompt, "temperature": 0, "max_tokens": len(g.Generated), "stream": true}
	var before float64
	for _, h := range c.hosts {
		before += metric(t, h, "peerllm_host_tasks_cancelled_total")
	}
	b, _ := json.Marshal(body)
	req, _ := http.NewRequestWithContext(ctx, "POST", c.o.API+"/v1/completions", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+c.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	// Read a little of the answer, then go away.
	buf := make([]byte, 256)
	got := 0
	for got < 600 {
		n, err := resp.Body.Read(buf)
		got += n
		if err != nil {
			t.Fatalf("stream ended before the disconnect: %v", err)
		}
	}
	cancel()
	resp.Body.Close()
	testenv.Eventually(t, 30*time.Second, "host tasks cancelled", func() error {
		var after float64
		for _, h := range c.hosts {
			after += metric(t, h, "peerllm_host_tasks_cancelled_total")
		}
		if after <= before {
			return errorf("cancelled tasks %v -> %v", before, after)
		}
		return nil
	})
	testenv.Eventually(t, 30*time.Second, "hosts idle", func() error {
		if b := busyHosts(t, c.hosts); len(b) > 0 {
			return errorf("%d hosts still busy", len(b))
		}
		return nil
	})
}

// TestOrchestratorRestart: hosts reconnect to a restarted orchestrator on
// the same address and serve again; keys survive in the database.
func TestOrchestratorRestart(t *testing.T) {
	opt := testenv.OrchestratorOptions{DataDir: t.TempDir(), APIPort: testenv.FreePort(t), NATSPort: testenv.FreePort(t)}
	o := testenv.StartOrchestrator(t, opt)
	key := o.CreateKey(t, "restart")
	for i, owner := range []string{"a", "b"} {
		o.StartHost(t, testenv.HostOptions{Name: "r" + owner, Owner: owner, Region: []string{"eu-west", "us-east"}[i]})
	}
	o.WaitHosts(t, key, model, 2)
	g := goldenCases(t)[0]
	body := map[string]any{"model": model, "prompt": *g.Prompt, "temperature": 0, "max_tokens": 24}
	first := complete(ctxTimeout(t, time.Minute), t, nil, o.API, "/v1/completions", key, body, nil)
	if first.Status != 200 || !strings.HasPrefix(g.completion(), first.Text) || first.Text == "" {
		t.Fatalf("before restart: %d %q %s", first.Status, first.Text, first.Body)
	}
	if err := o.Terminate(15 * time.Second); err != nil {
		t.Fatalf("orchestrator stop: %v\n%s", err, o.Logs())
	}
	opt.AdminToken = o.AdminToken
	o2 := testenv.StartOrchestrator(t, opt)
	o2.WaitHosts(t, key, model, 2)
	second := complete(ctxTimeout(t, time.Minute), t, nil, o2.API, "/v1/completions", key, body, nil)
	if second.Status != 200 || second.Text != first.Text {
		t.Fatalf("after restart: %d %q, want %q %s", second.Status, second.Text, first.Text, second.Body)
	}
}
