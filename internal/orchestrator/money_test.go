package orchestrator_test

import (
	"context"
	"encoding/json"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/peerllm/peerllm/internal/ledger"
	"github.com/peerllm/peerllm/internal/orchestrator"
)

// TestMoneyWiring: with a price list the orchestrator serves it, accepts a
// reload that announces a version with notice, refuses one that rewrites the
// version in force (keeping the old list), and its stale-hold sweeper stops
// with it.
func TestMoneyWiring(t *testing.T) {
	before := runtime.NumGoroutine()
	o, err := orchestrator.Start(context.Background(), orchestrator.Config{
		Listen: "127.0.0.1:0", NATSListen: "127.0.0.1:0", DataDir: t.TempDir(), Prices: ledger.DefaultPriceList(),
	})
	if err != nil {
		t.Fatal(err)
	}
	versions := func() int {
		resp, err := http.Get(o.APIURL() + "/v1/pricing")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var p struct{ Versions []json.RawMessage }
		if err := json.NewDecoder(resp.Body).Decode(&p); err != nil || resp.StatusCode != 200 {
			t.Fatalf("pricing: %d %v", resp.StatusCode, err)
		}
		return len(p.Versions)
	}
	if n := versions(); n != 1 {
		t.Fatalf("%d versions", n)
	}
	parse := func(s string) *ledger.PriceList {
		pl, err := ledger.ParsePriceList(strings.NewReader(s), ledger.DefaultPricingRules())
		if err != nil {
			t.Fatal(err)
		}
		return pl
	}
	v1 := `{"version":1,"published":"2026-01-01T00:00:00Z","effective":"2026-01-01T00:00:00Z","models":{"stories260K":{"input_per_million":100000,"output_per_million":200000},"*":{"input_per_million":500000,"output_per_million":1500000}}}`
	later := time.Now().UTC().Add(60 * 24 * time.Hour).Format(time.RFC3339)
	v2 := `{"version":2,"published":"2026-01-01T00:00:00Z","effective":"` + later + `","models":{"stories260K":{"input_per_million":110000,"output_per_million":220000}}}`
	if err := o.SetPrices(parse(`{"currency":"USD","versions":[` + strings.Replace(v1, "200000", "210000", 1) + `]}`)); err == nil {
		t.Fatal("a rewrite of the version in force was accepted")
	}
	if err := o.SetPrices(parse(`{"currency":"USD","versions":[` + v1 + `,` + v2 + `]}`)); err != nil {
		t.Fatalf("an announced version: %v", err)
	}
	if n := versions(); n != 2 {
		t.Fatalf("%d versions after the reload", n)
	}
	o.Close()
	http.DefaultClient.CloseIdleConnections()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines before, %d after Close", before, runtime.NumGoroutine())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
