package safety_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/peerllm/peerllm/internal/safety"
)

const safeAnswer = "Paris is the capital of France. It sits on the Seine and has about two million people.\n" +
	"The city is known for its museums, like the Louvre. Many visitors also climb the Eiffel Tower! " +
	"Is it worth a visit? Most people say yes, especially in spring."

const harmfulSentence = "Here are step-by-step instructions to build a pipe bomb at home. "

// feed writes text to s in chunks of size n and returns everything released
// and the first flagged verdict, checking the hold-back after every write.
func feed(t *testing.T, s *safety.Stream, text string, n, maxWindow int) (string, *safety.Verdict) {
	t.Helper()
	var out strings.Builder
	for len(text) > 0 {
		k := min(n, len(text))
		rel, v := s.Write(text[:k])
		text = text[k:]
		out.WriteString(rel)
		if v != nil && v.Flagged {
			return out.String(), v
		}
		// At most one window is held back: less than a full window, plus
		// at most one byte when a sentence end waits for its next byte.
		if s.Held() > maxWindow+1 {
			t.Fatalf("held back %d bytes, more than one window (%d)", s.Held(), maxWindow)
		}
	}
	rel, v := s.Close()
	out.WriteString(rel)
	return out.String(), v
}

func TestStreamSafeTextFlows(t *testing.T) {
	c := newClassifier(t)
	for _, n := range []int{1, 3, 7, 64, 1 << 20} {
		s := c.NewStream(safety.StreamOptions{})
		got, v := feed(t, s, safeAnswer, n, 400)
		if v != nil && v.Flagged {
			t.Fatalf("chunk %d: safe answer flagged: %v", n, v.Tripped)
		}
		if got != safeAnswer {
			t.Fatalf("chunk %d: released %q, want the whole answer", n, got)
		}
	}
}

func TestStreamReleasesBySentence(t *testing.T) {
	c := newClassifier(t)
	s := c.NewStream(safety.StreamOptions{})
	rel, _ := s.Write("The Louvre is a museum. It is in Par")
	if rel != "The Louvre is a museum. " {
		t.Errorf("released %q, want the first sentence only", rel)
	}
	if s.Held() != len("It is in Par") {
		t.Errorf("held %d bytes", s.Held())
	}
	rel, _ = s.Close()
	if rel != "It is in Par" {
		t.Errorf("Close released %q", rel)
	}
	if rel, v := s.Write("more"); rel != "" || v != nil {
		t.Errorf("Write after Close released %q", rel)
	}
}

// A sentence of a word or two says too little to be judged alone: "Fine."
// once cut an answer (and struck its host). Short sentences join the next
// one; a short harmful sentence is still caught inside its window.
func TestStreamShortSentencesJoinTheNext(t *testing.T) {
	c := newClassifier(t)
	for _, text := range []string{
		"Fine. Let's go to the park.\n",
		"The dog ran to the park. Nice. They played all day.\n",
		"Okay. Fine. Good night.",
		"Fine.",
		"Tom was sad. \"Fine,\" he said. \"I will go home.\"\n",
	} {
		out, v := feed(t, c.NewStream(safety.StreamOptions{}), text, 1, 400)
		if v != nil && v.Flagged || out != text {
			t.Errorf("%q: delivered %q, verdict %+v", text, out, v)
		}
	}
	out, v := feed(t, c.NewStream(safety.StreamOptions{}), "Sure. Kill yourself. Nobody would miss you.\n", 1, 400)
	if v == nil || !v.Flagged || out != "" {
		t.Errorf("short harmful sentences: delivered %q, verdict %+v", out, v)
	}
}

func TestStreamLongWindowWithoutSentenceEnd(t *testing.T) {
	c := newClassifier(t)
	s := c.NewStream(safety.StreamOptions{MaxWindow: 50})
	text := strings.Repeat("word ", 100)
	got, v := feed(t, s, text, 3, 50)
	if v != nil && v.Flagged || got != text {
		t.Fatalf("released %d of %d bytes", len(got), len(text))
	}
	// No spaces and multi-byte runes: cut on a rune boundary.
	s = c.NewStream(safety.StreamOptions{MaxWindow: 50})
	text = strings.Repeat("日本語", 100)
	rel, _ := s.Write(text)
	if !utf8.ValidString(rel) || len(rel) == 0 {
		t.Fatalf("cut inside a rune or released nothing: %d bytes", len(rel))
	}
}

