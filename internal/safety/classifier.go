package safety

import (
	"fmt"
	"math"
	"slices"
	"sync"
)

// Verdict is the screen's answer for one text.
type Verdict struct {
	// Flagged is true when at least one category tripped.
	Flagged bool
	// Categories holds every category of Categories: true when it tripped.
	Categories map[string]bool
	// Scores holds every category's score in [0, 1].
	Scores map[string]float64
	// Tripped names the tripped categories in Categories order.
	Tripped []string
	// Unsure is true when some enabled category scored within the policy's
	// unsure band of its threshold (the optional AI stage is consulted then).
	Unsure bool
	// Source says which stage decided: SourceBuiltin or SourceAI.
	Source string
}

// Verdict sources.
const (
	SourceBuiltin = "builtin"
	SourceAI      = "ai"
)

// Classifier is the built-in screen. It is safe for concurrent use; Classify
// allocates only the returned verdict (scratch space is pooled).
type Classifier struct {
	m        *model
	lex      map[string]lexEntry
	cats     []string
	thr      []float64
	disabled []bool
	margin   float64
	pool     sync.Pool
}

type scratch struct {
	d    doc
	rs   ruleSummary
	ents []lexEntry
	fs   []feature
	// For focus sentences (see ruleSummary.focus).
	fd  doc
	frs ruleSummary
}

// New returns a classifier using the built-in weights embedded in the binary
// and policy p.
func New(p Policy) (*Classifier, error) {
	return NewFromWeights(p, builtinWeights)
}

// NewFromWeights returns a classifier using weights written by Train (the
// training command uses it for cross-validation).
func NewFromWeights(p Policy, weights []byte) (*Classifier, error) {
	if err := p.validate(); err != nil {
		return nil, fmt.Errorf("safety policy: %w", err)
	}
	m, err := unmarshalModel(weights)
	if err != nil {
		return nil, err
	}
	c := &Classifier{m: m, lex: compileLexicon(), cats: Categories(), margin: p.UnsureMargin}
	for _, name := range c.cats {
		c.thr = append(c.thr, p.Thresholds[name])
		c.disabled = append(c.disabled, slices.Contains(p.Disabled, name))
	}
	c.pool.New = func() any { return new(scratch) }
	return c, nil
}

// Window sizes: texts up to maxSingle bytes are scored whole; longer ones are
// cut at sentence ends into windows of at most window bytes and the verdict
// takes each category's highest score, so one harmful paragraph inside a long
// harmless text is not diluted away.
const (
	maxSingle = 1024
	window    = 768
)

// Classify screens text. It never fails: empty text scores as harmless,
// invalid UTF-8 is repaired, and any length is accepted (long text costs
// linear time).
func (c *Classifier) Classify(text string) Verdict {
	s := c.pool.Get().(*scratch)
	defer c.pool.Put(s)
	var best [numCats]float64
	for len(text) > 0 {
		w := text
		if len(text) > maxSingle {
			w = text[:cutPoint(text, window)]
		}
		text = text[len(w):]
		sc := c.scoreWindow(s, w)
		for i, v := range sc {
			best[i] = math.Max(best[i], v)
		}
	}
	return c.verdict(best)
}

// cutPoint returns where to end a window of at most n bytes of text: after
// the last sentence end in its second half, else after the last space, else
// at n.
func cutPoint(text string, n int) int {
	if len(text) <= n {
		return len(text)
	}
	for i := n - 1; i >= n/2; i-- {
		switch text[i] {
		case '.', '!', '?', '\n':
			return i + 1
		}
	}
	for i := n - 1; i >= n/2; i-- {
		if text[i] == ' ' {
			return i + 1
		}
	}
	return n
}

const numCats = 15

// Indices into Categories().
const (
	ciSexual = iota
	ciSexualMinors
	ciHate
	ciHateThreatening
	ciHarassment
	ciSelfHarm
	ciSelfHarmIntent
	ciSelfHarmInstructions
	ciViolence
	ciViolenceGraphic
	ciIllegal
	ciIllegalWeapons
	ciIllegalDrugs
	ciIllegalMalware
	ciIllegalFraud
)

// scoreWindow returns every category's score for one window.
func (c *Classifier) scoreWindow(s *scratch, text string) [numCats]float64 {
	normalize(&s.d, text)
	s.ents = scan(c.lex, &s.d, &s.rs, s.ents)
	out := c.score(s, &s.d, &s.rs)
	// A sentence asking for harm is also scored alone, when it is not the
	// whole window, so the text around it cannot dilute it.
	focus, nfocus := s.rs.focus, s.rs.nfocus
	for k := 0; k < nfocus; k++ {
		from, to := int(focus[k][0]), int(focus[k][1])
		if from == 0 && to == s.d.words() {
			continue
		}
		s.d.sub(&s.fd, from, to)
		s.ents = scan(c.lex, &s.fd, &s.frs, s.ents)
		for i, v := range c.score(s, &s.fd, &s.frs) {
			if v >= focusBar {
				out[i] = math.Max(out[i], v)
			}
		}
	}
	return out
}

