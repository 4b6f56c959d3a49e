package safety

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// doc is one window of text after normalisation: lower-case words with
// obfuscation undone, joined by single spaces so that an n-gram of adjacent
// words is a contiguous slice of buf.
type doc struct {
	buf    []byte  // normalised words separated by one space
	start  []int32 // start offset of word i in buf
	end    []int32 // end offset (exclusive) of word i in buf
	sbuf   []byte  // stems, same layout
	sstart []int32
	send   []int32
	sent   []bool // sent[i]: word i begins a sentence
	glued  []bool // glued[i]: only punctuation, no space, came before word i (h-o-w)
}

func (d *doc) reset() {
	d.buf = d.buf[:0]
	d.start = d.start[:0]
	d.end = d.end[:0]
	d.sbuf = d.sbuf[:0]
	d.sstart = d.sstart[:0]
	d.send = d.send[:0]
	d.sent = d.sent[:0]
	d.glued = d.glued[:0]
}

func (d *doc) words() int { return len(d.start) }

// sub makes dst a copy of words [from, to) of d (one sentence).
func (d *doc) sub(dst *doc, from, to int) {
	dst.reset()
	for i := from; i < to; i++ {
		if i > from {
			dst.buf = append(dst.buf, ' ')
			dst.sbuf = append(dst.sbuf, ' ')
		}
		dst.start = append(dst.start, int32(len(dst.buf)))
		dst.buf = append(dst.buf, d.word(i)...)
		dst.end = append(dst.end, int32(len(dst.buf)))
		dst.sstart = append(dst.sstart, int32(len(dst.sbuf)))
		dst.sbuf = append(dst.sbuf, d.stem(i)...)
		dst.send = append(dst.send, int32(len(dst.sbuf)))
		dst.sent = append(dst.sent, i == from)
		dst.glued = append(dst.glued, i > from && d.glued[i])
	}
}

func (d *doc) word(i int) []byte { return d.buf[d.start[i]:d.end[i]] }

func (d *doc) stem(i int) []byte { return d.sbuf[d.sstart[i]:d.send[i]] }

// confusables folds letters from other scripts that look like Latin ones
// (the usual homoglyph substitutions) onto the Latin letter. NFKD has already
// mapped full-width, mathematical and circled letters, and ligatures.
var confusables = map[rune]rune{
	// Cyrillic
	'а': 'a', 'в': 'b', 'е': 'e', 'ё': 'e', 'к': 'k', 'м': 'm', 'н': 'h', 'о': 'o', 'р': 'p',
	'с': 'c', 'т': 't', 'у': 'y', 'х': 'x', 'ѕ': 's', 'і': 'i', 'ї': 'i', 'ј': 'j', 'ԁ': 'd',
	'ԛ': 'q', 'ԝ': 'w', 'һ': 'h', 'ӏ': 'l', 'ɡ': 'g', 'ո': 'n', 'ս': 'u', 'ց': 'g', 'օ': 'o',
	// Greek
	'α': 'a', 'β': 'b', 'ε': 'e', 'η': 'n', 'ι': 'i', 'κ': 'k', 'ν': 'v', 'ο': 'o', 'ρ': 'p',
	'τ': 't', 'υ': 'u', 'χ': 'x', 'γ': 'y', 'ω': 'w', 'μ': 'u', 'ς': 's', 'σ': 'o',
	// Latin look-alikes and IPA
	'ı': 'i', 'ł': 'l', 'ø': 'o', 'đ': 'd', 'ħ': 'h', 'ŀ': 'l', 'ƅ': 'b', 'ɑ': 'a', 'ɩ': 'i',
	'ʀ': 'r', 'ʏ': 'y', 'ɴ': 'n', 'ᴀ': 'a', 'ᴄ': 'c', 'ᴅ': 'd', 'ᴇ': 'e', 'ᴋ': 'k', 'ᴍ': 'm',
	'ᴏ': 'o', 'ᴘ': 'p', 'ᴛ': 't', 'ᴜ': 'u', 'ᴠ': 'v', 'ᴡ': 'w', 'ᴢ': 'z', 'ß': 's', 'æ': 'a',
	'œ': 'o', 'þ': 'p',
}

