package dispatch_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/peerllm/peerllm/internal/dispatch"
	"github.com/peerllm/peerllm/internal/engine"
	"github.com/peerllm/peerllm/internal/engine/benchengine"
)

const benchTokens = 256

// BenchmarkDirect calls the bench engine in-process: the floor the dispatcher
// is compared against in the same run.
func BenchmarkDirect(b *testing.B) {
	e := benchengine.New(benchengine.Options{Model: model})
	req := greedy("benchmark prompt", benchTokens)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n := 0
		if _, err := e.Generate(context.Background(), req, func(engine.Token) error { n++; return nil }); err != nil || n != benchTokens {
			b.Fatal(err, n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchTokens), "ns/token")
}

// BenchmarkDispatch runs whole requests through the dispatcher, the embedded
// NATS server and real agents with the instant bench engine, so what is
// measured is the orchestration: tasks, chunks, merging, segment hand-offs.
func BenchmarkDispatch(b *testing.B) {
	for _, mode := range []string{dispatch.ModeOff, dispatch.ModeParallel, dispatch.ModeHedged} {
		b.Run(mode, func(b *testing.B) {
			c := newCluster(b, testConfig())
			c.addHost("a", "alice", bench(benchengine.Options{}))
			c.addHost("b", "bob", bench(benchengine.Options{}))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				req := greedy(fmt.Sprintf("benchmark prompt %d", i), benchTokens)
				r := run(b, context.Background(), c.d, dispatch.Request{Model: model, Engine: req, Mode: mode}, nil)
				if r.err != nil || r.tokens != benchTokens {
					b.Fatal(r.err, r.tokens)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchTokens), "ns/token")
		})
	}
}

// BenchmarkDispatchRequest measures the fixed cost of one request (one task,
// one token, mode off) through dispatcher, NATS and agent.
func BenchmarkDispatchRequest(b *testing.B) {
	c := newCluster(b, testConfig())
	c.addHost("a", "alice", bench(benchengine.Options{}))
	e := benchengine.New(benchengine.Options{Model: model})
	b.Run("direct", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := e.Generate(context.Background(), greedy("one", 1), func(engine.Token) error { return nil }); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("dispatch", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			r := run(b, context.Background(), c.d, dispatch.Request{Model: model, Engine: greedy("one", 1), Mode: dispatch.ModeOff}, nil)
			if r.err != nil || r.tokens != 1 {
				b.Fatal(r.err, r.tokens)
			}
		}
	})
}

// BenchmarkFailover measures the consumer's gap: from the moment the
// streaming host is cut off the network to the next token delivered. In
// "off" mode that is detection (stall deadline or missed heartbeats) plus a
// restart on another host; in "parallel" mode the backup is already
// streaming. Hosts produce a token every 2ms.
func BenchmarkFailover(b *testing.B) {
	cfg := testConfig()
	cfg.HeartbeatEvery, cfg.DeadAfter, cfg.StallFloor = 50*time.Millisecond, 150*time.Millisecond, 150*time.Millisecond
	for _, mode := range []string{dispatch.ModeOff, dispatch.ModeParallel} {
		b.Run(mode, func(b *testing.B) {
			c := newCluster(b, cfg)
			opts := benchengine.Options{Delay: 2 * time.Millisecond}
			var total time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				alive := []*testHost{
					c.addHost(fmt.Sprintf("x%d", i), "alice", bench(opts)),
					c.addHost(fmt.Sprintf("y%d", i), "bob", bench(opts)),
				}
				b.StartTimer()
				var cutAt time.Time
				var gap time.Duration
				req := greedy(fmt.Sprintf("failover %d", i), 60)
				r := run(b, context.Background(), c.d, dispatch.Request{Model: model, Engine: req, Mode: mode}, func(n int) {
					switch {
					case n >= 20 && cutAt.IsZero():
						if h := busiest(c, alive); h != nil {
							cutAt = time.Now()
							h.proxy.Cut()
						}
					case n > 20 && gap == 0 && !cutAt.IsZero():
						gap = time.Since(cutAt)
					}
				})
				if r.err != nil || gap == 0 {
					b.Fatal(r.err, gap)
				}
				total += gap
				// Retire this round's survivor so the next round's hosts
				// are the only candidates.
				b.StopTimer()
				for _, h := range alive {
					h.proxy.Cut()
				}
				waitFor(b, "round hosts dead", func() bool { return len(c.d.Models()) == 0 })
				b.StartTimer()
			}
			b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/failover")
		})
	}
}
