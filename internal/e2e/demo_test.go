package e2e

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/peerllm/peerllm/internal/testenv"
)

// TestDemo runs the README's first command: `peerllm demo` brings up an
// orchestrator and three hosts as separate processes, answers with the key it
// printed, and stops every child on Ctrl-C.
func TestDemo(t *testing.T) {
	api := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	key := "pk-e2e-demo-key-0123456789abcdef0123"
	d := testenv.StartProc(t, "demo", "demo", "--listen", api, "--nats-listen", "127.0.0.1:"+strconv.Itoa(testenv.FreePort(t)),
		"--hosts", "3", "--api-key", key, "--data-dir", t.TempDir())
	testenv.Eventually(t, 90*time.Second, "demo ready", func() error {
		if d.Exited() {
			t.Fatalf("demo exited: %v\n%s", d.Err(), d.Logs())
		}
		if !strings.Contains(d.Logs(), "Press Ctrl-C") {
			return errors.New("not yet")
		}
		return nil
	})
	if !strings.Contains(d.Logs(), key) || !strings.Contains(d.Logs(), "curl http://"+api) {
		t.Fatalf("banner lacks the key or the curl line:\n%s", d.Logs())
	}
	g := goldenCases(t)[0]
	r := complete(ctxTimeout(t, time.Minute), t, nil, "http://"+api, "/v1/completions", key,
		map[string]any{"model": model, "prompt": *g.Prompt, "temperature": 0, "max_tokens": len(g.Generated), "stream": true}, nil)
	if r.Status != 200 || r.Text != g.completion() || !r.Done {
		t.Fatalf("demo answer: %d %q done=%v %s", r.Status, r.Text, r.Done, r.Body)
	}
	children := childPIDs(t, d.Cmd.Process.Pid)
	if len(children) != 4 {
		t.Fatalf("demo has %d children, want 4 (serve and 3 hosts)", len(children))
	}
	d.Signal(syscall.SIGINT)
	select {
	case <-d.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("demo did not stop within 30s of SIGINT")
	}
	if err := d.Err(); err != nil {
		t.Fatalf("demo exit: %v", err)
	}
	for _, pid := range children {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("child %d still running after the demo stopped", pid)
		}
	}
}

// childPIDs lists the processes whose parent is pid (Linux /proc).
func childPIDs(t *testing.T, pid int) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Skip("no /proc: cannot list children")
	}
	var out []int
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, n)
		}
	}
	return out
}
