package stages

import (
	"context"
	"errors"
	"log/slog"

	"github.com/peerllm/peerllm/internal/pipeline"
	"github.com/peerllm/peerllm/internal/privacy"
	"github.com/peerllm/peerllm/internal/registry"
	"github.com/peerllm/peerllm/internal/safety"
	"github.com/prometheus/client_golang/prometheus"
)

// Screening is one orchestrator's screening set-up: what `peerllm serve`
// builds from its flags before the orchestrator starts.
type Screening struct {
	// Checker screens prompts (and, with its Classifier, answers) and serves
	// /v1/moderations; required.
	Checker *safety.Checker
	// Safety turns the safety stage on (default in serve; --no-safety off).
	Safety bool
	// Scanner, when set, turns the privacy stage on.
	Scanner *privacy.Scanner
	// Sanitizer is the privacy stage's optional second detector.
	Sanitizer privacy.Sanitizer
	// Stream configures the output screen.
	Stream safety.StreamOptions
	// Policy is the Checker's policy (zero: safety.DefaultPolicy()).
	Policy safety.Policy
	// AnswerMargin raises the answer screen's thresholds (Safety.AnswerMargin).
	AnswerMargin float64
}

// Pipeline builds the stages in their required order (safety, then
// privacy) and the Strikes meter (with safety on) over reg. It fits
// orchestrator.Config.Pipeline. With metrics, a Checker without an Observe
// hook gets one: each screen's latency and verdict per source (built-in,
// AI stage) become peerllm_safety_check_seconds and
// peerllm_safety_verdicts_total.
func (s *Screening) Pipeline(reg *registry.Registry, metrics prometheus.Registerer, log *slog.Logger) ([]pipeline.Stage, []pipeline.Meter, error) {
	if s.Checker == nil || s.Checker.Classifier == nil {
		return nil, nil, errors.New("screening: no classifier")
	}
	m, err := NewMetrics(metrics)
	if err != nil {
		return nil, nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if s.Checker.Observe == nil && metrics != nil {
		s.Checker.Observe = m.get().observeCheck
	}
	var st []pipeline.Stage
	var me []pipeline.Meter
	if s.Safety {
		st = append(st, &Safety{Checker: s.Checker, Stream: s.Stream, Policy: s.Policy, AnswerMargin: s.AnswerMargin, Metrics: m, Log: log.With("component", "safety")})
		if reg != nil {
			me = append(me, &Strikes{Striker: RegistryStriker{Registry: reg}, Metrics: m, Log: log.With("component", "safety")})
		}
	}
	if s.Scanner != nil {
		st = append(st, &Privacy{Scanner: s.Scanner, Sanitizer: s.Sanitizer, Metrics: m, Log: log.With("component", "privacy")})
	}
	return st, me, nil
}

// ModerationModel is the model name /v1/moderations reports.
const ModerationModel = "peerllm-safety"

// Moderate screens each input for POST /v1/moderations (never forwarded to
// a host) and returns one result per input, in order, and the model name.
// An AI stage failure falls back to the built-in verdict, as for prompts.
func (s *Screening) Moderate(ctx context.Context, inputs []string) ([]safety.ModerationResult, string, error) {
	out := make([]safety.ModerationResult, len(inputs))
	for i, text := range inputs {
		v, err := s.Checker.Check(ctx, text)
		if err != nil && ctx.Err() != nil {
			return nil, "", ctx.Err()
		}
		out[i] = v.Moderation()
	}
	return out, ModerationModel, nil
}
