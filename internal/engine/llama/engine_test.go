package llama_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/peerllm/peerllm/internal/engine"
	"github.com/peerllm/peerllm/internal/engine/llama"
	"github.com/peerllm/peerllm/internal/testenv"
)

// collect runs Generate and returns the emitted tokens.
func collect(t *testing.T, e engine.Engine, req engine.Request) ([]engine.Token, engine.Result) {
	t.Helper()
	var toks []engine.Token
	res, err := e.Generate(context.Background(), req, func(tok engine.Token) error {
		toks = append(toks, tok)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return toks, res
}

func ids(toks []engine.Token) []int {
	out := make([]int, len(toks))
	for i, t := range toks {
		out[i] = t.ID
	}
	return out
}

func text(toks []engine.Token) string {
	var b strings.Builder
	for _, t := range toks {
		b.WriteString(t.Text)
	}
	return b.String()
}

// TestContinuation checks that 40 tokens and then a continuation of 60
// produce exactly the 100 tokens of one uninterrupted run, greedy and
// sampled, on a fresh engine (no cache) and on the same one (cache).
func TestContinuation(t *testing.T) {
	files := modelFiles(t)
	cases := []struct {
		kind, name string
		s          engine.Sampling
	}{
		{"bin", "greedy", engine.Sampling{}},
		{"gguf", "sampled", engine.Sampling{Temperature: 0.9, TopP: 0.95, Seed: 7}},
		{"gguf", "top-k", engine.Sampling{Temperature: 1.2, TopK: 20, MinP: 0.01, RepeatPenalty: 1.1, Seed: 99}},
	}
	for _, tc := range cases {
		path, name, s, kind := files[tc.kind], tc.name, tc.s, tc.kind
		t.Run(kind+"/"+name, func(t *testing.T) {
			t.Parallel()
			whole := load(t, path, llama.Options{Threads: 1})
			all, res := collect(t, whole, engine.Request{Prompt: "Lily and Tom", MaxTokens: 100, Sampling: s})
			if len(all) != 100 || res.FinishReason != "length" {
				t.Fatalf("%d tokens, finish %q", len(all), res.FinishReason)
			}
			for i, tok := range all {
				if tok.Index != i {
					t.Fatalf("token %d has index %d", i, tok.Index)
				}
			}
			// A host that never saw the first part computes it all.
			fresh := load(t, path, llama.Options{Threads: 1})
			rest, res := collect(t, fresh, engine.Request{Prompt: "Lily and Tom", Continue: ids(all[:40]), MaxTokens: 60, Sampling: s})
			if !slices.Equal(ids(rest), ids(all[40:])) || res.Usage.CachedTokens != 0 {
				t.Fatalf("continuation on a fresh engine differs (cached %d)", res.Usage.CachedTokens)
			}
			for _, reuse := range []bool{false, true} {
				e := whole
				if !reuse {
					e = load(t, path, llama.Options{Threads: 1})
				}
				first, _ := collect(t, e, engine.Request{Prompt: "Lily and Tom", MaxTokens: 40, Sampling: s})
				rest, res := collect(t, e, engine.Request{Prompt: "Lily and Tom", Continue: ids(first), MaxTokens: 60, Sampling: s})
				got := append(ids(first), ids(rest)...)
				if !slices.Equal(got, ids(all)) {
					t.Fatalf("reuse=%v: 40+60 differs from 100 at %d", reuse, firstDiff(got, ids(all)))
				}
				if rest[0].Index != 40 {
					t.Errorf("first continued token has index %d, want 40", rest[0].Index)
				}
				if text(first)+text(rest) != text(all) {
					t.Errorf("texts differ")
				}
				// The continuation re-sends prompt + 40 tokens; all but the
				// last are in the slot's cache.
				if want := len(e.Encode("Lily and Tom", true)) + 40 - 1; res.Usage.CachedTokens != want {
					t.Errorf("cached %d tokens, want %d", res.Usage.CachedTokens, want)
				}
			}
		})
	}
}

func TestStopSequences(t *testing.T) {
	e := load(t, modelFiles(t)["bin"], llama.Options{Threads: 1})
	all, _ := collect(t, e, engine.Request{Prompt: "Once upon a time", MaxTokens: 60})
	full := text(all) // ", there was a little girl named Lily. She loved to play outside..."
	tests := []struct {
		name string
		stop []string
		cont int // tokens generated before, sent as Continue
		want string
	}{
		{"mid token", []string{"girl na"}, 0, strings.Split(full, "girl na")[0]},
		{"earliest of two", []string{"Lily", "little"}, 0, strings.Split(full, "little")[0]},
		{"absent", []string{"dragon"}, 0, full},
		{"across continue", []string{"little girl"}, 5, ""},
		{"after continue", []string{"Lily."}, 3, strings.Split(full, "Lily.")[0]},
		{"empty ignored", []string{""}, 0, full},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := engine.Request{Prompt: "Once upon a time", MaxTokens: 60 - tc.cont, Stop: tc.stop, Continue: ids(all[:tc.cont])}
			toks, res := collect(t, e, req)
			got := text(all[:tc.cont]) + text(toks)
			want := tc.want
			if tc.name == "across continue" {
				want = strings.Split(full, "little girl")[0]
				if len(want) > len(text(all[:tc.cont])) {
					t.Fatalf("test setup: stop does not straddle the continue boundary")
				}
				got = text(all[:tc.cont])[:len(want)] + text(toks)
			}
			if got != want {
				t.Errorf("text %q, want %q", got, want)
			}
			wantFinish := "stop"
			if want == full {
				wantFinish = "length"
			}
			if res.FinishReason != wantFinish {
				t.Errorf("finish %q, want %q", res.FinishReason, wantFinish)
			}
		})
	}
}

