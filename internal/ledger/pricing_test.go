package ledger_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/peerllm/peerllm/internal/ledger"
)

func TestPriceListValidation(t *testing.T) {
	v1 := `{"version":1,"effective":"2026-01-01T00:00:00Z","models":{"m":{"input_per_million":1000,"output_per_million":2000}}}`
	cases := []struct {
		name, json, err string
	}{
		{"valid", `{"currency":"EUR","versions":[` + v1 + `]}`, ""},
		{"unknown currency", `{"currency":"XYZ","versions":[` + v1 + `]}`, "unknown currency"},
		{"unknown field", `{"currency":"USD","discount":3,"versions":[` + v1 + `]}`, "unknown field"},
		{"malformed", `{"currency":"USD","versions":[`, "decode"},
		{"no versions", `{"currency":"USD","versions":[]}`, "no versions"},
		{"negative", `{"currency":"USD","versions":[{"version":1,"effective":"2026-01-01T00:00:00Z","models":{"m":{"input_per_million":-1,"output_per_million":2}}}]}`, "negative price"},
		{"overflowing", `{"currency":"USD","versions":[{"version":1,"effective":"2026-01-01T00:00:00Z","models":{"m":{"input_per_million":99999999999999999,"output_per_million":2}}}]}`, "price above"},
		{"not a number", `{"currency":"USD","versions":[{"version":1,"effective":"2026-01-01T00:00:00Z","models":{"m":{"input_per_million":"1","output_per_million":2}}}]}`, "decode"},
		{"short notice", `{"currency":"USD","versions":[` + v1 + `,{"version":2,"published":"2026-02-20T00:00:00Z","effective":"2026-03-01T00:00:00Z","models":{"m":{"input_per_million":1100,"output_per_million":2000}}}]}`, "notice period"},
		{"too large a change", `{"currency":"USD","versions":[` + v1 + `,{"version":2,"published":"2026-01-01T00:00:00Z","effective":"2026-03-01T00:00:00Z","models":{"m":{"input_per_million":1300,"output_per_million":2000}}}]}`, "more than 20%"},
		{"allowed change", `{"currency":"USD","versions":[` + v1 + `,{"version":2,"published":"2026-01-01T00:00:00Z","effective":"2026-03-01T00:00:00Z","models":{"m":{"input_per_million":1200,"output_per_million":1600}}}]}`, ""},
		{"two steps in one period add up", `{"currency":"USD","versions":[` + v1 + `,{"version":2,"published":"2026-01-01T00:00:00Z","effective":"2026-03-01T00:00:00Z","models":{"m":{"input_per_million":1200,"output_per_million":2000}}},{"version":3,"published":"2026-01-01T00:00:00Z","effective":"2026-03-10T00:00:00Z","models":{"m":{"input_per_million":1400,"output_per_million":2000}}}]}`, "more than 20%"},
		{"out of order", `{"currency":"USD","versions":[{"version":2,"effective":"2026-01-01T00:00:00Z","models":{"m":{"input_per_million":1,"output_per_million":2}}},{"version":1,"published":"2025-01-01T00:00:00Z","effective":"2026-03-01T00:00:00Z","models":{"m":{"input_per_million":1,"output_per_million":2}}}]}`, "versions must increase"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ledger.ParsePriceList(strings.NewReader(c.json), ledger.DefaultPricingRules())
			if c.err == "" && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
				t.Fatalf("error %v, want one containing %q", err, c.err)
			}
		})
	}
}

func TestQuoteUsesVersionInForceAtStart(t *testing.T) {
	pl := prices(t)
	cases := []struct {
		at      time.Time
		version int
		out     int64
	}{
		{time.Date(2026, 11, 30, 23, 59, 59, 0, time.UTC), 1, 300000},
		{time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), 2, 330000},
	}
	for _, c := range cases {
		q, err := pl.Quote("stories260K", c.at)
		if err != nil {
			t.Fatal(err)
		}
		if q.Version != c.version || q.Price.OutputPerMillion != c.out {
			t.Fatalf("at %s: %+v", c.at, q)
		}
	}
	if _, err := pl.Quote("other", time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)); !errors.Is(err, ledger.ErrNoPrice) {
		t.Fatalf("version 2 has no wildcard: %v", err)
	}
	if _, err := pl.Quote("stories260K", time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)); !errors.Is(err, ledger.ErrNoPrice) {
		t.Fatalf("before the first version: %v", err)
	}
}

func FuzzCost(f *testing.F) {
	f.Add(int64(1), int64(2), int64(3), int64(4))
	f.Add(int64(1<<40), int64(1<<40), int64(1_000_000_000_000), int64(1_000_000_000_000))
	f.Fuzz(func(t *testing.T, p, c, in, out int64) {
		q := ledger.Quote{Price: ledger.Price{InputPerMillion: in, OutputPerMillion: out}}
		cost, err := q.Cost(p, c)
		if err != nil {
			return
		}
		if cost < 0 && in >= 0 && out >= 0 {
			t.Fatalf("negative cost %d", cost)
		}
	})
}
