// Package governance turns PeerLLM's rules for hosts into code: the bars of
// the enterprise tier, regional seat gating with a waitlist, and federation
// readiness per region. The numbers live in Defaults, which docs/POLICY.md
// states in plain words (a test keeps the two in step). The orchestrator
// imports it; hosts never do.
package governance

import (
	"time"
)

// Policy holds every governance number. Zero fields take Defaults' values.
type Policy struct {
	// Enterprise tier bars, measured over the registry's figures.
	EnterpriseMinUptime  float64       // fraction of the last 30 days connected; default 0.995
	EnterpriseMinSuccess float64       // fraction of tasks that succeeded; default 0.99
	EnterpriseMaxTTFT    time.Duration // EWMA time to first token; default 1500ms
	EnterpriseMaxMsPerTk float64       // EWMA milliseconds per token; default 100
	EnterpriseMinTasks   int64         // tasks before the bars are judged; default 100
	// EnterpriseMultiplierPermille is an enterprise host's payout weight per
	// token against a standard host's 1000, paid from the hosts' 95%.
	EnterpriseMultiplierPermille int64 // default 1200

	// Seats per region: seats = max(MinSeats, ceil(peak × (1+Headroom) / capacity)),
	// where peak is the most concurrent streams seen in the region over
	// DemandWindow and capacity the mean declared capacity of its hosts.
	MinSeats     int           // default 3
	Headroom     float64       // default 0.5
	DemandWindow time.Duration // default 24h
	// ActiveWindow is how long a host may be silent and keep its seat.
	ActiveWindow time.Duration // default 10m

	// Federation readiness thresholds per region over the trailing 30 days.
	FederationRevenueMicros int64 // default 50,000,000,000 (50,000 currency units)
	FederationActiveHosts   int   // default 50
	FederationWindow        time.Duration
}

// Defaults are the values the code uses when a Policy field is zero.
var Defaults = Policy{
	EnterpriseMinUptime:          0.995,
	EnterpriseMinSuccess:         0.99,
	EnterpriseMaxTTFT:            1500 * time.Millisecond,
	EnterpriseMaxMsPerTk:         100,
	EnterpriseMinTasks:           100,
	EnterpriseMultiplierPermille: 1200,
	MinSeats:                     3,
	Headroom:                     0.5,
	DemandWindow:                 24 * time.Hour,
	ActiveWindow:                 10 * time.Minute,
	FederationRevenueMicros:      50_000 * 1_000_000,
	FederationActiveHosts:        50,
	FederationWindow:             30 * 24 * time.Hour,
}

// WithDefaults fills zero fields from Defaults.
func (p Policy) WithDefaults() Policy {
	d := Defaults
	if p.EnterpriseMinUptime == 0 {
		p.EnterpriseMinUptime = d.EnterpriseMinUptime
	}
	if p.EnterpriseMinSuccess == 0 {
		p.EnterpriseMinSuccess = d.EnterpriseMinSuccess
	}
	if p.EnterpriseMaxTTFT == 0 {
		p.EnterpriseMaxTTFT = d.EnterpriseMaxTTFT
	}
	if p.EnterpriseMaxMsPerTk == 0 {
		p.EnterpriseMaxMsPerTk = d.EnterpriseMaxMsPerTk
	}
	if p.EnterpriseMinTasks == 0 {
		p.EnterpriseMinTasks = d.EnterpriseMinTasks
	}
	if p.EnterpriseMultiplierPermille == 0 {
		p.EnterpriseMultiplierPermille = d.EnterpriseMultiplierPermille
	}
	if p.MinSeats == 0 {
		p.MinSeats = d.MinSeats
	}
	if p.Headroom == 0 {
		p.Headroom = d.Headroom
	}
	if p.DemandWindow == 0 {
		p.DemandWindow = d.DemandWindow
	}
	if p.ActiveWindow == 0 {
		p.ActiveWindow = d.ActiveWindow
	}
	if p.FederationRevenueMicros == 0 {
		p.FederationRevenueMicros = d.FederationRevenueMicros
	}
	if p.FederationActiveHosts == 0 {
		p.FederationActiveHosts = d.FederationActiveHosts
	}
	if p.FederationWindow == 0 {
		p.FederationWindow = d.FederationWindow
	}
	return p
}

// Tier names.
const (
	TierStandard   = "standard"
	TierEnterprise = "enterprise"
)

// Figures are a host's measured reliability, as the registry keeps them.
type Figures struct {
	Uptime    float64 // fraction, 0..1
	Tasks     int64   // tasks run (successes + failures)
	Successes int64
	TTFT      time.Duration // EWMA
	MsPerTok  float64       // EWMA
}

// TierVerdict is the outcome of judging a host against its tier's bar.
type TierVerdict struct {
	Tier   string // the tier the host should hold
	Demote bool   // it asked for enterprise and is moved down
	Reason string // why, in words (no content)
}

// EvaluateTier judges a host that claims tier against the bars. A host below
// the enterprise bar is moved to standard — never banned, never struck:
// being slow is not a rule violation. A host with too few tasks to judge
// keeps its tier.
func (p Policy) EvaluateTier(claimed string, f Figures) TierVerdict {
	p = p.WithDefaults()
	if claimed != TierEnterprise {
		return TierVerdict{Tier: TierStandard}
	}
	if f.Tasks < p.EnterpriseMinTasks {
		return TierVerdict{Tier: TierEnterprise, Reason: "too few tasks to judge yet"}
	}
	success := float64(f.Successes) / float64(f.Tasks)
	switch {
	case f.Uptime < p.EnterpriseMinUptime:
		return TierVerdict{Tier: TierStandard, Demote: true, Reason: "uptime below the enterprise bar"}
	case success < p.EnterpriseMinSuccess:
		return TierVerdict{Tier: TierStandard, Demote: true, Reason: "success rate below the enterprise bar"}
	case f.TTFT > p.EnterpriseMaxTTFT:
		return TierVerdict{Tier: TierStandard, Demote: true, Reason: "time to first token above the enterprise bar"}
	case f.MsPerTok > p.EnterpriseMaxMsPerTk:
		return TierVerdict{Tier: TierStandard, Demote: true, Reason: "time per token above the enterprise bar"}
	}
	return TierVerdict{Tier: TierEnterprise}
}

// Multiplier is the payout weight (permille) of a host of tier.
func (p Policy) Multiplier(tier string) int64 {
	if tier == TierEnterprise {
		return p.WithDefaults().EnterpriseMultiplierPermille
	}
	return 1000
}
