package llama_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/peerllm/peerllm/internal/engine"
	"github.com/peerllm/peerllm/internal/engine/llama"
	"github.com/peerllm/peerllm/internal/testenv"
)

// goldenCase is one llama2.c run recorded in shared/models/golden.json.
type goldenCase struct {
	Name         string  `json:"name"`
	Prompt       *string `json:"prompt"`
	Steps        int     `json:"steps"`
	Stdout       string  `json:"stdout"`
	PromptIDs    []int   `json:"prompt_token_ids"`
	GeneratedIDs []int   `json:"generated_token_ids"`
	StoppedOnBOS bool    `json:"stopped_on_bos"`
}

func loadGolden(t testing.TB) []goldenCase {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testenv.ModelsDir(t), "golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		Cases []goldenCase `json:"cases"`
	}
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Cases) == 0 {
		t.Fatal("golden.json has no cases")
	}
	return g.Cases
}

// modelFiles are the two encodings of stories260K that must agree with
// llama2.c.
func modelFiles(t testing.TB) map[string]string {
	d := testenv.ModelsDir(t)
	return map[string]string{
		"bin":  filepath.Join(d, "stories260K.bin"),
		"gguf": filepath.Join(d, "stories260K.gguf"),
	}
}

func load(t testing.TB, path string, opts llama.Options) *llama.Engine {
	t.Helper()
	e, err := llama.Load(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// runLikeLlama2c generates as llama2.c's run does and returns the ids and
// the stdout text it would print.
func runLikeLlama2c(t testing.TB, e *llama.Engine, prompt string, steps int) ([]int, []int, string) {
	t.Helper()
	ids := e.Encode(prompt, true)
	var out strings.Builder
	for i := 1; i < len(ids); i++ {
		out.WriteString(e.Piece(ids[i-1], ids[i]))
	}
	var gen []int
	req := engine.Request{MaxTokens: steps - len(ids) + 1}
	_, err := e.Complete(context.Background(), ids, req, func(tok engine.Token) error {
		gen = append(gen, tok.ID)
		out.WriteString(tok.Text)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	out.WriteString("\n")
	return ids, gen, out.String()
}

func TestGoldenLlama2c(t *testing.T) {
	cases := loadGolden(t)
	for kind, path := range modelFiles(t) {
		e := load(t, path, llama.Options{Threads: 1})
		for _, c := range cases {
			t.Run(kind+"/"+c.Name, func(t *testing.T) {
				prompt := ""
				if c.Prompt != nil {
					prompt = *c.Prompt
				}
				ids, gen, stdout := runLikeLlama2c(t, e, prompt, c.Steps)
				if !equalInts(ids, c.PromptIDs) {
					t.Fatalf("prompt ids %v, want %v", ids, c.PromptIDs)
				}
				if !equalInts(gen, c.GeneratedIDs) {
					t.Errorf("generated ids differ at %d:\n got %v\nwant %v", firstDiff(gen, c.GeneratedIDs), gen, c.GeneratedIDs)
				}
				if stdout != c.Stdout {
					t.Errorf("stdout differs:\n got %q\nwant %q", stdout, c.Stdout)
				}
			})
		}
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func firstDiff(a, b []int) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