func TestRequestErrors(t *testing.T) {
	e := load(t, modelFiles(t)["bin"], llama.Options{Threads: 1, ContextLength: 32})
	long := strings.Repeat("Once upon a time there was a girl. ", 20)
	tests := []struct {
		name string
		req  engine.Request
		want error
	}{
		{"empty", engine.Request{}, engine.ErrBadRequest},
		{"both", engine.Request{Prompt: "a", Messages: []engine.Message{{Role: "user", Content: "b"}}}, engine.ErrBadRequest},
		{"negative max", engine.Request{Prompt: "a", MaxTokens: -1}, engine.ErrBadRequest},
		{"bad temperature", engine.Request{Prompt: "a", Sampling: engine.Sampling{Temperature: -1}}, engine.ErrBadRequest},
		{"bad top-p", engine.Request{Prompt: "a", Sampling: engine.Sampling{TopP: 2}}, engine.ErrBadRequest},
		{"bad continue id", engine.Request{Prompt: "a", Continue: []int{100000}}, engine.ErrBadRequest},
		{"prompt too long", engine.Request{Prompt: long}, engine.ErrContextLength},
		{"continue too long", engine.Request{Prompt: "a", Continue: make([]int, 40)}, engine.ErrContextLength},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			emitted := 0
			_, err := e.Generate(context.Background(), tc.req, func(engine.Token) error { emitted++; return nil })
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if emitted != 0 {
				t.Errorf("%d tokens emitted before the error", emitted)
			}
		})
	}
	for _, bad := range [][]int{nil, {-1}, {1, 512}} {
		if _, err := e.Complete(context.Background(), bad, engine.Request{}, func(engine.Token) error { return nil }); !errors.Is(err, engine.ErrBadRequest) {
			t.Errorf("Complete(%v): %v, want ErrBadRequest", bad, err)
		}
	}
	// A full context ends with "length", never an error.
	toks, res := collect(t, e, engine.Request{Prompt: "Once upon a time"})
	if res.FinishReason != "length" || len(toks) != 32-5+1 {
		t.Errorf("full context: %d tokens, finish %q", len(toks), res.FinishReason)
	}
}

