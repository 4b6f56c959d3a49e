package ledger

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"os"
	"sort"
	"strings"
	"time"
)

// Price is what one model costs, in integer micro-units of the list's
// currency per million tokens.
type Price struct {
	InputPerMillion  int64 `json:"input_per_million"`
	OutputPerMillion int64 `json:"output_per_million"`
}

// PriceVersion is one published version of the price list.
type PriceVersion struct {
	Version   int       `json:"version"`
	Published time.Time `json:"published,omitzero"` // when it was announced
	Effective time.Time `json:"effective"`          // when it starts to apply
	// Models maps a model name to its price. The entry "*" (optional) prices
	// every model not named.
	Models map[string]Price `json:"models"`
}

// PriceList is the published, versioned price list. Versions are ordered by
// Effective; the one in force at an instant is the last whose Effective is not
// after it.
type PriceList struct {
	Currency string         `json:"currency"`
	Versions []PriceVersion `json:"versions"`
}

// PricingRules bound how prices may change so budgets stay predictable.
type PricingRules struct {
	// NoticePeriod is the least time between a version's publication and its
	// effective date (not required of the first version). Default 30 days.
	NoticePeriod time.Duration
	// MaxChangePercent bounds the change of any model's input or output price
	// between a version and the one before it. Default 20 (percent).
	MaxChangePercent int64
	// ChangePeriod is the window MaxChangePercent applies to: two changes
	// within it are measured together against the price in force at its
	// start. Default 30 days.
	ChangePeriod time.Duration
}

// DefaultPricingRules returns the rules docs/POLICY.md states.
func DefaultPricingRules() PricingRules {
	return PricingRules{NoticePeriod: 30 * 24 * time.Hour, MaxChangePercent: 20, ChangePeriod: 30 * 24 * time.Hour}
}

// currencies are the ISO 4217 codes accepted; micro-units of each.
var currencies = map[string]bool{
	"USD": true, "EUR": true, "GBP": true, "CHF": true, "JPY": true, "CAD": true,
	"AUD": true, "NZD": true, "SEK": true, "NOK": true, "DKK": true, "INR": true,
	"BRL": true, "MXN": true, "ZAR": true, "SGD": true, "HKD": true, "PLN": true,
}

// maxPricePerMillion keeps every price computation far from int64 overflow:
// 10^12 micro-units (a million currency units) per million tokens.
const maxPricePerMillion = 1_000_000_000_000

// ErrNoPrice means the price list has no price for a model at that time.
var ErrNoPrice = errors.New("no price for model")

// LoadPriceList reads and validates a price list file.
func LoadPriceList(path string, rules PricingRules) (*PriceList, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("price list: %w", err)
	}
	defer f.Close()
	pl, err := ParsePriceList(f, rules)
	if err != nil {
		return nil, fmt.Errorf("price list %s: %w", path, err)
	}
	return pl, nil
}

// ParsePriceList decodes and validates a price list. It refuses unknown
// fields, unknown currencies, negative or absurd prices, versions out of order,
// a notice period shorter than the rules allow and a change larger than the
// bound per period.
func ParsePriceList(r io.Reader, rules PricingRules) (*PriceList, error) {
	dec := json.NewDecoder(io.LimitReader(r, 4<<20))
	dec.DisallowUnknownFields()
	var pl PriceList
	if err := dec.Decode(&pl); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if err := pl.Validate(rules); err != nil {
		return nil, err
	}
	return &pl, nil
}

