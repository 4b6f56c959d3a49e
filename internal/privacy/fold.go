package privacy

import (
	"unicode"
	"unicode/utf8"
)

// Folding for confusables. Before scanning, a copy of the text is made in
// which full-width forms become ASCII, invisible characters (zero-width
// spaces and joiners, soft hyphens, byte-order marks) disappear, and
// Cyrillic or Greek letters that look like Latin ones become Latin inside
// words that also contain ASCII letters or digits (a mixed-script word is
// the usual disguise: "jоhn@example.com" with a Cyrillic о). Detections are
// mapped back to the original text, so the whole disguised identifier is
// replaced. Text in one script only is left as it is.

var lookalikes = map[rune]rune{
	'а': 'a', 'е': 'e', 'о': 'o', 'р': 'p', 'с': 'c', 'у': 'y', 'х': 'x', 'і': 'i', 'ј': 'j', 'ѕ': 's', 'ԁ': 'd',
	'А': 'A', 'В': 'B', 'Е': 'E', 'К': 'K', 'М': 'M', 'Н': 'H', 'О': 'O', 'Р': 'P', 'С': 'C', 'Т': 'T', 'Х': 'X',
	'І': 'I', 'Ј': 'J', 'Ѕ': 'S', 'ο': 'o', 'α': 'a', 'ν': 'v', 'Α': 'A', 'Β': 'B', 'Ε': 'E', 'Ζ': 'Z', 'Η': 'H',
	'Ι': 'I', 'Κ': 'K', 'Μ': 'M', 'Ν': 'N', 'Ο': 'O', 'Ρ': 'P', 'Τ': 'T', 'Υ': 'Y', 'Χ': 'X',
}

func invisible(r rune) bool {
	switch r {
	case '\u200b', '\u200c', '\u200d', '\u2060', '\ufeff', '\u00ad':
		return true
	}
	return false
}

// foldMap is a folded copy of a text with, for each folded byte, the span
// of the original rune it came from.
type foldMap struct {
	folded       string
	starts, ends []int
}

// foldText returns the folded text, or ok=false when folding changes
// nothing (the common case, which costs one pass over the bytes).
func foldText(text string) (foldMap, bool) {
	plain := true
	for i := 0; i < len(text); i++ {
		if text[i] >= 0x80 || (text[i] == '<' && tagLen(text[i:]) > 0) {
			plain = false
			break
		}
	}
	if plain {
		return foldMap{}, false
	}
	changed := false
	buf := make([]byte, 0, len(text))
	starts := make([]int, 0, len(text))
	ends := make([]int, 0, len(text))
	wordStart := 0
	for i := 0; i < len(text); {
		r, n := utf8.DecodeRuneInString(text[i:])
		if i == 0 || unicode.IsSpace(r) {
			wordStart = i
		}
		out := r
		if r == '<' {
			if n := tagLen(text[i:]); n > 0 {
				// An HTML tag inside text ("4111 <b>1111</b>..."): gone from
				// the scanning copy, so it cannot split an identifier.
				changed = true
				i += n
				continue
			}
		}
		switch {
		case invisible(r):
			changed = true
			i += n
			continue
		case r >= 0xFF01 && r <= 0xFF5E: // full-width ASCII
			out = r - 0xFEE0
		case r == '\u3000':
			out = ' '
		default:
			if l, ok := lookalikes[r]; ok && mixedWord(text, wordStart) {
				out = l
			}
		}
		if out != r {
			changed = true
		}
		before := len(buf)
		buf = utf8.AppendRune(buf, out)
		for k := before; k < len(buf); k++ {
			starts = append(starts, i)
			ends = append(ends, i+n)
		}
		i += n
	}
	if !changed {
		return foldMap{}, false
	}
	return foldMap{folded: string(buf), starts: starts, ends: ends}, true
}

// tagLen returns the length of an HTML tag at the start of s ("<b>",
// "</span>", "<a href=...>"), 0 if there is none.
func tagLen(s string) int {
	i := 1
	if i < len(s) && s[i] == '/' {
		i++
	}
	if i >= len(s) || !isAlpha(s[i]) {
		return 0
	}
	for i < len(s) && (isAlnum(s[i]) || s[i] == '-') {
		i++
	}
	for j := i; j < len(s) && j < i+80; j++ {
		switch s[j] {
		case '>':
			if j > i && s[i] != ' ' && s[i] != '/' {
				return 0 // "<bold>" is a tag; "<b&c>" is not
			}
			return j + 1
		case '<', '\n':
			return 0
		}
	}
	return 0
}

// mixedWord reports whether the word starting at i contains an ASCII letter
// or digit (so lookalike letters in it are a disguise, not another script).
func mixedWord(text string, i int) bool {
	for j := i; j < len(text); {
		r, n := utf8.DecodeRuneInString(text[j:])
		if unicode.IsSpace(r) && j > i {
			return false
		}
		if r < 0x80 && (isAlnum(byte(r)) || r == '@') {
			return true
		}
		j += n
	}
	return false
}

// unfold maps spans on the folded text back to the original.
func (m foldMap) unfold(spans []span) []span {
	for k := range spans {
		s, e := spans[k].start, spans[k].end
		if e <= s || e > len(m.starts) {
			spans[k].end = spans[k].start
			continue
		}
		spans[k].start, spans[k].end = m.starts[s], m.ends[e-1]
	}
	return spans
}
