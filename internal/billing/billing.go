// Package billing connects the ledger to the request pipeline: a Stage that
// holds a request's largest possible cost before any host works (refusing it
// with 402 when a balance or budget would be crossed), and a Meter that
// settles the balanced record when the answer has been sent. It sees token
// counts and host ids, never content. The orchestrator wires it.
package billing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/peerllm/peerllm/internal/ledger"
	"github.com/peerllm/peerllm/internal/pipeline"
)

// Config wires a Biller.
type Config struct {
	Ledger *ledger.Ledger
	// MaxTokens is the completion cap assumed for a request that set no
	// max_tokens (the model's context length, in practice). Default 2048.
	MaxTokens func(model string) int
	// Multiplier gives a host's payout weight in permille (tier bonus);
	// nil means 1000 for everyone.
	Multiplier func(hostID string) int64
	Log        *slog.Logger
}

// Biller is both the billing Stage and the settling Meter.
type Biller struct {
	cfg Config

	mu       sync.Mutex
	accounts map[string]bool // ledger accounts known to exist
}

// New returns a Biller.
func New(cfg Config) *Biller {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Biller{cfg: cfg, accounts: map[string]bool{}}
}

// Name implements pipeline.Stage.
func (b *Biller) Name() string { return "billing" }

// promptTokenBound is an upper bound on a request's prompt tokens without the
// model's tokenizer: every token of the supported tokenizers covers at least
// one byte, except special and template tokens, allowed for per message.
func promptTokenBound(req *pipeline.Request) int64 {
	var n int64 = 8
	for _, t := range req.Texts() {
		n += int64(len(t)) + 16
	}
	return n
}

// Admit implements pipeline.Stage: it reserves the request's largest cost.
func (b *Biller) Admit(ctx context.Context, req *pipeline.Request) (pipeline.NewFilter, error) {
	if err := b.ensureAccount(ctx, req.Account); errors.Is(err, ledger.ErrReservedAccount) {
		return nil, &pipeline.Refusal{Status: http.StatusForbidden, Code: "account_not_billable",
			Message: "This API key bills to an account name reserved for the platform or hosts. Ask the operator to issue a key for a consumer account."}
	} else if err != nil {
		return nil, err
	}
	maxTokens := req.MaxTokens
	if maxTokens <= 0 {
		maxTokens = 2048
		if b.cfg.MaxTokens != nil {
			maxTokens = b.cfg.MaxTokens(req.Model)
		}
	}
	n := req.N
	if n < 1 {
		n = 1
	}
	_, err := b.cfg.Ledger.Reserve(ctx, ledger.Reservation{
		RequestID: req.ID, AccountID: req.Account, KeyID: req.KeyID, Model: req.Model,
		PromptTokens: promptTokenBound(req) * int64(n), MaxCompletionTokens: int64(maxTokens) * int64(n),
	})
	switch {
	case errors.Is(err, ledger.ErrBudgetExceeded):
		return nil, &pipeline.Refusal{Status: http.StatusPaymentRequired, Code: "budget_exceeded",
			Message: "This request could cost more than the monthly budget left on this account or key. Lower max_tokens, or raise the budget."}
	case errors.Is(err, ledger.ErrInsufficientFunds):
		return nil, &pipeline.Refusal{Status: http.StatusPaymentRequired, Code: "insufficient_quota",
			Message: "This request could cost more than the prepaid balance left on this account. Top up, or lower max_tokens."}
	case errors.Is(err, ledger.ErrNoPrice):
		return nil, &pipeline.Refusal{Status: http.StatusBadRequest, Code: "model_not_priced",
			Message: fmt.Sprintf("The model %q has no price in the published price list.", req.Model)}
	case err != nil:
		return nil, fmt.Errorf("reserve: %w", err)
	}
	return nil, nil
}

// ensureAccount creates the ledger account behind an API key's account name
// the first time it is used: invoiced, with no budget until an operator sets
// one.
func (b *Biller) ensureAccount(ctx context.Context, id string) error {
	b.mu.Lock()
	known := b.accounts[id]
	b.mu.Unlock()
	if known {
		return nil
	}
	if _, err := b.cfg.Ledger.Account(ctx, id); errors.Is(err, ledger.ErrNotFound) {
		if _, err := b.cfg.Ledger.CreateAccount(ctx, ledger.Account{ID: id, Name: id}); err != nil {
			// Another request may have created it meanwhile.
			if _, err2 := b.cfg.Ledger.Account(ctx, id); err2 != nil {
				return err
			}
		}
	} else if err != nil {
		return err
	}
	b.mu.Lock()
	b.accounts[id] = true
	b.mu.Unlock()
	return nil
}

// Checkpoint records a running request's usage so far in its hold (the
// consumer API calls it at segment boundaries), so that if the orchestrator
// dies mid-answer, ledger.Recover at the next start charges what had been
// delivered and pays the hosts that generated it.
func (b *Biller) Checkpoint(ctx context.Context, o pipeline.Outcome) {
	u := b.usage(o)
	u.Status = "partial"
	if err := b.cfg.Ledger.Checkpoint(ctx, o.RequestID, u); err != nil {
		b.cfg.Log.Error("checkpoint request", "request_id", o.RequestID, "err", err)
	}
}

// Meter implements pipeline.Meter: it settles the request's record. The
// consumer is charged for the prompt and the completion tokens delivered;
// the hosts' 95% is split by the tokens each generated.
func (b *Biller) Meter(ctx context.Context, o pipeline.Outcome) {
	u := b.usage(o)
	// Settle even when the consumer has gone: the work was done. A failed
	// attempt (a lost database connection, a serialisation conflict) is
	// retried; the hold stays until then and is settled by the stale-hold
	// sweep if every attempt fails, so nothing is lost either way.
	ctx = context.WithoutCancel(ctx)
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		if _, err = b.cfg.Ledger.Settle(ctx, o.RequestID, u); err == nil || errors.Is(err, ledger.ErrNotFound) {
			break
		}
		time.Sleep(time.Duration(attempt) * 50 * time.Millisecond)
	}
	if err != nil {
		b.cfg.Log.Error("settle request", "request_id", o.RequestID, "err", err)
	}
}

func (b *Biller) usage(o pipeline.Outcome) ledger.Usage {
	u := ledger.Usage{
		PromptTokens: int64(o.PromptTokens), CompletionTokens: int64(o.CompletionTokens),
		HostTokens: make(map[string]int64, len(o.HostTokens)), Status: status(o),
	}
	for h, n := range o.HostTokens {
		u.HostTokens[h] = int64(n)
		if b.cfg.Multiplier != nil {
			if u.HostMultipliers == nil {
				u.HostMultipliers = map[string]int64{}
			}
			u.HostMultipliers[h] = b.cfg.Multiplier(h)
		}
	}
	return u
}

func status(o pipeline.Outcome) string {
	for _, s := range o.Stops {
		if s != nil && s.Reason == "content_filter" {
			return "content_filter"
		}
	}
	switch {
	case o.Err != nil && o.CompletionTokens > 0:
		return "partial"
	case o.Err != nil:
		return "failed"
	}
	return "completed"
}
