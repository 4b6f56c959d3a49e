package dispatch

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the dispatcher's Prometheus series. They carry no request
// content and no per-request labels.
type metrics struct {
	stage       *prometheus.HistogramVec // stage: pick, first_token, segment, request
	ttft        prometheus.Histogram
	tokensPerS  prometheus.Histogram
	tokens      prometheus.Counter
	requests    *prometheus.CounterVec // outcome: ok, no_host, overloaded, context_length, cancelled, error
	hedges      prometheus.Counter
	failovers   prometheus.Counter
	divergences prometheus.Counter
	// verifications: consensus_main, consensus_backup, no_majority, no_third_host
	verifications *prometheus.CounterVec
	inflight      prometheus.Gauge // requests
	tasks         prometheus.Gauge // host tasks
}

func newMetrics(reg prometheus.Registerer, liveHosts func() float64) (*metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	latency := []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
	m := &metrics{
		stage: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "peerllm_dispatch_stage_seconds",
			Help: "Latency of dispatch stages: pick (host choice), first_token (task sent to first token), segment, request.", Buckets: latency}, []string{"stage"}),
		ttft: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "peerllm_dispatch_ttft_seconds",
			Help: "Time from Generate to the first token delivered to the consumer.", Buckets: latency}),
		tokensPerS: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "peerllm_dispatch_tokens_per_second",
			Help: "Delivered tokens per second per request, after the first token.", Buckets: prometheus.ExponentialBuckets(1, 2, 14)}),
		tokens: prometheus.NewCounter(prometheus.CounterOpts{Name: "peerllm_dispatch_tokens_total",
			Help: "Tokens delivered to consumers."}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "peerllm_dispatch_requests_total",
			Help: "Generate calls by outcome."}, []string{"outcome"}),
		hedges: prometheus.NewCounter(prometheus.CounterOpts{Name: "peerllm_dispatch_hedges_total",
			Help: "Backup tasks started because the main host was late."}),
		failovers: prometheus.NewCounter(prometheus.CounterOpts{Name: "peerllm_dispatch_failovers_total",
			Help: "Times the streaming host died, stalled or failed and another host continued."}),
		divergences: prometheus.NewCounter(prometheus.CounterOpts{Name: "peerllm_dispatch_divergences_total",
			Help: "Positions where two hosts running the same deterministic task disagreed."}),
		verifications: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "peerllm_dispatch_verifications_total",
			Help: "Divergences settled by a third host, by result: consensus_main (the delivered token was right), consensus_backup (the diverging host was right), no_majority, no_third_host."}, []string{"result"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "peerllm_dispatch_inflight_requests",
			Help: "Generate calls in progress."}),
		tasks: prometheus.NewGauge(prometheus.GaugeOpts{Name: "peerllm_dispatch_inflight_tasks",
			Help: "Host tasks in progress (main, backup and hedges)."}),
	}
	for _, c := range []prometheus.Collector{m.stage, m.ttft, m.tokensPerS, m.tokens, m.requests, m.hedges,
		m.failovers, m.divergences, m.verifications, m.inflight, m.tasks,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "peerllm_dispatch_live_hosts", Help: "Hosts with a recent heartbeat."}, liveHosts),
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register dispatch metrics: %w", err)
		}
	}
	return m, nil
}
