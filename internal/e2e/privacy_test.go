package e2e

import (
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/peerllm/peerllm/internal/testenv"
)

// recordedHost starts a host whose NATS traffic from the orchestrator passes
// through a recorder.
func recordedHost(t *testing.T, o *testenv.Orchestrator, name string) (*testenv.Host, *recorder) {
	t.Helper()
	rec := startRecorder(t, "127.0.0.1:"+strconv.Itoa(o.NATSPort))
	creds := o.AddHost(t, name, name+"-owner", "eu-west")
	creds.URL = rec.URL()
	return o.RunHost(t, creds, testenv.HostOptions{Name: name}), rec
}

// TestHostsSeeNoConsumerIdentity: every byte a host receives is recorded;
// none carries the consumer's API key, key id, account, address or `user`.
func TestHostsSeeNoConsumerIdentity(t *testing.T) {
	o := testenv.StartOrchestrator(t, testenv.OrchestratorOptions{})
	var created struct {
		Key    struct{ ID, Account string }
		Secret string
	}
	if code := o.Do(t, "POST", "/admin/v1/keys", o.AdminToken, map[string]string{"name": "acct-canary-7731", "account": "acct-canary-7731"}, &created); code != 201 {
		t.Fatalf("create key: %d", code)
	}
	_, rec := recordedHost(t, o, "rec1")
	o.WaitHosts(t, created.Secret, model, 1)

	const prompt = "Lily and Tom went to the"
	// The consumer calls from 127.0.0.2, an address nothing else uses.
	hc := client("127.0.0.2")
	for _, stream := range []bool{false, true} {
		for _, path := range []string{"/v1/completions", "/v1/chat/completions"} {
			body := map[string]any{"model": model, "max_tokens": 8, "temperature": 0, "stream": stream, "user": "user-canary-5520"}
			if strings.Contains(path, "chat") {
				body["messages"] = []map[string]string{{"role": "user", "content": prompt}}
			} else {
				body["prompt"] = prompt
			}
			r := complete(ctxTimeout(t, time.Minute), t, hc, o.API, path, created.Secret, body, nil)
			if r.Status != 200 {
				t.Fatalf("%s: %d %s", path, r.Status, r.Body)
			}
		}
	}
	seen := rec.Seen()
	// The names in prompt reach hosts as stand-ins (privacy stage); the
	// rest of it proves a task arrived.
	if !strings.Contains(seen, " went to the") {
		t.Fatalf("the recorder saw no task (%d bytes); the test would prove nothing", len(seen))
	}
	for _, secret := range []string{created.Secret, created.Key.ID, "acct-canary-7731", "user-canary-5520", "127.0.0.2", "Bearer"} {
		if strings.Contains(seen, secret) {
			t.Errorf("a host received %q", secret)
		}
	}
}

// TestNoRetention: a canary prompt leaves no trace in the data directory,
// the logs (at debug level) or any /metrics.
func TestNoRetention(t *testing.T) {
	c := newCluster(t, 2, 0, "--log-level", "debug")
	const canary = "Zebracanary quokka 90411 walked to the"
	var answer string
	for _, stream := range []bool{false, true} {
		body := map[string]any{"model": model, "prompt": canary, "max_tokens": 40, "temperature": 0, "stream": stream}
		r := complete(ctxTimeout(t, time.Minute), t, nil, c.o.API, "/v1/completions", c.key, body, nil)
		if r.Status != 200 || len(r.Text) < 20 {
			t.Fatalf("%d %q %s", r.Status, r.Text, r.Body)
		}
		answer = r.Text
	}
	needles := []string{"Zebracanary", "quokka 90411", strings.TrimSpace(answer)}
	check := func(where, text string) {
		for _, n := range needles {
			if strings.Contains(text, n) {
				t.Errorf("%s holds %q", where, n)
			}
		}
	}
	// Let the orchestrator flush its database (WAL checkpoint on close).
	for _, h := range c.hosts {
		check("host "+h.Name+" metrics", get(t, "http://"+h.MetricsAddr()+"/metrics"))
	}
	check("orchestrator metrics", get(t, c.o.API+"/metrics"))
	for _, h := range c.hosts {
		h.Terminate(10 * time.Second)
		check("host "+h.Name+" log", h.Logs())
	}
	c.o.Terminate(10 * time.Second)
	check("orchestrator log", c.o.Logs())
	files := 0
	filepath.WalkDir(c.o.DataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		files++
		check(path, string(b))
		return nil
	})
	if files == 0 {
		t.Fatal("the data directory is empty; the test would prove nothing")
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return b.String()
}
