package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestLimiterSpacing(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newLimiter(4, func() time.Time { return now }) // one token per 250 ms
	// Five tokens asked for at the same instant are booked 250 ms apart.
	for i := range 5 {
		if got, want := l.reserve(), time.Duration(i)*250*time.Millisecond; got != want {
			t.Fatalf("token %d: wait %v, want %v", i, got, want)
		}
	}
	// After a long idle period no credit accumulates beyond one token.
	now = now.Add(10 * time.Second)
	if got := l.reserve(); got != 0 {
		t.Fatalf("after idle: wait %v, want 0", got)
	}
	if got := l.reserve(); got != 250*time.Millisecond {
		t.Fatalf("second after idle: wait %v, want 250ms", got)
	}
	// Over any window, the tokens granted never exceed rate*window + 1.
	now = now.Add(time.Hour)
	start, granted := now, 0
	for i := range 1000 {
		now = start.Add(time.Duration(i) * 7 * time.Millisecond)
		if l.reserve() == 0 {
			granted++
		} else {
			l.next = l.next.Add(-l.every) // caller gave up this slot
		}
	}
	window := now.Sub(start).Seconds()
	if limit := 4*window + 1; float64(granted) > limit {
		t.Fatalf("%d tokens granted in %.2fs at 4/s", granted, window)
	}
	if free := newLimiter(0, time.Now); free.reserve() != 0 || free.reserve() != 0 {
		t.Fatal("unlimited limiter made a caller wait")
	}
}

func TestUTF8Joiner(t *testing.T) {
	type out struct {
		text    string
		partial bool
	}
	for _, tc := range []struct {
		name   string
		pieces []string
		want   []out
	}{
		{"ascii", []string{"a", " b"}, []out{{"a", false}, {" b", false}}},
		{"two-byte split", []string{"x", "\xc3", "\xa9!"}, []out{{"x", false}, {"", true}, {"é!", false}}},
		{"text before split held", []string{"a\xc3", "\xa9"}, []out{{"", true}, {"aé", false}}},
		{"four-byte in four", []string{"\xf0", "\x9f", "\x98", "\x80"}, []out{{"", true}, {"", true}, {"", true}, {"😀", false}}},
		{"stray continuation", []string{"\xa9", "b"}, []out{{"\uFFFD", false}, {"b", false}}},
		{"broken sequence", []string{"\xc3", "b"}, []out{{"", true}, {"\uFFFDb", false}}},
		{"invalid lead", []string{"\xff", "c"}, []out{{"\uFFFD", false}, {"c", false}}},
		{"empty piece", []string{"", "d"}, []out{{"", false}, {"d", false}}},
		{"runaway held bytes", []string{strings.Repeat("\xc3", 20)}, []out{{"\uFFFD", false}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var j utf8Joiner
			for i, p := range tc.pieces {
				text, partial := j.add(p)
				if !utf8.ValidString(text) {
					t.Fatalf("piece %d: invalid UTF-8 %q", i, text)
				}
				if got := (out{text, partial}); got != tc.want[i] {
					t.Fatalf("piece %d %q: got %+v, want %+v", i, p, got, tc.want[i])
				}
			}
		})
	}
}

func TestIncompleteTail(t *testing.T) {
	for s, want := range map[string]bool{
		"": false, "a": false, "\xc3": true, "a\xe2\x82": true, "\xe2\x82\xac": false,
		"\xf0\x9f\x98": true, "\xf0\x9f\x98\x80": false, "\xa9": false, "\xe0\x80": false, "\xc0": false,
	} {
		if got := incompleteTail([]byte(s)); got != want {
			t.Errorf("incompleteTail(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestCPUMeter(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/stat"
	write := func(line string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(line+"\ncpu0 1 2 3 4\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	m := cpuMeter{path: path}
	write("cpu  100 0 100 800 0 0 0 0 0 0")
	if u := m.util(); u != 0 {
		t.Fatalf("first reading %v, want 0", u)
	}
	write("cpu  250 0 150 900 0 0 0 0 0 0") // +200 busy, +100 idle
	if u := m.util(); u < 0.66 || u > 0.67 {
		t.Fatalf("util %v, want 2/3", u)
	}
	if u := (&cpuMeter{path: dir + "/missing"}).util(); u != 0 {
		t.Fatalf("missing file: %v", u)
	}
	if mem := memTotal("/nonexistent"); mem != 0 {
		t.Fatalf("memTotal of a missing file = %d", mem)
	}
}

// FuzzUTF8Joiner checks the joiner on arbitrary piece sequences: every text
// is valid UTF-8, a partial token carries no text, and valid input comes out
// byte for byte (nothing lost, nothing added) once the held tail is counted.
func FuzzUTF8Joiner(f *testing.F) {
	f.Add([]byte("a\xc3|\xa9b|c"))
	f.Add([]byte("\xf0|\x9f|\x98|\x80"))
	f.Add([]byte("\xe2\x82|\xac||x"))
	f.Add([]byte("\xff|\xc3\xc3|\xa9"))
	f.Fuzz(func(t *testing.T, in []byte) {
		pieces := strings.Split(string(in), "|")
		var j utf8Joiner
		var out strings.Builder
		for _, p := range pieces {
			text, partial := j.add(p)
			if !utf8.ValidString(text) {
				t.Fatalf("invalid text %q", text)
			}
			if partial && text != "" {
				t.Fatalf("partial token with text %q", text)
			}
			if partial != (len(j.held) > 0) {
				t.Fatalf("partial %v with %d bytes held", partial, len(j.held))
			}
			out.WriteString(text)
		}
		whole := strings.Join(pieces, "")
		if utf8.ValidString(whole) && out.String()+string(j.held) != whole {
			t.Fatalf("valid input %q came out as %q + held %q", whole, out.String(), j.held)
		}
	})
}

func TestNvidiaGPUs(t *testing.T) {
	dir := t.TempDir()
	if got := nvidiaGPUs(dir); got != "" {
		t.Fatalf("no GPUs: %q", got)
	}
	for i, model := range []string{"NVIDIA GeForce RTX 3090", "NVIDIA A100-SXM4-40GB"} {
		sub := filepath.Join(dir, "0000:0"+string(rune('1'+i))+":00.0")
		if err := os.MkdirAll(sub, 0o700); err != nil {
			t.Fatal(err)
		}
		info := "Model: \t\t " + model + "\nIRQ:   42\nGPU UUID: GPU-x\n"
		if err := os.WriteFile(filepath.Join(sub, "information"), []byte(info), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := nvidiaGPUs(dir), "NVIDIA GeForce RTX 3090, NVIDIA A100-SXM4-40GB"; got != want {
		t.Fatalf("nvidiaGPUs = %q, want %q", got, want)
	}
}
