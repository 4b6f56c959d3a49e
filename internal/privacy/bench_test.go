//go:build unix

package privacy

import (
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user+system CPU time. The machine is shared and
// often overloaded, so benchmarks also report CPU time per operation, which
// measures the cost on one core independently of waiting for a core.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU adds cpu-ns/op and, with bytes > 0, MB/cpu-s.
func reportCPU(b *testing.B, start time.Duration, bytes int) {
	per := float64(cpuTime()-start) / float64(b.N)
	b.ReportMetric(per, "cpu-ns/op")
	if bytes > 0 {
		b.ReportMetric(float64(bytes)/per*1e3, "MB/cpu-s")
	}
}

// prompt1KB is a 1 KB prompt with a typical mix of prose and identifiers.
var prompt1KB = func() string {
	s := "Hi, I'm Maria Gonzalez from Contoso Ltd. Please draft a reply to John Smith (john.smith@gmail.com, +44 20 7946 0958) " +
		"about invoice 4471. He asked whether we can refund the charge on card 4111 1111 1111 1111 to IBAN DE89 3704 0044 0532 0130 00. " +
		"Our office moved to 221 Baker Street, London. The server 10.0.12.7 logged errors in /home/maria/app/server.log last night, " +
		"and the deploy key AKIAIOSFODNN7EXAMPLE may have leaked. Keep the tone friendly and short; mention that the new terms " +
		"apply from next month and that our support team answers within two working days. Thank you for your help with this. "
	for len(s) < 1024 {
		s += "We value the relationship and want to resolve the matter quickly and fairly for everyone involved. "
	}
	return s[:1024]
}()

// BenchmarkStructured measures the structured recognizers alone (MB/s).
func BenchmarkStructured(b *testing.B) {
	s, _ := NewScanner(Config{})
	text := strings.Repeat(prompt1KB, 64)
	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	c0 := cpuTime()
	for i := 0; i < b.N; i++ {
		_ = s.scanStructured(text, nil)
	}
	reportCPU(b, c0, len(text))
}

// BenchmarkScan measures every recognizer together (MB/s).
func BenchmarkScan(b *testing.B) {
	s, _ := NewScanner(Config{})
	text := strings.Repeat(prompt1KB, 64)
	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	c0 := cpuTime()
	for i := 0; i < b.N; i++ {
		_ = s.Scan(text)
	}
	reportCPU(b, c0, len(text))
}

// BenchmarkLayer1KB measures the whole layer on a 1 KB prompt: scan,
// anonymize, restore the echoed answer. It reports the p99 latency.
func BenchmarkLayer1KB(b *testing.B) {
	s, _ := NewScanner(Config{})
	lat := make([]time.Duration, 0, b.N)
	b.SetBytes(int64(len(prompt1KB)))
	b.ResetTimer()
	c0 := cpuTime()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		ss := s.NewSession()
		a := ss.Anonymize(prompt1KB)
		r := ss.NewRestorer()
		_ = r.Write(a) + r.Flush()
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	reportCPU(b, c0, 0)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkRestorePerToken measures the restorer's cost per streamed token
// (about 4 bytes) with a session holding the 1 KB prompt's mapping.
func BenchmarkRestorePerToken(b *testing.B) {
	s, _ := NewScanner(Config{})
	ss := s.NewSession()
	answer := ss.Anonymize(prompt1KB)
	var toks []string
	for i := 0; i < len(answer); i += 4 {
		toks = append(toks, answer[i:min(i+4, len(answer))])
	}
	b.ResetTimer()
	c0 := cpuTime()
	r := ss.NewRestorer()
	for i := 0; i < b.N; i++ {
		_ = r.Write(toks[i%len(toks)])
		if i%len(toks) == len(toks)-1 {
			_ = r.Flush()
		}
	}
	reportCPU(b, c0, 0)
}
