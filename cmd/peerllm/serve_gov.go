package main

import (
	"flag"
	"time"

	"github.com/peerllm/peerllm/internal/governance"
	"github.com/peerllm/peerllm/internal/orchestrator"
)

// govFlags declares serve's governance flags (docs/GOVERNANCE.md) and
// returns a function that builds the config once they are parsed.
func govFlags(fs *flag.FlagSet) func() orchestrator.GovernanceConfig {
	bound := fs.Duration("queue-bound", 10*time.Second, "longest a request waits for a free host before 429 with Retry-After")
	seatsMin := fs.Int("seats-min", governance.Defaults.MinSeats, "fewest active host seats per region (the seat formula's floor)")
	every := fs.Duration("governance-every", 5*time.Second, "period of seat, uptime and throughput bookkeeping")
	tierEvery := fs.Duration("tier-every", time.Minute, "how often enterprise hosts are judged against the bar")
	fedEvery := fs.Duration("federation-every", 24*time.Hour, "how often federation readiness is recomputed (also at start)")
	return func() orchestrator.GovernanceConfig {
		return orchestrator.GovernanceConfig{Policy: governance.Policy{MinSeats: *seatsMin},
			QueueBound: *bound, Every: *every, TierEvery: *tierEvery, FederationEvery: *fedEvery}
	}
}
