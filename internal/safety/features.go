package safety

import (
	"math"
)

// prior is the hand-set part of the logits: fixed rule weights for signals
// the dev data is too small to teach (a request for unambiguous harm, a
// violent act aimed at a person, minors with explicit sexual words). They are
// added at inference only: training never sees them, so it cannot learn them
// away.
func prior(rs *ruleSummary) [numHeads]float32 {
	var p [numHeads]float32
	const (
		hSexual = iota
		hSexualMinors
		hHate
		hHateThreatening
		hHarassment
		hSelfHarm
		hViolence
		hViolenceGraphic
		hIllegal
		hAny
	)
	if b := rs.strongReq; b != 0 {
		p[hAny] += 3
		if b&(1<<lxWeapon|1<<lxDrug|1<<lxHack|1<<lxFraud|1<<lxPrivacy|1<<lxMalice) != 0 {
			p[hIllegal] += 3
		}
		if b&(1<<lxViolence|1<<lxThreat) != 0 {
			p[hViolence] += 2
		}
		if b&(1<<lxSelfHarm) != 0 {
			p[hSelfHarm] += 3
		}
		if b&(1<<lxSlur|1<<lxDehuman) != 0 {
			p[hHate] += 2
		}
	}
	if rs.reqHarmPerson > 0 {
		p[hAny] += 2.5
		p[hViolence] += 2.5
	}
	// Round 6: the moderation set's conventions, each a sentence with no
	// discussion, safety or fiction frame. A slur used, not discussed, is
	// hate whatever else the text says (10 of the 11 moderation-set texts
	// with a slur are flagged). Each was kept only if cross-validated F1 rose
	// in at least six of eight seeds.
	for _, u := range [...]struct {
		n     int
		head  int
		boost float32
	}{
		{rs.slurUse, hHate, 1.5},
		{rs.threatUse, hViolence, 1},
		{rs.insultYou, hHarassment, 1},
		{rs.sexUse, hSexual, 1},
		{rs.selfHarmFirst, hSelfHarm, 1},
	} {
		if u.n > 0 {
			p[hAny] += u.boost
			p[u.head] += u.boost
		}
	}
	// Session 5: when a game frame ("in GTA") was the only thing that
	// defused the text's harm, and nothing else asks for harm, the learned
	// weights of "steal" and "car" must not outvote it. No moderation-set
	// verdict changed (CV F1 identical); frozen3 and probes6 lost one false
	// positive each.
	if rs.gameDefused > 0 && rs.gameDefused == rs.harmDefused && rs.reqHarm == 0 && rs.planHarm == 0 && rs.strongReq == 0 && rs.reqHarmPerson == 0 && rs.minorSex == 0 && rs.slurUse == 0 {
		for h := range p {
			p[h] -= 2
		}
	}
	if rs.minorSex > 0 {
		p[hAny] += 2
		p[hSexualMinors] += 3
		p[hSexual] += 1
	}
	return p
}

// A feature is a hashed bucket index and its value.
type feature struct {
	idx  uint32
	val  float32
	rule bool // a rule feature (trained with a weaker penalty)
}

// Hash namespaces keep word, bigram, character and rule features apart.
const (
	nsWord   uint64 = 0x9e3779b97f4a7c15
	nsBi     uint64 = 0xc2b2ae3d27d4eb4f
	nsChar   uint64 = 0x165667b19e3779f9
	nsRule   uint64 = 0x27d4eb2f165667c5
	nsPost   uint64 = 0x94d049bb133111eb
	nsPrompt uint64 = 0xbf58476d1ce4e5b9
	nsSense  uint64 = 0x2545f4914f6cdd1d
)

func hashBytes(seed uint64, b []byte) uint64 {
	h := seed ^ 0xcbf29ce484222325
	for _, c := range b {
		h ^= uint64(c)
		h *= 0x100000001b3
	}
	return mix(h)
}

func mix(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	return h
}

