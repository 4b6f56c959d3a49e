package governance_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/peerllm/peerllm/internal/governance"
	"github.com/peerllm/peerllm/internal/ledger"
	"github.com/peerllm/peerllm/internal/registry"
	"github.com/peerllm/peerllm/internal/store"
)

// TestPolicyDocMatchesCode keeps docs/POLICY.md's defaults table and the
// code's defaults in step.
func TestPolicyDocMatchesCode(t *testing.T) {
	b, err := os.ReadFile("../../docs/POLICY.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		cells := strings.Split(strings.Trim(line, "| "), "|")
		if len(cells) != 2 || !strings.Contains(cells[0], ".") {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(cells[1]), 64)
		if err != nil {
			continue
		}
		doc[strings.TrimSpace(cells[0])] = v
	}
	db, err := store.Open(context.Background(), ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	reg, err := registry.Open(context.Background(), db, nil)
	if err != nil {
		t.Fatal(err)
	}
	sp := reg.Policy()
	pr := ledger.DefaultPricingRules()
	g := governance.Defaults
	day, hour := 24*time.Hour, time.Hour
	code := map[string]float64{
		"pricing.notice_days":                 float64(pr.NoticePeriod / day),
		"pricing.max_change_percent":          float64(pr.MaxChangePercent),
		"pricing.change_period_days":          float64(pr.ChangePeriod / day),
		"payout.host_share_percent":           ledger.HostSharePercent,
		"tier.enterprise_multiplier_permille": float64(g.EnterpriseMultiplierPermille),
		"tier.enterprise_min_tasks":           float64(g.EnterpriseMinTasks),
		"tier.enterprise_min_uptime":          g.EnterpriseMinUptime,
		"tier.enterprise_min_success":         g.EnterpriseMinSuccess,
		"tier.enterprise_max_ttft_ms":         float64(g.EnterpriseMaxTTFT / time.Millisecond),
		"tier.enterprise_max_ms_per_token":    g.EnterpriseMaxMsPerTk,
		"strikes.suspend_window_hours":        float64(sp.SuspendWindow / hour),
		"strikes.suspend_for_hours":           float64(sp.SuspendFor / hour),
		"strikes.ban_window_days":             float64(sp.BanWindow / day),
		"strikes.ban_at":                      float64(sp.BanAt),
		"strikes.verification_divergences":    float64(sp.VerifyStrikeAt),
		"strikes.verification_window_hours":   float64(sp.VerifyWindow / hour),
		"seats.min":                           float64(g.MinSeats),
		"seats.headroom":                      g.Headroom,
		"seats.demand_window_hours":           float64(g.DemandWindow / hour),
		"seats.active_window_minutes":         float64(g.ActiveWindow / time.Minute),
		"federation.revenue_units":            float64(g.FederationRevenueMicros / 1_000_000),
		"federation.active_hosts":             float64(g.FederationActiveHosts),
		"federation.window_days":              float64(g.FederationWindow / day),
	}
	for k, v := range code {
		d, ok := doc[k]
		if !ok {
			t.Errorf("docs/POLICY.md has no %s (code: %v)", k, v)
		} else if d != v {
			t.Errorf("%s: docs/POLICY.md says %v, the code uses %v", k, d, v)
		}
	}
	for k := range doc {
		if _, ok := code[k]; !ok {
			t.Errorf("docs/POLICY.md states %s, which the code does not define", k)
		}
	}
}