// focusBar is how confident a focus sentence's own score must be to raise the
// window's: lower bars cost precision on conversational text (moderation-set
// cross-validation), higher ones lose harm wrapped in long prompts.
const focusBar = 0.8

// score returns every category's score for the scanned document d.
func (c *Classifier) score(s *scratch, d *doc, rs *ruleSummary) [numCats]float64 {
	s.fs = featurize(s.fs, d, rs, c.m.mask, !fewWords(d) || rs.harmful())
	lg := c.m.logits(s.fs)
	pr := prior(rs)
	var h [numHeads]float64
	for i, l := range lg {
		h[i] = sigmoid(float64(l + pr[i]))
	}
	return derive(h, rs)
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

// derive maps head scores to all categories. The sub-categories of
// self-harm and illegal take their parent's score when the rules saw their
// specific signal (first-person intent, a request for instructions, a weapon,
// a drug...), and a damped score otherwise, so they never exceed the parent.
func derive(h [numHeads]float64, rs *ruleSummary) [numCats]float64 {
	// How unsafe the text is: the mean of the overall head and the most
	// confident category head (better than either alone in cross-
	// validation). The category heads share that out: the likeliest
	// category gets it, the others in proportion to their own score.
	top := 0.0
	for _, x := range h[:numHeads-1] {
		top = math.Max(top, x)
	}
	if top > 0 {
		anyScore := (h[numHeads-1] + top) / 2
		for i := range h[:numHeads-1] {
			h[i] = anyScore * h[i] / top
		}
	}
	var o [numCats]float64
	o[ciSexual] = h[0]
	o[ciSexualMinors] = h[1]
	o[ciHate] = h[2]
	o[ciHateThreatening] = h[3]
	o[ciHarassment] = h[4]
	o[ciSelfHarm] = h[5]
	o[ciViolence] = h[6]
	o[ciViolenceGraphic] = h[7]
	o[ciIllegal] = h[8]
	damp := func(parent float64, on bool) float64 {
		if on {
			return parent
		}
		return parent * 0.3
	}
	o[ciSelfHarmIntent] = damp(h[5], rs.pairs[lxFirstPerson][lxSelfHarm] || rs.pairs[lxSelf][lxSelfHarm])
	o[ciSelfHarmInstructions] = damp(h[5], rs.pairs[lxRequest][lxSelfHarm])
	o[ciIllegalWeapons] = damp(h[8], rs.doc[lxWeapon] > 0)
	o[ciIllegalDrugs] = damp(h[8], rs.doc[lxDrug] > 0)
	o[ciIllegalMalware] = damp(h[8], rs.doc[lxHack] > 0)
	o[ciIllegalFraud] = damp(h[8], rs.doc[lxFraud] > 0 || rs.doc[lxPrivacy] > 0 || rs.doc[lxDisinfo] > 0)
	return o
}

func (c *Classifier) verdict(sc [numCats]float64) Verdict {
	v := Verdict{
		Categories: make(map[string]bool, numCats),
		Scores:     make(map[string]float64, numCats),
		Source:     SourceBuiltin,
	}
	for i, name := range c.cats {
		s := math.Round(sc[i]*1e6) / 1e6
		v.Scores[name] = s
		trip := !c.disabled[i] && s >= c.thr[i]
		v.Categories[name] = trip
		if trip {
			v.Tripped = append(v.Tripped, name)
			v.Flagged = true
		}
		if !c.disabled[i] && math.Abs(s-c.thr[i]) < c.margin {
			v.Unsure = true
		}
	}
	return v
}

// WithPolicy returns a classifier sharing c's weights and lexicons under
// policy p.
func (c *Classifier) WithPolicy(p Policy) (*Classifier, error) {
	if err := p.validate(); err != nil {
		return nil, fmt.Errorf("safety policy: %w", err)
	}
	n := &Classifier{m: c.m, lex: c.lex, cats: c.cats, margin: p.UnsureMargin}
	for _, name := range n.cats {
		n.thr = append(n.thr, p.Thresholds[name])
		n.disabled = append(n.disabled, slices.Contains(p.Disabled, name))
	}
	n.pool.New = func() any { return new(scratch) }
	return n, nil
}

// ModerationResult is one entry of "results" in OpenAI's /v1/moderations
// response, for serving POST /v1/moderations from a Verdict.
type ModerationResult struct {
	Flagged        bool               `json:"flagged"`
	Categories     map[string]bool    `json:"categories"`
	CategoryScores map[string]float64 `json:"category_scores"`
}

// Moderation returns v in OpenAI's moderation result shape. Category names
// are ours (OpenAI's where one exists; "illegal..." where OpenAI says
// "illicit").
func (v Verdict) Moderation() ModerationResult {
	return ModerationResult{Flagged: v.Flagged, Categories: v.Categories, CategoryScores: v.Scores}
}