// ruleSummary is what the lexicon and intent rules found in one window; it
// feeds rule features and the derived sub-categories.
type ruleSummary struct {
	doc [numLex]int // matches per class over the window
	// prompt: the text opens with a request, an order or a question (a
	// prompt to an assistant) rather than reading as a post.
	prompt    bool
	benignUse int // violent verbs aimed at harmless targets (kill a process)
	// Sentence-level intent: a request (or first-person plan) for harmful
	// content or help, with and without a defusing frame (fiction,
	// discussion, prevention) in the same sentence.
	reqHarm, reqHarmDefused, reqMalice, planHarm, harmDefused int
	// gameDefused counts sentences whose harm only a game frame defused
	// ("steal a car in GTA").
	gameDefused int
	// harmPerson counts violent acts aimed at a person (beat my wife);
	// reqHarmPerson those inside a request or plan with no defusing frame.
	harmPerson, reqHarmPerson int
	// strongReq has the classes of sentences that ask for (or plan)
	// unambiguous harm with no defusing frame; minorSex counts sentences with
	// a minor and explicit sexual words (never defused).
	strongReq lexEntry
	minorSex  int
	// slurUse counts sentences with a slur and no discussion, safety or
	// fiction frame ("the word X has a painful history" has one).
	slurUse int
	// selfHarmFirst counts sentences about the writer's own self-harm
	// ("I started cutting in 5th grade") with no help-seeking, discussion
	// or fiction frame.
	selfHarmFirst int
	// sexUse counts sentences with explicit sexual words and no medical,
	// discussion, safety or fiction frame.
	sexUse int
	// insultYou counts insults aimed at "you" with no frame.
	insultYou int
	// threatUse counts threats and calls for violence with no frame.
	threatUse int
	// focus holds the word ranges [from, to) of up to maxFocus sentences
	// that ask for (or plan) harm with no defusing frame, or put minors with
	// explicit sexual words; nfocus counts them. Scoring also scores these
	// sentences alone, so a harmful request inside a long harmless text is
	// not diluted away.
	focus  [maxFocus][2]int32
	nfocus int
	// pairs[m][t]: modifier class m and topic class t in the same sentence.
	pairs [numLex][numLex]bool
	// benignSense has a bit for each of the first maxSense words that lost
	// its harm classes to a harmless object ("shoot" in "shoot a photo",
	// "knife" in "carve a turkey with a knife"). Their n-grams are hashed
	// as another word, so "shoot my shot" does not carry the weight the
	// model learned for "shoot".
	benignSense [maxSense / 64]uint64
}

const maxSense = 512

func (rs *ruleSummary) benign(i int) bool {
	return i < maxSense && rs.benignSense[i/64]&(1<<(i%64)) != 0
}

const maxFocus = 4

// topics are the lexicon classes that carry harm; modifiers change what a
// topic means (asked for, fiction, discussion...).
var topics = []lexClass{lxProfanity, lxSexExplicit, lxSexMild, lxMinor, lxGroup, lxSlur, lxDehuman, lxThreat, lxViolence, lxGore, lxSelfHarm, lxWeapon, lxDrug, lxHack, lxFraud, lxInsult, lxMalice, lxDisinfo, lxPrivacy}
var modifiers = []lexClass{lxRequest, lxFiction, lxDiscuss, lxSafety, lxFirstPerson, lxSelf, lxSecond, lxBenignTarget, lxMalice, lxMinor, lxGroup, lxEvasion, lxOperational, lxManner, lxHowTo, lxGame}

const topicMask = 1<<lxSexExplicit | 1<<lxSexMild | 1<<lxMinor | 1<<lxGroup | 1<<lxSlur | 1<<lxDehuman | 1<<lxThreat | 1<<lxViolence | 1<<lxGore | 1<<lxSelfHarm | 1<<lxWeapon | 1<<lxDrug | 1<<lxHack | 1<<lxFraud | 1<<lxInsult | 1<<lxMalice | 1<<lxDisinfo | 1<<lxPrivacy

