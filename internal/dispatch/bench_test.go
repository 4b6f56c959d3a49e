package dispatch_test

import (
	"context"
	"fmt"
	"slices"
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

// BenchmarkRequest32 is issue 3's request shape through the dispatcher
// alone (no HTTP): 32-token requests on instant bench hosts, one at a time,
// against the engine called directly in the same run. It reports the added
// time to first token (p50, p99), the added inter-token p99 and the CPU of
// the whole test process per request (dispatcher, NATS server and the
// agents together: an upper bound of the dispatcher's share). `peerllm
// bench overhead` measures the orchestrator process alone, over HTTP.
func BenchmarkRequest32(b *testing.B) {
	const n = 32
	e := benchengine.New(benchengine.Options{Model: model})
	var dTTFT, dGaps []time.Duration
	for i := 0; i < 200; i++ {
		t0 := time.Now()
		last := t0
		k := 0
		e.Generate(context.Background(), greedy(fmt.Sprintf("direct %d", i), n), func(engine.Token) error {
			now := time.Now()
			if k == 0 {
				dTTFT = append(dTTFT, now.Sub(t0))
			} else {
				dGaps = append(dGaps, now.Sub(last))
			}
			last, k = now, k+1
			return nil
		})
	}
	for _, mode := range []string{dispatch.ModeOff, dispatch.ModeParallel, dispatch.ModeHedged} {
		b.Run(mode, func(b *testing.B) {
			c := newCluster(b, testConfig())
			c.addHost("a", "alice", bench(benchengine.Options{}))
			c.addHost("b", "bob", bench(benchengine.Options{}))
			var ttfts, gaps []time.Duration
			cpu0 := processCPU()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				last := t0
				got := 0
				_, err := c.d.Generate(context.Background(), dispatch.Request{Model: model, Engine: greedy(fmt.Sprintf("p %d", i), n), Mode: mode},
					func(dl dispatch.Delta) error {
						now := time.Now()
						for j := 0; j < dl.Tokens; j++ {
							switch {
							case got+j == 0:
								ttfts = append(ttfts, now.Sub(t0))
							case j == 0:
								gaps = append(gaps, now.Sub(last))
							default:
								gaps = append(gaps, 0)
							}
						}
						got += dl.Tokens
						last = now
						return nil
					})
				if err != nil || got != n {
					b.Fatal(err, got)
				}
			}
			b.StopTimer()
			cpu := processCPU() - cpu0
			b.ReportMetric(float64(pct(ttfts, 0.5)-pct(dTTFT, 0.5))/1e3, "added-ttft-p50-µs")
			b.ReportMetric(float64(pct(ttfts, 0.99)-pct(dTTFT, 0.99))/1e3, "added-ttft-p99-µs")
			b.ReportMetric(float64(pct(gaps, 0.99)-pct(dGaps, 0.99))/1e3, "added-itl-p99-µs")
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/req")
		})
	}
}

// pct is the p-quantile of ds (sorted in place).
func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[min(int(p*float64(len(ds))), len(ds)-1)]
}
