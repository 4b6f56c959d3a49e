package privacy

import (
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Restorer puts the originals back into a streamed answer. Feed it the
// answer's chunks in order with Write and end with Flush; the concatenation
// of what they return is the restored answer.
//
// It replaces each stand-in the Session issued, matched case-insensitively
// on word boundaries (so "ALEX CARTER" and "alex carter" are restored, and
// "Alexander" is not touched), and each word of a surrogate person name on
// its own ("Alex" → "John" when "Alex Carter" stood for "John Smith"). A
// single-word name stand-in is restored only when it starts with a capital
// ("Alex", "ALEX"), so an ordinary lower-case word is never taken for it;
// surrogate name words are also chosen among words that are not frequent
// English words.
// Possessives ("Alex Carter's") need nothing special: the stand-in is
// replaced and "'s" follows. An all-capitals match is restored in capitals.
//
// Hold-back is bounded: Write keeps back only a tail of the text that is a
// prefix of some stand-in (or a stand-in whose next character, which
// decides the word boundary, has not arrived), or an incomplete UTF-8
// character, never more than the longest stand-in plus one character. A Restorer is not safe for concurrent use;
// one stream owns it.
type Restorer struct {
	pats    []restorePat
	first   [256]bool // first bytes (lower-cased) of patterns
	maxLen  int
	pending string
	prevW   bool // the last released rune was a word character
}

type restorePat struct {
	from         string // the stand-in as issued
	to           string
	wordL, wordR bool // needs a word boundary on that side
	capOnly      bool // a single name word: restored only when written with a capital
}

// NewRestorer snapshots the mapping as it is now: call it after the last
// Anonymize of the request.
func (ss *Session) NewRestorer() *Restorer {
	ss.mu.Lock()
	m := make(map[string]string, len(ss.rev)+len(ss.nameRev))
	capOnly := map[string]bool{}
	for k, v := range ss.nameRev {
		m[k] = v
		capOnly[k] = true
	}
	for k, v := range ss.rev {
		m[k] = v
		if strings.HasPrefix(k, "[") && strings.HasSuffix(k, "]") {
			// A model may drop the brackets of a placeholder: "PERSON_1".
			if inner := k[1 : len(k)-1]; m[inner] == "" {
				m[inner] = v
			}
		}
		if !strings.ContainsAny(k, " .@[") {
			capOnly[k] = capOnly[k] || isCapitalised(k)
		} else {
			capOnly[k] = false
		}
	}
	ss.mu.Unlock()
	return newRestorer(m, capOnly)
}

func isCapitalised(s string) bool {
	r, _ := utf8.DecodeRuneInString(s)
	return unicode.IsUpper(r)
}

func newRestorer(m map[string]string, capOnly map[string]bool) *Restorer {
	r := &Restorer{}
	for from, to := range m {
		if from == "" || from == to {
			continue
		}
		fr, _ := utf8.DecodeRuneInString(from)
		lr, _ := utf8.DecodeLastRuneInString(from)
		r.pats = append(r.pats, restorePat{from: from, to: to, wordL: isWordRune(fr), wordR: isWordRune(lr), capOnly: capOnly[from]})
		r.first[lower(from[0])] = true
		r.first[upperByte(from[0])] = true
		r.maxLen = max(r.maxLen, len(from))
	}
	// Longest first, so "Alex Carter" wins over "Alex".
	sort.Slice(r.pats, func(i, j int) bool {
		if len(r.pats[i].from) != len(r.pats[j].from) {
			return len(r.pats[i].from) > len(r.pats[j].from)
		}
		return r.pats[i].from < r.pats[j].from
	})
	return r
}

func upperByte(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - 32
	}
	return c
}

// Write adds the next chunk and returns the text that can be released now.
//
// Write never releases half of a multi-byte character: a character cut
// between chunks is held until its last byte arrives, so every piece it
// returns is valid UTF-8 if the stream is.
func (r *Restorer) Write(chunk string) string {
	r.pending += chunk
	if len(r.pats) == 0 {
		end := completeRunes(r.pending, 0)
		out := r.pending[:end]
		r.pending = r.pending[end:]
		return out
	}
	return r.process(false)
}

