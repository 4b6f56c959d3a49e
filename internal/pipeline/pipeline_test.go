package pipeline_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/peerllm/peerllm/internal/pipeline"
)

// holdWord releases text only up to the last space (a windowed screen) and
// stops when it sees bad.
type holdWord struct {
	held, bad string
}

func (h *holdWord) Write(s string) (string, *pipeline.Stop) {
	h.held += s
	if h.bad != "" && strings.Contains(h.held, h.bad) {
		return "", &pipeline.Stop{Reason: "content_filter"}
	}
	i := strings.LastIndexByte(h.held, ' ')
	if i < 0 {
		return "", nil
	}
	out := h.held[:i+1]
	h.held = h.held[i+1:]
	return out, nil
}

func (h *holdWord) Close() (string, *pipeline.Stop) {
	out := h.held
	h.held = ""
	return out, nil
}

// replace restores stand-ins: it swaps old for new.
type replace struct{ old, new string }

func (r *replace) Write(s string) (string, *pipeline.Stop) {
	return strings.ReplaceAll(s, r.old, r.new), nil
}
func (r *replace) Close() (string, *pipeline.Stop) { return "", nil }

type stage struct {
	name  string
	admit func(*pipeline.Request) error
	nf    pipeline.NewFilter
}

func (s stage) Name() string { return s.name }
func (s stage) Admit(_ context.Context, r *pipeline.Request) (pipeline.NewFilter, error) {
	if s.admit != nil {
		if err := s.admit(r); err != nil {
			return nil, err
		}
	}
	return s.nf, nil
}

func run(f pipeline.Filter, pieces ...string) (string, *pipeline.Stop) {
	var out strings.Builder
	for _, p := range pieces {
		rel, stop := f.Write(p)
		out.WriteString(rel)
		if stop != nil {
			f.Close()
			return out.String(), stop
		}
	}
	rel, stop := f.Close()
	out.WriteString(rel)
	return out.String(), stop
}

func TestChain(t *testing.T) {
	screen := func(bad string) stage {
		return stage{name: "screen", nf: func() pipeline.Filter { return &holdWord{bad: bad} }}
	}
	restore := stage{name: "restore", admit: func(r *pipeline.Request) error {
		r.Prompt = strings.ReplaceAll(r.Prompt, "Alice", "P1")
		return nil
	}, nf: func() pipeline.Filter { return &replace{old: "P1", new: "Alice"} }}
	cases := []struct {
		name   string
		stages []pipeline.Stage
		pieces []string
		want   string
		stop   bool
	}{
		{"empty chain passes through", nil, []string{"a", "b c"}, "ab c", false},
		{"screen then restore", []pipeline.Stage{screen(""), restore}, []string{"P", "1 met ", "P1", " today"}, "Alice met Alice today", false},
		{"stop keeps approved text", []pipeline.Stage{screen("bad"), restore}, []string{"P1 is ", "ba", "d news"}, "Alice is ", true},
		{"stop on the last piece", []pipeline.Stage{screen("bad")}, []string{"fine ", "bad"}, "fine ", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ch := &pipeline.Chain{Stages: c.stages}
			req := &pipeline.Request{Prompt: "Alice says"}
			adm, err := ch.Admit(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			got, stop := run(adm.Output(), c.pieces...)
			if got != c.want || (stop != nil) != c.stop {
				t.Fatalf("got %q stop=%v, want %q stop=%v", got, stop, c.want, c.stop)
			}
			if len(c.stages) > 1 && req.Prompt != "P1 says" {
				t.Fatalf("prompt not rewritten: %q", req.Prompt)
			}
		})
	}
}

func TestRefusal(t *testing.T) {
	ran := false
	ch := &pipeline.Chain{Stages: []pipeline.Stage{
		stage{name: "safety", admit: func(*pipeline.Request) error {
			return &pipeline.Refusal{Code: "content_policy_violation", Message: "no", Categories: []string{"violence"}}
		}},
		stage{name: "later", admit: func(*pipeline.Request) error { ran = true; return nil }},
	}}
	_, err := ch.Admit(context.Background(), &pipeline.Request{Prompt: "x"})
	var r *pipeline.Refusal
	if !errors.As(err, &r) || r.Categories[0] != "violence" || ran {
		t.Fatalf("err=%v ran=%v", err, ran)
	}
	ch = &pipeline.Chain{Stages: []pipeline.Stage{stage{name: "broken", admit: func(*pipeline.Request) error { return errors.New("boom") }}}}
	if _, err := ch.Admit(context.Background(), &pipeline.Request{}); err == nil || !strings.Contains(err.Error(), "stage broken") {
		t.Fatalf("err=%v", err)
	}
}