// leet maps the digits and symbols used in leetspeak to the letter they
// stand for. They are only rewritten inside a word (see isLeetContext).
func leet(r rune) rune {
	switch r {
	case '0':
		return 'o'
	case '1', '!', '|':
		return 'i'
	case '3':
		return 'e'
	case '4', '@':
		return 'a'
	case '5', '$':
		return 's'
	case '7', '+':
		return 't'
	case '8':
		return 'b'
	}
	return 0
}

// foldRune maps one rune to its canonical lower-case form, or -1 to drop it
// (combining marks and invisible format characters such as zero-width
// joiners and soft hyphens), or ' ' for anything else that is not a letter.
func foldRune(r rune) rune {
	if r < utf8.RuneSelf {
		switch {
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			return r
		case r == '\'':
			return -1 // don't → dont
		}
		return r // punctuation is handled by the tokenizer
	}
	if unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Cf, r) || r == '\u2019' {
		return -1
	}
	r = unicode.ToLower(r)
	if f, ok := confusables[r]; ok {
		return f
	}
	if unicode.IsLetter(r) || unicode.IsDigit(r) {
		return r
	}
	if unicode.IsSpace(r) {
		return ' '
	}
	return r
}

// asciiFold is foldRune for ASCII, as a table.
var asciiFold = func() (t [utf8.RuneSelf]rune) {
	for r := range t {
		t[r] = foldRune(rune(r))
	}
	return t
}()

func isAlpha(r rune) bool {
	if r < utf8.RuneSelf {
		return r >= 'a' && r <= 'z'
	}
	return unicode.IsLetter(r)
}

