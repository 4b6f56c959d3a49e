package agent_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/peerllm/peerllm/internal/engine"
	"github.com/peerllm/peerllm/internal/engine/benchengine"
	"github.com/peerllm/peerllm/internal/fabric"
)

// benchHost starts an orchestrator side and an agent with an instant bench
// engine; the link (NATS, JSON chunks, the agent's task runner) is all that
// is measured.
func benchHost(b *testing.B, capacity int) *orch {
	secret := fabric.NewSecret()
	o := newOrch(b, "127.0.0.1:0", map[string]string{"h1": secret})
	cfg := baseConfig(o, "h1", secret, map[string]engine.Engine{"bench": benchengine.New(benchengine.Options{ContextLength: 1 << 20})})
	cfg.Capacity = capacity
	startAgent(b, cfg)
	o.waitHello(b)
	return o
}

// BenchmarkStream is the host link's streaming throughput: one task of 1000
// tokens, one chunk per token, received by the orchestrator.
func BenchmarkStream(b *testing.B) {
	o := benchHost(b, 1)
	const n = 1000
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		s := o.send(b, "h1", fabric.Task{ID: "s" + strconv.Itoa(i), Model: "bench", Request: engine.Request{Prompt: "p", MaxTokens: n}})
		if toks, last := s.all(b); !last.Done || len(toks) != n {
			b.Fatalf("%d tokens, %+v", len(toks), last)
		}
		_ = s.sub.Unsubscribe()
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "tokens/s")
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n), "µs/token")
}

// BenchmarkTaskRoundTrip is the time from publishing a one-token task to
// receiving its final chunk: the fixed cost of a segment on the link.
func BenchmarkTaskRoundTrip(b *testing.B) {
	o := benchHost(b, 1)
	var first time.Duration
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		s := o.send(b, "h1", fabric.Task{ID: "r" + strconv.Itoa(i), Model: "bench", Request: engine.Request{Prompt: "p", MaxTokens: 1}})
		s.next(b)
		first += time.Since(start)
		if _, last := s.all(b); !last.Done {
			b.Fatalf("%+v", last)
		}
		_ = s.sub.Unsubscribe()
	}
	b.ReportMetric(float64(first.Microseconds())/float64(b.N), "µs-to-first-token")
}
