package llama

import (
	"container/heap"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"
)

// Token types as GGUF's tokenizer.ggml.token_type stores them.
const (
	tokNormal      = 1
	tokUnknown     = 2
	tokControl     = 3
	tokUserDefined = 4
	tokUnused      = 5
	tokByte        = 6
)

// tokenizer turns text into token ids and ids back into printable pieces.
type tokenizer interface {
	// encode tokenizes text, prepending BOS when bos is true and the model
	// wants one.
	encode(text string, bos bool) []int
	// piece is the text printed for id following prev: byte tokens are the
	// raw byte, control tokens are empty, and the leading space of the first
	// piece after BOS is dropped (as llama2.c prints).
	piece(prev, id int) string
	size() int
	bosID() int
	eosIDs() []int
	// tokenText is the vocabulary entry of id, for chat template BOS/EOS.
	tokenText(id int) string
}

// vocab is the state shared by both tokenizer kinds.
type vocab struct {
	tokens       []string // pieces, for SentencePiece with "▁" already turned into " "
	types        []int32
	lookup       map[string]int
	special      []int     // control and user-defined ids, longest text first
	specialFirst [256]bool // first bytes of special token texts
	bos          int
	eos          []int
	addBOS       bool
	bytes        [256]int // id of each byte token, -1 if none
	unk          int
}

func (v *vocab) size() int     { return len(v.tokens) }
func (v *vocab) bosID() int    { return v.bos }
func (v *vocab) eosIDs() []int { return v.eos }
func (v *vocab) tokenText(id int) string {
	if id < 0 || id >= len(v.tokens) {
		return ""
	}
	return v.tokens[id]
}

func (v *vocab) index(specialOK bool) {
	v.lookup = make(map[string]int, len(v.tokens))
	for i := range v.bytes {
		v.bytes[i] = -1
	}
	for id, t := range v.tokens {
		if _, dup := v.lookup[t]; !dup {
			v.lookup[t] = id
		}
		if b, ok := byteToken(t); ok && (v.types == nil || v.types[id] == tokByte) {
			if v.bytes[b] < 0 {
				v.bytes[b] = id
			}
		}
		if specialOK && v.types != nil && (v.types[id] == tokControl || v.types[id] == tokUserDefined) && t != "" {
			v.special = append(v.special, id)
			v.specialFirst[t[0]] = true
		}
	}
	// Longest first, so "<|im_start|>" wins over a shorter special prefix.
	for i := 1; i < len(v.special); i++ {
		for j := i; j > 0 && len(v.tokens[v.special[j]]) > len(v.tokens[v.special[j-1]]); j-- {
			v.special[j], v.special[j-1] = v.special[j-1], v.special[j]
		}
	}
}

// byteToken parses "<0xNN>".
func byteToken(s string) (byte, bool) {
	if len(s) != 6 || s[:3] != "<0x" || s[5] != '>' {
		return 0, false
	}
	var b byte
	for _, c := range []byte(s[3:5]) {
		switch {
		case c >= '0' && c <= '9':
			b = b<<4 | (c - '0')
		case c >= 'A' && c <= 'F':
			b = b<<4 | (c - 'A' + 10)
		case c >= 'a' && c <= 'f':
			b = b<<4 | (c - 'a' + 10)
		default:
			return 0, false
		}
	}
	return b, true
}

// fragment is a piece of input: plain text to tokenize, or one special token.
type fragment struct {
	text string
	id   int // -1 for text
}

// splitSpecial cuts text around occurrences of special token texts.
func (v *vocab) splitSpecial(text string) []fragment {
	if len(v.special) == 0 {
		return []fragment{{text: text, id: -1}}
	}
	var out []fragment
	start := 0
	for i := 0; i < len(text); {
		matched := -1
		if v.specialFirst[text[i]] {
			for _, id := range v.special {
				if strings.HasPrefix(text[i:], v.tokens[id]) {
					matched = id
					break
				}
			}
		}
		if matched < 0 {
			i++
			continue
		}
		if start < i {
			out = append(out, fragment{text: text[start:i], id: -1})
		}
		out = append(out, fragment{id: matched})
		i += len(v.tokens[matched])
		start = i
	}
	if start < len(text) {
		out = append(out, fragment{text: text[start:], id: -1})
	}
	return out
}

// spm is a SentencePiece-style BPE tokenizer (llama2.c's tokenizer.bin and
// GGUF's "llama" model): a space prefix, merges chosen by score, byte
// fallback.
type spm struct {
	vocab
	scores      []float32
	spacePrefix bool
	// strict merges only pieces that are tokens themselves, as llama2.c
	// does (a character outside the vocabulary becomes byte tokens before
	// merging and never merges); llama.cpp lets such a character merge.
	strict bool
}

