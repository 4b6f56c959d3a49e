package httpapi

import (
	"strconv"
	"strings"
	"time"

	"github.com/peerllm/peerllm/internal/pipeline"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the consumer API's Prometheus series. They count and time
// requests; they never carry content, keys or accounts.
type metrics struct {
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	ttft      prometheus.Histogram
	tokens    *prometheus.CounterVec
	failovers prometheus.Counter
	hedges    prometheus.Counter
	finishes  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "peerllm_api_requests_total", Help: "Consumer API requests by endpoint and HTTP status.",
		}, []string{"endpoint", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "peerllm_api_request_duration_seconds", Help: "Consumer API request duration, to the last byte.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}, []string{"endpoint"}),
		ttft: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "peerllm_api_time_to_first_token_seconds", Help: "Time from request to the first released token.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "peerllm_api_tokens_total", Help: "Tokens served, by kind (prompt, completion).",
		}, []string{"kind"}),
		failovers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "peerllm_api_failovers_total", Help: "Mid-answer failovers to another host seen by consumer requests.",
		}),
		hedges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "peerllm_api_hedges_total", Help: "Hedged backup tasks started for consumer requests.",
		}),
		finishes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "peerllm_api_finish_reasons_total", Help: "Choices by finish reason.",
		}, []string{"reason"}),
	}
	reg.MustRegister(m.requests, m.duration, m.ttft, m.tokens, m.failovers, m.hedges, m.finishes)
	return m
}

func endpointLabel(path string) string {
	switch {
	case strings.HasSuffix(path, "/chat/completions"):
		return "chat"
	case strings.HasSuffix(path, "/completions"):
		return "completions"
	case strings.HasSuffix(path, "/models"):
		return "models"
	}
	return "other"
}

func (m *metrics) observe(endpoint string, status int, d time.Duration) {
	m.requests.WithLabelValues(endpoint, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(endpoint).Observe(d.Seconds())
}

func (m *metrics) observeOutcome(o pipeline.Outcome) {
	if o.TTFT > 0 {
		m.ttft.Observe(o.TTFT.Seconds())
	}
	m.tokens.WithLabelValues("prompt").Add(float64(o.PromptTokens))
	m.tokens.WithLabelValues("completion").Add(float64(o.CompletionTokens))
	m.failovers.Add(float64(o.Failovers))
	m.hedges.Add(float64(o.Hedges))
	for _, r := range o.FinishReasons {
		if r != "" {
			m.finishes.WithLabelValues(r).Inc()
		}
	}
}
