package privacy_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/peerllm/peerllm/internal/privacy"
)

var fuzzSeeds = []string{
	"", "@", "@@a.b", "+", "(1", "::", "4111 1111 1111 1111", "DE89 3704 0044 0532 0130 00",
	"John Smith lives at 12 Bond Street", "-----BEGIN PRIVATE KEY-----", "password=", "/home/", "C:\\Users\\",
	"alice@host:~$", "born on 3 March", "Mr. ", "\xff\xfe", "ünïcödé Zoë@例え.jp", "1.2.3.4.5.6.7.8",
	"eyJ.eyJ.", "GB82WEST12345698765432", "QQ 12 34 56 C", strings.Repeat("9", 40),
	"Bekins, Enervee Corporation and Civic Insight, Acme Inc, Foo", "> Alma Jensen\n> Imedicare\n> 91215 Harjukuja 54",
	"Kónya, Becker and Vasquez were", "Weeks-Rivas is a company", "Mr. Mr. Mr.", "12 Bond Street\n28-64-66-98 office",
}

// FuzzScan checks the scanner's invariants on any input: no panic, spans
// sorted, non-overlapping, within the text and matching their Text.
func FuzzScan(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	for _, s := range conversation {
		f.Add(s)
	}
	sc := newScanner(f, privacy.Config{})
	f.Fuzz(func(t *testing.T, text string) {
		ents := sc.Scan(text)
		n := utf8.RuneCountInString(text)
		runes := []rune(text)
		prev := 0
		for _, e := range ents {
			if e.Start < prev || e.End <= e.Start || e.End > n {
				t.Fatalf("bad span %+v in %q", e, text)
			}
			if utf8.ValidString(text) && string(runes[e.Start:e.End]) != e.Text {
				t.Fatalf("span text mismatch %+v", e)
			}
			prev = e.End
		}
		_ = sc.NewSession().Anonymize(text)
	})
}

// FuzzRestorer checks that anonymize-then-restore is the identity for any
// text and any chunking of the echoed answer.
func FuzzRestorer(f *testing.F) {
	for i, s := range fuzzSeeds {
		f.Add(s, uint8(i))
	}
	for i, s := range conversation {
		f.Add(s, uint8(3*i+1))
	}
	sc := newScanner(f, privacy.Config{})
	f.Fuzz(func(t *testing.T, text string, step uint8) {
		if !utf8.ValidString(text) {
			return
		}
		ss := sc.NewSession()
		anon := ss.Anonymize(text)
		r := ss.NewRestorer()
		n := int(step%16) + 1
		var b strings.Builder
		for i := 0; i < len(anon); i += n {
			b.WriteString(r.Write(anon[i:min(i+n, len(anon))]))
		}
		b.WriteString(r.Flush())
		if b.String() != text {
			t.Fatalf("round trip of %q via %q gave %q", text, anon, b.String())
		}
	})
}
