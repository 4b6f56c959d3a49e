// Package privacy finds personal identifiers in text, replaces them with
// consistent stand-ins for the life of one request and puts the originals
// back into the streamed answer. It owns the recognizers (structured ones
// with validation, and gazetteer- and context-based ones for names,
// organisations, places and street addresses), the word lists embedded under
// data/, the per-request mapping (Session) and the streaming Restorer.
//
// The orchestrator's request path and cmd/peerllm may import it. The host
// side (internal/agent, internal/engine/...) must not: the raw text and the
// mapping never leave the orchestrator.
//
// The mapping lives only in a Session's memory. Nothing in this package logs,
// stores or sends text or mapping.
package privacy

import (
	"fmt"
	"sort"
	"unicode/utf8"
)

// Entity types. The names follow Microsoft Presidio where one exists.
const (
	Person        = "PERSON"
	Organization  = "ORGANIZATION"
	Location      = "LOCATION"
	StreetAddress = "STREET_ADDRESS"
	Email         = "EMAIL_ADDRESS"
	Phone         = "PHONE_NUMBER"
	CreditCard    = "CREDIT_CARD"
	IBAN          = "IBAN_CODE"
	USSSN         = "US_SSN"
	UKNINO        = "UK_NINO"
	IPAddress     = "IP_ADDRESS"
	MACAddress    = "MAC_ADDRESS"
	URL           = "URL"
	DateOfBirth   = "DATE_OF_BIRTH"
	Secret        = "SECRET"
	Username      = "USERNAME"
	Hostname      = "HOSTNAME"
	FilePath      = "FILE_PATH"
)

// Types lists every entity type the scanner can report.
var Types = []string{
	Person, Organization, Location, StreetAddress, Email, Phone, CreditCard,
	IBAN, USSSN, UKNINO, IPAddress, MACAddress, URL, DateOfBirth, Secret,
	Username, Hostname, FilePath,
}

// DefaultMinScore is the threshold used for a type that Config.MinScore does
// not mention. Detections scoring below their type's threshold are dropped.
//
// Scores are calibrated by hand: about 0.9 for validated structured matches
// (checksums, parsers) and names with strong context (a title, "my name is"),
// 0.6-0.85 for gazetteer and shape evidence, and below 0.5 for weak evidence
// that is reported only when a caller lowers the threshold: a lone country
// name, an unchecked number, a URL without credentials.
const DefaultMinScore = 0.5

// Mode selects the kind of stand-in a Session writes.
type Mode int

const (
	// Surrogates replaces each identifier with a plausible value of the same
	// kind from reserved or fictional ranges (another name, an example.com
	// address, a 555 phone number, a test card number). The default, because
	// models answer better about text that still reads naturally.
	Surrogates Mode = iota
	// Placeholders replaces each identifier with a typed tag, [PERSON_1].
	Placeholders
)

// ParseMode turns "surrogates" or "placeholders" into a Mode.
func ParseMode(s string) (Mode, error) {
	switch s {
	case "surrogates", "surrogate", "":
		return Surrogates, nil
	case "placeholders", "placeholder":
		return Placeholders, nil
	}
	return 0, fmt.Errorf("unknown privacy mode %q (want surrogates or placeholders)", s)
}

// String returns the mode's name as ParseMode accepts it.
func (m Mode) String() string {
	if m == Placeholders {
		return "placeholders"
	}
	return "surrogates"
}

// Config configures a Scanner. The zero value is ready to use.
type Config struct {
	// MinScore maps an entity type to its threshold in [0,1]; a type missing
	// from the map uses DefaultMinScore. A threshold above 1 disables a type.
	MinScore map[string]float64
	// Mode is the kind of stand-in Sessions write. Default Surrogates.
	Mode Mode
	// PhoneRegions are the ISO 3166 regions tried, in order, for phone
	// numbers written without a country code. Default DefaultPhoneRegions.
	PhoneRegions []string
}

// DefaultPhoneRegions are the regions tried for national-format phone numbers.
var DefaultPhoneRegions = []string{"US", "GB", "DE", "FR", "IT", "ES", "NL", "SE", "DK", "FI", "NO", "PL", "CZ", "AT", "CH", "BE", "PT", "IE", "AU", "CA", "IN", "BR", "HU", "IS", "SI", "UY"}

// Entity is one detected identifier. Start and End count Unicode code points
// from the start of the scanned text, End exclusive; Text is the matched text.
type Entity struct {
	Type  string  `json:"type"`
	Start int     `json:"start"`
	End   int     `json:"end"`
	Text  string  `json:"text"`
	Score float64 `json:"score"`
}

