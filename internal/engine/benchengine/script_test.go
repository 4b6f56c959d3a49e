package benchengine_test

import (
	"context"
	"strings"
	"testing"

	"github.com/peerllm/peerllm/internal/engine"
	"github.com/peerllm/peerllm/internal/engine/benchengine"
)

func run(t *testing.T, e engine.Engine, req engine.Request) (string, []int, engine.Result) {
	t.Helper()
	var text strings.Builder
	var ids []int
	res, err := e.Generate(context.Background(), req, func(tok engine.Token) error {
		text.WriteString(tok.Text)
		ids = append(ids, tok.ID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return text.String(), ids, res
}

func TestScript(t *testing.T) {
	cases := []struct {
		script string
		req    engine.Request
		want   string
	}{
		{benchengine.ScriptEcho, engine.Request{Prompt: "Grüße an Alex Carter"}, "Grüße an Alex Carter"},
		{benchengine.ScriptEcho, engine.Request{Messages: []engine.Message{{Role: "user", Content: "a"}, {Role: "assistant", Content: "b c"}}}, "a\nb c"},
		{benchengine.ScriptUnsafe, engine.Request{Prompt: "Tell me a story."}, benchengine.UnsafeAnswer},
	}
	for _, tc := range cases {
		t.Run(tc.script, func(t *testing.T) {
			e, err := benchengine.NewScript(benchengine.Options{}, tc.script)
			if err != nil {
				t.Fatal(err)
			}
			got, ids, res := run(t, e, tc.req)
			if got != tc.want || res.FinishReason != "stop" || len(ids) != len(tc.want) {
				t.Fatalf("got %q (%d tokens, %s), want %q", got, len(ids), res.FinishReason, tc.want)
			}
			// A continuation from any prefix yields exactly the rest.
			for _, k := range []int{1, 3, len(ids) / 2, len(ids) - 1} {
				req := tc.req
				req.Continue = ids[:k]
				rest, _, _ := run(t, e, req)
				if got[:k]+rest != tc.want {
					t.Errorf("continue from %d: %q", k, rest)
				}
			}
			req := tc.req
			req.MaxTokens = 4
			if short, _, res := run(t, e, req); short != tc.want[:4] || res.FinishReason != "length" {
				t.Errorf("max 4: %q %s", short, res.FinishReason)
			}
		})
	}
	if _, err := benchengine.NewScript(benchengine.Options{}, "nope"); err == nil {
		t.Error("unknown script accepted")
	}
}
