package stages_test

import (
	"context"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/peerllm/peerllm/internal/engine"
	"github.com/peerllm/peerllm/internal/pipeline"
	"github.com/peerllm/peerllm/internal/safety"
	"github.com/peerllm/peerllm/internal/stages"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"
)

// threadCPU is the calling OS thread's CPU time.
func threadCPU(b *testing.B) time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ts.Nano())
}

// answerText is a plausible ~4 KB answer that mentions the people and
// addresses of benchPrompt (as their stand-ins once anonymised).
func answerText(names []string) string {
	var b strings.Builder
	for b.Len() < 4096 {
		for _, n := range names {
			b.WriteString("Thanks for the details. I have updated the record for " + n + " and sent a confirmation. ")
			b.WriteString("The meeting is moved to Thursday afternoon, and the invoice will follow next week. ")
		}
	}
	return b.String()
}

// tokens splits text into pieces of about four bytes, the average length
// of an English BPE token.
func tokens(text string) []string {
	var out []string
	for i := 0; i < len(text); i += 4 {
		out = append(out, text[i:min(i+4, len(text))])
	}
	return out
}

// benchPrompt is a 1 KB prompt with identifiers.
func benchPrompt() string {
	p := "Hi, I am Margaret Thompson from Globex Corporation. Please update my records: email margaret.thompson@globex-mail.com, " +
		"phone +44 20 7946 0958, card 4111 1111 1111 1111, IBAN GB82 WEST 1234 5698 7654 32. My colleague John Smith " +
		"lives at 742 Evergreen Terrace, Springfield and his server is 203.0.113.42. "
	for len(p) < 1024 {
		p += "Could you also draft a short, friendly note that confirms the change and thanks them for their patience? "
	}
	return p[:1024]
}

// BenchmarkAnswerFilter measures the output filters per token on the same
// ~4 KB answer in ~4-byte tokens: none (what the consumer API does with no
// stage), the safety screen, the restorer (the answer names the stand-ins
// the prompt was given), and both chained as serve runs them.
func BenchmarkAnswerFilter(b *testing.B) {
	scr := &stages.Screening{Checker: &safety.Checker{Classifier: classifier(b)}, Safety: true, Scanner: scanner(b), AnswerMargin: 0.15}
	st, _, err := scr.Pipeline(nil, prometheus.NewRegistry(), nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		stages []pipeline.Stage
	}{{"none", nil}, {"safety", st[:1]}, {"privacy", st[1:]}, {"safety+privacy", st}} {
		b.Run(tc.name, func(b *testing.B) {
			req := &pipeline.Request{Prompt: benchPrompt()}
			adm, err := (&pipeline.Chain{Stages: tc.stages}).Admit(context.Background(), req)
			if err != nil {
				b.Fatal(err)
			}
			anon := &pipeline.Request{Prompt: benchPrompt()}
			if _, err := st[1].Admit(context.Background(), anon); err != nil {
				b.Fatal(err)
			}
			toks := tokens(answerText([]string{after(anon.Prompt, "I am ", 2), after(anon.Prompt, "colleague ", 2), after(anon.Prompt, "email ", 1)}))
			mean, maxD := holdBack(adm.Output(), toks)
			var sink, n int
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				f := adm.Output()
				for _, t := range toks {
					rel, _ := f.Write(t)
					sink += len(rel)
				}
				rel, _ := f.Close()
				sink += len(rel)
				n += len(toks)
			}
			b.StopTimer()
			_ = sink
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/token")
			b.ReportMetric(mean, "mean-holdback-tokens")
			b.ReportMetric(float64(maxD), "max-holdback-tokens")
		})
	}
}

// holdBack streams toks through f and returns how many tokens later than
// its arrival each byte was released, on average and at most.
func holdBack(f pipeline.Filter, toks []string) (mean float64, maxDelay int) {
	var arrived []int // arrived[i] = bytes written up to and including token i
	total, released, sum, bytes := 0, 0, 0, 0
	account := func(now int, rel string) {
		// The released bytes are the oldest held ones (filters keep order,
		// and a restored identifier stands for the stand-in's bytes).
		for k := 0; k < len(rel) && released < total; k++ {
			i, _ := slices.BinarySearch(arrived, released+1)
			d := now - i
			sum += d
			bytes++
			maxDelay = max(maxDelay, d)
			released++
		}
	}
	for i, t := range toks {
		total += len(t)
		arrived = append(arrived, total)
		rel, _ := f.Write(t)
		account(i, rel)
	}
	rel, _ := f.Close()
	account(len(toks), rel)
	if bytes == 0 {
		return 0, 0
	}
	return float64(sum) / float64(bytes), maxDelay
}

// after returns the n words after marker in s, without trailing punctuation.
func after(s, marker string, n int) string {
	_, rest, _ := strings.Cut(s, marker)
	w := strings.Fields(rest)
	return strings.TrimRight(strings.Join(w[:min(n, len(w))], " "), ",.")
}

// BenchmarkAdmit1KB measures each input stage on a 1 KB prompt (chat, one
// message) and reports the p50 and p99 of single calls.
func BenchmarkAdmit1KB(b *testing.B) {
	scr := &stages.Screening{Checker: &safety.Checker{Classifier: classifier(b)}, Safety: true, Scanner: scanner(b)}
	st, _, err := scr.Pipeline(nil, prometheus.NewRegistry(), nil)
	if err != nil {
		b.Fatal(err)
	}
	prompt := benchPrompt()
	for _, s := range st {
		b.Run(s.Name(), func(b *testing.B) {
			// The machine is shared and noisy: besides wall time, measure
			// the CPU time of the calling thread, which preemption by other
			// processes does not inflate.
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			ds := make([]time.Duration, 0, b.N)
			cpu := make([]time.Duration, 0, b.N)
			for i := 0; i < b.N; i++ {
				req := &pipeline.Request{Messages: []engine.Message{{Role: "user", Content: prompt}}}
				c0 := threadCPU(b)
				t0 := time.Now()
				if _, err := s.Admit(context.Background(), req); err != nil {
					b.Fatal(err)
				}
				ds = append(ds, time.Since(t0))
				cpu = append(cpu, threadCPU(b)-c0)
			}
			b.StopTimer()
			slices.Sort(ds)
			slices.Sort(cpu)
			b.ReportMetric(float64(ds[len(ds)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(ds[len(ds)*99/100].Microseconds()), "p99-µs")
			b.ReportMetric(float64(cpu[len(cpu)/2].Microseconds()), "cpu-p50-µs")
			b.ReportMetric(float64(cpu[len(cpu)*99/100].Microseconds()), "cpu-p99-µs")
		})
	}
}
