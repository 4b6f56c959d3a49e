// Package e2e tests PeerLLM as a consumer and an operator meet it: real
// `peerllm serve` and `peerllm host` processes on 127.0.0.1, the tiny model,
// real NATS, real SQLite, real HTTP. The binary is built once per run.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/peerllm/peerllm/internal/testenv"
)

const model = "stories260K"

func TestMain(m *testing.M) { testenv.Main(m) }

// golden is one case of shared/models/golden.json.
type golden struct {
	Name      string  `json:"name"`
	Prompt    *string `json:"prompt"`
	Text      string  `json:"text"`
	PromptIDs []int   `json:"prompt_token_ids"`
	Generated []int   `json:"generated_token_ids"`
}

// completion is the part of the golden text after the prompt.
func (g golden) completion() string { return strings.TrimPrefix(g.Text, *g.Prompt) }

func goldenCases(t *testing.T) []golden {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.ModelsDir(t), "golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct{ Cases []golden }
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	var out []golden
	for _, c := range f.Cases {
		if c.Prompt != nil && strings.HasPrefix(c.Text, *c.Prompt) {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		t.Fatal("no prompted golden cases")
	}
	return out
}

// cluster is an orchestrator with hosts.
type cluster struct {
	o     *testenv.Orchestrator
	key   string
	hosts []*testenv.Host
}

// newCluster starts an orchestrator and n hosts (throttled to tps tokens/s
// when > 0), each with its own owner and region, and waits until all serve.
func newCluster(t *testing.T, n int, tps float64, serveArgs ...string) *cluster {
	t.Helper()
	o := testenv.StartOrchestrator(t, testenv.OrchestratorOptions{Args: serveArgs})
	c := &cluster{o: o, key: o.CreateKey(t, "e2e")}
	regions := []string{"eu-west", "us-east", "ap-south"}
	for i := 0; i < n; i++ {
		c.hosts = append(c.hosts, o.StartHost(t, testenv.HostOptions{
			Name: fmt.Sprintf("h%d", i+1), Owner: fmt.Sprintf("owner%d", i+1), Region: regions[i%len(regions)], Throttle: tps,
		}))
	}
	o.WaitHosts(t, c.key, model, n)
	return c
}

// metric reads one series from a host's /metrics (summing over labels).
func metric(t *testing.T, h *testenv.Host, name string) float64 {
	t.Helper()
	v, err := metricSum("http://"+h.MetricsAddr()+"/metrics", name)
	if err != nil {
		t.Fatalf("host %s metrics: %v", h.Name, err)
	}
	return v
}

// metricsClient times out, so a paused (SIGSTOP) host cannot hang a test.
var metricsClient = &http.Client{Timeout: 2 * time.Second}

func metricSum(url, name string) (float64, error) {
	resp, err := metricsClient.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	sum, found := 0.0, false
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "#") || !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		var v float64
		f := strings.Fields(rest)
		if _, err := fmt.Sscan(f[len(f)-1], &v); err != nil {
			return 0, err
		}
		sum, found = sum+v, true
	}
	if !found {
		return 0, fmt.Errorf("metric %s not found", name)
	}
	return sum, nil
}

// busyHosts returns the live hosts with a task in flight.
func busyHosts(t *testing.T, hs []*testenv.Host) []*testenv.Host {
	t.Helper()
	var out []*testenv.Host
	for _, h := range hs {
		if h.Exited() {
			continue
		}
		v, err := metricSum("http://"+h.MetricsAddr()+"/metrics", "peerllm_host_in_flight")
		if err == nil && v > 0 {
			out = append(out, h)
		}
	}
	return out
}

// result is what a consumer received.
type result struct {
	Status       int
	Text         string
	Finish       string
	PromptTokens int
	Completion   int
	Done         bool   // the stream ended with data: [DONE]
	ErrorEvent   string // a final error event, if any
	Body         string // non-streaming body or error JSON
}