// harmfulOnUse are the classes a violent verb stops carrying when its object
// is harmless ("kill the process", "shoot a photo", "hack together a script").
const harmfulOnUse = 1<<lxViolence | 1<<lxThreat | 1<<lxWeapon | 1<<lxHack | 1<<lxSelfHarm | 1<<lxGore | 1<<lxFraud | 1<<lxDrug

// scan runs the lexicons over d and fills rs. ents is scratch space.
// harm is every class that makes a sentence about harm; frames are the
// classes that may defuse it.
const (
	harm   = 1<<lxThreat | 1<<lxViolence | 1<<lxWeapon | 1<<lxDrug | 1<<lxHack | 1<<lxFraud | 1<<lxSelfHarm | 1<<lxSexExplicit | 1<<lxSlur | 1<<lxDehuman | 1<<lxPrivacy | 1<<lxDisinfo | 1<<lxMalice
	frames = 1<<lxDiscuss | 1<<lxSafety | 1<<lxFiction | 1<<lxGame | 1<<lxManner | 1<<lxBenignTarget
)

func scan(lex map[string]lexEntry, d *doc, rs *ruleSummary, ents []lexEntry) []lexEntry {
	*rs = ruleSummary{}
	n := d.words()
	ents = ents[:0]
	// ents[i]: the classes of every phrase (up to maxPhrase words) that
	// starts at word i. A word inside a harmful phrase is no frame of its
	// own: the "news" of "fake news" is no discussion.
	covered := -1
	for i := 0; i < n; i++ {
		var e lexEntry
		for k := 0; k < maxPhrase && i+k < n; k++ {
			m := lex[string(d.sbuf[d.sstart[i]:d.send[i+k]])]
			e |= m &^ lexLonger
			if k > 0 && m&harm != 0 {
				covered = max(covered, i+k)
			}
			if m&lexLonger == 0 {
				break
			}
		}
		if i <= covered && e&harm == 0 {
			e &^= frames
		}
		ents = append(ents, e)
	}
	victims(d, ents, rs)
	rs.prompt = n > 0 && (ents[0]&(1<<lxRequest) != 0 || opener(d.stem(0)))
	var sent lexEntry
	sentStart, sentEnd := 0, 0
	sentPerson := false
	defuseUntil := -1
	// prevStart and prev2Start are where the two sentences before this one
	// start; lastThing is the last harmless thing named (a pest, a process).
	prevStart, prev2Start, lastThing := 0, 0, -1
	flushSent := func() {
		focus := false
		// A victim asking what to do ("someone hacked my email, what do I
		// do?") seeks help; the same question beside harm the writer wants
		// ("who do I call to buy a gun …") does not.
		if sent&(1<<lxHelpAsk) != 0 && sent&(1<<lxVictim) != 0 {
			sent |= 1 << lxSafety
		}
		// Asking for operational detail ("the exact dose", "working
		// code") is a request, whatever the sentence's grammar.
		if sent&(1<<lxOperational) != 0 {
			sent |= 1 << lxRequest
		}
		if sent&harm != 0 {
			// A fiction or discussion frame defuses harm unless the
			// sentence asks for operational detail or how to do
			// something unambiguously harmful; a manner word ("safely")
			// defuses only ordinary topics; a game context defuses
			// unless real operational detail is asked; nothing defuses evading
			// detection or the police.
			defused := sent&(1<<lxSafety) != 0 ||
				sent&(1<<lxGame) != 0 && sent&(1<<lxOperational) == 0 ||
				sent&(1<<lxManner) != 0 && sent&(1<<lxStrong) == 0 ||
				sent&(1<<lxFiction|1<<lxDiscuss) != 0 && sent&(1<<lxOperational) == 0 &&
					sent&(1<<lxHowTo|1<<lxStrong) != 1<<lxHowTo|1<<lxStrong
			if sent&(1<<lxEvasion) != 0 {
				defused = false
			}
			focus = !defused && (sent&(1<<lxRequest) != 0 || sent&(1<<lxFirstPerson) != 0 && sent&(1<<lxThreat) != 0)
			if sent&(1<<lxRequest) != 0 {
				if defused {
					rs.reqHarmDefused++
				} else {
					rs.reqHarm++
				}
				if sent&(1<<lxMalice) != 0 && !defused {
					rs.reqMalice++
				}
			}
			if sent&(1<<lxFirstPerson) != 0 && !defused {
				rs.planHarm++
			}
			if defused && sent&(1<<lxSafety) != 0 && sent&(1<<lxRequest|1<<lxFirstPerson) == 0 {
				// Harm reported in order to get help or prevent it ("should I
				// report my neighbor for beating his dog?"): its words are
				// another sense of themselves.
				for w := sentStart; w < sentEnd && w < maxSense; w++ {
					if ents[w]&harm != 0 {
						rs.benignSense[w/64] |= 1 << (w % 64)
					}
				}
			}
			if defused {
				rs.harmDefused++
				if sent&(1<<lxGame) != 0 && sent&(1<<lxSafety|1<<lxDiscuss|1<<lxFiction|1<<lxManner) == 0 && !realWorld(d, sentStart, sentEnd) {
					rs.gameDefused++
				}
			}
			asks := sent&(1<<lxRequest|1<<lxFirstPerson) != 0
			if asks && !defused && sent&(1<<lxStrong) != 0 {
				rs.strongReq |= sent
			}
			if asks && !defused && sentPerson {
				rs.reqHarmPerson++
			}
		}
		// Uses of a harm class outside a discussion, safety or fiction
		// frame (round 6): see prior. A game frame also covers threats and
		// insults.
		const framed = 1<<lxDiscuss | 1<<lxSafety | 1<<lxFiction
		if sent&framed == 0 {
			has := func(c lexClass) bool { return sent&(1<<c) != 0 }
			game := has(lxGame)
			if has(lxSlur) {
				rs.slurUse++
			}
			if has(lxThreat) && !game {
				rs.threatUse++
			}
			if has(lxInsult) && has(lxSecond) && !game {
				rs.insultYou++
			}
			if has(lxSexExplicit) {
				rs.sexUse++
			}
			if has(lxSelfHarm) && (has(lxSelf) || has(lxFirstPerson)) {
				rs.selfHarmFirst++
			}
		}
		// Minors with explicit sexual words: a fiction frame does not defuse
		// it, only a protective one (report, prevent, condemn).
		if sent&(1<<lxMinor) != 0 && sent&(1<<lxSexExplicit) != 0 && sent&(1<<lxSafety) == 0 {
			rs.minorSex++
			focus = true
		}
		if sent&(1<<lxMinor) != 0 && sent&(1<<lxSexMild) != 0 && sent&(1<<lxRequest) != 0 && sent&(1<<lxSafety) == 0 {
			focus = true
		}
		// An insult or a threat aimed at "you" (round 4) is judged on its
		// own too: a harmless sentence beside it must not dilute it.
		if sent&(1<<lxSecond) != 0 && sent&(1<<lxSafety|1<<lxFiction|1<<lxDiscuss|1<<lxGame) == 0 &&
			sent&(1<<lxInsult) != 0 {
			focus = true
		}
		if focus && rs.nfocus < maxFocus {
			rs.focus[rs.nfocus] = [2]int32{int32(sentStart), int32(sentEnd)}
			rs.nfocus++
		}
		sentPerson = false
		for _, m := range modifiers {
			if sent&(1<<m) == 0 {
				continue
			}
			for _, t := range topics {
				if t != m && sent&(1<<t) != 0 {
					rs.pairs[m][t] = true
				}
			}
		}
		sent = 0
	}
	for i := 0; i < n; i++ {
		if i > 0 && (d.sent[i] || newTurn(d, ents, i)) {
			flushSent()
			prev2Start, prevStart, sentStart = prevStart, sentStart, i
		}
		sentEnd = i + 1
		here := ents[i]
		if here&(1<<lxHomonymVerb) != 0 {
			// A harmless object within the next four words defuses the
			// verb, and so does a harmless subject right before it ("my
			// script hangs", "the battery died").
			// A word that may be a person ("boss") is no harmless object.
			thing := func(j int) bool {
				return ents[j]&(1<<lxBenignTarget) != 0 && ents[j]&(1<<lxPerson) == 0
			}
			// An idiom that starts with the verb ("drowning in work",
			// "stabbed me in the back") is listed as a harmless target
			// itself.
			benign := i > 0 && thing(i-1) || here&(1<<lxBenignTarget) != 0
			// Breaking or hacking *into* something is an intrusion, whatever
			// the object ("hack into a server", "break into a car").
			intrusion := i+1 < n && string(d.word(i+1)) == "into" && intrusive(d.stem(i))
			// Stealing, hijacking or bombing a car or a house is a crime
			// against property, not a harmless use of the verb.
			crime := crimeVerb(d.stem(i))
			for j := i + 1; j <= i+4 && j < n && !benign && !intrusion; j++ {
				if crime && property(d.stem(j)) {
					here |= 1 << lxStrong
					break
				}
				// "them" or "it" after a harmless thing in this sentence
				// or the two before is that thing ("ants ... how do I
				// kill them off?").
				benign = thing(j) || pronoun(d.word(j)) && lastThing >= prev2Start && lastThing < i
				// A person first is the verb's object ("shoot everyone
				// at my job"), unless a harmless thing follows it as
				// the possessed ("cut her hair").
				if !benign && ents[j]&(1<<lxPerson) != 0 && (j+1 >= n || !thing(j+1)) {
					break
				}
			}
			if benign && !intrusion {
				here &^= harmfulOnUse | 1<<lxStrong
				rs.benignUse++
				defuseUntil = i + 6
			}
		} else if i <= defuseUntil {
			// The clause of a defused verb ("carve a turkey with a knife",
			// "exterminate the rats in the barn").
			here &^= 1<<lxWeapon | 1<<lxViolence | 1<<lxDehuman | 1<<lxThreat
		}
		if ents[i]&(1<<lxBenignTarget) != 0 && ents[i]&(1<<lxPerson|1<<lxDehuman|1<<lxGroup|1<<lxHomonymVerb) == 0 {
			lastThing = i
		}
		if here != ents[i] && i < maxSense {
			rs.benignSense[i/64] |= 1 << (i % 64)
		}
		if here&(1<<lxViolence|1<<lxThreat) != 0 {
			// A violent act aimed at a person within the next four words.
			for j := i + 1; j <= i+4 && j < n; j++ {
				if ents[j]&(1<<lxPerson) != 0 {
					rs.harmPerson++
					sentPerson = true
					break
				}
			}
		}
		for c := lexClass(0); c < numLex; c++ {
			if here&(1<<c) != 0 {
				rs.doc[c]++
			}
		}
		sent |= here
	}
	flushSent()
	return ents
}