// Flush releases everything held back. Call it once at the end of the stream.
func (r *Restorer) Flush() string {
	if len(r.pats) == 0 {
		out := r.pending
		r.pending = ""
		return out
	}
	out := r.process(true)
	r.pending = ""
	return out
}

// Pending reports how many bytes are held back.
func (r *Restorer) Pending() int { return len(r.pending) }

func (r *Restorer) process(final bool) string {
	p := r.pending
	var b strings.Builder
	last := 0 // p[last:i] is released verbatim
	i := 0
	for i < len(p) {
		c := p[i]
		if !r.first[c] || (r.prevWordAt(p, i) && isWordByteStart(p, i)) {
			i = r.advance(p, i)
			continue
		}
		res, to, n := r.matchAt(p, i, final)
		switch res {
		case matchFull:
			b.WriteString(p[last:i])
			b.WriteString(to)
			i += n
			last = i
			r.prevW = isWordRuneBefore(to)
			continue
		case matchMaybe:
			b.WriteString(p[last:i])
			r.pending = p[i:]
			return b.String()
		}
		i = r.advance(p, i)
	}
	end := len(p)
	if !final {
		end = completeRunes(p, last)
	}
	b.WriteString(p[last:end])
	r.pending = p[end:]
	if end > last {
		ru, _ := utf8.DecodeLastRuneInString(p[last:end])
		r.prevW = isWordRune(ru)
	}
	return b.String()
}

// completeRunes returns the end of p without a trailing incomplete UTF-8
// sequence (a multi-byte character cut between chunks), never before from.
func completeRunes(p string, from int) int {
	for k := len(p) - 1; k >= from && k >= len(p)-utf8.UTFMax; k-- {
		if utf8.RuneStart(p[k]) {
			if !utf8.FullRuneInString(p[k:]) {
				return k
			}
			break
		}
	}
	return len(p)
}

// advance moves past one rune and tracks whether it was a word character.
func (r *Restorer) advance(p string, i int) int {
	ru, n := utf8.DecodeRuneInString(p[i:])
	r.prevW = isWordRune(ru)
	return i + n
}

// prevWordAt reports whether the rune before p[i] (or the last released
// one) is a word character.
func (r *Restorer) prevWordAt(p string, i int) bool {
	if i == 0 {
		return r.prevW
	}
	ru, _ := utf8.DecodeLastRuneInString(p[:i])
	return isWordRune(ru)
}

func isWordByteStart(p string, i int) bool {
	ru, _ := utf8.DecodeRuneInString(p[i:])
	return isWordRune(ru)
}

func isWordRuneBefore(s string) bool {
	ru, _ := utf8.DecodeLastRuneInString(s)
	return isWordRune(ru)
}

type matchResult int

const (
	matchNone matchResult = iota
	matchFull
	matchMaybe // a prefix of a stand-in, or a match whose right boundary is unknown
)

// matchAt tries every stand-in at p[i:].
func (r *Restorer) matchAt(p string, i int, final bool) (matchResult, string, int) {
	rest := p[i:]
	maybe := false
	for _, pt := range r.pats {
		n := len(pt.from)
		if len(rest) < n {
			if !final && strings.EqualFold(rest, pt.from[:len(rest)]) {
				maybe = true
			}
			continue
		}
		got := rest[:n]
		if !strings.EqualFold(got, pt.from) || (pt.capOnly && got[0] >= 'a' && got[0] <= 'z') {
			continue
		}
		if pt.wordR {
			if len(rest) == n {
				if !final {
					maybe = true
					continue
				}
			} else if isWordByteStart(rest, n) {
				continue
			}
		}
		if maybe {
			// A longer stand-in may still match once more text arrives.
			return matchMaybe, "", 0
		}
		return matchFull, caseLike(got, pt.from, pt.to), n
	}
	if maybe {
		return matchMaybe, "", 0
	}
	return matchNone, "", 0
}

// caseLike restores to in capitals when the model wrote the stand-in in
// capitals (and the stand-in itself was not).
func caseLike(got, from, to string) string {
	if got != from && strings.IndexFunc(got, unicode.IsLower) < 0 && strings.IndexFunc(from, unicode.IsLower) >= 0 {
		return strings.ToUpper(to)
	}
	return to
}
