package safety

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"slices"
)

// Policy decides what the scores mean. The zero value is not useful; start
// from DefaultPolicy or LoadPolicy.
type Policy struct {
	// Thresholds maps a category to the score (0..1) at or above which it
	// trips. Every category of Categories has one; the defaults are in
	// DefaultPolicy and docs/SAFETY.md.
	Thresholds map[string]float64 `json:"thresholds"`
	// Disabled lists categories that never trip (their scores are still
	// reported). Default: none.
	Disabled []string `json:"disabled,omitempty"`
	// UnsureMargin is the half-width of the unsure band around each
	// threshold: a verdict is Unsure when some enabled category scores within
	// UnsureMargin of its threshold. Only unsure verdicts are sent to the
	// optional AI moderation stage. Default 0.15; 0 turns the band off.
	UnsureMargin float64 `json:"unsure_margin"`
}

// DefaultPolicy returns the thresholds chosen on cross-validated dev data
// (see docs/SAFETY.md for the figures they produce).
func DefaultPolicy() Policy {
	return Policy{
		Thresholds: map[string]float64{
			Sexual:               0.4,
			SexualMinors:         0.5,
			Hate:                 0.6,
			HateThreatening:      0.5,
			Harassment:           0.4,
			SelfHarm:             0.5,
			SelfHarmIntent:       0.5,
			SelfHarmInstructions: 0.5,
			Violence:             0.5,
			ViolenceGraphic:      0.5,
			Illegal:              0.5,
			IllegalWeapons:       0.5,
			IllegalDrugs:         0.5,
			IllegalMalware:       0.5,
			IllegalFraud:         0.5,
		},
		UnsureMargin: 0.2,
	}
}

// LoadPolicy reads a JSON policy file. Categories the file leaves out keep
// their default thresholds; unknown categories and thresholds outside (0, 1]
// are errors, so a typo cannot silently weaken the screen.
func LoadPolicy(path string) (Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Policy{}, fmt.Errorf("read policy: %w", err)
	}
	var f struct {
		Thresholds   map[string]float64 `json:"thresholds"`
		Disabled     []string           `json:"disabled"`
		UnsureMargin *float64           `json:"unsure_margin"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return Policy{}, fmt.Errorf("parse policy %s: %w", path, err)
	}
	p := DefaultPolicy()
	for k, v := range f.Thresholds {
		p.Thresholds[k] = v
	}
	p.Disabled = f.Disabled
	if f.UnsureMargin != nil {
		p.UnsureMargin = *f.UnsureMargin
	}
	if err := p.validate(); err != nil {
		return Policy{}, fmt.Errorf("policy %s: %w", path, err)
	}
	return p, nil
}

func (p Policy) validate() error {
	cats := Categories()
	for k, v := range p.Thresholds {
		if !slices.Contains(cats, k) {
			return fmt.Errorf("unknown category %q", k)
		}
		if !(v > 0 && v <= 1) {
			return fmt.Errorf("threshold for %s must be in (0, 1], got %v", k, v)
		}
	}
	for _, c := range cats {
		if _, ok := p.Thresholds[c]; !ok {
			return fmt.Errorf("no threshold for category %q", c)
		}
	}
	for _, k := range p.Disabled {
		if !slices.Contains(cats, k) {
			return fmt.Errorf("unknown disabled category %q", k)
		}
	}
	if p.UnsureMargin < 0 || p.UnsureMargin >= 0.5 {
		return fmt.Errorf("unsure_margin must be in [0, 0.5), got %v", p.UnsureMargin)
	}
	return nil
}
