package privacy

import (
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The unstructured recognizers: person names, organisations, places and
// street addresses. They work on capitalised word runs and combine
// gazetteer evidence (first names, surnames, places, frequent ordinary
// words) with titles, company suffixes, street words and context phrases.
//
// github.com/jdkato/prose/v3's NER was measured first: about 6 ms per 1 KB
// prompt on this machine, over the whole layer's 5 ms budget, and it tags
// invented organisation names as places. These signals replace it.

type tok struct {
	s, e      int
	w         string
	cap       bool // first letter upper case and not all upper case (or a one-letter initial)
	upper     bool // two or more letters, all upper case
	num       bool // starts with a digit
	sentStart bool // first word of the text, a sentence or a line
	gap       string
}

func tokenize(text string) []tok {
	var toks []tok
	prevEnd := 0
	for i := 0; i < len(text); {
		r, n := utf8.DecodeRuneInString(text[i:])
		if !isWordRune(r) {
			i += n
			continue
		}
		s := i
		for i < len(text) {
			r, n = utf8.DecodeRuneInString(text[i:])
			if isWordRune(r) {
				i += n
				continue
			}
			if r == '\'' || r == '’' || r == '-' {
				r2, _ := utf8.DecodeRuneInString(text[i+n:])
				if i+n < len(text) && isWordRune(r2) {
					i += n
					continue
				}
			}
			break
		}
		e := i
		w := text[s:e]
		for _, poss := range []string{"'s", "’s"} {
			if strings.HasSuffix(w, poss) && len(w) > len(poss)+1 {
				e -= len(poss)
				w = text[s:e]
			}
		}
		t := tok{s: s, e: e, w: w, gap: text[prevEnd:s]}
		first, _ := utf8.DecodeRuneInString(w)
		t.num = unicode.IsDigit(first)
		if unicode.IsUpper(first) {
			hasLower := strings.IndexFunc(w, unicode.IsLower) >= 0
			t.cap = hasLower || utf8.RuneCountInString(w) == 1
			t.upper = !hasLower && utf8.RuneCountInString(w) >= 2 && strings.IndexFunc(w, unicode.IsDigit) < 0
		}
		t.sentStart = len(toks) == 0 || strings.ContainsAny(t.gap, "!?\n\"“:") ||
			(strings.Contains(t.gap, ".") && !isInitialOrAbbrev(toks[len(toks)-1].w))
		toks = append(toks, t)
		prevEnd = e
	}
	return toks
}

func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r)
}

func isInitialOrAbbrev(w string) bool {
	return utf8.RuneCountInString(w) == 1 || titles[strings.ToLower(w)] || w == "St" || w == "Apt"
}

var titles = setOf(strings.Fields(`mr mrs ms miss mx dr prof professor sir madam lady lord dame rev fr herr frau mme mlle
	monsieur madame señor señora sr sra srta don doña capt captain col gen sgt officer detective judge senator
	mister doctor mevrouw meneer signor signora sig dott ing pan pani`))

// stopCaps are capitalised words that some name lists contain but that are
// far more often greetings, days or months.
var stopCaps = setOf(strings.Fields(`Hi Hello Hey Dear Thanks Yes No Ok Please Sorry Monday Tuesday Wednesday Thursday
	Friday Saturday Sunday January February March April May June July August September October November December
	I'm I'll I've I'd E-mail Email Website Phone Address Mobile Fax Tel Name Date Subject From To Cc`))

var particles = setOf(strings.Fields(`van von de da del della der di du la le bin ibn al el dos das do y ten ter zu af av den des st`))

var personBefore = []string{"my name is", "name is", "i am", "i'm", "called", "named", "dear", "hi", "hello", "hey", "thanks",
	"says", "said", "ask", "tell", "meet", "met", "married", "wife", "husband", "son", "daughter", "brother", "sister",
	"friend", "mother", "father", "colleague", "boss", "patient", "client", "customer", "name:", "from:", "to:", "cc:",
	"attn:", "regards,", "sincerely,", "cheers,", "by", "with", "assistant to", "wrote", "contact", "talk to", "call",
	"name?", "surname", "last name", "first name", "change it to", "founders:", "call me", "my kid", "my child",
	"my boss", "my partner", "my girlfriend", "my boyfriend", "follow up with", "speak to", "speak with", "ex-zombie"}

