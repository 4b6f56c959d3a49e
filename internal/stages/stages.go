// Package stages puts the content screen (internal/safety) and the
// pseudonymiser (internal/privacy) into the orchestrator's request path as
// pipeline stages, and turns unsafe answers to safe prompts into host
// strikes (the Strikes meter).
//
// Order matters and is the caller's: build the chain as [Safety, Privacy].
// pipeline.Chain runs Admit in stage order (the raw prompt is screened, then
// anonymised) and output filters in stage order too (the still-anonymised
// answer is screened, then restored), as DESIGN.md section 3 draws it.
//
// Only orchestrator wiring (cmd/peerllm serve) imports it. Nothing here logs,
// stores or sends prompt or answer text, nor the stand-in mapping: logs and
// metrics carry request ids, categories, entity types and counts.
package stages

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the stages' Prometheus series. A nil *metrics records nothing.
type metrics struct {
	admit    *prometheus.HistogramVec // stage
	refused  *prometheus.CounterVec   // category
	stopped  *prometheus.CounterVec   // category
	entities *prometheus.CounterVec   // type
	strikes  *prometheus.CounterVec   // result
	aiErrors prometheus.Counter
	sanErrs  prometheus.Counter
	check    *prometheus.HistogramVec // source: builtin, ai
	verdicts *prometheus.CounterVec   // source, result: flagged, safe, error
}

// Metrics registers the stages' series on reg once; pass the result to every
// stage and meter built for one process. reg may be nil (no metrics).
type Metrics struct{ m *metrics }

// NewMetrics registers the series on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	if reg == nil {
		return &Metrics{}, nil
	}
	m := &metrics{
		admit: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "peerllm_stage_admit_seconds", Help: "Time a pipeline stage spent admitting a request.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .1, .5},
		}, []string{"stage"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "peerllm_safety_refused_total", Help: "Prompts refused by the safety stage, per tripped category.",
		}, []string{"category"}),
		stopped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "peerllm_safety_stopped_total", Help: "Answers stopped by the output screen, per tripped category.",
		}, []string{"category"}),
		entities: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "peerllm_privacy_replaced_total", Help: "Identifiers replaced with stand-ins, per entity type.",
		}, []string{"type"}),
		strikes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "peerllm_safety_strikes_total", Help: "Strikes given to hosts for unsafe answers to safe prompts (result: ok, error, unknown_host).",
		}, []string{"result"}),
		aiErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "peerllm_safety_ai_errors_total", Help: "AI moderation calls that failed (the built-in verdict was used).",
		}),
		check: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "peerllm_safety_check_seconds", Help: "Time one prompt screen took, per source (builtin classifier, ai moderation stage).",
			Buckets: []float64{.00001, .00005, .0001, .0005, .001, .005, .025, .1, .5, 2},
		}, []string{"source"}),
		verdicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "peerllm_safety_verdicts_total", Help: "Prompt screens per source and result (flagged, safe, error); the ai source only sees prompts the built-in screen is unsure about.",
		}, []string{"source", "result"}),
		sanErrs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "peerllm_privacy_sanitizer_errors_total", Help: "Privacy sanitizer calls that failed (the built-in detections were used).",
		}),
	}
	for _, c := range []prometheus.Collector{m.admit, m.refused, m.stopped, m.entities, m.strikes, m.aiErrors, m.sanErrs, m.check, m.verdicts} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return &Metrics{m: m}, nil
}

func (m *Metrics) get() *metrics {
	if m == nil {
		return nil
	}
	return m.m
}

func (m *metrics) observeAdmit(stage string, start time.Time) {
	if m != nil {
		m.admit.WithLabelValues(stage).Observe(time.Since(start).Seconds())
	}
}

func (m *metrics) refusedAdd(cats []string) {
	if m != nil {
		for _, c := range cats {
			m.refused.WithLabelValues(c).Inc()
		}
	}
}

func (m *metrics) stoppedAdd(cats []string) {
	if m != nil {
		for _, c := range cats {
			m.stopped.WithLabelValues(c).Inc()
		}
	}
}

func (m *metrics) entityAdd(typ string) {
	if m != nil {
		m.entities.WithLabelValues(typ).Inc()
	}
}

func (m *metrics) strikeAdd(result string) {
	if m != nil {
		m.strikes.WithLabelValues(result).Inc()
	}
}

// observeCheck fits safety.Checker.Observe: one screen's latency and
// verdict per source (never the text).
func (m *metrics) observeCheck(source string, d time.Duration, flagged bool, err error) {
	if m == nil {
		return
	}
	m.check.WithLabelValues(source).Observe(d.Seconds())
	result := "safe"
	switch {
	case err != nil:
		result = "error"
	case flagged:
		result = "flagged"
	}
	m.verdicts.WithLabelValues(source, result).Inc()
}

func (m *metrics) aiError() {
	if m != nil {
		m.aiErrors.Inc()
	}
}

func (m *metrics) sanitizerError() {
	if m != nil {
		m.sanErrs.Inc()
	}
}
