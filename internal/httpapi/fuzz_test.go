package httpapi

import (
	"testing"
	"unicode/utf8"
)

// FuzzParseRequest: no body makes the parser panic, and whatever it accepts
// is within the documented limits.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		`{"model":"m","prompt":"x"}`,
		`{"model":"m","messages":[{"role":"user","content":"hi"}],"n":2,"stop":["a"],"stream":true,"stream_options":{"include_usage":true}}`,
		`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a"}]}]}`,
		`{"model":"m","prompt":["x"],"max_tokens":5,"temperature":0.5,"top_p":0.9,"seed":-1}`,
		`{"model":"m","prompt":{"a":1}}`, `[]`, `null`, `{"model":1}`, `{"n":1e400}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, ep := range []string{"chat", "completions"} {
			p, e := parseRequest(body, ep)
			if (p == nil) == (e == nil) {
				t.Fatalf("parsed %v and error %v", p, e)
			}
			if e != nil {
				if e.Status != 400 || e.Message == "" || !utf8.ValidString(e.Message) {
					t.Fatalf("bad error %+v", e)
				}
				continue
			}
			if p.model == "" || p.n < 1 || p.n > maxChoices || p.maxTokens < 0 || p.maxTokens > maxMaxTokens ||
				p.sampling.Temperature < 0 || p.sampling.Temperature > 2 || len(p.stop) > maxStops {
				t.Fatalf("accepted out-of-range request %+v", p)
			}
			if ep == "chat" && len(p.messages) == 0 {
				t.Fatal("chat request without messages accepted")
			}
		}
	})
}