var personAfter = []string{" says", " said", " wrote", " told", " asked", " replied", " was born", " is my", " and i",
	" lives", " lived", " works", " worked", " shouted", " flew", " spent", " had given", " is very", " was very",
	" and his", " and her", " himself", " herself", " were ", " began", " is from", " just ", " has been", " will be", " smiled", " laughed", " looked"}

// legalSuffixes are company forms that make a company on their own
// ("Rapid Cycle Solutions" needs more; "Big Data GmbH" does not).
var legalSuffixes = setOf(strings.Fields(`Inc Inc. Ltd Ltd. LLC L.L.C. GmbH Corp Corp. Corporation AG SA S.A. plc PLC BV B.V.
	NV N.V. Pty Limited LLP KG OHG SARL SAS SRL S.r.l. Srl SpA S.p.A. Oy AB ASA A/S ApS Kft Zrt Ltda LTDA`))

var orgAfter = []string{" is the brainchild", " office", " is a company", " headquarters", " employees",
	" is an american", " is a german", " is an german", " is a british", " is a multinational",
	" is an multinational", " ceo", " was founded", " is headquartered", " has offices", " announced", " customer service"}

var orgSuffixes = setOf(strings.Fields(`Inc Inc. Ltd Ltd. LLC L.L.C. GmbH Corp Corp. Corporation Co Co. Company Group Holdings AG SA S.A.
	plc PLC BV B.V. NV N.V. SE Pty Limited LLP LP Bank Bancorp University College Institute Foundation Association
	Society Agency Partners Associates Technologies Tech Systems Solutions Labs Software Consulting Services
	Industries Enterprises Media Studios Airlines Motors Pharmaceuticals Orchestra Hospital Clinic School Church
	Club Council Ministry Trust Capital Ventures Networks Communications Energy Insurance Logistics Foods KG OHG
	SARL SAS SRL S.r.l. Srl SpA S.p.A. Oy AB ASA A/S ApS Sp Kft Zrt Ltda LTDA Brothers Bros Sons Hermanos Gruppe
	Records Press Publishing Pictures Films Entertainment Holdings Motors Robotics Analytics Dynamics Bakery Cafe`))

var orgBefore = []string{"work for", "works for", "worked for", "working for", "work at", "works at", "worked at", "working at",
	"employed by", "employer is", "employer:", "company", "joined", "job at", "intern at", "ceo of", "founder of",
	"subsidiary of", "acquired by", "a year at", "recorded for", "became", "address of", "customer of", "account at",
	"signed with", "hired by", "manager at", "engineer at", "contract with", "partnered with", "organization", "organisation",
	"year at", "years at", "support", "office of", "shares of", "stock of"}

var locBefore = []string{" in", " from", " to", " near", " at", "visit", "live in", "lives in", "living in", "moved to",
	"flew to", "born in", "based in", "located in", "city of", "town of", "trip to", "travel to", "grew up in"}

func endsWithAny(s string, list []string) bool {
	s = strings.TrimRight(s, " \t")
	for _, w := range list {
		if strings.HasSuffix(s, w) && (len(s) == len(w) || !isAlpha(s[len(s)-len(w)-1]) || w[0] == ' ') {
			return true
		}
	}
	return false
}

// evidence rates one capitalised word as part of a person name.
func (g *gazetteer) evidence(w string) float64 {
	lw := strings.ToLower(w)
	f, l := g.first[w], g.last[w]
	c := g.common[lw] || g.capwords[w] || titles[lw] || stopCaps[w]
	switch {
	case f && !c:
		return 1
	case l && !c:
		return 0.9
	case (f || l) && c:
		return 0.4
	case c:
		return 0
	}
	if _, ok := g.places[w]; ok {
		return 0.1
	}
	return 0.3
}