// Validate checks the list against rules.
func (pl *PriceList) Validate(rules PricingRules) error {
	if !currencies[pl.Currency] {
		return fmt.Errorf("unknown currency %q", pl.Currency)
	}
	if len(pl.Versions) == 0 {
		return errors.New("no versions")
	}
	for i, v := range pl.Versions {
		if v.Effective.IsZero() {
			return fmt.Errorf("version %d: missing effective date", v.Version)
		}
		if len(v.Models) == 0 {
			return fmt.Errorf("version %d: no models", v.Version)
		}
		for m, p := range v.Models {
			if strings.TrimSpace(m) == "" {
				return fmt.Errorf("version %d: empty model name", v.Version)
			}
			if p.InputPerMillion < 0 || p.OutputPerMillion < 0 {
				return fmt.Errorf("version %d: model %s: negative price", v.Version, m)
			}
			if p.InputPerMillion > maxPricePerMillion || p.OutputPerMillion > maxPricePerMillion {
				return fmt.Errorf("version %d: model %s: price above %d micro-units per million tokens", v.Version, m, int64(maxPricePerMillion))
			}
		}
		if i == 0 {
			continue
		}
		prev := pl.Versions[i-1]
		if v.Version <= prev.Version {
			return fmt.Errorf("version %d follows version %d: versions must increase", v.Version, prev.Version)
		}
		if !v.Effective.After(prev.Effective) {
			return fmt.Errorf("version %d: effective %s is not after version %d's", v.Version, v.Effective.Format(time.RFC3339), prev.Version)
		}
		if v.Published.IsZero() {
			return fmt.Errorf("version %d: missing published date", v.Version)
		}
		if notice := v.Effective.Sub(v.Published); notice < rules.NoticePeriod {
			return fmt.Errorf("version %d: published %s before it takes effect, the notice period is %s", v.Version, notice, rules.NoticePeriod)
		}
		// The change bound: against the version in force at the start of
		// the period that ends at v's effective date.
		base := pl.At(v.Effective.Add(-rules.ChangePeriod))
		if base == nil {
			base = &pl.Versions[0]
		}
		for m, p := range v.Models {
			old, ok := base.Models[m]
			if !ok {
				continue // a new model may be priced freely
			}
			if err := checkChange(old.InputPerMillion, p.InputPerMillion, rules.MaxChangePercent); err != nil {
				return fmt.Errorf("version %d: model %s input price: %w", v.Version, m, err)
			}
			if err := checkChange(old.OutputPerMillion, p.OutputPerMillion, rules.MaxChangePercent); err != nil {
				return fmt.Errorf("version %d: model %s output price: %w", v.Version, m, err)
			}
		}
	}
	return nil
}

func checkChange(old, new, maxPercent int64) error {
	diff := new - old
	if diff < 0 {
		diff = -diff
	}
	// diff/old > maxPercent/100, in integers.
	if old == 0 {
		if new == 0 {
			return nil
		}
		return fmt.Errorf("changes from 0 to %d: a free model may not become paid within one period", new)
	}
	if diff*100 > old*maxPercent {
		return fmt.Errorf("changes from %d to %d, more than %d%% in one period", old, new, maxPercent)
	}
	return nil
}

// At returns the version in force at t, or nil before the first.
func (pl *PriceList) At(t time.Time) *PriceVersion {
	var cur *PriceVersion
	for i := range pl.Versions {
		if pl.Versions[i].Effective.After(t) {
			break
		}
		cur = &pl.Versions[i]
	}
	return cur
}

// Quote is a model's price fixed at a request's start.
type Quote struct {
	Currency string
	Version  int
	Model    string
	Price    Price
}

// Quote returns the price of model in force at t.
func (pl *PriceList) Quote(model string, t time.Time) (Quote, error) {
	v := pl.At(t)
	if v == nil {
		return Quote{}, fmt.Errorf("%w %s: no price list in force at %s", ErrNoPrice, model, t.Format(time.RFC3339))
	}
	p, ok := v.Models[model]
	if !ok {
		p, ok = v.Models["*"]
	}
	if !ok {
		return Quote{}, fmt.Errorf("%w %s in price list version %d", ErrNoPrice, model, v.Version)
	}
	return Quote{Currency: pl.Currency, Version: v.Version, Model: model, Price: p}, nil
}

// Cost is the price of the given token counts in micro-units. Rounding rule:
// the exact amount tokens×price/10^6 is rounded half up to a whole micro-unit,
// once per request (never per token).
func (q Quote) Cost(promptTokens, completionTokens int64) (int64, error) {
	if promptTokens < 0 || completionTokens < 0 {
		return 0, errors.New("negative token count")
	}
	n := new(big.Int).Mul(big.NewInt(promptTokens), big.NewInt(q.Price.InputPerMillion))
	n.Add(n, new(big.Int).Mul(big.NewInt(completionTokens), big.NewInt(q.Price.OutputPerMillion)))
	n.Add(n, big.NewInt(500_000)) // half up
	n.Quo(n, big.NewInt(1_000_000))
	if !n.IsInt64() || n.Int64() > math.MaxInt64/4 {
		return 0, errors.New("cost overflows")
	}
	return n.Int64(), nil
}

// Models returns the model names priced by version v, sorted.
func (v *PriceVersion) ModelNames() []string {
	names := make([]string, 0, len(v.Models))
	for m := range v.Models {
		names = append(names, m)
	}
	sort.Strings(names)
	return names
}