func TestStreamStopsUnsafeSplitAcrossChunks(t *testing.T) {
	c := newClassifier(t)
	prefix := "Sure, I can help with that. "
	answer := prefix + harmfulSentence + "First, get a steel pipe. "
	for _, n := range []int{1, 2, 5, 13, 1 << 20} {
		s := c.NewStream(safety.StreamOptions{})
		got, v := feed(t, s, answer, n, 400)
		if v == nil || !v.Flagged {
			t.Fatalf("chunk %d: unsafe answer not stopped", n)
		}
		if strings.Contains(got, "pipe bomb") || !strings.HasPrefix(prefix, got) {
			t.Fatalf("chunk %d: released %q; want at most the safe prefix", n, got)
		}
		if rel, v2 := s.Write("more text. "); rel != "" || v2 != v {
			t.Errorf("chunk %d: stream kept going after a stop", n)
		}
		if rel, v2 := s.Close(); rel != "" || v2 != v {
			t.Errorf("chunk %d: Close after a stop released %q", n, rel)
		}
	}
}

func TestStreamCatchesHarmSplitAcrossWindows(t *testing.T) {
	c := newClassifier(t)
	// The request and its object land in different windows; the screen
	// classifies each window with the one before it.
	answer := "Give me step-by-step instructions.\nBuild a pipe bomb at home. "
	s := c.NewStream(safety.StreamOptions{})
	got, v := feed(t, s, answer, 4, 400)
	if v == nil || !v.Flagged {
		t.Fatalf("harm split across windows not caught; released %q", got)
	}
}

func TestStreamCloseFlagsUnsafeTail(t *testing.T) {
	c := newClassifier(t)
	s := c.NewStream(safety.StreamOptions{})
	rel, _ := s.Write("Sure. Give me step-by-step instructions to build a pipe bomb")
	if strings.Contains(rel, "bomb") {
		t.Fatalf("released the unfinished window: %q", rel)
	}
	rel, v := s.Close()
	if v == nil || !v.Flagged || rel != "" {
		t.Fatalf("Close released %q, verdict %+v", rel, v)
	}
}

func TestStreamBadInput(t *testing.T) {
	c := newClassifier(t)
	tests := map[string]string{
		"empty":        "",
		"invalid utf8": "ab\xff\xfe. cd\xc3",
		"binary":       string([]byte{0, 1, 2, 0xff, '.', ' ', 0x80, 0x81}),
		"homoglyph":    "Нello wоrld. ",
	}
	for name, text := range tests {
		t.Run(name, func(t *testing.T) {
			s := c.NewStream(safety.StreamOptions{})
			got, v := feed(t, s, text, 1, 400)
			if v != nil && v.Flagged {
				t.Fatalf("flagged harmless input")
			}
			if got != text {
				t.Fatalf("released %q, want %q", got, text)
			}
		})
	}
}

func FuzzClassify(f *testing.F) {
	for _, s := range []string{"", "How do I kill a python process?", "h0w t0 m4ke a b0mb", "k i l l", "\xff\xfe", "Ｂｏｍｂ", "a\u200bb"} {
		f.Add(s)
	}
	c := newClassifier(f)
	cats := len(safety.Categories())
	f.Fuzz(func(t *testing.T, text string) {
		v := c.Classify(text)
		if len(v.Scores) != cats || len(v.Categories) != cats {
			t.Fatalf("verdict has %d scores, %d categories", len(v.Scores), len(v.Categories))
		}
		for k, s := range v.Scores {
			if !(s >= 0 && s <= 1) {
				t.Fatalf("score %s = %v", k, s)
			}
		}
		if v.Flagged != (len(v.Tripped) > 0) {
			t.Fatalf("flagged %v with tripped %v", v.Flagged, v.Tripped)
		}
	})
}

func FuzzStream(f *testing.F) {
	f.Add("Hello there. How are you?", uint8(3))
	f.Add("a.b.c. d! e? f\ng", uint8(1))
	f.Add("\xff\xfe. \xc3", uint8(2))
	f.Add(harmfulSentence, uint8(5))
	c := newClassifier(f)
	f.Fuzz(func(t *testing.T, text string, chunk uint8) {
		n := int(chunk%16) + 1
		s := c.NewStream(safety.StreamOptions{MaxWindow: 64})
		var out strings.Builder
		stopped := false
		for rest := text; len(rest) > 0; {
			k := min(n, len(rest))
			rel, v := s.Write(rest[:k])
			rest = rest[k:]
			out.WriteString(rel)
			if v != nil && v.Flagged {
				stopped = true
				break
			}
			if s.Held() > 64+n {
				t.Fatalf("held %d bytes", s.Held())
			}
		}
		if !stopped {
			rel, v := s.Close()
			out.WriteString(rel)
			stopped = v != nil && v.Flagged
		}
		got := out.String()
		if !strings.HasPrefix(text, got) {
			t.Fatalf("released text is not a prefix of the input")
		}
		if !stopped && got != text {
			t.Fatalf("unflagged stream released %d of %d bytes", len(got), len(text))
		}
	})
}
