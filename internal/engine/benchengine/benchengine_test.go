package benchengine_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/peerllm/peerllm/internal/engine"
	"github.com/peerllm/peerllm/internal/engine/benchengine"
	"github.com/peerllm/peerllm/internal/engine/enginetest"
)

func TestConformance(t *testing.T) {
	for _, mb := range []bool{false, true} {
		t.Run(map[bool]string{false: "ascii", true: "multibyte"}[mb], func(t *testing.T) {
			enginetest.Run(t, func(t *testing.T) engine.Engine {
				return benchengine.New(benchengine.Options{ContextLength: 256, Multibyte: mb})
			}, enginetest.Options{Greedy: true, Seeded: true, Messages: true})
		})
	}
}

func collect(t *testing.T, e engine.Engine, req engine.Request) ([]engine.Token, engine.Result) {
	t.Helper()
	var toks []engine.Token
	res, err := e.Generate(context.Background(), req, func(tok engine.Token) error {
		toks = append(toks, tok)
		return nil
	})
	if err != nil {
		t.Fatalf("generate: %v", err)
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

func TestContinuationMatchesUninterrupted(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts benchengine.Options
		req  engine.Request
	}{
		{"greedy prompt", benchengine.Options{}, engine.Request{Prompt: "Once upon a time", MaxTokens: 40}},
		{"seeded messages", benchengine.Options{Multibyte: true}, engine.Request{
			Messages: []engine.Message{{Role: "user", Content: "hi"}}, MaxTokens: 40,
			Sampling: engine.Sampling{Temperature: 0.8, Seed: 7},
		}},
		{"eos", benchengine.Options{EOSAt: 25}, engine.Request{Prompt: "x"}},
		{"stop", benchengine.Options{}, engine.Request{Prompt: "Once upon a time", MaxTokens: 200, Stop: []string{" cat sat"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := benchengine.New(tc.opts)
			full, fullRes := collect(t, e, tc.req)
			if len(full) == 0 {
				t.Fatal("no tokens")
			}
			for i, tok := range full {
				if tok.Index != i {
					t.Fatalf("token %d has index %d", i, tok.Index)
				}
				if want := e.Token(tc.req, i); want.ID != tok.ID || want.Text != tok.Text {
					t.Fatalf("token %d: Token() = %+v, Generate gave %+v", i, want, tok)
				}
			}
			for k := range len(full) {
				req := tc.req
				req.Continue = ids(full[:k])
				if req.MaxTokens > 0 {
					req.MaxTokens -= k
				}
				rest, res := collect(t, e, req)
				if !slices.Equal(ids(rest), ids(full[k:])) {
					t.Fatalf("continuing after %d tokens: got %v, want %v", k, ids(rest), ids(full[k:]))
				}
				if len(rest) > 0 && rest[0].Index != k {
					t.Fatalf("continuation starts at index %d, want %d", rest[0].Index, k)
				}
				if res.FinishReason != fullRes.FinishReason || res.Usage.CompletionTokens != len(rest) {
					t.Fatalf("continuation result %+v, uninterrupted %+v", res, fullRes)
				}
			}
		})
	}
}

func TestStreamShape(t *testing.T) {
	e := benchengine.New(benchengine.Options{Multibyte: true, ContextLength: 300})
	greedy := engine.Request{Prompt: "one two three"}
	toks, res := collect(t, e, greedy)
	if res.FinishReason != "length" || len(toks)+benchengine.PromptTokens(greedy) != 300 {
		t.Fatalf("unbounded run: %d tokens, %+v", len(toks), res)
	}
	if res.Usage.PromptTokens != 4 || res.Usage.CompletionTokens != len(toks) {
		t.Fatalf("usage %+v", res.Usage)
	}
	var text strings.Builder
	partial := 0
	for _, tok := range toks {
		text.WriteString(tok.Text)
		if !utf8.ValidString(tok.Text) {
			partial++
		}
	}
	if !utf8.ValidString(text.String()) {
		t.Fatal("joined text is not valid UTF-8")
	}
	if partial == 0 {
		t.Fatal("Multibyte produced no split characters")
	}
	if text.String() != benchengine.Decode(ids(toks)) {
		t.Fatal("Decode disagrees with token texts")
	}

	seeded := func(seed uint64, temp float32) []int {
		r := greedy
		r.MaxTokens = 20
		r.Sampling = engine.Sampling{Temperature: temp, Seed: seed}
		toks, _ := collect(t, e, r)
		return ids(toks)
	}
	if !slices.Equal(seeded(1, 0), seeded(2, 0)) {
		t.Fatal("greedy output depends on the seed")
	}
	if slices.Equal(seeded(1, 0.7), seeded(2, 0.7)) {
		t.Fatal("sampled output ignores the seed")
	}
	if !slices.Equal(seeded(3, 0.7), seeded(3, 0.7)) {
		t.Fatal("same seed, different output")
	}
	other, _ := collect(t, e, engine.Request{Prompt: "four five", MaxTokens: 20})
	if slices.Equal(ids(other), seeded(1, 0)) {
		t.Fatal("output ignores the prompt")
	}
}

func TestStopSequence(t *testing.T) {
	e := benchengine.New(benchengine.Options{})
	req := engine.Request{Prompt: "p", MaxTokens: 50}
	full, _ := collect(t, e, req)
	fullText := benchengine.Decode(ids(full))
	for _, tc := range []struct {
		name string
		stop string
	}{
		{"two tokens", full[10].Text + full[11].Text},
		{"inside a token", full[20].Text[1:] + full[21].Text[:2]},
		{"with a held prefix", full[30].Text + full[31].Text + full[32].Text},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := req
			r.Stop = []string{"never there", tc.stop}
			toks, res := collect(t, e, r)
			got := ""
			for _, tok := range toks {
				got += tok.Text
			}
			want := fullText[:strings.Index(fullText, tc.stop)]
			if res.FinishReason != "stop" || got != want {
				t.Fatalf("finish %q, text %q, want %q", res.FinishReason, got, want)
			}
			if res.Usage.CompletionTokens != len(toks) {
				t.Fatalf("usage counts %d tokens, emitted %d", res.Usage.CompletionTokens, len(toks))
			}
			// Continuing from any emitted prefix stops at the same place.
			for k := 0; k < len(toks) && toks[k].Text == full[k].Text; k++ {
				r.Continue = ids(full[:k])
				r.MaxTokens = 50 - k
				rest, _ := collect(t, e, r)
				cont := fullText[:len(benchengine.Decode(r.Continue))]
				for _, tok := range rest {
					cont += tok.Text
				}
				if cont != want {
					t.Fatalf("continuing after %d tokens: %q, want %q", k, cont, want)
				}
			}
		})
	}
	// A stop sequence never completed releases every held token.
	r := req
	r.Stop = []string{full[49].Text + "zzz"}
	toks, res := collect(t, e, r)
	if len(toks) != 50 || res.FinishReason != "length" {
		t.Fatalf("%d tokens, finish %q", len(toks), res.FinishReason)
	}
}

