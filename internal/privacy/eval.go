package privacy

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"unicode"
)

// EvalRecord is one labelled sentence in presidio-research's span format.
type EvalRecord struct {
	FullText string     `json:"full_text"`
	Spans    []EvalSpan `json:"spans"`
}

// EvalSpan is one labelled identifier; positions are code points, end exclusive.
type EvalSpan struct {
	EntityType string `json:"entity_type"`
	Value      string `json:"entity_value"`
	Start      int    `json:"start_position"`
	End        int    `json:"end_position"`
}

// EvalTypeMap maps presidio-research's entity types to the scanner's.
// Types not listed (DATE_TIME, TITLE, AGE, NRP, US_DRIVER_LICENSE) are not
// scored: predictions over them count neither as right nor as wrong, and
// their words are not "ordinary words".
var EvalTypeMap = map[string]string{
	"PERSON": Person, "ORGANIZATION": Organization, "STREET_ADDRESS": StreetAddress, "ZIP_CODE": StreetAddress,
	"GPE": Location, "EMAIL_ADDRESS": Email, "PHONE_NUMBER": Phone, "CREDIT_CARD": CreditCard,
	"IBAN_CODE": IBAN, "US_SSN": USSSN, "IP_ADDRESS": IPAddress, "DOMAIN_NAME": URL,
}

// ReadEvalRecords reads a JSON array of records.
func ReadEvalRecords(r io.Reader) ([]EvalRecord, error) {
	var recs []EvalRecord
	if err := json.NewDecoder(r).Decode(&recs); err != nil {
		return nil, fmt.Errorf("read eval data: %w", err)
	}
	return recs, nil
}

// InSplit reports whether a record's text is in the named part of a data
// set: "holdout" when the first byte of sha256(text) is below 64 (a
// quarter), "tune" otherwise, "all" (or "") everything.
func InSplit(text, split string) bool {
	if split == "all" || split == "" {
		return true
	}
	h := sha256.Sum256([]byte(text))
	return (h[0] < 64) == (split == "holdout")
}

// TypeScore holds the counts and rates for one entity type.
type TypeScore struct {
	Type         string  `json:"type"`
	Gold         int     `json:"gold"`
	Predicted    int     `json:"predicted"`
	ExactTP      int     `json:"exact_tp"`
	OverlapRecTP int     `json:"overlap_recall_tp"`
	OverlapPreTP int     `json:"overlap_precision_tp"`
	AnyTypeTP    int     `json:"hidden_any_type"`
	ExactP       float64 `json:"exact_precision"`
	ExactR       float64 `json:"exact_recall"`
	ExactF1      float64 `json:"exact_f1"`
	OverlapP     float64 `json:"overlap_precision"`
	OverlapR     float64 `json:"overlap_recall"`
	OverlapF1    float64 `json:"overlap_f1"`
	HiddenR      float64 `json:"hidden_recall"`
}

// EvalReport is the result of Evaluate.
type EvalReport struct {
	Records        int         `json:"records"`
	Types          []TypeScore `json:"types"`
	Overall        TypeScore   `json:"overall"`
	OrdinaryWords  int         `json:"ordinary_words"`
	OrdinaryHidden int         `json:"ordinary_hidden"`
	OrdinaryShare  float64     `json:"ordinary_hidden_share"`
	SecondFailures int         `json:"second_detector_failures,omitempty"`
}

// Evaluate scans every record and scores the detections against the labels.
//
// Matching: "exact" needs the same type and the same start and end;
// "overlap" needs the same type and at least one shared code point (recall
// counts labels hit, precision counts detections that hit a label).
// "hidden" is recall regardless of type: the label's text overlaps some
// detection, so it would not reach a host. Ordinary words are the words
// (runs of letters or digits) that overlap no label of any type; the share
// hidden is those overlapping a detection.
func Evaluate(s *Scanner, recs []EvalRecord) EvalReport {
	return EvaluateWith(s, recs, nil)
}

