package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/peerllm/peerllm/internal/testenv"
)

// TestGenerateGolden runs `peerllm generate` greedily on every llama2.c
// golden case, from the .bin checkpoint and from the GGUF, and compares
// stdout byte for byte with llama2.c's run.
func TestGenerateGolden(t *testing.T) {
	dir := testenv.ModelsDir(t)
	data, err := os.ReadFile(filepath.Join(dir, "golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		Cases []struct {
			Name      string  `json:"name"`
			Prompt    *string `json:"prompt"`
			Steps     int     `json:"steps"`
			Stdout    string  `json:"stdout"`
			PromptIDs []int   `json:"prompt_token_ids"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Cases) == 0 {
		t.Fatal("no golden cases")
	}
	for _, model := range []string{"stories260K.bin", "stories260K.gguf"} {
		for _, c := range g.Cases {
			t.Run(model+"/"+c.Name, func(t *testing.T) {
				args := []string{"--model", filepath.Join(dir, model), "--temperature", "0", "--threads", "1",
					"--max-tokens", strconv.Itoa(c.Steps - len(c.PromptIDs) + 1)}
				if c.Prompt != nil {
					args = append(args, "--prompt", *c.Prompt)
				}
				var stdout, stderr bytes.Buffer
				if err := generate(context.Background(), args, &stdout, &stderr); err != nil {
					t.Fatalf("generate: %v (stderr %q)", err, stderr.String())
				}
				if stdout.String() != c.Stdout {
					t.Errorf("stdout\n got %q\nwant %q", stdout.String(), c.Stdout)
				}
				if !strings.Contains(stderr.String(), "tok/s") {
					t.Errorf("stderr has no speed: %q", stderr.String())
				}
			})
		}
	}
}

func TestGenerateErrors(t *testing.T) {
	dir := testenv.ModelsDir(t)
	tests := []struct {
		name  string
		args  []string
		usage bool
		want  string
	}{
		{"no model", []string{"--prompt", "x"}, true, "--model is required"},
		{"missing model", []string{"--model", filepath.Join(t.TempDir(), "nope.gguf"), "--models-dir", t.TempDir()}, false, "not"},
		{"bad flag", []string{"--model", "x", "--bogus"}, true, "bogus"},
		{"negative max tokens", []string{"--model", "x", "--max-tokens", "-1"}, true, "--max-tokens"},
		{"negative temperature", []string{"--model", "x", "--temperature", "-1"}, true, "--temperature"},
		{"NaN temperature", []string{"--model", "x", "--temperature", "NaN"}, true, "--temperature"},
		{"top-p above 1", []string{"--model", "x", "--top-p", "5"}, true, "--top-p"},
		{"negative top-k", []string{"--model", "x", "--top-k", "-2"}, true, "--top-k"},
		{"min-p above 1", []string{"--model", "x", "--min-p", "2"}, true, "--min-p"},
		{"negative repeat penalty", []string{"--model", "x", "--repeat-penalty", "-1"}, true, "--repeat-penalty"},
		{"negative threads", []string{"--model", "x", "--threads", "-1"}, true, "--threads"},
		{"prompt over the context", []string{"--model", filepath.Join(dir, "stories260K.gguf"), "--context", "16", "--prompt", strings.Repeat("once upon a time ", 20)}, false, "context"},
		{"wrong tokenizer", []string{"--model", filepath.Join(dir, "stories260K.bin"), "--tokenizer", filepath.Join(dir, "stories260K.gguf")}, false, "tokenizer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := generate(context.Background(), tc.args, &stdout, &stderr)
			if err == nil {
				t.Fatal("no error")
			}
			var ue usageError
			if errors.As(err, &ue) != tc.usage {
				t.Errorf("usage error = %v, want %v (%v)", !tc.usage, tc.usage, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
			if stdout.Len() > 0 {
				t.Errorf("a failed run printed %q on stdout", stdout.String())
			}
		})
	}
}
