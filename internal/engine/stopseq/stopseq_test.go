package stopseq_test

import (
	"strings"
	"testing"

	"github.com/peerllm/peerllm/internal/engine"
	"github.com/peerllm/peerllm/internal/engine/stopseq"
)

func TestStopper(t *testing.T) {
	cases := []struct {
		name    string
		stops   []string
		cont    string
		pieces  []string
		want    string
		stopped bool
	}{
		{"no stops passes everything", nil, "", []string{"a", "b"}, "ab", false},
		{"stop inside a token truncates it", []string{"END"}, "", []string{"hello E", "NDing"}, "hello ", true},
		{"held prefix is released when it does not complete", []string{"END"}, "", []string{"E", "N", "x"}, "ENx", false},
		{"earliest of several", []string{"zz", "b"}, "", []string{"abzz"}, "a", true},
		{"stop straddling the continuation", []string{"\n\n"}, "story.\n", []string{"\nmore"}, "", true},
		{"continuation text is never emitted", []string{"STOP"}, "ST", []string{"x"}, "x", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := stopseq.New(c.stops, c.cont)
			var got strings.Builder
			emit := func(tk engine.Token) error { got.WriteString(tk.Text); return nil }
			stopped := false
			for i, p := range c.pieces {
				_, st, err := s.Add(engine.Token{ID: i, Text: p, Index: i}, emit)
				if err != nil {
					t.Fatal(err)
				}
				if st {
					stopped = true
					break
				}
			}
			if !stopped {
				if _, err := s.Flush(emit); err != nil {
					t.Fatal(err)
				}
			}
			if got.String() != c.want || stopped != c.stopped {
				t.Fatalf("got %q stopped=%v, want %q stopped=%v", got.String(), stopped, c.want, c.stopped)
			}
		})
	}
}
