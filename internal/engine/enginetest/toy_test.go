package enginetest_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/peerllm/peerllm/internal/engine"
	"github.com/peerllm/peerllm/internal/engine/enginetest"
)

func TestToyConforms(t *testing.T) {
	enginetest.Run(t, func(t *testing.T) engine.Engine {
		return enginetest.NewToy(enginetest.ToyConfig{})
	}, enginetest.Options{Greedy: true, Seeded: true, Messages: true})
}

func TestToyStopSequences(t *testing.T) {
	toy := enginetest.NewToy(enginetest.ToyConfig{})
	collect := func(req engine.Request) (string, []engine.Token, engine.Result) {
		var toks []engine.Token
		var b strings.Builder
		res, err := toy.Generate(context.Background(), req, func(tok engine.Token) error {
			toks = append(toks, tok)
			b.WriteString(tok.Text)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return b.String(), toks, res
	}
	ref, _, _ := collect(engine.Request{Prompt: "Once upon a time", MaxTokens: 40})
	if len(ref) < 40 {
		t.Fatalf("reference too short: %q", ref)
	}
	// Stops that start mid-token and straddle token boundaries.
	for _, at := range []int{3, 10, 17, 25} {
		stop := ref[at : at+6]
		want := ref[:strings.Index(ref, stop)]
		got, toks, res := collect(engine.Request{Prompt: "Once upon a time", MaxTokens: 40, Stop: []string{stop}})
		if got != want || res.FinishReason != "stop" {
			t.Errorf("stop %q: got %q (%s), want %q", stop, got, res.FinishReason, want)
		}
		for i, tok := range toks {
			if tok.Index != i {
				t.Errorf("stop %q: token %d has index %d", stop, i, tok.Index)
			}
		}
	}
	// A stop sequence that never completes holds nothing back at the end.
	got, _, res := collect(engine.Request{Prompt: "Once upon a time", MaxTokens: 40, Stop: []string{ref[len(ref)-2:] + "zzz"}})
	if got != ref || res.FinishReason != "length" {
		t.Errorf("unmatched stop: got %q (%s), want %q", got, res.FinishReason, ref)
	}
}

// brokenEngine breaks one promise of the contract, to show the suite notices.
type brokenEngine struct {
	*enginetest.Toy
	kind string
}

func (b brokenEngine) Generate(ctx context.Context, req engine.Request, emit func(engine.Token) error) (engine.Result, error) {
	switch b.kind {
	case "ignores-max-tokens":
		req.MaxTokens = 0
		n := 0
		return b.Toy.Generate(ctx, req, func(tok engine.Token) error {
			if n++; n > 50 {
				return errors.New("enough")
			}
			return emit(tok)
		})
	case "index-ignores-continue":
		return b.Toy.Generate(ctx, req, func(tok engine.Token) error {
			tok.Index -= len(req.Continue)
			return emit(tok)
		})
	case "ignores-cancel":
		return b.Toy.Generate(context.Background(), req, emit)
	case "swallows-emit-error":
		res, _ := b.Toy.Generate(ctx, req, func(tok engine.Token) error { emit(tok); return nil })
		return res, nil
	case "plain-context-error":
		res, err := b.Toy.Generate(ctx, req, emit)
		if errors.Is(err, engine.ErrContextLength) {
			err = errors.New("too long")
		}
		return res, err
	case "emits-stop-text":
		req.Stop = nil
		return b.Toy.Generate(ctx, req, emit)
	}
	return b.Toy.Generate(ctx, req, emit)
}

// TestBrokenEngineHelper runs the suite on a broken engine when
// TestSuiteCatchesBrokenEngines starts this binary to do so.
func TestBrokenEngineHelper(t *testing.T) {
	kind := os.Getenv("ENGINETEST_BROKEN")
	if kind == "" {
		t.Skip("run by TestSuiteCatchesBrokenEngines")
	}
	enginetest.Run(t, func(t *testing.T) engine.Engine {
		return brokenEngine{enginetest.NewToy(enginetest.ToyConfig{}), kind}
	}, enginetest.Options{Greedy: true, Seeded: true, Messages: true})
}

func TestSuiteCatchesBrokenEngines(t *testing.T) {
	for kind, check := range map[string]string{
		"ignores-max-tokens":     "MaxTokens",
		"index-ignores-continue": "Continuation",
		"ignores-cancel":         "CancelMidStream",
		"swallows-emit-error":    "EmitErrorStops",
		"plain-context-error":    "ContextLength",
		"emits-stop-text":        "StopSequence",
	} {
		t.Run(kind, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenEngineHelper$", "-test.v")
			cmd.Env = append(os.Environ(), "ENGINETEST_BROKEN="+kind)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("suite passed a broken engine:\n%s", out)
			}
			if !strings.Contains(string(out), "--- FAIL: TestBrokenEngineHelper/"+check) {
				t.Errorf("want subtest %s to fail; output:\n%s", check, out)
			}
		})
	}
}