// EvaluateWith is Evaluate with a second detector (a Sanitizer's Detect)
// whose detections are merged into the scanner's; a record on which it
// fails is scored on the scanner alone and counted in SecondFailures.
func EvaluateWith(s *Scanner, recs []EvalRecord, second func(text string) ([]Entity, error)) EvalReport {
	by := map[string]*TypeScore{}
	get := func(t string) *TypeScore {
		if by[t] == nil {
			by[t] = &TypeScore{Type: t}
		}
		return by[t]
	}
	var rep EvalReport
	for _, rec := range recs {
		rep.Records++
		ents := s.Scan(rec.FullText)
		if second != nil {
			extra, err := second(rec.FullText)
			if err != nil {
				rep.SecondFailures++
			}
			ents = s.ScanWith(rec.FullText, extra)
		}
		var gold, ignored []EvalSpan
		for _, g := range rec.Spans {
			if t, ok := EvalTypeMap[g.EntityType]; ok {
				g.EntityType = t
				gold = append(gold, g)
			} else {
				ignored = append(ignored, g)
			}
		}
		for _, g := range gold {
			ts := get(g.EntityType)
			ts.Gold++
			for _, e := range ents {
				if e.Type == g.EntityType && e.Start == g.Start && e.End == g.End {
					ts.ExactTP++
					break
				}
			}
			hit, any := false, false
			for _, e := range ents {
				if e.Start < g.End && g.Start < e.End {
					any = true
					if e.Type == g.EntityType {
						hit = true
					}
				}
			}
			if hit {
				ts.OverlapRecTP++
			}
			if any {
				ts.AnyTypeTP++
			}
		}
		for _, e := range ents {
			neutral := false
			for _, g := range ignored {
				if e.Start < g.End && g.Start < e.End {
					neutral = true
				}
			}
			matched := false
			for _, g := range gold {
				if e.Start < g.End && g.Start < e.End {
					if e.Type == g.EntityType {
						matched = true
					} else {
						neutral = neutral || (e.Type == Location && g.EntityType == StreetAddress) || (e.Type == StreetAddress && g.EntityType == Location)
					}
				}
			}
			if neutral && !matched {
				continue
			}
			ts := get(e.Type)
			ts.Predicted++
			if matched {
				ts.OverlapPreTP++
			}
		}
		// Ordinary words.
		runes := []rune(rec.FullText)
		for i := 0; i < len(runes); {
			if !unicode.IsLetter(runes[i]) && !unicode.IsDigit(runes[i]) {
				i++
				continue
			}
			j := i
			for j < len(runes) && (unicode.IsLetter(runes[j]) || unicode.IsDigit(runes[j])) {
				j++
			}
			labelled := false
			for _, g := range rec.Spans {
				if i < g.End && g.Start < j {
					labelled = true
				}
			}
			if !labelled {
				rep.OrdinaryWords++
				for _, e := range ents {
					if i < e.End && e.Start < j {
						rep.OrdinaryHidden++
						break
					}
				}
			}
			i = j
		}
	}
	var all TypeScore
	all.Type = "overall"
	for _, ts := range by {
		ts.finish()
		rep.Types = append(rep.Types, *ts)
		if ts.Gold == 0 {
			continue // types the data does not label are not in the overall figure
		}
		all.Gold += ts.Gold
		all.Predicted += ts.Predicted
		all.ExactTP += ts.ExactTP
		all.OverlapRecTP += ts.OverlapRecTP
		all.OverlapPreTP += ts.OverlapPreTP
		all.AnyTypeTP += ts.AnyTypeTP
	}
	all.finish()
	rep.Overall = all
	sort.Slice(rep.Types, func(i, j int) bool { return rep.Types[i].Type < rep.Types[j].Type })
	if rep.OrdinaryWords > 0 {
		rep.OrdinaryShare = float64(rep.OrdinaryHidden) / float64(rep.OrdinaryWords)
	}
	return rep
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func f1(p, r float64) float64 {
	if p+r == 0 {
		return 0
	}
	return 2 * p * r / (p + r)
}

func (ts *TypeScore) finish() {
	ts.ExactP = ratio(ts.ExactTP, ts.Predicted)
	ts.ExactR = ratio(ts.ExactTP, ts.Gold)
	ts.ExactF1 = f1(ts.ExactP, ts.ExactR)
	ts.OverlapP = ratio(ts.OverlapPreTP, ts.Predicted)
	ts.OverlapR = ratio(ts.OverlapRecTP, ts.Gold)
	ts.OverlapF1 = f1(ts.OverlapP, ts.OverlapR)
	ts.HiddenR = ratio(ts.AnyTypeTP, ts.Gold)
}

// PlainReport is the result of EvaluatePlain.
type PlainReport struct {
	Texts  int            `json:"texts"`
	Words  int            `json:"words"`
	Hidden int            `json:"hidden_words"`
	Share  float64        `json:"hidden_share"`
	ByType map[string]int `json:"entities_by_type"`
}

// EvaluatePlain measures how much of ordinary, unlabelled text the scanner
// hides: the share of words (runs of letters or digits) that overlap a
// detection, and the detections by type. On text with few identifiers it
// bounds the cost to the answer's usefulness.
func EvaluatePlain(s *Scanner, texts []string) PlainReport {
	rep := PlainReport{ByType: map[string]int{}}
	for _, text := range texts {
		rep.Texts++
		ents := s.Scan(text)
		for _, e := range ents {
			rep.ByType[e.Type]++
		}
		runes := []rune(text)
		k := 0
		for i := 0; i < len(runes); {
			if !unicode.IsLetter(runes[i]) && !unicode.IsDigit(runes[i]) {
				i++
				continue
			}
			j := i
			for j < len(runes) && (unicode.IsLetter(runes[j]) || unicode.IsDigit(runes[j])) {
				j++
			}
			rep.Words++
			for k < len(ents) && ents[k].End <= i {
				k++
			}
			if k < len(ents) && ents[k].Start < j {
				rep.Hidden++
			}
			i = j
		}
	}
	if rep.Words > 0 {
		rep.Share = float64(rep.Hidden) / float64(rep.Words)
	}
	return rep
}
