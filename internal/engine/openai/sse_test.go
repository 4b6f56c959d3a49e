package openai

import (
	"errors"
	"strings"
	"testing"
)

func TestReadSSE(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string
		err      error
	}{
		{"simple", "data: a\n\ndata: b\n\ndata: [DONE]\n\n", []string{"a", "b"}, nil},
		{"no space, CRLF-free comments and fields", ": ping\nevent: message\nid: 1\ndata:x\n\ndata: [DONE]\n\n", []string{"x"}, nil},
		{"multi-line data", "data: a\ndata: b\n\ndata: [DONE]\n\n", []string{"a\nb"}, nil},
		{"done without blank line", "data: a\n\ndata: [DONE]", []string{"a"}, nil},
		{"no done", "data: a\n\n", []string{"a"}, errNoDone},
		{"after done ignored", "data: a\n\ndata: [DONE]\n\ndata: b\n\n", []string{"a"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			err := readSSE(strings.NewReader(tc.in), func(d []byte) error {
				got = append(got, string(d))
				return nil
			})
			if !errors.Is(err, tc.err) && !(err == nil && tc.err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("events = %q, want %q", got, tc.want)
			}
		})
	}
}

// FuzzReadSSE feeds arbitrary streams to the parser: no panic, and every
// event it reports was a data field of the input.
func FuzzReadSSE(f *testing.F) {
	f.Add("data: {\"choices\":[]}\n\ndata: [DONE]\n\n")
	f.Add("error: {\"message\":\"x\"}\n")
	f.Add(": c\ndata:\ndata: x\n\n")
	f.Fuzz(func(t *testing.T, in string) {
		_ = readSSE(strings.NewReader(in), func(d []byte) error {
			for _, line := range strings.Split(string(d), "\n") {
				if !strings.Contains(in, line) {
					t.Fatalf("event line %q not in input", line)
				}
			}
			return nil
		})
	})
}
