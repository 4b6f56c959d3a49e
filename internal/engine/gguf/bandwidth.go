package gguf

import (
	"encoding/binary"
	"sync"
	"time"
)

// ReadBandwidth measures how fast threads goroutines together read buf (each
// its own contiguous share), in bytes per second: the best of passes
// passes. It is the bound a memory-bound matrix-vector product can reach, so
// benchmarks report their weight bytes per second against it. buf should be
// much larger than the CPU caches (a few hundred MiB) and already written,
// so its pages are resident. The read uses the widest loads the kernels use
// (AVX2 where MatVec does), so arithmetic never limits it.
func ReadBandwidth(buf []byte, threads, passes int) float64 {
	threads = max(threads, 1)
	best := 0.0
	sums := make([]uint64, threads)
	for range max(passes, 1) {
		var wg sync.WaitGroup
		t0 := time.Now()
		for g := range threads {
			part := buf[len(buf)*g/threads : len(buf)*(g+1)/threads]
			wg.Add(1)
			go func() {
				defer wg.Done()
				sums[g] += readSum(part)
			}()
		}
		wg.Wait()
		best = max(best, float64(len(buf))/time.Since(t0).Seconds())
	}
	return best
}

// readSum adds b as little-endian uint64 words (a tail shorter than 128
// bytes is ignored): a pure read stream.
func readSum(b []byte) uint64 {
	n := len(b) &^ 127
	if n == 0 {
		return 0
	}
	if useSIMD {
		return readAVX2(&b[0], n)
	}
	var s0, s1, s2, s3 uint64
	le := binary.LittleEndian
	for i := 0; i < n; i += 32 {
		c := b[i : i+32 : i+32]
		s0 += le.Uint64(c)
		s1 += le.Uint64(c[8:])
		s2 += le.Uint64(c[16:])
		s3 += le.Uint64(c[24:])
	}
	return s0 + s1 + s2 + s3
}