// victims finds harm done to the writer ("stalking me", "my email was
// hacked") or negated ("without hurting her"): the writer reports it or
// rules it out, and does not ask for it. Those words lose their harm classes
// and are hashed as another sense; a request for harm elsewhere in the
// sentence still counts. Every victim phrase holds a harm word within its
// first four words, so only phrases starting up to three words before one
// are looked up.
func victims(d *doc, ents []lexEntry, rs *ruleSummary) {
	n, done := len(ents), -1
	for j := range ents {
		if ents[j]&harm == 0 {
			continue
		}
		for i := max(j-3, done+1); i <= j; i++ {
			end := -1
			for k := 0; k < maxPhrase && i+k < n; k++ {
				m := victimLex[string(d.buf[d.start[i]:d.end[i+k]])]
				if m&(1<<lxVictim) != 0 {
					end = i + k
				}
				if m&lexLonger == 0 {
					break
				}
			}
			if end < j {
				continue
			}
			ents[i] |= 1 << lxVictim
			for w := i; w <= end; w++ {
				if ents[w]&harm != 0 {
					ents[w] &^= harm | 1<<lxStrong | 1<<lxHomonymVerb
					if w < maxSense {
						rs.benignSense[w/64] |= 1 << (w % 64)
					}
				}
			}
			done = end
			break
		}
	}
}

