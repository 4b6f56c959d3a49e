package orchestrator

import (
	"context"
	"fmt"
	"time"

	"github.com/peerllm/peerllm/internal/billing"
	"github.com/peerllm/peerllm/internal/httpapi"
	"github.com/peerllm/peerllm/internal/ledger"
	"github.com/peerllm/peerllm/internal/pipeline"
	"github.com/peerllm/peerllm/internal/store"
)

// startMoney opens the ledger, settles the holds a crash left behind, and
// returns the billing stage and meter and the money routes. Billing is the
// last stage, so a request refused by an earlier one (safety) holds nothing.
func (o *Orchestrator) startMoney(ctx context.Context) (pipeline.Stage, pipeline.Meter, *httpapi.Money, error) {
	cfg := o.cfg
	rules := cfg.PricingRules
	if rules == (ledger.PricingRules{}) {
		rules = ledger.DefaultPricingRules()
	}
	l, err := ledger.Open(ctx, o.db, cfg.Prices, ledger.Options{})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("open ledger: %w", err)
	}
	o.ledger, o.rules = l, rules
	age := cfg.RecoverAfter
	if age == 0 && o.db.Dialect == store.Postgres {
		age = 10 * time.Minute // other replicas may have requests in flight
	}
	n, err := l.Recover(ctx, age)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("recover ledger: %w", err)
	}
	if n > 0 {
		o.log.Warn("settled requests a previous run left unfinished, with their checkpointed usage", "requests", n)
	}
	b := billing.New(billing.Config{
		Ledger: l,
		MaxTokens: func(model string) int {
			for _, m := range o.disp.Models() {
				if m.Name == model && m.ContextLength > 0 {
					return m.ContextLength
				}
			}
			return 2048
		},
		Multiplier: cfg.HostMultiplier,
		Log:        o.log.With("component", "billing"),
	})
	money := &httpapi.Money{Ledger: l, Rules: rules, VerifyHost: o.reg.VerifyHost, Hosts: &hostAdmin{reg: o.reg}}
	return b, b, money, nil
}

// SetPrices replaces the price list (a reload, e.g. on SIGHUP). A list that
// breaks the pricing rules, or changes or removes a published version, or
// adds one with less notice than the rules demand, is refused and the list
// in use stays.
func (o *Orchestrator) SetPrices(pl *ledger.PriceList) error {
	if o.ledger == nil {
		return fmt.Errorf("billing is off")
	}
	if err := pl.Validate(o.rules); err != nil {
		return err
	}
	if err := ledger.CheckReplace(o.ledger.Prices(), pl, time.Now(), o.rules); err != nil {
		return err
	}
	o.ledger.SetPrices(pl)
	return nil
}

// staleHold is the age at which a running orchestrator settles a hold
// nobody settled (a request whose process died, here or on another
// replica): longer than any request may run (the dispatcher's task deadline
// is 10 minutes).
const staleHold = 15 * time.Minute

// sweepHolds settles stale holds every minute until ctx ends, so a crash of
// one replica is settled by the others without a restart.
func (o *Orchestrator) sweepHolds(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := o.ledger.Recover(ctx, max(staleHold, o.cfg.RecoverAfter))
		switch {
		case err != nil && ctx.Err() == nil:
			o.log.Error("settle stale holds", "err", err)
		case n > 0:
			o.log.Warn("settled stale holds with their checkpointed usage", "requests", n)
		}
	}
}
