package ledger

import (
	"bytes"
	_ "embed"
	"fmt"
	"reflect"
	"time"
)

//go:embed default_prices.json
var defaultPrices []byte

// DefaultPriceList is the list `peerllm serve` uses without --prices: the
// tiny test model (stories260K) at 0.10 per million input tokens and 0.20 per
// million output tokens, every other model ("*") at 0.50 and 1.50, in USD.
func DefaultPriceList() *PriceList {
	pl, err := ParsePriceList(bytes.NewReader(defaultPrices), DefaultPricingRules())
	if err != nil {
		panic(fmt.Sprintf("embedded default price list: %v", err)) // fixed at build time; a test parses it
	}
	return pl
}

// CheckReplace checks that next may replace the list in use, cur, at now (a
// reload): a published version that is already in force or announced may not
// be changed or removed (consumers budget on it and requests were charged by
// it), and a version new to the list must be announced at least the notice
// period before it takes effect, counted from now, whatever its published
// date says. next must already be valid by itself (ParsePriceList).
func CheckReplace(cur, next *PriceList, now time.Time, rules PricingRules) error {
	if cur == nil {
		return nil
	}
	if next.Currency != cur.Currency {
		return fmt.Errorf("currency changes from %s to %s: a published list keeps its currency", cur.Currency, next.Currency)
	}
	known := make(map[int]PriceVersion, len(cur.Versions))
	for _, v := range cur.Versions {
		known[v.Version] = v
	}
	seen := map[int]bool{}
	for _, v := range next.Versions {
		seen[v.Version] = true
		old, ok := known[v.Version]
		if ok {
			if !v.Effective.Equal(old.Effective) || !reflect.DeepEqual(v.Models, old.Models) {
				return fmt.Errorf("version %d is published and may not change", v.Version)
			}
			continue
		}
		if v.Effective.Before(now.Add(rules.NoticePeriod)) {
			return fmt.Errorf("version %d takes effect %s, less than the %s notice period from now", v.Version, v.Effective.Format(time.RFC3339), rules.NoticePeriod)
		}
	}
	for _, v := range cur.Versions {
		if !seen[v.Version] {
			return fmt.Errorf("version %d is published and may not be removed", v.Version)
		}
	}
	return nil
}