// client sends requests from a chosen local address, so tests can prove the
// consumer's address never reaches a host.
func client(local string) *http.Client {
	d := &net.Dialer{}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

// complete posts body to path and reads the answer; for a stream it calls
// onText (if set) with the text so far after every event.
func complete(ctx context.Context, t *testing.T, hc *http.Client, api, path, key string, body map[string]any, onText func(text string)) result {
	t.Helper()
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, "POST", api+path, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	r := result{Status: resp.StatusCode}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		raw, _ := io.ReadAll(resp.Body)
		r.Body = string(raw)
		if resp.StatusCode == 200 {
			var v struct {
				Choices []struct {
					Text         string `json:"text"`
					FinishReason string `json:"finish_reason"`
					Message      struct{ Content string }
				}
				Usage struct {
					PromptTokens     int `json:"prompt_tokens"`
					CompletionTokens int `json:"completion_tokens"`
				}
			}
			if err := json.Unmarshal(raw, &v); err != nil {
				t.Fatalf("decode %q: %v", raw, err)
			}
			r.Text = v.Choices[0].Text + v.Choices[0].Message.Content
			r.Finish = v.Choices[0].FinishReason
			r.PromptTokens, r.Completion = v.Usage.PromptTokens, v.Usage.CompletionTokens
		}
		return r
	}
	var text strings.Builder
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if r.Done {
			t.Fatalf("event after [DONE]: %q", data)
		}
		if data == "[DONE]" {
			r.Done = true
			continue
		}
		var ev struct {
			Error   json.RawMessage `json:"error"`
			Choices []struct {
				Text         string `json:"text"`
				Delta        struct{ Content string }
				FinishReason *string `json:"finish_reason"`
			}
			Usage *struct {
				PromptTokens     int `json:"prompt_tokens"`
				CompletionTokens int `json:"completion_tokens"`
			}
		}
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			t.Fatalf("event %q: %v", data, err)
		}
		if len(ev.Error) > 0 {
			r.ErrorEvent = string(ev.Error)
			continue
		}
		for _, c := range ev.Choices {
			text.WriteString(c.Text + c.Delta.Content)
			if c.FinishReason != nil {
				r.Finish = *c.FinishReason
			}
		}
		if ev.Usage != nil {
			r.PromptTokens, r.Completion = ev.Usage.PromptTokens, ev.Usage.CompletionTokens
		}
		if onText != nil {
			onText(text.String())
		}
	}
	r.Text = text.String()
	return r
}

// recorder is a TCP proxy between a host and the orchestrator's NATS port
// that keeps every byte sent to the host: what a host operator could see.
type recorder struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	toHost testenv.SyncBuffer
	wg     sync.WaitGroup
	conns  []net.Conn
	closed bool
}

func startRecorder(t *testing.T, target string) *recorder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{ln: ln, target: target}
	r.wg.Add(1)
	go r.accept()
	t.Cleanup(r.close)
	return r
}

func (r *recorder) URL() string { return "nats://" + r.ln.Addr().String() }

func (r *recorder) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", r.target)
		if err != nil {
			c.Close()
			continue
		}
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			c.Close()
			up.Close()
			return
		}
		r.conns = append(r.conns, c, up)
		r.mu.Unlock()
		r.wg.Add(2)
		go func() { // host → orchestrator
			defer r.wg.Done()
			io.Copy(up, c)
			up.Close()
		}()
		go func() { // orchestrator → host, recorded
			defer r.wg.Done()
			io.Copy(io.MultiWriter(c, &r.toHost), up)
			c.Close()
		}()
	}
}

// Seen returns everything sent to the host so far.
func (r *recorder) Seen() string { return r.toHost.String() }

func (r *recorder) close() {
	r.ln.Close()
	r.mu.Lock()
	r.closed = true
	for _, c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func errorf(format string, a ...any) error { return fmt.Errorf(format, a...) }