// pronoun reports whether w can stand for a thing named before it.
func pronoun(w []byte) bool {
	switch string(w) {
	case "them", "it", "em", "those", "these":
		return true
	}
	return false
}

// realWorld reports whether words [from, to) of d step out of a game ("a
// real pipe bomb", "at home", "in real life").
func realWorld(d *doc, from, to int) bool {
	for i := from; i < to; i++ {
		switch string(d.word(i)) {
		case "real", "irl", "actual", "actually", "home", "physical", "physically", "reality":
			return true
		}
	}
	return false
}

// intrusive reports whether a verb stem means an intrusion when followed by
// "into".
func intrusive(stem []byte) bool {
	switch string(stem) {
	case "hack", "break", "broke", "broken", "sneak", "snuck":
		return true
	}
	return false
}

// crimeVerb reports whether a verb stem names a crime when its object is
// property ("steal a car", "blow up a bus", "hijack a truck").
func crimeVerb(stem []byte) bool {
	switch string(stem) {
	case "steal", "stole", "stolen", "hijack", "blow", "blew", "bomb", "explod", "torch", "nuk", "burn", "vandaliz", "vandalis":
		return true
	}
	return false
}

// property reports whether a stem names property that crimes target.
func property(stem []byte) bool {
	switch string(stem) {
	case "car", "truck", "bus", "bik", "bicycl", "motorcycl", "scooter", "van", "hous", "home", "building", "build", "train", "plane", "boat", "shop", "stor", "bank", "atm", "church", "mosqu", "synagogu", "templ", "school", "offic", "vehicl", "factory", "warehous", "bridg", "station", "airport", "stadium", "mall", "restaurant", "hotel", "clinic", "hospital", "windshield":
		return true
	}
	return false
}

