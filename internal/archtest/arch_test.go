// Package archtest holds tests that keep the architecture true: which
// packages may depend on which, and that every package says what it owns.
// It has no non-test code and nothing imports it.
package archtest

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/peerllm/peerllm"

// hostSide packages run on community hosts; they must never pull in the
// orchestrator's packages (a host must not even carry that code).
var hostSide = []string{
	"internal/agent",
	"internal/engine",
	"internal/engine/...",
}

// orchestratorSide packages must never pull in engine implementations: the
// orchestrator does no inference of its own.
var orchestratorSide = []string{
	"internal/orchestrator",
	"internal/httpapi",
	"internal/dispatch",
	"internal/router",
	"internal/registry",
	"internal/ledger",
	"internal/safety",
	"internal/privacy",
	"internal/pipeline",
	"internal/auth",
	"internal/billing",
	"internal/governance",
	"internal/web",
	"internal/stages",
}

var orchestratorOnly = []string{
	"internal/orchestrator", "internal/httpapi", "internal/dispatch", "internal/router",
	"internal/registry", "internal/ledger", "internal/safety", "internal/privacy",
	"internal/pipeline", "internal/auth", "internal/store", "internal/billing",
	"internal/governance", "internal/web",
	"internal/stages",
}

var engineImpls = []string{
	"internal/engine/llama", "internal/engine/gguf", "internal/engine/openai",
	"internal/engine/ollama", "internal/engine/benchengine",
}

type pkg struct {
	ImportPath string
	Doc        string
	Name       string
	Deps       []string
	GoFiles    []string
	Error      *struct{ Err string }
}

func list(t *testing.T, patterns ...string) []pkg {
	t.Helper()
	args := append([]string{"list", "-e", "-json=ImportPath,Doc,Name,Deps,GoFiles,Error"}, patterns...)
	cmd := exec.Command("go", args...)
	cmd.Dir = "../.."
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(out)
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("decode go list: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("go list: %v", err)
	}
	return pkgs
}

func rel(path string) string { return strings.TrimPrefix(path, module+"/") }

func within(path string, prefixes []string) bool {
	for _, p := range prefixes {
		if path == p || strings.HasPrefix(path, p+"/") {
			return true
		}
	}
	return false
}

func patterns(dirs []string) []string {
	var ps []string
	for _, d := range dirs {
		ps = append(ps, "./"+d)
	}
	return ps
}

func TestHostSideNeverImportsOrchestrator(t *testing.T) {
	for _, p := range list(t, patterns(hostSide)...) {
		if p.Error != nil && len(p.GoFiles) == 0 {
			continue // a directory with only tests or nothing yet
		}
		for _, d := range p.Deps {
			if within(rel(d), orchestratorOnly) {
				t.Errorf("%s (host side) depends on %s (orchestrator side)", rel(p.ImportPath), rel(d))
			}
		}
	}
}

func TestOrchestratorNeverImportsEngines(t *testing.T) {
	for _, p := range list(t, patterns(orchestratorSide)...) {
		if p.Error != nil && len(p.GoFiles) == 0 {
			continue
		}
		for _, d := range p.Deps {
			if within(rel(d), engineImpls) {
				t.Errorf("%s (orchestrator side) depends on engine implementation %s", rel(p.ImportPath), rel(d))
			}
		}
	}
}

func TestBinaryCarriesNoTestCode(t *testing.T) {
	for _, p := range list(t, "./cmd/peerllm") {
		for _, d := range p.Deps {
			if d == "testing" || within(rel(d), []string{"internal/testenv", "internal/archtest", "internal/engine/enginetest"}) {
				t.Errorf("the peerllm binary depends on %s", d)
			}
		}
	}
}

func TestEveryPackageHasADocComment(t *testing.T) {
	for _, p := range list(t, "./...") {
		if len(p.GoFiles) == 0 {
			continue
		}
		if strings.TrimSpace(p.Doc) == "" {
			t.Errorf("%s has no package doc comment", rel(p.ImportPath))
		}
	}
}
