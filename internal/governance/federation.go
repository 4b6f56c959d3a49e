package governance

import (
	"sort"
	"time"
)

// RegionFacts are the measured inputs of federation readiness for a region.
type RegionFacts struct {
	Region string
	// RevenueMicros is the consumer revenue the region's hosts generated over
	// the trailing window: their earnings grossed up from the hosts' 95%.
	RevenueMicros int64
	// ActiveHosts counts hosts of the region active within the window.
	ActiveHosts int
}

// Readiness says whether a region has grown enough to run its own
// federated orchestrator.
type Readiness struct {
	Region                 string    `json:"region"`
	RevenueMicros          int64     `json:"revenue_micros"`
	ActiveHosts            int       `json:"active_hosts"`
	RevenueThresholdMicros int64     `json:"revenue_threshold_micros"`
	ActiveHostsThreshold   int       `json:"active_hosts_threshold"`
	RevenueProgress        float64   `json:"revenue_progress"` // 0..1+
	HostsProgress          float64   `json:"hosts_progress"`   // 0..1+
	Ready                  bool      `json:"ready"`
	ComputedAt             time.Time `json:"computed_at"`
	WindowDays             int       `json:"window_days"`
}

// Readiness judges each region against the thresholds: ready when both the
// trailing revenue and the active hosts reach theirs.
func (p Policy) Readiness(facts []RegionFacts, now time.Time) []Readiness {
	p = p.WithDefaults()
	out := make([]Readiness, 0, len(facts))
	for _, f := range facts {
		r := Readiness{
			Region: f.Region, RevenueMicros: f.RevenueMicros, ActiveHosts: f.ActiveHosts,
			RevenueThresholdMicros: p.FederationRevenueMicros, ActiveHostsThreshold: p.FederationActiveHosts,
			RevenueProgress: float64(f.RevenueMicros) / float64(p.FederationRevenueMicros),
			HostsProgress:   float64(f.ActiveHosts) / float64(p.FederationActiveHosts),
			ComputedAt:      now.UTC(), WindowDays: int(p.FederationWindow / (24 * time.Hour)),
		}
		r.Ready = f.RevenueMicros >= p.FederationRevenueMicros && f.ActiveHosts >= p.FederationActiveHosts
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Region < out[j].Region })
	return out
}

// GrossUp turns hosts' earnings into the revenue that produced them
// (earnings are 95% of it; rounding down per request makes this a slight
// underestimate, never an overestimate).
func GrossUp(hostMicros int64, hostSharePercent int64) int64 {
	if hostSharePercent <= 0 {
		return 0
	}
	return hostMicros * 100 / hostSharePercent
}
