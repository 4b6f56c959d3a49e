package safety_test

import (
	"bufio"
	"os"
	"strings"
	"testing"

	"github.com/peerllm/peerllm/internal/safety"
)

func newClassifier(t testing.TB) *safety.Classifier {
	t.Helper()
	c, err := safety.New(safety.DefaultPolicy())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

type labelled struct {
	unsafe bool
	text   string
}

func readTricky(t *testing.T) []labelled {
	t.Helper()
	f, err := os.Open("testdata/tricky.tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []labelled
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		want, text, ok := strings.Cut(line, "\t")
		if !ok || (want != "safe" && want != "unsafe") {
			t.Fatalf("bad line %q", line)
		}
		out = append(out, labelled{want == "unsafe", text})
	}
	return out
}

// TestTricky runs our own held-out sentences (not in the training seeds):
// harmless text that sounds dangerous and plainly harmful requests. A few
// misses are tolerated and reported, because this measures generalisation;
// the bounds are the targets (recall ≥ 0.95 on harmful requests,
// false positives ≤ 0.10 on scary-but-safe prompts).
func TestTricky(t *testing.T) {
	c := newClassifier(t)
	var tp, fn, fp, tn int
	for _, l := range readTricky(t) {
		v := c.Classify(l.text)
		switch {
		case l.unsafe && v.Flagged:
			tp++
		case l.unsafe:
			fn++
			t.Logf("missed harmful: %q (scores %v)", l.text, top(v))
		case v.Flagged:
			fp++
			t.Logf("false positive: %q (tripped %v)", l.text, v.Tripped)
		default:
			tn++
		}
	}
	recall := float64(tp) / float64(tp+fn)
	fpr := float64(fp) / float64(fp+tn)
	t.Logf("tricky set: recall %.2f (%d/%d), false-positive rate %.2f (%d/%d)", recall, tp, tp+fn, fpr, fp, fp+tn)
	if recall < 0.9 || fpr > 0.1 {
		t.Errorf("tricky set: recall %.2f (want ≥ 0.90), false-positive rate %.2f (want ≤ 0.10)", recall, fpr)
	}
}

func top(v safety.Verdict) map[string]float64 {
	out := map[string]float64{}
	for k, s := range v.Scores {
		if s >= 0.2 {
			out[k] = s
		}
	}
	return out
}
