package httpapi_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// BenchmarkAPIOverhead measures the consumer API's own cost per request
// (auth against SQLite, parsing, SSE or JSON writing) with a backend double
// that returns 64 one-token pieces at once.
func BenchmarkAPIOverhead(b *testing.B) {
	for _, stream := range []bool{false, true} {
		name := map[bool]string{false: "whole", true: "stream"}[stream]
		b.Run(name, func(b *testing.B) {
			e := newEnvB(b)
			ps := make([]string, 64)
			for i := range ps {
				ps[i] = " tok"
			}
			e.backend.generate = pieces(ps...)
			body := `{"model":"tiny","prompt":"Once upon a time","max_tokens":64,"stream":` + map[bool]string{false: "false", true: "true"}[stream] + `}`
			b.ResetTimer()
			for b.Loop() {
				req, _ := http.NewRequest("POST", e.srv.URL+"/v1/completions", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+e.key)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatal(resp.StatusCode)
				}
			}
			b.ReportMetric(float64(b.N*64)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}
