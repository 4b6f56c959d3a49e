package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/peerllm/peerllm/internal/engine"
	"github.com/peerllm/peerllm/internal/engine/llama"
	"github.com/peerllm/peerllm/internal/engine/models"
)

// runGenerate is `peerllm generate`: load a model with the built-in engine,
// print the prompt and its completion to stdout exactly as llama2.c's run
// prints them, and the speed to stderr.
func runGenerate(ctx context.Context, args []string) error {
	return generate(ctx, args, os.Stdout, os.Stderr)
}

func generate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("generate")
	model := fs.String("model", "", "model file (GGUF or llama2.c .bin) or name")
	modelsDir := fs.String("models-dir", os.Getenv("PEERLLM_MODELS"), "directory searched for model names (default $PEERLLM_MODELS)")
	tokPath := fs.String("tokenizer", "", "llama2.c tokenizer for a .bin model (default tokenizer.bin or tok512.bin beside it)")
	prompt := fs.String("prompt", "", "prompt text (empty: start from BOS alone)")
	maxTokens := fs.Int("max-tokens", 256, "tokens to generate after the prompt (0: until end of text or a full context)")
	temp := fs.Float64("temperature", 1.0, "sampling temperature; 0 is greedy")
	topP := fs.Float64("top-p", 0.9, "nucleus sampling threshold; 0 or 1 turns it off")
	topK := fs.Int("top-k", 0, "sample among the k most likely tokens; 0 turns it off")
	minP := fs.Float64("min-p", 0, "drop tokens less likely than min-p times the best; 0 turns it off")
	repeat := fs.Float64("repeat-penalty", 1, "penalty for recently generated tokens; 1 turns it off")
	seed := fs.Uint64("seed", 0, "random seed (default: the current time)")
	threads := fs.Int("threads", 0, "cores used for matrix products (default: all)")
	ctxLen := fs.Int("context", 0, "context length cap in tokens (default: the model's)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *model == "" {
		return usagef("--model is required")
	}
	switch {
	case *maxTokens < 0:
		return usagef("--max-tokens must not be negative")
	case !(*temp >= 0):
		return usagef("--temperature must not be negative")
	case !(*topP >= 0 && *topP <= 1):
		return usagef("--top-p must be between 0 and 1")
	case *topK < 0:
		return usagef("--top-k must not be negative")
	case !(*minP >= 0 && *minP <= 1):
		return usagef("--min-p must be between 0 and 1")
	case !(*repeat >= 0):
		return usagef("--repeat-penalty must not be negative")
	case *threads < 0, *ctxLen < 0:
		return usagef("--threads and --context must not be negative")
	}
	seedSet := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "seed" {
			seedSet = true
		}
	})
	if !seedSet {
		*seed = uint64(time.Now().UnixNano())
	}

	t0 := time.Now()
	path, err := models.Resolve(ctx, *model, models.Options{Dir: *modelsDir, Progress: stderr})
	if err != nil {
		return err
	}
	e, err := llama.Load(path, llama.Options{TokenizerPath: *tokPath, Threads: *threads, ContextLength: *ctxLen})
	if err != nil {
		return err
	}
	defer e.Close()
	loadTime := time.Since(t0)

	out := bufio.NewWriter(stdout)
	ids := e.Encode(*prompt, true)
	if n := e.Info().ContextLength; n > 0 && len(ids) > n {
		// Refuse before echoing the prompt, so stdout holds no partial run.
		return fmt.Errorf("the prompt is %d tokens, the context %d: %w", len(ids), n, engine.ErrContextLength)
	}
	for i := 1; i < len(ids); i++ {
		writePiece(out, e.Piece(ids[i-1], ids[i]))
	}
	if err := out.Flush(); err != nil {
		return err
	}
	req := engine.Request{
		MaxTokens: *maxTokens,
		Sampling: engine.Sampling{
			Temperature: float32(*temp), TopP: float32(*topP), TopK: *topK,
			MinP: float32(*minP), RepeatPenalty: float32(*repeat), Seed: *seed,
		},
	}
	t1 := time.Now()
	res, genErr := e.Complete(ctx, ids, req, func(tok engine.Token) error {
		writePiece(out, tok.Text)
		return out.Flush()
	})
	elapsed := time.Since(t1)
	fmt.Fprintln(out)
	if err := out.Flush(); err != nil && genErr == nil {
		genErr = err
	}
	if genErr != nil && !errors.Is(genErr, context.Canceled) {
		return genErr
	}
	nthreads := *threads
	if nthreads <= 0 {
		nthreads = runtime.NumCPU()
	}
	// As llama2.c: positions processed after the first, over the time.
	n := res.Usage.PromptTokens + res.Usage.CompletionTokens - 1
	if n > 0 && elapsed > 0 {
		fmt.Fprintf(stderr, "achieved tok/s: %.1f (%d prompt + %d generated tokens in %v, %d cached; load %v; %s %s, %d threads)\n",
			float64(n)/elapsed.Seconds(), res.Usage.PromptTokens, res.Usage.CompletionTokens, elapsed.Round(time.Microsecond),
			res.Usage.CachedTokens, loadTime.Round(time.Microsecond), e.Info().Model, e.Info().Quantization, nthreads)
	}
	return genErr
}

// writePiece prints a piece as llama2.c's safe_printf does: a lone byte
// that is neither printable nor whitespace (a fragment of a multi-byte
// character, a control code) is dropped.
func writePiece(w *bufio.Writer, p string) {
	if len(p) == 1 {
		c := p[0]
		if !(c >= 0x20 && c < 0x7f) && !(c == ' ' || (c >= '\t' && c <= '\r')) {
			return
		}
	}
	w.WriteString(p)
}
