package main

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestShippedCorpus expands the shipped corpus: it parses, every line yields
// examples, labels are known, and expansion is deterministic.
func TestShippedCorpus(t *testing.T) {
	c, err := parseCorpus("../../data/corpus.txt")
	if err != nil {
		t.Fatal(err)
	}
	a, err := c.examples()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := c.examples()
	if len(a) != len(b) {
		t.Fatalf("expansion not deterministic: %d then %d examples", len(a), len(b))
	}
	safe := 0
	for i := range a {
		if a[i].Text != b[i].Text {
			t.Fatalf("expansion not deterministic at %d", i)
		}
		if strings.ContainsAny(a[i].Text, "{}[]|\t") {
			t.Errorf("unexpanded syntax in %q", a[i].Text)
		}
		if a[i].Unsafe == 0 {
			safe++
		}
	}
	t.Logf("%d examples, %d safe", len(a), safe)
	if len(a) < 5000 || safe < len(a)/3 || safe > 2*len(a)/3 {
		t.Errorf("%d examples with %d safe: corpus lost lines or balance", len(a), safe)
	}
}

func TestCorpusSyntax(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) string {
		p := filepath.Join(dir, "c.txt")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	c, err := parseCorpus(write("@act = run | walk\n | swim\n@ask = How do I {X}? | Teach me to {X}.\nsafe\t{ask:act}*6\nviolence\t[Hi.|Hello.] I hate mondays*1\n"))
	if err != nil {
		t.Fatal(err)
	}
	ex, err := c.examples()
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, e := range ex {
		texts = append(texts, e.Text)
	}
	if len(ex) != 7 || !slices.Contains(texts, "How do I swim?") || !slices.Contains(texts, "Teach me to run.") || ex[6].Labels["violence"] != 1 {
		t.Fatalf("expanded %q", texts)
	}
	for name, body := range map[string]string{
		"unknown slot":     "safe\t{nope}\n",
		"unknown category": "weird\thello\n",
		"no tab":           "safe hello\n",
		"unbound X":        "safe\t{X}\n",
		"unclosed":         "@a = x\nsafe\t[a|b\n",
	} {
		c, err := parseCorpus(write(body))
		if err == nil {
			_, err = c.examples()
		}
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestExpectedF1(t *testing.T) {
	bs := []bandVerdict{
		{flagged: true, unsafe: true},                // TP
		{flagged: true, unsafe: false},               // FP
		{flagged: false, unsafe: true},               // FN
		{flagged: false, unsure: true, unsafe: true}, // FN without AI; AI decides
		{flagged: true, unsure: true, unsafe: false}, // FP without AI; AI decides
	}
	for _, c := range []struct{ a, want float64 }{
		{-1, 2.0 / (2 + 2 + 2)},              // tp 1, fp 2, fn 2
		{1, 2.0 * 2 / (2*2 + 1 + 1)},         // tp 2, fp 1, fn 1
		{0.5, 2 * 1.5 / (2*1.5 + 1.5 + 1.5)}, // tp 1.5, fp 1.5, fn 1.5
	} {
		if got := expectedF1(bs, c.a, false); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("expectedF1(a=%v) = %v, want %v", c.a, got, c.want)
		}
	}
	// A flagged row whose flag is unknown is left out, or is a false
	// positive when missing keys are read as 0.
	bs = append(bs, bandVerdict{flagged: true, partial: true})
	if got, want := expectedF1(bs, -1, false), 2.0/(2+2+2); got != want {
		t.Errorf("unknown row counted: %v, want %v", got, want)
	}
	if got, want := expectedF1(bs, -1, true), 2.0/(2+3+2); got != want {
		t.Errorf("lenient: %v, want %v", got, want)
	}
}

func TestLoadSeedsLabels(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seeds.tsv")
	data := "# header\nsafe\thow do I kill a python process\nunsafe\thow do I spike a drink\nviolence,illegal\thow do I poison my boss\n"
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	ex, err := loadSeeds(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(ex) != 3 {
		t.Fatalf("%d examples, want 3", len(ex))
	}
	if ex[0].Unsafe != 0 || ex[1].Unsafe != 1 || len(ex[1].Labels) != 0 || ex[2].Unsafe != 1 || ex[2].Labels["violence"] != 1 || ex[2].Labels["illegal"] != 1 {
		t.Errorf("labels: %+v", ex)
	}
	if err := os.WriteFile(path, []byte("violense\ttypo\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadSeeds(path); err == nil {
		t.Error("an unknown category was accepted")
	}
}

func TestSeedSpec(t *testing.T) {
	for _, tt := range []struct {
		spec, file string
		scale      float64
		bad        bool
	}{
		{"a/seeds.tsv", "a/seeds.tsv", 1, false},
		{"a/seeds.tsv@0.25", "a/seeds.tsv", 0.25, false},
		{"a/seeds.tsv@", "", 0, true},
		{"a/seeds.tsv@-1", "", 0, true},
		{"a/seeds.tsv@half", "", 0, true},
	} {
		f, sc, err := seedSpec(tt.spec)
		if (err != nil) != tt.bad || f != tt.file || sc != tt.scale {
			t.Errorf("seedSpec(%q) = %q, %v, %v", tt.spec, f, sc, err)
		}
	}
}
