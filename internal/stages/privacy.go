package stages

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/peerllm/peerllm/internal/pipeline"
	"github.com/peerllm/peerllm/internal/privacy"
)

// Privacy is the pseudonymisation stage. Admit replaces the personal
// identifiers of the prompt (or of every message, in order, so one person is
// one stand-in across the conversation) and of the stop sequences with
// stand-ins from a privacy.Session made for this request; its output filter
// puts the originals back with the session's Restorer. The mapping lives
// only in the closure of the returned NewFilter, in memory, and dies with the
// request.
//
// With a Sanitizer (an LLM on an operator-trusted backend, never a community
// host: it sees the raw text) its detections are merged into the scanner's;
// when it fails, the scanner's alone are used and the failure is counted.
type Privacy struct {
	Scanner   *privacy.Scanner // required
	Sanitizer privacy.Sanitizer
	Metrics   *Metrics
	Log       *slog.Logger
}

// Name implements pipeline.Stage.
func (p *Privacy) Name() string { return "privacy" }

// Admit implements pipeline.Stage. It never refuses. When nothing was
// replaced it returns no filter, so the answer passes untouched.
func (p *Privacy) Admit(ctx context.Context, req *pipeline.Request) (pipeline.NewFilter, error) {
	start := time.Now()
	m := p.Metrics.get()
	defer m.observeAdmit("privacy", start)
	ss := p.Scanner.NewSession()
	replaced := 0
	var anonErr error
	anon := func(text string) string {
		if p.Sanitizer != nil && anonErr == nil {
			extra, err := p.Sanitizer.Detect(ctx, text)
			if err == nil {
				out := ss.AnonymizeWith(text, extra)
				if out != text {
					replaced++
				}
				return out
			}
			if ctx.Err() != nil {
				anonErr = ctx.Err()
				return text
			}
			m.sanitizerError()
			if p.Log != nil {
				p.Log.Warn("privacy sanitizer failed; built-in detections used", "request_id", req.ID, "err", err)
			}
		}
		out, ents := ss.AnonymizeEntities(text)
		for _, e := range ents {
			m.entityAdd(e.Type)
		}
		replaced += len(ents)
		return out
	}
	if req.Messages != nil {
		// A copy: the caller's parsed request keeps the originals.
		msgs := slices.Clone(req.Messages)
		for i := range msgs {
			msgs[i].Content = anon(msgs[i].Content)
		}
		req.Messages = msgs
	} else {
		req.Prompt = anon(req.Prompt)
	}
	if len(req.Stop) > 0 {
		// Stop sequences go to hosts too; a name in one is a name sent.
		stops := slices.Clone(req.Stop)
		for i := range stops {
			stops[i] = ss.Anonymize(stops[i])
			if stops[i] != req.Stop[i] {
				replaced++
			}
		}
		req.Stop = stops
	}
	if anonErr != nil {
		return nil, anonErr
	}
	if replaced == 0 {
		return nil, nil
	}
	return func() pipeline.Filter { return &restoreFilter{r: ss.NewRestorer()} }, nil
}

// restoreFilter restores one answer stream.
type restoreFilter struct{ r *privacy.Restorer }

func (f *restoreFilter) Write(text string) (string, *pipeline.Stop) { return f.r.Write(text), nil }
func (f *restoreFilter) Close() (string, *pipeline.Stop)            { return f.r.Flush(), nil }
