package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/peerllm/peerllm/internal/testenv"
)

// TestOpenAINodeClient drives the orchestrator with the official openai npm
// package (test/node). It skips when node or npm is missing, except under
// CI=true, where it fails.
func TestOpenAINodeClient(t *testing.T) {
	node, errNode := exec.LookPath("node")
	npm, errNpm := exec.LookPath("npm")
	if errNode != nil || errNpm != nil {
		msg := "node and npm are needed for the openai npm client test (apt-get install nodejs npm)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "test", "node")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "openai", "package.json")); err != nil {
		cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci in test/node: %v\n%s", err, out)
		}
	}
	c := newCluster(t, 2, 0)
	cmd := exec.Command(node, "client.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PEERLLM_BASE_URL="+c.o.API+"/v1", "PEERLLM_API_KEY="+c.key, "PEERLLM_MODEL="+model)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		err = <-done
	}
	if err != nil {
		t.Fatalf("node client: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	var out struct {
		Models []string
		Chat   struct {
			Text, Finish string
		}
		Completion struct {
			Text, Finish string
		}
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("node output %q: %v", stdout.String(), err)
	}
	g := goldenCases(t)[0]
	if !strings.HasPrefix(g.completion(), out.Completion.Text) || out.Completion.Text == "" || out.Completion.Finish != "length" {
		t.Fatalf("completion via the openai client: %+v", out.Completion)
	}
}