// scanNames finds names, organisations, places and addresses.
func (s *Scanner) scanNames(text string, out []span) []span {
	toks := tokenize(text)
	g := s.gz
	out = g.scanAddresses(text, toks, out)
	lt := ""
	lowerCtx := func(i int) string {
		if lt == "" {
			lt = strings.ToLower(text)
		}
		j := i - 32
		if j < 0 {
			j = 0
		}
		return lt[j:i]
	}
	var persons []span
	names := map[string]bool{}
	for i := 0; i < len(toks); {
		if !toks[i].cap || toks[i].num {
			i++
			continue
		}
		// Collect a run of capitalised words joined by single spaces,
		// initials ("M.") and name particles ("van", "de").
		j := i + 1
		for j < len(toks) {
			gap := toks[j].gap
			prev := toks[j-1]
			ok := gap == " " || (gap == ". " && utf8.RuneCountInString(prev.w) == 1)
			if ok && (toks[j].cap || (toks[j].upper && orgSuffixes[toks[j].w])) && !toks[j].num {
				j++
				continue
			}
			if ok && particles[toks[j].w] && j+1 < len(toks) && toks[j+1].gap == " " && toks[j+1].cap && j+1-i < 6 {
				j += 2
				continue
			}
			break
		}
		run := toks[i:j]
		i = j
		// Titles before the name mark a person; drop them from the span.
		title := false
		for len(run) > 1 && titles[strings.ToLower(run[0].w)] {
			run, title = run[1:], true
		}
		if k := run[0].s; !title && k > 0 {
			prevWord := lastWord(text[:k])
			title = titles[strings.ToLower(strings.TrimSuffix(prevWord, "."))]
		}
		// Organisations first, before ordinary words are trimmed: a company
		// suffix ("Rapid Cycle Solutions") or organisation context ("became Credit Karma").
		{
			st, en := run[0].s, run[len(run)-1].e
			after := text[en:min(len(text), en+24)]
			last := run[len(run)-1].w
			orgCtx := !run[0].sentStart && endsWithAny(lowerCtx(st), orgBefore)
			suffixCtx := orgCtx || (!run[0].sentStart && endsWithAny(lowerCtx(st), []string{" from", " at", " with", " for", " of"}))
			if len(run) > 1 && orgSuffixes[last] && (legalSuffixes[last] || suffixCtx || !allCommon(g, run[:len(run)-1])) || strings.HasPrefix(after, ", Inc") || hasPrefixAny(after, []string{" & Co.", " & Co ", " & Co,"}) || after == " & Co" {
				e := en
				if strings.HasPrefix(after, ", Inc.") {
					e += 6
				}
				out = append(out, span{Organization, st, e, 0.85})
				continue
			}
			if !title && (endsWithAny(lowerCtx(st), orgBefore) || hasPrefixAny(after, orgAfter) || isAOrg(text[en:])) && g.personLike(run) < 2 && (!allCommon(g, run) || (orgCtx && len(run) > 1)) {
				out = append(out, span{Organization, st, en, 0.7})
				continue
			}
		}
		// Leading ordinary words ("The Steffen Mauer version") are not part of the name.
		// A capitalised ordinary word inside a sentence ("Big Ben", "Agent
		// Smith") makes the rest part of a longer proper name: weaker.
		landmark := false
		for len(run) > 1 && g.evidence(run[0].w) == 0 {
			if !run[0].sentStart && !stopCaps[run[0].w] && !titles[strings.ToLower(run[0].w)] {
				landmark = true
			}
			run = run[1:]
		}
		for len(run) > 1 && g.evidence(run[len(run)-1].w) == 0 && !orgSuffixes[run[len(run)-1].w] {
			run = run[:len(run)-1]
		}
		st, en := run[0].s, run[len(run)-1].e
		before := lowerCtx(st)
		after := text[en:min(len(text), en+16)]

		if place, sc := g.place(run); place {
			locCtx := endsWithAny(before, locBefore)
			if sc > 0.4 && locCtx {
				sc = max(sc, 0.55) + 0.1 // "flew to Phoenix": the place, not the name
			}
			out = append(out, span{Location, st, en, sc})
			if locCtx || len(run) > 1 || !(g.first[run[0].w] || g.last[run[0].w]) {
				continue
			}
			// "Bryan", "Elizabeth": a place and a name; context decides below.
		}
		pctx := endsWithAny(before, personBefore)
		ps := g.personScore(run, title, pctx, hasPrefixAny(after, personAfter) || (dialogue(text, run) && g.dialogueName(text, run[0].w)))
		if landmark && len(run) == 1 && !title && !pctx {
			ps = min(ps, 0.45)
		}
		if ps > 0 {
			persons = append(persons, span{Person, st, en, ps})
			if ps >= 0.6 {
				for _, t := range run {
					if g.evidence(t.w) > 0.1 {
						names[t.w] = true
					}
				}
			}
			if ps >= 0.5 {
				continue
			}
			// A weak name: the place or company readings below may score higher.
		}
		if utf8.RuneCountInString(run[0].w) < 2 || stopCaps[run[0].w] {
			continue
		}
		if endsWithAny(before, []string{"live in", "lives in", "living in", "moved to", "flew to", "born in", "based in", "located in", "grew up in", "moved here from"}) {
			out = append(out, span{Location, st, en, 0.55})
		} else if !run[0].sentStart && endsWithAny(before, []string{" in", " near"}) && allUnknown(g, run) {
			out = append(out, span{Location, st, en, 0.5})
		} else if !run[0].sentStart && personFrom(text, st) && allUnknown(g, run) {
			out = append(out, span{Organization, st, en, 0.55}) // "Zoe Young from Flightaware": a person's company
		}
	}
	persons = append(persons, g.lowerNames(text, toks)...)
	persons = coordinate(text, g, persons)
	// A word of a name found elsewhere in the text is that name again
	// ("Goldberg" after "Alice Goldberg").
	for k, p := range persons {
		if p.score < 0.6 {
			w := text[p.start:p.end]
			parts := strings.Fields(w)
			all := len(parts) > 0
			for _, part := range parts {
				all = all && names[part]
			}
			if all {
				persons[k].score = 0.8
			}
		}
	}
	out = append(out, persons...)
	out = g.companyShapes(text, toks, out)
	return out
}