// loadTokenizerBin reads llama2.c's tokenizer.bin: int32 max_token_length,
// then per token a float32 score, an int32 length and the bytes. BOS is 1,
// EOS 2, byte tokens "<0xNN>".
func loadTokenizerBin(data []byte, n int) (*spm, error) {
	if len(data) < 4 {
		return nil, fmt.Errorf("truncated")
	}
	maxLen := int(int32(binary.LittleEndian.Uint32(data)))
	if maxLen <= 0 || maxLen > 1<<16 {
		return nil, fmt.Errorf("bad max token length %d", maxLen)
	}
	off := 4
	t := &spm{spacePrefix: true, strict: true}
	t.addBOS = true
	t.bos, t.eos, t.unk = 1, []int{2}, 0
	for off < len(data) {
		if len(data)-off < 8 {
			return nil, fmt.Errorf("truncated at token %d", len(t.tokens))
		}
		score := math.Float32frombits(binary.LittleEndian.Uint32(data[off:]))
		l := int(int32(binary.LittleEndian.Uint32(data[off+4:])))
		off += 8
		if l < 0 || l > maxLen || l > len(data)-off {
			return nil, fmt.Errorf("bad length %d at token %d (truncated or corrupt)", l, len(t.tokens))
		}
		t.tokens = append(t.tokens, string(data[off:off+l]))
		t.scores = append(t.scores, score)
		off += l
		if n > 0 && len(t.tokens) == n {
			break
		}
	}
	if len(t.tokens) < 3 {
		return nil, fmt.Errorf("only %d tokens", len(t.tokens))
	}
	t.index(false)
	return t, nil
}

func (t *spm) encode(text string, bos bool) []int {
	var ids []int
	if bos && t.addBOS {
		ids = append(ids, t.bos)
	}
	prevSpecial := true
	for _, f := range t.splitSpecial(text) {
		if f.id >= 0 {
			ids = append(ids, f.id)
			prevSpecial = true
			continue
		}
		s := f.text
		if t.spacePrefix && prevSpecial && s != "" {
			s = " " + s
		}
		prevSpecial = false
		ids = t.encodeText(s, ids)
	}
	return ids
}

// symbol is one node of the merge list.
type symbol struct {
	prev, next int
	start, end int // byte range in the text
}

// bigram is a candidate merge of symbols left and right.
type bigram struct {
	left, right int
	score       float32 // higher merges first
	size        int     // byte length when queued; stale entries differ
}

type bigramQueue []bigram

func (q bigramQueue) Len() int { return len(q) }
func (q bigramQueue) Less(i, j int) bool {
	if q[i].score != q[j].score {
		return q[i].score > q[j].score
	}
	return q[i].left < q[j].left
}
func (q bigramQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *bigramQueue) Push(x any)   { *q = append(*q, x.(bigram)) }
func (q *bigramQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

// mergeSymbols splits text into UTF-8 characters and repeatedly merges the
// best adjacent pair (highest score, leftmost first) that score accepts
// (joined is the pair's text, mid where the right part starts); it returns
// the surviving symbols.
func mergeSymbols(text string, score func(joined string, mid int) (float32, bool)) []symbol {
	syms := make([]symbol, 0, len(text))
	for i := 0; i < len(text); {
		_, n := utf8.DecodeRuneInString(text[i:])
		syms = append(syms, symbol{prev: len(syms) - 1, next: len(syms) + 1, start: i, end: i + n})
		i += n
	}
	if len(syms) == 0 {
		return nil
	}
	syms[len(syms)-1].next = -1
	q := &bigramQueue{}
	try := func(l, r int) {
		if l < 0 || r < 0 {
			return
		}
		s := text[syms[l].start:syms[r].end]
		if sc, ok := score(s, syms[r].start-syms[l].start); ok {
			heap.Push(q, bigram{left: l, right: r, score: sc, size: len(s)})
		}
	}
	for i := 1; i < len(syms); i++ {
		try(i-1, i)
	}
	for q.Len() > 0 {
		b := heap.Pop(q).(bigram)
		l, r := &syms[b.left], &syms[b.right]
		if l.end == l.start || r.end == r.start || l.next != b.right || r.end-l.start != b.size {
			continue
		}
		l.end = r.end
		r.start, r.end = 0, 0
		l.next = r.next
		if r.next >= 0 {
			syms[r.next].prev = b.left
		}
		try(l.prev, b.left)
		try(b.left, l.next)
	}
	out := syms[:0]
	for i := 0; i >= 0 && i < len(syms); i = syms[i].next {
		out = append(out, syms[i])
	}
	return out
}

func (t *spm) encodeText(text string, ids []int) []int {
	syms := mergeSymbols(text, func(s string, mid int) (float32, bool) {
		id, ok := t.lookup[s]
		if !ok {
			return 0, false
		}
		if t.strict {
			if _, ok := t.lookup[s[:mid]]; !ok {
				return 0, false
			}
			if _, ok := t.lookup[s[mid:]]; !ok {
				return 0, false
			}
		}
		return t.scores[id], true
	})
	for _, s := range syms {
		piece := text[s.start:s.end]
		if id, ok := t.lookup[piece]; ok {
			ids = append(ids, id)
			continue
		}
		for i := 0; i < len(piece); i++ {
			if id := t.bytes[piece[i]]; id >= 0 {
				ids = append(ids, id)
			} else {
				ids = append(ids, t.unk)
			}
		}
	}
	return ids
}

func (t *spm) piece(prev, id int) string {
	if id < 0 || id >= len(t.tokens) {
		return ""
	}
	if t.types != nil {
		switch t.types[id] {
		case tokControl, tokUnused:
			return ""
		case tokUnknown:
			return "\u2585"
		}
	}
	p := t.tokens[id]
	if prev == t.bos && len(p) > 0 && p[0] == ' ' {
		p = p[1:]
	}
	if b, ok := byteToken(p); ok && (t.types == nil || t.types[id] == tokByte) {
		return string([]byte{b})
	}
	return p
}
