package llama

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// bpe is a byte-level BPE tokenizer (GGUF's "gpt2" model, used by Llama 3,
// Qwen 2, SmolLM): text is split by a pre-tokenizer, each piece's bytes are
// mapped to printable characters (GPT-2's byte↔unicode table) and merged by
// rank.
type bpe struct {
	vocab
	ranks   map[string]int // "left right" → merge rank
	split   func(string) []string
	byteOf  map[rune]byte
	runeOf  [256]rune
	scratch []byte
}

// newBPE builds the tokenizer from GGUF's tokens, token types, merges and
// pre-tokenizer name.
func newBPE(tokens []string, types []int32, merges []string, pre string) (*bpe, error) {
	t := &bpe{ranks: make(map[string]int, len(merges)), byteOf: make(map[rune]byte, 256)}
	switch pre {
	case "", "default", "gpt2", "gpt-2":
		t.split = splitGPT2
	case "llama3", "llama-bpe", "llama-v3", "smaug-bpe", "falcon3":
		t.split = func(s string) []string { return splitLlama3(s, 3) }
	case "qwen2", "qwen2.5", "qwen-2.5", "deepseek-r1-qwen":
		t.split = func(s string) []string { return splitLlama3(s, 1) }
	case "smollm", "starcoder", "refact", "codeshell":
		t.split = splitSmolLM
	default:
		return nil, fmt.Errorf("unsupported pre-tokenizer %q", pre)
	}
	if len(merges) == 0 {
		return nil, fmt.Errorf("no tokenizer.ggml.merges")
	}
	for i, m := range merges {
		if _, dup := t.ranks[m]; !dup {
			t.ranks[m] = i
		}
	}
	// GPT-2's table: printable Latin-1 bytes map to themselves, the rest to
	// U+0100 onwards in byte order.
	n := 0
	for b := 0; b < 256; b++ {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			t.runeOf[b] = rune(b)
		} else {
			t.runeOf[b] = rune(256 + n)
			n++
		}
		t.byteOf[t.runeOf[b]] = byte(b)
	}
	t.tokens = tokens
	t.types = types
	t.index(true)
	for i := range t.bytes {
		t.bytes[i] = -1
		if id, ok := t.lookup[string(t.runeOf[i])]; ok {
			t.bytes[i] = id
		}
	}
	t.unk = -1
	return t, nil
}

func (t *bpe) encode(text string, bos bool) []int {
	var ids []int
	if bos && t.addBOS && t.bos >= 0 {
		ids = append(ids, t.bos)
	}
	var b strings.Builder
	for _, f := range t.splitSpecial(text) {
		if f.id >= 0 {
			ids = append(ids, f.id)
			continue
		}
		for _, word := range t.split(f.text) {
			b.Reset()
			for i := 0; i < len(word); i++ {
				b.WriteRune(t.runeOf[word[i]])
			}
			ids = t.encodeWord(b.String(), ids)
		}
	}
	return ids
}

func (t *bpe) encodeWord(w string, ids []int) []int {
	if id, ok := t.lookup[w]; ok && (t.types == nil || t.types[id] == tokNormal) {
		return append(ids, id)
	}
	syms := mergeSymbols(w, func(s string, mid int) (float32, bool) {
		t.scratch = append(append(append(t.scratch[:0], s[:mid]...), ' '), s[mid:]...)
		r, ok := t.ranks[string(t.scratch)]
		return -float32(r), ok
	})
	for _, s := range syms {
		piece := w[s.start:s.end]
		if id, ok := t.lookup[piece]; ok {
			ids = append(ids, id)
			continue
		}
		for _, r := range piece {
			if id, ok := t.lookup[string(r)]; ok {
				ids = append(ids, id)
			}
		}
	}
	return ids
}

func (t *bpe) piece(prev, id int) string {
	if id < 0 || id >= len(t.tokens) {
		return ""
	}
	if t.types != nil {
		switch t.types[id] {
		case tokControl, tokUnused:
			return ""
		case tokUserDefined:
			return t.tokens[id]
		}
	}
	s := t.tokens[id]
	out := make([]byte, 0, len(s))
	for _, r := range s {
		if b, ok := t.byteOf[r]; ok {
			out = append(out, b)
		} else {
			out = utf8.AppendRune(out, r)
		}
	}
	return string(out)
}

func isL(r rune) bool { return unicode.IsLetter(r) }
func isN(r rune) bool { return unicode.IsNumber(r) }
func isS(r rune) bool { return unicode.IsSpace(r) }
func isNL(r rune) bool {
	return r == '\r' || r == '\n'
}