func hasPrefixAny(s string, list []string) bool {
	for _, p := range list {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// dialogue reports a one- or two-word run that opens a line and is followed
// by a colon, as in a script or chat log ("Ella: What a wife.").
func dialogue(text string, run []tok) bool {
	if len(run) > 2 || !strings.HasPrefix(text[run[len(run)-1].e:], ":") {
		return false
	}
	s := run[0].s
	return s == 0 || strings.ContainsAny(run[0].gap, "\n")
}

func lastWord(s string) string {
	s = strings.TrimRight(s, " ")
	k := strings.LastIndexAny(s, " \n\t(\"")
	return s[k+1:]
}

// place reports a run that is a known city or country.
func (g *gazetteer) place(run []tok) (bool, float64) {
	if len(run) > g.placeMax {
		return false, 0
	}
	name := run[0].w
	for _, t := range run[1:] {
		name += " " + t.w
	}
	sc, ok := g.places[name]
	if !ok || (len(run) == 1 && (g.common[strings.ToLower(name)] || (sc > 0.4 && g.capwords[name]) || stopCaps[name] || utf8.RuneCountInString(name) < 3)) {
		return false, 0
	}
	if len(run) == 1 && g.first[name] && sc > 0.5 {
		// A city that is also a first name ("Florence"): weaker.
		sc = 0.45
	}
	return true, sc
}

// personScore combines word evidence and context into a confidence that
// the run is a person's name.
func (g *gazetteer) personScore(run []tok, title, ctxBefore, ctxAfter bool) float64 {
	if len(run) > 4 {
		return 0
	}
	ev := make([]float64, len(run))
	strong, known := 0, 0
	for k, t := range run {
		if particles[t.w] && k > 0 && k < len(run)-1 {
			ev[k] = 0.5 // "bin", "van", "de" inside a name
			continue
		}
		ev[k] = g.evidence(t.w)
		if t.upper {
			ev[k] = min(ev[k], 0.3)
		}
		if utf8.RuneCountInString(t.w) == 1 {
			ev[k] = 0.5 // an initial
			if len(run) == 1 {
				ev[k] = 0
			}
		}
		if ev[k] == 0 && !(title && len(run) <= 3) {
			return 0
		}
		if ev[k] >= 0.9 {
			strong++
		}
		if ev[k] >= 0.4 {
			known++
		}
	}
	ctx := title || ctxBefore || ctxAfter
	var sc float64
	if len(run) == 1 {
		e := ev[0]
		switch {
		case ctx && e >= 0.3:
			sc = 0.85
		case ctx:
			sc = 0.6
		case e == 1:
			sc = 0.6
		case e >= 0.9:
			sc = 0.45
		case e >= 0.4:
			sc = 0.3
		default:
			sc = 0.3
			if run[0].sentStart {
				sc = 0.1
			}
		}
		return sc
	}
	first := ev[0]
	switch {
	case ctx:
		sc = 0.9
	case first == 1 && known == len(run):
		sc = 0.9
	case first == 1 || (first >= 0.4 && ev[len(ev)-1] >= 0.9):
		sc = 0.8
	case strong > 0:
		sc = 0.7
	case known > 0 && known < len(run):
		sc = 0.55
	case known > 0:
		sc = 0.45 // only words that are also ordinary words ("My Baby")
	default:
		sc = 0.5 // two or more rare capitalised words: a name more often than not
	}
	return sc
}

// personLike counts the words of run found in the name lists.
func (g *gazetteer) personLike(run []tok) int {
	n := 0
	for _, t := range run {
		if g.evidence(t.w) >= 0.9 {
			n++
		}
	}
	return n
}

func allCommon(g *gazetteer, run []tok) bool {
	for _, t := range run {
		if g.evidence(t.w) > 0 {
			return false
		}
	}
	return true
}

func allUnknown(g *gazetteer, run []tok) bool {
	for _, t := range run {
		if g.evidence(t.w) != 0.3 || t.upper {
			return false
		}
	}
	return true
}

// coordinate raises names listed with a person ("Kónya, Becker and
// Vasquez", "Usamov and Bowers"): a candidate joined to a confident person
// by a comma or "and" is a person too.
func coordinate(text string, g *gazetteer, persons []span) []span {
	joined := func(a, b span) bool {
		if a.end > b.start {
			return false
		}
		gap := text[a.end:b.start]
		return gap == ", " || gap == " and " || gap == ", and " || gap == " & " || gap == " or "
	}
	// A forward and a backward pass carry the type along a list in linear time.
	for k := 1; k < len(persons); k++ {
		if persons[k].score < 0.5 && persons[k].score >= 0.1 && persons[k-1].score >= 0.5 && joined(persons[k-1], persons[k]) {
			persons[k].score = 0.7
		}
	}
	for k := len(persons) - 2; k >= 0; k-- {
		if persons[k].score < 0.5 && persons[k].score >= 0.1 && persons[k+1].score >= 0.5 && joined(persons[k], persons[k+1]) {
			persons[k].score = 0.7
		}
	}
	return persons
}

var orgNouns = []string{"company", "bank", "firm", "agency", "startup", "start-up", "corporation", "manufacturer",
	"retailer", "non-profit", "nonprofit", "organization", "organisation", "brand", "business", "provider",
	"consultancy", "publisher", "charity", "insurer", "airline", "platform", "vendor", "supplier", "employer", "501(c)"}

// isAOrg reports text that goes on to describe the preceding name as a
// kind of organisation: "Persint is a German investment bank".
func isAOrg(after string) bool {
	var rest string
	for _, p := range []string{" is a ", " is an ", " was a ", " was an ", ", a ", ", an ", " is the "} {
		if strings.HasPrefix(after, p) {
			rest = after[len(p):]
			break
		}
	}
	if rest == "" {
		return false
	}
	if k := strings.IndexAny(rest, ".!?\n"); k >= 0 {
		rest = rest[:k]
	}
	if len(rest) > 80 {
		rest = rest[:80]
	}
	return containsAny(strings.ToLower(rest), orgNouns...)
}

// companyShapes finds organisations by shape and position: a line of a
// signature or address block between a person's line and an address, law-firm
// style "Barnett, Melton and Garcia", "Thomas and Sons", "Weeks-Rivas", and
// names listed with an organisation already found.
func (g *gazetteer) companyShapes(text string, toks []tok, out []span) []span {
	sort.Slice(out, func(i, j int) bool { return out[i].start < out[j].start })
	maxLen := 0
	for _, sp := range out {
		maxLen = max(maxLen, sp.end-sp.start)
	}
	covered := func(s, e int) (string, float64) {
		k := sort.Search(len(out), func(i int) bool { return out[i].start >= s-maxLen })
		for ; k < len(out) && out[k].start < e; k++ {
			if s < out[k].end {
				return out[k].typ, out[k].score
			}
		}
		return "", 0
	}
	// Lines: a line that is one capitalised run, after a person's line and
	// before an address line.
	lines := splitLines(text)
	for k := 0; k+1 < len(lines); k++ {
		l := lines[k]
		if l.e-l.s < 2 {
			continue
		}
		prevT := ""
		if k > 0 {
			prevT, _ = covered(lines[k-1].s, lines[k-1].e)
		}
		nextT, _ := covered(lines[k+1].s, lines[k+1].e)
		// Between a person's line and an address (a signature or letter
		// head), or the first line right above an address.
		if !(prevT == Person && (nextT == StreetAddress || nextT == Person)) && !(k == 0 && nextT == StreetAddress) {
			continue
		}
		if t, sc := covered(l.s, l.e); t == Person && sc >= 0.6 || t == StreetAddress || t == Email || t == Phone {
			continue
		}
		if prevT == Person && !mostlyCovered(out, lines[k-1]) || (nextT == Person && !mostlyCovered(out, lines[k+1])) {
			continue // a person's line is a line that is (nearly) only the name
		}
		if capLine(g, text[l.s:l.e]) {
			out = append(out, span{Organization, l.s, l.e, 0.8})
		}
	}
	// Acronyms after organisation context: "I used to work for NATO".
	for _, t := range toks {
		if t.upper && len(t.w) >= 2 && len(t.w) <= 6 && endsWithAny(ctxBefore(text, t.s, 32), orgBefore) {
			out = append(out, span{Organization, t.s, t.e, 0.7})
		}
	}
	for i, t := range toks {
		if !t.cap {
			continue
		}
		// "Weeks-Rivas": two surnames joined by a hyphen, with no first name before.
		if parts := strings.Split(t.w, "-"); len(parts) == 2 && (i == 0 || !toks[i-1].cap || toks[i].gap != " ") &&
			g.last[parts[0]] && g.last[parts[1]] && (i+1 >= len(toks) || !toks[i+1].cap || toks[i+1].gap != " ") {
			out = append(out, span{Organization, t.s, t.e, 0.65})
		}
		// "Thomas and Sons", "Barnett, Melton and Garcia".
		if i+2 < len(toks) && toks[i+1].w == "and" && toks[i+2].cap && toks[i+1].gap == " " && toks[i+2].gap == " " {
			last := toks[i+2]
			if last.w == "Sons" || last.w == "Partners" || last.w == "Associates" || last.w == "Daughters" {
				out = append(out, span{Organization, t.s, last.e, 0.85})
			}
		}
		if i+4 < len(toks) && toks[i+1].gap == ", " && toks[i+1].cap && toks[i+2].w == "and" && toks[i+3].cap &&
			toks[i+3].gap == " " && surnameish(g, t.w, toks[i+1].w, toks[i+3].w) {
			if !(i > 0 && strings.HasSuffix(strings.TrimSpace(toks[i].gap), ":")) {
				out = append(out, span{Organization, t.s, toks[i+3].e, 0.75})
			}
		}
	}
	// Names listed with an organisation ("Bekins, Enervee Corporation and
	// Civic Insight") are organisations when nothing better is known.
	sort.Slice(out, func(i, j int) bool { return out[i].start < out[j].start })
	joined := func(a, b span) bool {
		if a.end > b.start {
			return false
		}
		gap := text[a.end:b.start]
		return gap == ", " || gap == " and " || gap == ", and " || gap == " & "
	}
	weak := func(sp span) bool {
		return sp.typ != Organization && sp.score < 0.6 && sp.score >= 0.1 && (sp.typ == Person || sp.typ == Location)
	}
	strongOrg := func(sp span) bool { return sp.typ == Organization && sp.score >= 0.6 }
	for k := 1; k < len(out); k++ {
		if weak(out[k]) && strongOrg(out[k-1]) && joined(out[k-1], out[k]) {
			out[k].typ, out[k].score = Organization, 0.65
		}
	}
	for k := len(out) - 2; k >= 0; k-- {
		if weak(out[k]) && strongOrg(out[k+1]) && joined(out[k], out[k+1]) {
			out[k].typ, out[k].score = Organization, 0.65
		}
	}
	return out
}

type lineSpan struct{ s, e int }

func splitLines(text string) []lineSpan {
	var out []lineSpan
	s := 0
	for i := 0; i <= len(text); i++ {
		if i == len(text) || text[i] == '\n' {
			// Trim quote marks and blanks that open lines in mail quotes ("> ").
			a, b := s, i
			for a < b && strings.IndexByte("> ?*-\t", text[a]) >= 0 {
				a++
			}
			for b > a && (text[b-1] == ' ' || text[b-1] == '\r') {
				b--
			}
			if b > a {
				out = append(out, lineSpan{a, b})
			}
			s = i + 1
		}
	}
	return out
}

// capLine reports a short line whose words are all capitalised and not all
// ordinary words: a name of something.
func capLine(g *gazetteer, line string) bool {
	words := strings.Fields(line)
	if len(words) == 0 || len(words) > 5 {
		return false
	}
	ordinary := 0
	for _, w := range words {
		r, _ := utf8.DecodeRuneInString(w)
		if !unicode.IsUpper(r) && w != "and" && w != "&" && w != "of" {
			return false
		}
		if g.common[strings.ToLower(w)] || g.capwords[w] {
			ordinary++
		}
	}
	return ordinary < len(words) || len(words) > 1
}

// surnameish reports words that are all surnames or unknown capitalised
// words, at least two of them known surnames.
func surnameish(g *gazetteer, words ...string) bool {
	known := 0
	for _, w := range words {
		switch e := g.evidence(w); {
		case (g.last[w] || g.first[w]) && e > 0:
			known++
		case e == 0.3:
		default:
			return false
		}
	}
	return known >= 2
}

// dialogueName decides whether "Word:" at the start of a line names a
// speaker: a known name, or an unknown word in a text with at least two
// such lines (a script or a chat log). Labels ("Note:", "Disclaimer:") are
// neither.
func (g *gazetteer) dialogueName(text, w string) bool {
	switch g.evidence(w) {
	case 1, 0.9:
		return true
	case 0.3:
		n := 0
		for _, l := range strings.Split(text, "\n") {
			if k := strings.IndexByte(l, ':'); k > 0 && k < 24 && !strings.Contains(l[:k], " ") {
				n++
			}
		}
		return n >= 2
	}
	return false
}

// personFrom reports "<Name> from " or "is from " just before offset i:
// the unknown name after it is where a person works more often than not.
func personFrom(text string, i int) bool {
	b := text[:i]
	if !strings.HasSuffix(b, " from ") {
		return false
	}
	b = strings.TrimSuffix(b, " from ")
	if strings.HasSuffix(b, " is") || strings.HasSuffix(b, " am") || strings.HasSuffix(b, "'m") {
		return true
	}
	w := lastWord(b)
	r, _ := utf8.DecodeRuneInString(w)
	return unicode.IsUpper(r) && utf8.RuneCountInString(w) > 1
}

// mostlyCovered reports whether detections cover at least 60% of a line.
func mostlyCovered(spans []span, l lineSpan) bool {
	n := 0
	for _, sp := range spans {
		a, b := max(sp.start, l.s), min(sp.end, l.e)
		if b > a {
			n += b - a
		}
	}
	return n*10 >= (l.e-l.s)*6
}

var nameIntro = []string{"my name is", "name is", "call me", "i am called", "i'm called", "name:", "named", "maiden name is",
	"last name is", "first name is", "surname is", "this is", "regards,", "thanks,", "cheers,", "sincerely,"}

// lowerNames finds names written in lower case right after a phrase that
// introduces a name ("my name is lena andersson"): up to three words, each
// in the name lists once capitalised.
func (g *gazetteer) lowerNames(text string, toks []tok) []span {
	var out []span
	for i, t := range toks {
		if t.cap || t.upper || t.num || !g.isNameWord(capFirst(t.w)) {
			continue
		}
		if !endsWithAny(strings.ToLower(text[max(0, t.s-24):t.s]), nameIntro) {
			continue
		}
		j := i + 1
		for j < len(toks) && j-i < 3 && toks[j].gap == " " && !toks[j].cap && g.isNameWord(capFirst(toks[j].w)) {
			j++
		}
		out = append(out, span{Person, t.s, toks[j-1].e, 0.85})
	}
	return out
}

// isNameWord reports a word in the name lists that is not also an ordinary word.
func (g *gazetteer) isNameWord(w string) bool {
	return (g.first[w] || g.last[w]) && !g.common[strings.ToLower(w)] && !stopCaps[w]
}
