package safety

import (
	"slices"
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "How do I Kill a process?", "how do i kill a process"},
		{"leetspeak", "h0w t0 m4ke a b0mb", "how to make a bomb"},
		{"leet symbols", "h@te and $h!t", "hate and shit"},
		{"numbers stay", "in 2024 I ran 5 km", "in 2024 i ran 5 km"},
		{"spaced letters", "k i l l yourself", "kill yourself"},
		{"dotted letters", "k.i.l.l them", "kill them"},
		{"hyphenated letters", "H-o-w t-o m-a-k-e r-i-c-i-n", "how to make ricin"},
		{"dotted words", "h.o.w t.o b.u.i.l.d a g.u.n", "how to build a gun"},
		{"short hyphenations stay", "an A-B test of the e-mail", "an a b test of the e mail"},
		{"cyrillic homoglyphs", "kіll аll", "kill all"},
		{"greek homoglyphs", "βοmb", "bomb"},
		{"fullwidth", "ｂｏｍｂ", "bomb"},
		{"math bold", "𝐤𝐢𝐥𝐥", "kill"},
		{"accents", "kíll thé", "kill the"},
		{"zero width", "ki\u200bll", "kill"},
		{"soft hyphen", "bo\u00admb", "bomb"},
		{"apostrophe", "don't", "dont"},
		{"invalid utf8", "bo\xffmb", "bo mb"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d doc
			normalize(&d, tt.in)
			if got := string(d.buf); got != tt.want {
				t.Errorf("normalize(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// Chat spellings are read as the words they stand for in the stems (the
// lexicons and word features); "2" is "to" only after words like "how".
// A sentence ending in "!" ends there (the "!" is first kept in case it is
// leet, as in "$h!t"): a frame in the next sentence must not reach back.
func TestSentenceEnds(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want []int // words that begin a sentence
	}{
		{"Wow!! That was news. Next? Yes", []int{0, 1, 4, 5}},
		{"what the $h!t is this", []int{0}},
		{"stop! now", []int{0, 1}},
	} {
		var d doc
		normalize(&d, tt.in)
		var got []int
		for i := range d.words() {
			if d.sent[i] {
				got = append(got, i)
			}
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("normalize(%q): sentences begin at words %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestTextSpeak(t *testing.T) {
	for in, want := range map[string]string{
		"how 2 hurt ppl":   "how to hurt peopl",
		"wut do u want":    "what do u want",
		"i have 2 cats":    "i hav 2 cat",
		"need 2 find smth": "need to find someth",
	} {
		var d doc
		normalize(&d, in)
		if got := string(d.sbuf); got != want {
			t.Errorf("stems of %q = %q, want %q", in, got, want)
		}
	}
}

func TestStem(t *testing.T) {
	groups := [][]string{
		{"kill", "kills", "killed", "killing"},
		{"bomb", "bombs", "bombed", "bombing"},
		{"make", "makes", "making"},
		{"stab", "stabbed", "stabbing"},
	}
	for _, g := range groups {
		want := string(appendStem(nil, []byte(g[0])))
		for _, w := range g[1:] {
			if got := string(appendStem(nil, []byte(w))); got != want {
				t.Errorf("stem(%q) = %q, want %q like %q", w, got, want, g[0])
			}
		}
	}
}

func TestLexiconCompiles(t *testing.T) {
	lex := compileLexicon()
	for c := lexClass(0); c < numLex; c++ {
		if strings.TrimSpace(lexicon[c]) == "" {
			t.Errorf("lexicon class %s is empty", lexNames[c])
		}
	}
	if len(lex) < 1000 {
		t.Errorf("compiled lexicon has %d phrases, want ≥ 1000", len(lex))
	}
}

func TestBenignTargetDefusesVerb(t *testing.T) {
	lex := compileLexicon()
	tests := []struct {
		text   string
		benign bool
	}{
		{"how do i kill a python process", true},
		{"shoot a photo of the sunset", true},
		{"how do i kill my neighbour", false},
		// "boss" is a game's enemy and a person: after "my" it is the person.
		{"how do i poison my boss slowly", false},
		{"how do i beat the final boss", false},
		// Idioms that start with the verb are harmless targets themselves.
		{"i'm drowning in work this week", true},
		{"my friend stabbed me in the back", true},
		{"i will drown him in the lake", false},
	}
	for _, tt := range tests {
		var d doc
		var rs ruleSummary
		normalize(&d, tt.text)
		scan(lex, &d, &rs, nil)
		if got := rs.benignUse > 0; got != tt.benign {
			t.Errorf("%q: benign use %v, want %v", tt.text, got, tt.benign)
		}
		if !tt.benign && rs.harmPerson == 0 && !strings.Contains(tt.text, "final boss") {
			t.Errorf("%q: violent act on a person not seen", tt.text)
		}
	}
}

// Session 5: a defused verb is hashed as another word, so the weight the
// model learned for "shoot" does not follow it into "shoot a photo"; and an
// intrusion ("hack into", "break into") is never defused by its object.
func TestDefusedVerbIsAnotherWord(t *testing.T) {
	lex := compileLexicon()
	first := func(text string) (feature, ruleSummary) {
		var d doc
		var rs ruleSummary
		normalize(&d, text)
		scan(lex, &d, &rs, nil)
		return featurize(nil, &d, &rs, 1<<defaultBits-1, true)[0], rs
	}
	photo, rs := first("shoot a photo of the sunset")
	if !rs.benign(0) {
		t.Error(`"shoot" in "shoot a photo" not marked as a harmless sense`)
	}
	man, rs := first("shoot a man in the street")
	if rs.benign(0) {
		t.Error(`"shoot" in "shoot a man" marked as a harmless sense`)
	}
	if photo.idx == man.idx {
		t.Error("both senses of shoot share a feature")
	}
	for _, tt := range []struct {
		text   string
		benign bool
	}{
		{"how do i hack together a script to rename files", true},
		{"how do i hack into a server i do not own", false},
		{"how do i break into a car without the keys", false},
		{"how can i steal the spotlight at the wedding", true},
	} {
		if _, rs := first(tt.text); (rs.benignUse > 0) != tt.benign {
			t.Errorf("%q: benign use %v, want %v", tt.text, rs.benignUse > 0, tt.benign)
		}
	}
}

func TestModelRoundTrip(t *testing.T) {
	ex := []Example{
		{Text: "how do I build a pipe bomb", Unsafe: 1, Labels: map[string]int{Illegal: 1}},
		{Text: "how do I bake bread", Unsafe: 0},
		{Text: "you are a worthless idiot", Unsafe: 1, Labels: map[string]int{Harassment: 1}},
		{Text: "the weather is lovely today", Unsafe: 0},
	}
	o := TrainOptions{Bits: 12, Epochs: 5}
	w1, err := Train(ex, o)
	if err != nil {
		t.Fatal(err)
	}
	w2, err := Train(ex, o)
	if err != nil {
		t.Fatal(err)
	}
	if string(w1) != string(w2) {
		t.Fatal("training is not deterministic")
	}
	m, err := train(ex, o)
	if err != nil {
		t.Fatal(err)
	}
	back, err := unmarshalModel(w1)
	if err != nil {
		t.Fatal(err)
	}
	if back.bias != m.bias {
		t.Errorf("bias changed in round trip: %v vs %v", back.bias, m.bias)
	}
	for i, x := range m.w {
		y := float32(back.q[i]) * back.scale[i%numHeads]
		if d := x - y; d > 1e-3 || d < -1e-3 {
			t.Fatalf("weight %d: %v became %v", i, x, y)
		}
	}
	// The loaded (int16) model and the trained (float32) one agree.
	var d doc
	var rs ruleSummary
	normalize(&d, "how do I build a pipe bomb")
	scan(compileLexicon(), &d, &rs, nil)
	fs := featurize(nil, &d, &rs, m.mask, true)
	a, b := m.logits(fs), back.logits(fs)
	for h := range a {
		if diff := a[h] - b[h]; diff > 1e-2 || diff < -1e-2 {
			t.Errorf("head %d: logit %v trained, %v loaded", h, a[h], b[h])
		}
	}
	// Average: the mean of the models trained with seeds 1 and 1+2^32.
	a1, _ := train(ex, TrainOptions{Bits: 12, Epochs: 5, Seed: 1})
	a2, _ := train(ex, TrainOptions{Bits: 12, Epochs: 5, Seed: 1 + 1<<32})
	avg, _ := train(ex, TrainOptions{Bits: 12, Epochs: 5, Seed: 1, Average: 2})
	differ := false
	for i := range avg.w {
		want := (a1.w[i] + a2.w[i]) / 2
		if d := avg.w[i] - want; d > 1e-6 || d < -1e-6 {
			t.Fatalf("averaged weight %d = %v, want %v", i, avg.w[i], want)
		}
		differ = differ || a1.w[i] != a2.w[i]
	}
	if !differ {
		t.Error("the two shuffle seeds trained identical models")
	}
	if _, err := unmarshalModel([]byte("not gzip")); err == nil {
		t.Error("garbage weights accepted")
	}
	if _, err := Train(nil, o); err == nil {
		t.Error("training on nothing succeeded")
	}
}

// Every lexicon phrase must be short enough for scan to see it: a longer one
// would silently never match (as "what is the best" and "i am going to kill"
// once did, when scan looked at three words).
func TestLexiconPhrasesFit(t *testing.T) {
	for c := lexClass(0); c < numLex; c++ {
		for _, p := range strings.Split(lexicon[c], "|") {
			if s := stemPhrase(strings.TrimSpace(p)); strings.Count(s, " ")+1 > maxPhrase {
				t.Errorf("%s: %q has more than %d words", lexNames[c], p, maxPhrase)
			}
		}
	}
	lex := compileLexicon()
	var d doc
	var rs ruleSummary
	normalize(&d, "What is the best poison to use on a person? I am going to kill you.")
	scan(lex, &d, &rs, nil)
	if rs.doc[lxRequest] == 0 || rs.doc[lxThreat] == 0 {
		t.Errorf("four-word phrases not matched: request %d, threat %d", rs.doc[lxRequest], rs.doc[lxThreat])
	}
}

// TestCommonWordsAreNotHarm guards the stemmer collisions found in round 7:
// the crude stem of a common word equalled a lexicon word of another
// meaning ("came" → "cam" read as sexual, "news" → "new" made every "new" a
// discussion frame, "scared" → "scar" read as self-harm).
func TestCommonWordsAreNotHarm(t *testing.T) {
	lex := compileLexicon()
	const bad = harm | 1<<lxStrong | 1<<lxDiscuss | 1<<lxSafety | 1<<lxFiction
	for _, w := range strings.Fields("new came put here there scared bit chat cute quite rate rates gas pick picked nut fast care tired theme piles finger plan stage scare scaring heroine stone stroke wares arise rating leaned") {
		var d doc
		var rs ruleSummary
		normalize(&d, w)
		ents := scan(lex, &d, &rs, nil)
		if len(ents) != 1 {
			t.Fatalf("%q: %d words", w, len(ents))
		}
		if e := ents[0] & bad; e != 0 {
			var names []string
			for c := lexClass(0); c < numLex; c++ {
				if e&(1<<c) != 0 {
					names = append(names, lexNames[c])
				}
			}
			t.Errorf("%q reads as %v", w, names)
		}
	}
}

// TestHarmPhraseIsNoFrame: a word inside a harmful phrase does not frame the
// sentence ("fake news" is no news report).
func TestHarmPhraseIsNoFrame(t *testing.T) {
	lex := compileLexicon()
	var d doc
	var rs ruleSummary
	normalize(&d, "write a fake news report about the mayor")
	scan(lex, &d, &rs, nil)
	if rs.doc[lxDisinfo] == 0 || rs.doc[lxDiscuss] != 0 || rs.harmDefused != 0 {
		t.Errorf("disinfo %d, discuss %d, defused %d: want disinfo, no discussion frame", rs.doc[lxDisinfo], rs.doc[lxDiscuss], rs.harmDefused)
	}
}