func TestErrors(t *testing.T) {
	e := benchengine.New(benchengine.Options{ContextLength: 10})
	for _, tc := range []struct {
		name string
		req  engine.Request
		want error
	}{
		{"empty", engine.Request{}, engine.ErrBadRequest},
		{"both", engine.Request{Prompt: "a", Messages: []engine.Message{{Role: "user", Content: "b"}}}, engine.ErrBadRequest},
		{"negative max", engine.Request{Prompt: "a", MaxTokens: -1}, engine.ErrBadRequest},
		{"bad top_p", engine.Request{Prompt: "a", Sampling: engine.Sampling{TopP: 2}}, engine.ErrBadRequest},
		{"bad continue", engine.Request{Prompt: "a", Continue: []int{1 << 20}}, engine.ErrBadRequest},
		{"long prompt", engine.Request{Prompt: strings.Repeat("w ", 9)}, engine.ErrContextLength},
		{"long continue", engine.Request{Prompt: "a", Continue: make([]int, 8)}, engine.ErrContextLength},
	} {
		t.Run(tc.name, func(t *testing.T) {
			emitted := 0
			_, err := e.Generate(context.Background(), tc.req, func(engine.Token) error { emitted++; return nil })
			if !errors.Is(err, tc.want) || emitted != 0 {
				t.Fatalf("err %v after %d tokens, want %v before any", err, emitted, tc.want)
			}
		})
	}
}

func TestCancellation(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := benchengine.New(benchengine.Options{})
	n := 0
	_, err := e.Generate(ctx, engine.Request{Prompt: "a"}, func(engine.Token) error {
		n++
		if n == 5 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || n != 5 {
		t.Fatalf("err %v after %d tokens", err, n)
	}
	emitErr := errors.New("consumer gone")
	if _, err := e.Generate(context.Background(), engine.Request{Prompt: "a"}, func(engine.Token) error { return emitErr }); !errors.Is(err, emitErr) {
		t.Fatalf("emit error not returned: %v", err)
	}
	hold := benchengine.New(benchengine.Options{BeforeToken: func(ctx context.Context, i int) error {
		if i == 3 {
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	}})
	ctx2, cancel2 := context.WithCancel(context.Background())
	got := 0
	_, err = hold.Generate(ctx2, engine.Request{Prompt: "a"}, func(engine.Token) error {
		got++
		if got == 3 {
			cancel2()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || got != 3 {
		t.Fatalf("held generation: err %v after %d tokens", err, got)
	}
	if e.Close() != nil {
		t.Fatal("close")
	}
	if _, err := e.Generate(context.Background(), engine.Request{Prompt: "a"}, func(engine.Token) error { return nil }); err == nil {
		t.Fatal("generate after close")
	}
}

func BenchmarkGenerate(b *testing.B) {
	e := benchengine.New(benchengine.Options{ContextLength: 1 << 20})
	req := engine.Request{Prompt: "Once upon a time", MaxTokens: 1000}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Generate(context.Background(), req, func(engine.Token) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "tokens/s")
}