func isWordRune(r rune) bool {
	if r < utf8.RuneSelf {
		return (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9')
	}
	return unicode.IsLetter(r) || unicode.IsDigit(r)
}

func isSentenceEnd(r rune) bool {
	return r == '.' || r == '!' || r == '?' || r == '\n' || r == ';' || r == ':'
}

// canonical returns text as valid, decomposed (NFKD) UTF-8 with combining
// marks still present; foldRune drops them. ASCII text is returned as is.
func canonical(text string) string {
	ascii := true
	for i := 0; i < len(text); i++ {
		if text[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return text
	}
	if !utf8.ValidString(text) {
		text = strings.ToValidUTF8(text, " ")
	}
	return norm.NFKD.String(text)
}

// normalize fills d from text. It undoes the common obfuscations: homoglyphs
// (NFKD + confusable folding), accents, invisible characters, leetspeak
// inside words (k1ll, h@te) and letters spaced or dotted apart (k i l l,
// k.i.l.l).
func normalize(d *doc, text string) {
	d.reset()
	text = canonical(text)
	var tok []rune
	var raw [64]rune
	tok = raw[:0]
	newSentence, space := true, true
	flush := func() {
		if len(tok) == 0 {
			return
		}
		// A trailing "!" was kept in case it was leet (h!); addWord drops
		// it as punctuation, and then it ends the sentence ("Wow! Next").
		bang := tok[len(tok)-1] == '!'
		d.addWord(tok, newSentence, !space)
		newSentence, space = bang, false
		tok = tok[:0]
	}
	for _, r := range text {
		var f rune
		if r < utf8.RuneSelf {
			f = asciiFold[r]
		} else {
			f = foldRune(r)
		}
		if f < 0 {
			continue
		}
		if isWordRune(f) {
			tok = append(tok, f)
			continue
		}
		if leet(f) != 0 && (len(tok) > 0 || f == '$') {
			// A leet symbol may continue a word (h@te, $h!t); decide in addWord.
			tok = append(tok, f)
			continue
		}
		flush()
		if f == ' ' {
			space = true
		}
		if isSentenceEnd(f) {
			newSentence = true
		}
	}
	flush()
	d.joinSpelled()
}

// codeName reports whether tok is a name written with a digit that leetspeak
// would garble into another word: the explosive "C4" is not "ca" (which
// also made every "CA", California, a weapon word; session 7).
func codeName(tok []rune) bool {
	return len(tok) == 2 && (tok[0] == 'c' || tok[0] == 'C') && tok[1] == '4'
}

// addWord appends one raw token, rewriting leetspeak when the token is
// mostly letters.
func (d *doc) addWord(tok []rune, sentence, glued bool) {
	// Trailing symbols that were kept as possible leet (e.g. "hello!") are
	// punctuation unless a letter follows them.
	for len(tok) > 0 && !isWordRune(tok[len(tok)-1]) {
		tok = tok[:len(tok)-1]
	}
	if len(tok) == 0 {
		return
	}
	if tok[0] == '$' && (len(tok) < 2 || !isAlpha(tok[1])) {
		tok = tok[1:] // a price, not leet
	}
	if len(tok) == 0 {
		return
	}
	letters, others := 0, 0
	for _, r := range tok {
		if isAlpha(r) {
			letters++
		} else {
			others++
		}
	}
	if others > 0 && letters >= others && (letters >= 2 || (others == 1 && len(tok) == 2)) && !codeName(tok) {
		for i, r := range tok {
			l := leet(r)
			if l == 0 {
				continue
			}
			prevOK := i > 0 && (isAlpha(tok[i-1]) || leet(tok[i-1]) != 0)
			nextOK := i+1 < len(tok) && (isAlpha(tok[i+1]) || leet(tok[i+1]) != 0)
			prevL := i > 0 && isAlpha(tok[i-1])
			nextL := i+1 < len(tok) && isAlpha(tok[i+1])
			if (prevOK && nextOK && (prevL || nextL)) || (i == 0 && nextL) || (i == len(tok)-1 && prevL && r != '!' && r != '|') {
				tok[i] = l
			}
		}
	}
	// Symbols left in a word are dropped.
	w := tok[:0]
	for _, r := range tok {
		if isWordRune(r) {
			w = append(w, r)
		}
	}
	if len(w) == 0 {
		return
	}
	if len(w) > 40 {
		w = w[:40] // long runs (hashes, base64) carry no more signal
	}
	if len(d.buf) > 0 {
		d.buf = append(d.buf, ' ')
	}
	d.start = append(d.start, int32(len(d.buf)))
	for _, r := range w {
		d.buf = utf8.AppendRune(d.buf, r)
	}
	d.end = append(d.end, int32(len(d.buf)))
	d.sent = append(d.sent, sentence)
	d.glued = append(d.glued, glued)
}

// joinSpelled merges runs of three or more one-letter words ("k i l l")
// into one word. When the letters are glued by punctuation ("h-o-w t-o",
// "b.o.m.b"), the spaces in the run are the word breaks, and each glued
// group of two or more letters becomes a word. Then it computes the stems.
func (d *doc) joinSpelled() {
	n := d.words()
	single := func(i int) bool { return d.end[i]-d.start[i] == 1 && d.buf[d.start[i]] >= 'a' }
	has := false
	for i := 0; i+2 < n; i++ {
		if single(i) && single(i+1) && single(i+2) {
			has = true
			break
		}
	}
	if has {
		old := append([]byte(nil), d.buf...)
		os, oe := append([]int32(nil), d.start...), append([]int32(nil), d.end...)
		osent, oglued := append([]bool(nil), d.sent...), append([]bool(nil), d.glued...)
		d.buf, d.start, d.end, d.sent, d.glued = d.buf[:0], d.start[:0], d.end[:0], d.sent[:0], d.glued[:0]
		isSingle := func(i int) bool { return oe[i]-os[i] == 1 && old[os[i]] >= 'a' }
		word := func(from, to int) {
			if len(d.buf) > 0 {
				d.buf = append(d.buf, ' ')
			}
			d.start = append(d.start, int32(len(d.buf)))
			for k := from; k < to; k++ {
				d.buf = append(d.buf, old[os[k]:oe[k]]...)
			}
			d.end = append(d.end, int32(len(d.buf)))
			d.sent = append(d.sent, osent[from])
			d.glued = append(d.glued, oglued[from])
		}
		for i := 0; i < n; {
			j := i
			for j < n && isSingle(j) {
				j++
			}
			if j-i < 3 {
				word(i, i+1)
				i++
				continue
			}
			glued := false
			for k := i + 1; k < j; k++ {
				glued = glued || oglued[k]
			}
			if !glued {
				word(i, j)
				i = j
				continue
			}
			for i < j {
				k := i + 1
				for k < j && oglued[k] {
					k++
				}
				word(i, k)
				i = k
			}
		}
	}
	for i := 0; i < d.words(); i++ {
		if i > 0 {
			d.sbuf = append(d.sbuf, ' ')
		}
		d.sstart = append(d.sstart, int32(len(d.sbuf)))
		w := d.word(i)
		if len(w) <= 4 {
			if r := chatWord(w); r != "" {
				w = []byte(r)
			} else if string(w) == "2" && i > 0 && i+1 < d.words() && toBefore(d.word(i-1)) {
				w = []byte("to") // "how 2 buy", "want 2 hurt"
			}
		}
		d.sbuf = appendStem(d.sbuf, w)
		d.send = append(d.send, int32(len(d.sbuf)))
	}
}

// chatWord maps a chat spelling to the word it stands for, in the stems
// only (the character n-grams keep what was typed): "how 2 hurt ppl" reads
// like "how to hurt people". A wider list (u, ur, gonna, wanna, cuz) cost
// 0.003 of cross-validated F1 on the moderation set: there the spelling
// itself carries signal.
func chatWord(w []byte) string {
	switch string(w) {
	case "ppl":
		return "people"
	case "pls", "plz":
		return "please"
	case "smth", "sth":
		return "something"
	case "wat", "wut", "wht":
		return "what"
	}
	return ""
}

// toBefore reports whether "2" after w stands for "to" ("how 2", "want 2").
func toBefore(w []byte) bool {
	switch string(w) {
	case "how", "want", "wanna", "need", "going", "gonna", "trying", "tryna", "try", "way", "ways", "able", "where", "what":
		return true
	}
	return false
}

// appendStem appends a crude suffix-stripped form of w: inflections collapse
// (kill, kills, killed, killing → kil) so lexicons list each word once. The
// same function stems the lexicons, so only consistency matters.
func appendStem(dst, w []byte) []byte {
	n := len(w)
	if n < 4 {
		return append(dst, w...) // no rule below shortens a word this short
	}
	if unstemmed(w) {
		return append(dst, w...)
	}
	has := func(s string) bool { return n >= len(s) && string(w[n-len(s):]) == s }
	switch {
	case n > 5 && has("ing"):
		n -= 3
	case n > 4 && has("ies"):
		n -= 3
		dst = append(dst, w[:n]...)
		return append(dst, 'y')
	case n > 4 && has("ed"):
		n -= 2
	case n > 4 && has("es"):
		n -= 2
	case n > 3 && has("s") && !has("ss") && !has("us") && !has("is"):
		n--
	}
	if n > 3 && w[n-1] == 'e' {
		n--
	}
	if n > 3 && w[n-1] == w[n-2] && !isVowel(w[n-1]) {
		n--
	}
	return append(dst, w[:n]...)
}

// unstemmed lists common words whose crude stem would collide with a
// lexicon word of another meaning ("news" → "new", "came" → "cam", "scared"
// → "scar", "cute" → "cut", "rate" → "rat", "gassed" → "gas"): they are kept
// whole. TestCommonWordsAreNotHarm guards the collisions found so far. A
// string switch, not a map: it runs for every word of four letters or more,
// and the compiled switch needs no hashing.
func unstemmed(w []byte) bool {
	switch string(w) {
	case "news", "here", "there", "where", "came", "scared", "scares", "cute", "quite", "rate",
		"rates", "rated", "gassed", "theme", "care", "cares", "tired", "fast", "fasting",
		"sentence", "sentenced", "pile", "piles", "fingered", "fingering", "plane", "planes",
		"stage", "stages", "scare", "scaring", "heroine", "heroines", "stone", "stones", "stroke",
		"strokes", "wares", "arise", "arises", "rating", "ratings", "leaned", "cope", "copes",
		"coped", "coping":
		return true
	}
	return false
}

func isVowel(b byte) bool {
	return b == 'a' || b == 'e' || b == 'i' || b == 'o' || b == 'u'
}

// rawPhrase normalises a lexicon phrase the way documents are, without
// stemming.
func rawPhrase(p string) string {
	var d doc
	normalize(&d, p)
	return string(d.buf)
}

// stemPhrase stems every word of a lexicon phrase the way documents are
// stemmed.
func stemPhrase(p string) string {
	var d doc
	normalize(&d, p)
	return string(d.sbuf)
}