// contraction returns the length of an English contraction ('s 't 're 've
// 'm 'll 'd) at rs[i:], or 0.
func contraction(rs []rune, i int, fold bool) int {
	if rs[i] != '\'' || i+1 >= len(rs) {
		return 0
	}
	low := func(r rune) rune {
		if fold {
			return unicode.ToLower(r)
		}
		return r
	}
	a := low(rs[i+1])
	if i+2 < len(rs) {
		b := low(rs[i+2])
		if (a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l') {
			return 3
		}
	}
	if a == 's' || a == 't' || a == 'm' || a == 'd' {
		return 2
	}
	return 0
}

// spaceRun handles the whitespace alternatives shared by the patterns:
// \s+(?!\S) then \s+ (and, for Llama 3, \s*[\r\n]+ first).
func spaceRun(rs []rune, i int, newlines bool) int {
	j := i
	for j < len(rs) && isS(rs[j]) {
		j++
	}
	if newlines {
		last := -1
		for k := i; k < j; k++ {
			if isNL(rs[k]) {
				last = k
			}
		}
		if last >= 0 {
			return last + 1 - i
		}
	}
	if j < len(rs) && j-i > 1 {
		return j - 1 - i // leave one space to prefix the next word
	}
	return j - i
}

// splitLlama3 is the Llama 3 pre-tokenizer (digits = 3):
// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
// ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ — and Qwen 2's
// (digits = 1), which takes digits one at a time.
func splitLlama3(s string, digits int) []string {
	const fold = true
	rs := []rune(s)
	var out []string
	for i := 0; i < len(rs); {
		n := 0
		switch {
		case contraction(rs, i, fold) > 0:
			n = contraction(rs, i, fold)
		case isL(rs[i]) || (!isNL(rs[i]) && !isN(rs[i]) && i+1 < len(rs) && isL(rs[i+1])):
			n = 1
			for i+n < len(rs) && isL(rs[i+n]) {
				n++
			}
		case isN(rs[i]):
			for n < digits && i+n < len(rs) && isN(rs[i+n]) {
				n++
			}
		case !isS(rs[i]) || (rs[i] == ' ' && i+1 < len(rs) && !isS(rs[i+1]) && !isL(rs[i+1]) && !isN(rs[i+1])):
			if rs[i] == ' ' {
				n = 1
			}
			for i+n < len(rs) && !isS(rs[i+n]) && !isL(rs[i+n]) && !isN(rs[i+n]) {
				n++
			}
			for i+n < len(rs) && isNL(rs[i+n]) {
				n++
			}
		default:
			n = spaceRun(rs, i, true)
		}
		out = append(out, string(rs[i:i+n]))
		i += n
	}
	return out
}

// splitGPT2 is GPT-2's pre-tokenizer:
// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
func splitGPT2(s string) []string {
	rs := []rune(s)
	var out []string
	for i := 0; i < len(rs); {
		n := 0
		sp := 0
		if rs[i] == ' ' && i+1 < len(rs) && !isS(rs[i+1]) {
			sp = 1
		}
		c := rs[i]
		if sp == 1 {
			c = rs[i+1]
		}
		switch {
		case sp == 0 && contraction(rs, i, false) > 0:
			n = contraction(rs, i, false)
		case isL(c):
			n = sp + 1
			for i+n < len(rs) && isL(rs[i+n]) {
				n++
			}
		case isN(c):
			n = sp + 1
			for i+n < len(rs) && isN(rs[i+n]) {
				n++
			}
		case !isS(c):
			n = sp + 1
			for i+n < len(rs) && !isS(rs[i+n]) && !isL(rs[i+n]) && !isN(rs[i+n]) {
				n++
			}
		default:
			n = spaceRun(rs, i, false)
		}
		out = append(out, string(rs[i:i+n]))
		i += n
	}
	return out
}

// splitSmolLM splits every digit off on its own, then applies GPT-2's
// pattern to the rest (llama.cpp's smollm/starcoder pre-tokenizer).
func splitSmolLM(s string) []string {
	var out []string
	start := 0
	for i, r := range s {
		if isN(r) {
			if start < i {
				out = append(out, splitGPT2(s[start:i])...)
			}
			out = append(out, string(r))
			start = i + utf8.RuneLen(r)
		}
	}
	if start < len(s) {
		out = append(out, splitGPT2(s[start:])...)
	}
	return out
}
