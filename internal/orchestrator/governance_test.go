package orchestrator

import (
	"context"
	"testing"
	"time"

	"github.com/peerllm/peerllm/internal/governance"
	"github.com/peerllm/peerllm/internal/ledger"
	"github.com/peerllm/peerllm/internal/registry"
)

// startForTest starts a real orchestrator (SQLite, embedded NATS, HTTP on
// port 0) with billing on.
func startForTest(t *testing.T) *Orchestrator {
	t.Helper()
	o, err := Start(context.Background(), Config{Listen: "127.0.0.1:0", NATSListen: "127.0.0.1:0",
		DataDir: t.TempDir(), AdminToken: "governance-test-token", Prices: ledger.DefaultPriceList(),
		Governance: GovernanceConfig{Every: time.Hour, TierEvery: time.Hour, FederationEvery: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(o.Close)
	return o
}

// TestTierJudgement: enterprise hosts below the bar move down to standard —
// never struck, never suspended — and their payout weight follows; hosts
// that meet it, or are too new to judge, keep their tier.
func TestTierJudgement(t *testing.T) {
	ctx := context.Background()
	o := startForTest(t)
	tests := []struct {
		name string
		up   registry.FiguresUpdate
		tier string
	}{
		{"meets the bar", registry.FiguresUpdate{TTFT: 200 * time.Millisecond, MsPerToken: 20, AddSuccesses: 500}, "enterprise"},
		{"slow tokens", registry.FiguresUpdate{TTFT: 200 * time.Millisecond, MsPerToken: 250, AddSuccesses: 500}, "standard"},
		{"slow first token", registry.FiguresUpdate{TTFT: 3 * time.Second, MsPerToken: 20, AddSuccesses: 500}, "standard"},
		{"fails tasks", registry.FiguresUpdate{TTFT: 200 * time.Millisecond, MsPerToken: 20, AddSuccesses: 450, AddFailures: 50}, "standard"},
		{"too new to judge", registry.FiguresUpdate{TTFT: 3 * time.Second, MsPerToken: 250, AddSuccesses: 10}, "enterprise"},
	}
	ids := map[string]string{}
	for _, tt := range tests {
		h, _, err := o.reg.AddHost(ctx, registry.HostSpec{Name: "h", Owner: tt.name, Tier: registry.TierEnterprise})
		if err != nil {
			t.Fatal(err)
		}
		ids[tt.name] = h.ID
		tt.up.HostID = h.ID
		if err := o.reg.RecordFigures(ctx, []registry.FiguresUpdate{tt.up}); err != nil {
			t.Fatal(err)
		}
	}
	o.gov.judgeTiers(ctx)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := o.reg.Host(ctx, ids[tt.name])
			if err != nil {
				t.Fatal(err)
			}
			if h.Tier != tt.tier || h.Strikes != 0 || h.Status != registry.StatusActive {
				t.Fatalf("tier %q strikes %d status %q; want tier %q, no strike, active", h.Tier, h.Strikes, h.Status, tt.tier)
			}
			want := int64(1000)
			if tt.tier == "enterprise" {
				want = governance.Defaults.EnterpriseMultiplierPermille
			}
			if got := o.gov.multiplier(h.ID); got != want {
				t.Fatalf("payout weight %d, want %d", got, want)
			}
		})
	}
}

// TestFederationFromLedger: readiness per region from the hosts' trailing
// earnings (grossed up) in the real ledger and the hosts active in the window.
func TestFederationFromLedger(t *testing.T) {
	ctx := context.Background()
	o := startForTest(t)
	eu, _, err := o.reg.AddHost(ctx, registry.HostSpec{Name: "eu1", Owner: "a", Region: "eu"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := o.reg.AddHost(ctx, registry.HostSpec{Name: "us1", Owner: "b", Region: "us"}); err != nil {
		t.Fatal(err)
	}
	if err := o.gov.book.RecordUptime(ctx, map[string]bool{eu.ID: true}, time.Minute); err != nil {
		t.Fatal(err)
	}
	acct, err := o.ledger.CreateAccount(ctx, ledger.Account{Name: "school"})
	if err != nil {
		t.Fatal(err)
	}
	// One request of 1M prompt tokens at stories260K's input price.
	if _, err := o.ledger.Reserve(ctx, ledger.Reservation{RequestID: "r1", AccountID: acct.ID, Model: "stories260K", PromptTokens: 1_000_000, MaxCompletionTokens: 1}); err != nil {
		t.Fatal(err)
	}
	rec, err := o.ledger.Settle(ctx, "r1", ledger.Usage{PromptTokens: 1_000_000, HostTokens: map[string]int64{eu.ID: 1}, Status: "completed"})
	if err != nil {
		t.Fatal(err)
	}
	o.gov.computeFederation(ctx)
	v, err := o.gov.Federation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	regions := v.(map[string]any)["regions"].([]governance.Readiness)
	if len(regions) != 2 || regions[0].Region != "eu" || regions[1].Region != "us" {
		t.Fatalf("regions %+v", regions)
	}
	e, u := regions[0], regions[1]
	if e.ActiveHosts != 1 || u.ActiveHosts != 0 || e.Ready || u.Ready {
		t.Fatalf("active hosts / ready: eu %+v us %+v", e, u)
	}
	// Grossed up from the hosts' 95%: within a micro-unit per request of the charge.
	if e.RevenueMicros > rec.Charged || rec.Charged-e.RevenueMicros > 1 || u.RevenueMicros != 0 {
		t.Fatalf("eu revenue %d, charge %d; us %d", e.RevenueMicros, rec.Charged, u.RevenueMicros)
	}
}