func TestCancelAndEmitError(t *testing.T) {
	e := load(t, modelFiles(t)["gguf"], llama.Options{Threads: 1})
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	_, err := e.Generate(ctx, engine.Request{Prompt: "Once"}, func(engine.Token) error {
		n++
		if n == 3 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || n != 3 {
		t.Fatalf("cancelled: err %v after %d tokens, want context.Canceled after 3", err, n)
	}
	boom := errors.New("client went away")
	n = 0
	_, err = e.Generate(context.Background(), engine.Request{Prompt: "Once"}, func(engine.Token) error {
		n++
		return boom
	})
	if !errors.Is(err, boom) || n != 1 {
		t.Fatalf("emit error: %v after %d tokens", err, n)
	}
	// The engine still works, and its cache is consistent.
	a, _ := collect(t, e, engine.Request{Prompt: "Once", MaxTokens: 20})
	b, _ := collect(t, load(t, modelFiles(t)["gguf"], llama.Options{Threads: 1}), engine.Request{Prompt: "Once", MaxTokens: 20})
	if !slices.Equal(ids(a), ids(b)) {
		t.Fatal("generation after a cancelled one differs from a fresh engine")
	}
}

// TestSlots runs generations concurrently on a multi-slot engine; each must
// equal the single-slot result.
func TestSlots(t *testing.T) {
	path := modelFiles(t)["gguf"]
	e := load(t, path, llama.Options{Threads: 2, Slots: 3})
	ref := load(t, path, llama.Options{Threads: 1})
	prompts := []string{"Once upon a time", "Lily and Tom", "The cat", "A big dog", "Sue had"}
	want := map[string][]int{}
	for _, p := range prompts {
		toks, _ := collect(t, ref, engine.Request{Prompt: p, MaxTokens: 30})
		want[p] = ids(toks)
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(prompts)*2)
	for range 2 {
		for _, p := range prompts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var got []int
				_, err := e.Generate(context.Background(), engine.Request{Prompt: p, MaxTokens: 30}, func(tok engine.Token) error {
					got = append(got, tok.ID)
					return nil
				})
				if err == nil && !slices.Equal(got, want[p]) {
					err = errors.New("concurrent result differs for " + p)
				}
				errs <- err
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func TestInfo(t *testing.T) {
	tests := []struct {
		file string
		opts llama.Options
		want engine.Info
	}{
		{"stories260K.bin", llama.Options{}, engine.Info{Model: "stories260K", Architecture: "llama", ContextLength: 512, Quantization: "F32", VocabSize: 512}},
		{"stories260K.gguf", llama.Options{Name: "tiny", ContextLength: 512}, engine.Info{Model: "tiny", Architecture: "llama", ContextLength: 512, Quantization: "F32", VocabSize: 512}},
		{"quant/synth-llama-q8_0.gguf", llama.Options{}, engine.Info{Architecture: "llama", ContextLength: 256, Quantization: "Q8_0", VocabSize: 512}},
		{"quant/synth-llama-q4_k_m.gguf", llama.Options{}, engine.Info{Architecture: "llama", ContextLength: 256, Quantization: "Q4_K_M", VocabSize: 512}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			e := load(t, filepath.Join(testenv.ModelsDir(t), tc.file), tc.opts)
			got := e.Info()
			if got.Parameters <= 0 {
				t.Errorf("parameters %d", got.Parameters)
			}
			got.Parameters = 0
			if tc.want.Model == "" {
				tc.want.Model = got.Model
			}
			if got != tc.want {
				t.Errorf("info %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestMessages(t *testing.T) {
	e := load(t, modelFiles(t)["gguf"], llama.Options{Threads: 1})
	// stories260K has no chat template: contents are joined with "\n".
	a, _ := collect(t, e, engine.Request{Messages: []engine.Message{{Role: "system", Content: "Once upon"}, {Role: "user", Content: "a time"}}, MaxTokens: 10})
	b, _ := collect(t, e, engine.Request{Prompt: "Once upon\na time", MaxTokens: 10})
	if !slices.Equal(ids(a), ids(b)) {
		t.Errorf("messages %v, prompt %v", ids(a), ids(b))
	}
	_, err := e.Generate(context.Background(), engine.Request{Messages: []engine.Message{{Role: "wizard", Content: "x"}}}, func(engine.Token) error { return nil })
	if !errors.Is(err, engine.ErrBadRequest) {
		t.Errorf("unknown role: %v", err)
	}
}