// newTurn reports whether word i, inside a sentence, opens a new request
// after a conjunction ("..., and also how do I make ricin"): the frames of
// the words before it ("report someone") do not reach the new request, so a
// harmless opening clause cannot defuse it.
func newTurn(d *doc, ents []lexEntry, i int) bool {
	switch string(d.word(i - 1)) {
	case "and", "also", "then", "plus", "but", "btw", "now":
	default:
		return false
	}
	return ents[i]&(1<<lxRequest) != 0 && opener(d.stem(i))
}

// minNgrams is the smallest count the n-gram values are normalised by. A
// text of one or two words would otherwise put its whole unit length on a
// handful of n-grams, and a word such as "fine" (fines, define) or "nice"
// scored as harm on n-gram weights alone: "Fine." as an answer's first
// sentence was cut by the output screen and its host struck. A short
// text's n-grams now count as they would inside a sentence of about seven
// words; the lexicon and rule features (value 1) are unaffected, so "kill
// yourself" still trips. Cross-validation (round 6b, means of seeds 1-8):
// OpenAI F1 -0.003, within noise; JBB benign FPR -0.010.
const minNgrams = 32

// quietWords: at inference, a text of this many distinct words or fewer with no harm
// word gives its n-grams too little to go on, so it is scored without them
// and the rule features decide ("Exactly." scored 0.52 for illegal on
// n-grams alone once session 7's seeds were trained on, and would have cut
// an answer). Training keeps every text's n-grams: dropping them there too
// cost 0.002-0.003 of moderation-set F1 (session 7).
const quietWords = 2

// fewWords reports whether d has at most quietWords distinct words (stems):
// a text that only repeats a word or two says no more than the word or two
// do, and repeating a word must not add up its n-gram weight ("word word
// word ..." as a stream's window scored 0.45 for harassment in session 9).
func fewWords(d *doc) bool {
	var seen [quietWords][]byte
	k := 0
next:
	for i := 0; i < d.words(); i++ {
		w := d.stem(i)
		for _, s := range seen[:k] {
			if string(s) == string(w) {
				continue next
			}
		}
		if k == quietWords {
			return false
		}
		seen[k] = w
		k++
	}
	return true
}

