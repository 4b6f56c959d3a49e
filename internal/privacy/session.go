package privacy

import (
	"fmt"
	"strings"
	"sync"
)

// Session holds the mapping between identifiers and stand-ins for one
// request. Create one per request with Scanner.NewSession, call Anonymize
// on every message in order, then NewRestorer for the answer. The mapping
// lives only in this value's memory: it is never logged, stored or sent,
// and it is gone when the Session is garbage. A Session is safe for
// concurrent use, but stand-ins are assigned in call order, so callers
// anonymize the messages of one request in their order.
type Session struct {
	sc *Scanner

	mu       sync.Mutex
	fwd      map[string]string // type + "\x00" + original → stand-in
	rev      map[string]string // stand-in → original
	nameTok  map[string]string // original name word → stand-in word
	nameRev  map[string]string // stand-in name word → original word
	personOf map[string]string // original name word → placeholder (Placeholders mode)
	count    map[string]int    // per type, stand-ins issued
	seen     strings.Builder   // lower-cased text of every message, to avoid collisions
	used     map[string]bool   // lower-cased stand-ins issued
}

// NewSession starts an empty mapping for one request.
func (s *Scanner) NewSession() *Session {
	return &Session{
		sc: s, fwd: map[string]string{}, rev: map[string]string{}, nameTok: map[string]string{},
		nameRev: map[string]string{}, personOf: map[string]string{}, count: map[string]int{}, used: map[string]bool{},
	}
}

// Anonymize returns text with every identifier the Scanner finds replaced
// by its stand-in. The same identifier gets the same stand-in in every call
// on this Session; a word of a person's name seen earlier ("John" after
// "John Smith") gets the matching word of that person's stand-in even where
// the scanner alone would not flag it.
func (ss *Session) Anonymize(text string) string {
	out, _ := ss.AnonymizeEntities(text)
	return out
}

// AnonymizeEntities is Anonymize that also returns what it replaced, with
// offsets into text in code points.
func (ss *Session) AnonymizeEntities(text string) (string, []Entity) {
	return ss.anonymize(text, nil)
}

func (ss *Session) anonymize(text string, extra []span) (string, []Entity) {
	spans := ss.sc.scan(text)
	if len(extra) > 0 {
		spans = resolve(append(spans, extra...))
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.seen.WriteString(strings.ToLower(text))
	ss.seen.WriteByte(0)
	spans = ss.addKnownNames(text, spans)
	var b strings.Builder
	b.Grow(len(text))
	last := 0
	for _, sp := range spans {
		b.WriteString(text[last:sp.start])
		b.WriteString(ss.standIn(sp.typ, text[sp.start:sp.end]))
		last = sp.end
	}
	b.WriteString(text[last:])
	return b.String(), toEntities(text, spans)
}

// addKnownNames adds words of names mapped earlier in the session that the
// scanner did not flag in this text. It also adds any word that is a
// stand-in word issued earlier: a later message that really mentions "Alex"
// after "John" became "Alex" would otherwise be restored as "John", so the
// real "Alex" gets a stand-in of its own.
func (ss *Session) addKnownNames(text string, spans []span) []span {
	if len(ss.nameTok) == 0 && len(ss.used) == 0 {
		return spans
	}
	var extra []span
	k := 0
	for _, t := range tokenize(text) {
		_, known := ss.nameTok[t.w]
		if !known && !ss.used[strings.ToLower(t.w)] {
			continue
		}
		for k < len(spans) && spans[k].end <= t.s {
			k++
		}
		if k < len(spans) && spans[k].start < t.e {
			continue
		}
		extra = append(extra, span{Person, t.s, t.e, 0.8})
	}
	if len(extra) == 0 {
		return spans
	}
	return resolve(append(spans, extra...))
}

// standIn returns the stand-in for original, issuing one on first sight.
func (ss *Session) standIn(typ, original string) string {
	key := typ + "\x00" + original
	if v, ok := ss.fwd[key]; ok {
		return v
	}
	var v string
	if ss.sc.mode == Placeholders {
		v = ss.placeholder(typ, original)
	} else {
		v = ss.surrogate(typ, original)
	}
	ss.fwd[key] = v
	if _, ok := ss.rev[v]; !ok {
		ss.rev[v] = original
	}
	ss.used[strings.ToLower(v)] = true
	return v
}

func (ss *Session) placeholder(typ, original string) string {
	if typ == Person {
		words := strings.Fields(original)
		for _, w := range words {
			if p, ok := ss.personOf[w]; ok {
				for _, w2 := range words {
					ss.personOf[w2] = p
				}
				return p
			}
		}
		ss.count[typ]++
		p := fmt.Sprintf("[%s_%d]", typ, ss.count[typ])
		for _, w := range words {
			ss.personOf[w] = p
			ss.nameTok[w] = p
		}
		return p
	}
	ss.count[typ]++
	return fmt.Sprintf("[%s_%d]", typ, ss.count[typ])
}

// free reports whether a candidate stand-in collides with nothing: not in
// any message of the session, not issued before.
func (ss *Session) free(v string) bool {
	lv := strings.ToLower(v)
	return !ss.used[lv] && !strings.Contains(ss.seen.String(), lv)
}

// pick returns the first free candidate produced by gen(0), gen(1), ...
func (ss *Session) pick(typ string, gen func(n int) string) string {
	for tries := 0; tries < 1000; tries++ {
		n := ss.count[typ]
		ss.count[typ]++
		if v := gen(n); v != "" && ss.free(v) {
			return v
		}
	}
	return fmt.Sprintf("[%s_%d]", typ, ss.count[typ])
}

// restoreMap returns a copy of the stand-in → original mapping (tests only;
// the mapping is never exported from the package).
func (ss *Session) restoreMap() map[string]string {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	m := make(map[string]string, len(ss.rev)+len(ss.nameRev))
	for k, v := range ss.nameRev {
		m[k] = v
	}
	for k, v := range ss.rev {
		m[k] = v
	}
	return m
}
