package llama

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/peerllm/peerllm/internal/engine/gguf"
	"github.com/peerllm/peerllm/internal/testenv"
	"golang.org/x/sys/unix"
)

// BenchmarkStories260K decodes 512 positions of stories260K greedily on one
// thread (BenchDecode: never stopping at an end token; llama2.c's run -n 512
// stops at its first BOS, after 347 positions); tok/s counts positions.
func BenchmarkStories260K(b *testing.B) {
	e, err := Load(filepath.Join(testenv.ModelsDir(b), "stories260K.bin"), Options{Threads: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	ctx := context.Background()
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := e.BenchDecode(ctx, 512); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(512*b.N)/b.Elapsed().Seconds(), "tok/s")
	// On a shared machine wall time includes waiting for a core; tokens
	// per second of this process's CPU time does not.
	b.ReportMetric(float64(512*b.N)/(cpuTime()-cpu0).Seconds(), "cpu-tok/s")
}

// cpuTime is the user+system CPU time the process has used.
func cpuTime() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// slotsReset forgets every slot's cached prefix (benchmarks only).
func (e *Engine) slotsReset() {
	e.mu.Lock()
	for _, s := range e.free {
		s.tokens = s.tokens[:0]
	}
	e.mu.Unlock()
}

// largeShape is Shape110M.
var largeShape = Shape110M.config()

// BenchmarkLarge writes random-weight GGUF files of largeShape in F32 and
// Q8_0, measures the machine's memory read bandwidth in the same run (with
// 1 and with all cores), then the load time and decoding speed on 1 and all
// cores. bw% is weight bytes read per second over the bandwidth with as
// many goroutines: decoding one token reads every weight once.
func BenchmarkLarge(b *testing.B) {
	dir := b.TempDir()
	bw := map[int]float64{}
	counts := []int{1, runtime.NumCPU()}
	for _, n := range counts {
		bw[n] = memBandwidth(n)
		b.Logf("memory read bandwidth with %d goroutines: %.2f GB/s", n, bw[n]/1e9)
	}
	for _, typ := range []gguf.Type{gguf.TypeF32, gguf.TypeQ8_0} {
		path := filepath.Join(dir, "large-"+typ.String()+".gguf")
		if err := writeRandomGGUF(path, largeShape, typ); err != nil {
			b.Fatal(err)
		}
		b.Run("load/"+typ.String(), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				e, err := Load(path, Options{})
				if err != nil {
					b.Fatal(err)
				}
				e.Close()
			}
		})
		for _, threads := range counts {
			b.Run(fmt.Sprintf("decode/%s/threads=%d", typ, threads), func(b *testing.B) {
				e, err := Load(path, Options{Threads: threads})
				if err != nil {
					b.Fatal(err)
				}
				defer e.Close()
				st := newState(e.m.cfg, e.ctxLen, threads)
				defer st.pool.Close()
				b.ReportAllocs()
				cpu0 := cpuTime()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if err := e.m.forward(st, (i*7919)%largeShape.vocab, i%256, true); err != nil {
						b.Fatal(err)
					}
				}
				tps := float64(b.N) / b.Elapsed().Seconds()
				bytes := float64(e.m.bytesPerToken())
				b.ReportMetric(tps, "tok/s")
				b.ReportMetric(bytes/1e6, "MB/tok")
				b.ReportMetric(100*tps*bytes/bw[threads], "bw%")
				// The same with CPU time spread over the threads: what the
				// run would reach with its cores to itself (an estimate on
				// a shared machine; it assumes the threads overlap fully).
				cpuTPS := float64(b.N*threads) / (cpuTime() - cpu0).Seconds()
				b.ReportMetric(100*cpuTPS*bytes/bw[threads], "cpu-bw%")
			})
		}
	}
}

// memBandwidth measures read bandwidth in bytes/s with gguf.ReadBandwidth:
// goroutines reading disjoint shares of a 512 MiB buffer, best of three.
func memBandwidth(threads int) float64 {
	buf := make([]byte, 512<<20)
	for i := 0; i < len(buf); i += 4096 {
		buf[i] = byte(i >> 12)
	}
	return gguf.ReadBandwidth(buf, threads, 3)
}