// harmful reports whether any word of the window carries a harm class.
func (rs *ruleSummary) harmful() bool {
	for c := lexClass(0); c < numLex; c++ {
		if harm&(1<<c) != 0 && rs.doc[c] > 0 {
			return true
		}
	}
	return false
}

// featurize appends the model's features for d to fs: word unigrams and
// bigrams over stems, character 4-grams over the normalised words (values
// scaled so the n-gram vector has unit length, at most: see minNgrams),
// and rule features from rs; with ngrams false, the rule features only
// (see quietWords).
func featurize(fs []feature, d *doc, rs *ruleSummary, mask uint32, ngrams bool) []feature {
	fs = fs[:0]
	n := d.words()
	// Character 4-grams over " w1 w2 ... ", words separated by one space.
	nc := len(d.buf) + 2 - 3
	if nc < 0 {
		nc = 0
	}
	total := n + max(n-1, 0) + nc
	total = max(total, minNgrams)
	v := float32(1 / math.Sqrt(float64(total)))
	// Word features come twice: shared, and a copy for the kind of text (a
	// prompt asking for something, or a post), so each kind can weigh a
	// word its own way ("feature augmentation" for two domains; round 7:
	// JailbreakBench benign FPR 0.191 -> 0.169 over 8 seeds, OpenAI F1
	// unchanged). The character 4-grams stay shared.
	kind := nsPost
	if rs.prompt {
		kind = nsPrompt
	}
	buf := d.buf
	if !ngrams {
		n, buf = 0, nil
	}
	for i := 0; i < n; i++ {
		hw := hashBytes(nsWord, d.stem(i))
		sense := rs.benign(i)
		if sense {
			hw = mix(hw ^ nsSense)
		}
		fs = append(fs, feature{uint32(hw) & mask, v, false}, feature{uint32(mix(hw^kind)) & mask, v, false})
		if i+1 < n {
			hb := hashBytes(nsBi, d.sbuf[d.sstart[i]:d.send[i+1]])
			if sense || rs.benign(i+1) {
				hb = mix(hb ^ nsSense)
			}
			fs = append(fs, feature{uint32(hb) & mask, v, false}, feature{uint32(mix(hb^kind)) & mask, v, false})
		}
	}
	get := func(i int) uint64 {
		if i < 0 || i >= len(buf) {
			return ' '
		}
		return uint64(buf[i])
	}
	for i := -1; i+3 <= len(buf); i++ {
		g := get(i) | get(i+1)<<8 | get(i+2)<<16 | get(i+3)<<24
		fs = append(fs, feature{uint32(mix(g^nsChar)) & mask, v, false})
	}
	// Rule features.
	rule := func(a, b uint64) {
		fs = append(fs, feature{uint32(mix(nsRule^(a*0x9e3779b1+b+1))) & mask, 1, true})
	}
	for c := lexClass(0); c < numLex; c++ {
		if k := rs.doc[c]; k > 0 {
			rule(uint64(c), 1000)
			if k >= 3 {
				rule(uint64(c), 1001)
			}
		}
	}
	for i, k := range [...]int{rs.benignUse, rs.reqHarm, rs.reqHarmDefused, rs.reqMalice, rs.planHarm, rs.harmDefused, rs.harmPerson, rs.reqHarmPerson, int(rs.strongReq), rs.minorSex, rs.slurUse, rs.selfHarmFirst, rs.sexUse, rs.insultYou, rs.threatUse} {
		if k > 0 {
			rule(1002, uint64(i))
		}
	}
	for _, m := range modifiers {
		for _, t := range topics {
			if rs.pairs[m][t] {
				rule(uint64(m)+1, uint64(t)+2000)
			}
		}
	}
	return fs
}

// opener reports whether a text's first word (stemmed) opens a question or
// an order.
func opener(w []byte) bool {
	switch string(w) {
	case "how", "what", "which", "where", "why", "who", "can", "could", "would", "should", "is", "are", "do", "does",
		"explain", "describ", "list", "outlin", "provid", "suggest", "teach", "show", "help", "find", "tell", "giv", "pleas", "writ", "creat":
		return true
	}
	return false
}
