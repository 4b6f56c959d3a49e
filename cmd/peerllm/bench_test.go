package main

import (
	"bytes"
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/peerllm/peerllm/internal/engine/gguf"
	"github.com/peerllm/peerllm/internal/engine/llama"
	"github.com/peerllm/peerllm/internal/testenv"
)

// TestBenchEngine runs `peerllm bench engine` on stories260K and on a small
// generated model (a real decode, a few positions) and checks the figures
// it prints; timing values are not asserted.
func TestBenchEngine(t *testing.T) {
	dir := testenv.ModelsDir(t)
	var out bytes.Buffer
	err := benchEngine(context.Background(), []string{"--model", filepath.Join(dir, "stories260K.bin"), "--positions", "32", "--runs", "2"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	want := regexp.MustCompile(`(?m)^stories260K \(F32, 0\.26M parameters, [0-9.]+ MB of weights per token\): load .+\n  1 thread\(s\), greedy, 32 positions: [0-9]+ tok/s best, [0-9]+ median \(wall, 2 runs\)`)
	if !want.Match(out.Bytes()) {
		t.Errorf("output:\n%s", out.String())
	}

	// A generated model through the same path (the 110M one takes too long
	// for a test).
	p := filepath.Join(t.TempDir(), "tiny.gguf")
	s := llama.Shape{Dim: 64, Hidden: 128, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 300, Context: 64}
	if err := llama.WriteRandomModel(p, s, gguf.TypeQ8_0); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := benchEngine(context.Background(), []string{"--model", p, "--positions", "64", "--runs", "1", "--threads", "2"}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "tiny (Q8_0, ") || !strings.Contains(out.String(), "2 thread(s), greedy, 64 positions") {
		t.Errorf("output:\n%s", out.String())
	}
	if err := benchEngine(context.Background(), []string{"--model", p, "--positions", "65"}, &out); err == nil || !strings.Contains(err.Error(), "context is 64") {
		t.Errorf("65 positions in a 64 context: %v", err)
	}
}

func TestBenchDispatch(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "which benchmark"},
		{[]string{"nope"}, `unknown benchmark "nope" (have bandwidth, engine`},
		{[]string{"engine", "--positions", "0"}, "must be positive"},
		{[]string{"bandwidth", "extra"}, `unexpected argument "extra"`},
	} {
		err := runBench(context.Background(), c.args)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("bench %q: %v, want %q", c.args, err, c.want)
		}
	}
}

func TestBenchBandwidth(t *testing.T) {
	var out bytes.Buffer
	if err := benchBandwidth(context.Background(), []string{"--threads", "2", "--size-mb", "8", "--passes", "1"}, &out); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?s)1 thread\(s\): [0-9.]+ GB/s\n  2 thread\(s\): [0-9.]+ GB/s`).Match(out.Bytes()) {
		t.Errorf("output:\n%s", out.String())
	}
}