// Scanner finds identifiers. It is immutable after NewScanner and safe for
// concurrent use.
type Scanner struct {
	mode    Mode
	min     map[string]float64
	regions []string
	gz      *gazetteer
}

// NewScanner validates cfg and returns a Scanner. It fails on an unknown
// entity type or a negative threshold.
func NewScanner(cfg Config) (*Scanner, error) {
	known := make(map[string]bool, len(Types))
	for _, t := range Types {
		known[t] = true
	}
	min := make(map[string]float64, len(Types))
	for _, t := range Types {
		min[t] = DefaultMinScore
	}
	for t, v := range cfg.MinScore {
		if !known[t] {
			return nil, fmt.Errorf("privacy config: unknown entity type %q", t)
		}
		if v < 0 {
			return nil, fmt.Errorf("privacy config: negative threshold for %s", t)
		}
		min[t] = v
	}
	if cfg.Mode != Surrogates && cfg.Mode != Placeholders {
		return nil, fmt.Errorf("privacy config: unknown mode %d", cfg.Mode)
	}
	regions := cfg.PhoneRegions
	if len(regions) == 0 {
		regions = DefaultPhoneRegions
	}
	return &Scanner{mode: cfg.Mode, min: min, regions: regions, gz: loadGazetteer()}, nil
}

// span is a detection in byte offsets, used inside the package.
type span struct {
	typ        string
	start, end int
	score      float64
}

// Scan returns the identifiers in text, sorted by Start and never
// overlapping.
//
// Overlaps are resolved by one rule: candidates are taken in order of score
// (highest first), then length (longest first), then position (earliest
// first), and a candidate that overlaps one already taken is dropped whole.
// So a validated card number beats the phone number that the same digits
// also parse as, and a full street address beats the city inside it.
func (s *Scanner) Scan(text string) []Entity {
	spans := s.scan(text)
	return toEntities(text, spans)
}

// ScanWith is Scan with extra detections (from a Sanitizer, offsets in code
// points) merged in by the same overlap rule. Extra detections are not
// subject to the thresholds.
func (s *Scanner) ScanWith(text string, extra []Entity) []Entity {
	spans := s.scan(text)
	if ex := entitiesToSpans(text, extra); len(ex) > 0 {
		spans = resolve(append(spans, ex...))
	}
	return toEntities(text, spans)
}

// scan returns the resolved detections in byte offsets, sorted by start.
func (s *Scanner) scan(text string) []span {
	fm, folded := foldText(text)
	src := text
	if folded {
		src = fm.folded
	}
	var cands []span
	cands = s.scanStructured(src, cands)
	cands = s.scanNames(src, cands)
	if folded {
		cands = fm.unfold(cands)
	}
	kept := cands[:0]
	for _, c := range cands {
		if c.end > c.start && c.score >= s.min[c.typ] {
			kept = append(kept, c)
		}
	}
	return resolve(kept)
}

// resolve applies the overlap rule documented on Scan.
func resolve(cands []span) []span {
	sort.SliceStable(cands, func(i, j int) bool {
		a, b := cands[i], cands[j]
		if a.score != b.score {
			return a.score > b.score
		}
		if a.end-a.start != b.end-b.start {
			return a.end-a.start > b.end-b.start
		}
		return a.start < b.start
	})
	var out []span // sorted by start, non-overlapping
	for _, c := range cands {
		i := sort.Search(len(out), func(i int) bool { return out[i].end > c.start })
		if i < len(out) && out[i].start < c.end {
			continue
		}
		out = append(out, span{})
		copy(out[i+1:], out[i:])
		out[i] = c
	}
	return out
}

// toEntities converts byte spans (sorted by start) to code-point entities.
func toEntities(text string, spans []span) []Entity {
	if len(spans) == 0 {
		return nil
	}
	out := make([]Entity, 0, len(spans))
	pos, runes := 0, 0
	advance := func(to int) int {
		runes += utf8.RuneCountInString(text[pos:to])
		pos = to
		return runes
	}
	for _, sp := range spans {
		start := advance(sp.start)
		end := advance(sp.end)
		out = append(out, Entity{Type: sp.typ, Start: start, End: end, Text: text[sp.start:sp.end], Score: round2(sp.score)})
	}
	return out
}

func round2(f float64) float64 { return float64(int(f*100+0.5)) / 100 }
