package ledger

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/peerllm/peerllm/internal/store"
)

// Reservation asks to hold the most a request can cost before any host works.
type Reservation struct {
	RequestID string
	AccountID string
	KeyID     string
	Model     string
	// PromptTokens is the prompt's size (an upper estimate is fine: the hold
	// is released at settlement).
	PromptTokens int64
	// MaxCompletionTokens is the most the request may generate (n × max_tokens).
	MaxCompletionTokens int64
}

// Hold is money set aside for one request, at the price in force when it
// started.
type Hold struct {
	RequestID string
	Quote     Quote
	Amount    int64
}

// Usage is what a request consumed, as metered by the orchestrator.
type Usage struct {
	// PromptTokens and CompletionTokens are what the consumer is charged for:
	// the prompt and the tokens actually delivered to it.
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
	// HostTokens counts the tokens each host generated, main and backup
	// alike: the hosts' share is split pro rata to these.
	HostTokens map[string]int64 `json:"host_tokens"`
	// HostMultipliers gives a host's payout weight in permille (enterprise
	// tier bonus); absent means 1000. It moves money between hosts within
	// their 95%, never the consumer's price.
	HostMultipliers map[string]int64 `json:"host_multipliers,omitempty"`
	// Status is "completed", "partial" (cut after some tokens), "content_filter"
	// or "failed".
	Status string `json:"status"`
}

// Record is the balanced entry one request wrote.
type Record struct {
	RequestID string           `json:"request_id"`
	Charged   int64            `json:"charged_micros"`
	Hosts     map[string]int64 `json:"hosts_micros"`
	Platform  int64            `json:"platform_micros"`
	Version   int              `json:"price_version"`
	// Duplicate is set when the request had been settled before: nothing
	// new was written.
	Duplicate bool `json:"duplicate,omitempty"`
}

// Reserve checks the account's prepaid balance and the monthly budgets of the
// account and the key against the request's largest possible cost, and holds
// that amount. It refuses with ErrInsufficientFunds or ErrBudgetExceeded
// before any host works. Concurrent reservations are serialised per account,
// so two requests cannot both take the last of a budget.
func (l *Ledger) Reserve(ctx context.Context, r Reservation) (Hold, error) {
	if r.RequestID == "" || r.AccountID == "" {
		return Hold{}, errors.New("reserve: request and account ids are required")
	}
	if r.PromptTokens < 0 || r.MaxCompletionTokens < 0 {
		return Hold{}, errors.New("reserve: negative token count")
	}
	now := l.now()
	q, err := l.Prices().Quote(r.Model, now)
	if err != nil {
		return Hold{}, err
	}
	amount, err := q.Cost(r.PromptTokens, r.MaxCompletionTokens)
	if err != nil {
		return Hold{}, fmt.Errorf("reserve: %w", err)
	}
	per := period(now)
	err = l.db.InTx(ctx, func(tx *sql.Tx) error {
		var prepaid int
		var budget int64
		err := tx.QueryRowContext(ctx, l.db.Rebind(`SELECT prepaid, monthly_budget_micros FROM ledger_accounts WHERE id = ?`+l.forUpdate()), r.AccountID).Scan(&prepaid, &budget)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("account %s: %w", r.AccountID, ErrNotFound)
		}
		if err != nil {
			return err
		}
		held, err := sumInt(ctx, tx, l.db.Rebind(`SELECT SUM(amount_micros) FROM ledger_holds WHERE account_id = ?`), r.AccountID)
		if err != nil {
			return err
		}
		if prepaid != 0 {
			bal, err := balance(ctx, l.db, tx, r.AccountID)
			if err != nil {
				return err
			}
			if bal-held < amount {
				return fmt.Errorf("%w: this request may cost up to %d micro-units and %d are available", ErrInsufficientFunds, amount, bal-held)
			}
		}
		if budget > 0 {
			spent, err := sumInt(ctx, tx, l.db.Rebind(`SELECT SUM(spent_micros) FROM ledger_spend WHERE scope = 'account' AND id = ? AND period = ?`), r.AccountID, per)
			if err != nil {
				return err
			}
			if spent+held+amount > budget {
				return fmt.Errorf("%w: account budget %d, spent %d, held %d, this request may cost up to %d (micro-units)", ErrBudgetExceeded, budget, spent, held, amount)
			}
		}
		if r.KeyID != "" {
			var keyBudget int64
			err := tx.QueryRowContext(ctx, l.db.Rebind(`SELECT monthly_budget_micros FROM ledger_key_limits WHERE key_id = ?`), r.KeyID).Scan(&keyBudget)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			if keyBudget > 0 {
				spent, err := sumInt(ctx, tx, l.db.Rebind(`SELECT SUM(spent_micros) FROM ledger_spend WHERE scope = 'key' AND id = ? AND period = ?`), r.KeyID, per)
				if err != nil {
					return err
				}
				keyHeld, err := sumInt(ctx, tx, l.db.Rebind(`SELECT SUM(amount_micros) FROM ledger_holds WHERE key_id = ?`), r.KeyID)
				if err != nil {
					return err
				}
				if spent+keyHeld+amount > keyBudget {
					return fmt.Errorf("%w: key budget %d, spent %d, held %d, this request may cost up to %d (micro-units)", ErrBudgetExceeded, keyBudget, spent, keyHeld, amount)
				}
			}
		}
		_, err = tx.ExecContext(ctx, l.db.Rebind(`INSERT INTO ledger_holds
			(request_id, account_id, key_id, model, price_version, input_price, output_price, amount_micros, period, usage_json, created_unix)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			r.RequestID, r.AccountID, r.KeyID, r.Model, q.Version, q.Price.InputPerMillion, q.Price.OutputPerMillion, amount, per, marshalUsage(Usage{Status: "started"}), now.Unix())
		return err
	})
	if err != nil {
		return Hold{}, fmt.Errorf("reserve: %w", err)
	}
	return Hold{RequestID: r.RequestID, Quote: q, Amount: amount}, nil
}

func sumInt(ctx context.Context, q querier, query string, args ...any) (int64, error) {
	var n sql.NullInt64
	if err := q.QueryRowContext(ctx, query, args...).Scan(&n); err != nil {
		return 0, err
	}
	return n.Int64, nil
}

// Checkpoint records the usage so far of a request in its hold, so that a
// crash of the orchestrator loses at most the tokens since the last
// checkpoint: Recover settles the hold with it. Callers checkpoint at segment
// boundaries, not per token.
func (l *Ledger) Checkpoint(ctx context.Context, requestID string, u Usage) error {
	if u.Status == "" {
		u.Status = "partial"
	}
	q := l.db.Rebind(`UPDATE ledger_holds SET usage_json = ? WHERE request_id = ?`)
	var err error
	if l.db.Dialect == store.Postgres {
		// The next segment waits for this write. What it guards against is
		// the orchestrator dying, not the database server: without waiting
		// for the WAL flush the row is just as visible to the next start,
		// and the commit takes a fraction of the time.
		err = l.db.InTx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `SET LOCAL synchronous_commit TO OFF`); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, q, marshalUsage(u), requestID)
			return err
		})
	} else {
		_, err = l.db.ExecContext(ctx, q, marshalUsage(u), requestID)
	}
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", requestID, err)
	}
	return nil
}

// Settle writes the request's balanced record and releases its hold, in one
// transaction. Charging rule: the consumer pays for delivered tokens only —
// the prompt plus the completion tokens it received — and nothing when no
// token was delivered (failed before the first token). The charge never
// exceeds the hold. Settling the same request id again writes nothing and
// returns the first record with Duplicate set.
func (l *Ledger) Settle(ctx context.Context, requestID string, u Usage) (Record, error) {
	var rec Record
	err := l.db.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		rec, err = l.settleTx(ctx, tx, requestID, u)
		return err
	})
	if err != nil {
		return Record{}, fmt.Errorf("settle %s: %w", requestID, err)
	}
	return rec, nil
}

func (l *Ledger) settleTx(ctx context.Context, tx *sql.Tx, requestID string, u Usage) (Record, error) {
	var h struct {
		account, key, model, per string
		version                  int
		in, out, amount          int64
	}
	// Take the account's lock before touching its hold and spend, as
	// Reserve does: otherwise a Reserve running beside this settlement can
	// read the spend from before it and the holds from after it, and so
	// admit a request past the budget (seen on PostgreSQL's read committed).
	var acct string
	err := tx.QueryRowContext(ctx, l.db.Rebind(`SELECT account_id FROM ledger_holds WHERE request_id = ?`), requestID).Scan(&acct)
	if err == nil && l.db.Dialect == store.Postgres {
		var id string
		err = tx.QueryRowContext(ctx, l.db.Rebind(`SELECT id FROM ledger_accounts WHERE id = ?`+l.forUpdate()), acct).Scan(&id)
	}
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return Record{}, err
	}
	err = tx.QueryRowContext(ctx, l.db.Rebind(`SELECT account_id, key_id, model, price_version, input_price, output_price, amount_micros, period
		FROM ledger_holds WHERE request_id = ?`+l.forUpdate()), requestID).
		Scan(&h.account, &h.key, &h.model, &h.version, &h.in, &h.out, &h.amount, &h.per)
	if errors.Is(err, sql.ErrNoRows) {
		return l.existingRecord(ctx, tx, requestID)
	}
	if err != nil {
		return Record{}, err
	}
	if u.PromptTokens < 0 || u.CompletionTokens < 0 {
		return Record{}, errors.New("negative token count")
	}
	q := Quote{Version: h.version, Model: h.model, Price: Price{InputPerMillion: h.in, OutputPerMillion: h.out}}
	var charged int64
	if u.CompletionTokens > 0 {
		if charged, err = q.Cost(u.PromptTokens, u.CompletionTokens); err != nil {
			return Record{}, err
		}
	}
	if charged > h.amount {
		charged = h.amount
	}
	pool := charged * HostSharePercent / 100
	weights := make(map[string]int64, len(u.HostTokens))
	for host, n := range u.HostTokens {
		if n < 0 {
			return Record{}, fmt.Errorf("negative token count for host %s", host)
		}
		m, ok := u.HostMultipliers[host]
		if !ok {
			m = 1000
		}
		if m < 0 || m > 100_000 {
			return Record{}, fmt.Errorf("host %s multiplier %d permille out of range", host, m)
		}
		weights[host] = n * m
	}
	shares := splitHosts(pool, weights)
	if len(shares) == 0 {
		pool = 0 // no host generated anything: nothing to pay out
	}
	rec := Record{RequestID: requestID, Charged: charged, Hosts: shares, Platform: charged - pool, Version: h.version}
	status := u.Status
	if status == "" {
		status = "completed"
	}
	id, dup, err := l.insertJournal(ctx, tx, journalRow{
		requestID: requestID, kind: "charge", account: h.account, key: h.key, model: h.model, version: h.version,
		prompt: u.PromptTokens, completion: u.CompletionTokens, amount: charged, status: status, period: h.per, created: l.now().Unix(),
	})
	if err != nil {
		return Record{}, err
	}
	if dup {
		return l.existingRecord(ctx, tx, requestID)
	}
	if charged > 0 {
		ps := []posting{{h.account, -charged, u.PromptTokens + u.CompletionTokens}, {PlatformAccount, rec.Platform, 0}}
		for host, amt := range shares {
			ps = append(ps, posting{HostAccount(host), amt, u.HostTokens[host]})
		}
		if err := l.post(ctx, tx, id, ps); err != nil {
			return Record{}, err
		}
		if err := l.addSpend(ctx, tx, "account", h.account, h.per, charged); err != nil {
			return Record{}, err
		}
		if h.key != "" {
			if err := l.addSpend(ctx, tx, "key", h.key, h.per, charged); err != nil {
				return Record{}, err
			}
		}
	}
	if _, err := tx.ExecContext(ctx, l.db.Rebind(`DELETE FROM ledger_holds WHERE request_id = ?`), requestID); err != nil {
		return Record{}, err
	}
	return rec, nil
}

func (l *Ledger) existingRecord(ctx context.Context, tx *sql.Tx, requestID string) (Record, error) {
	var id int64
	rec := Record{RequestID: requestID, Duplicate: true, Hosts: map[string]int64{}}
	err := tx.QueryRowContext(ctx, l.db.Rebind(`SELECT id, amount_micros, price_version FROM ledger_journal WHERE request_id = ? AND kind = 'charge'`), requestID).
		Scan(&id, &rec.Charged, &rec.Version)
	if errors.Is(err, sql.ErrNoRows) {
		return Record{}, fmt.Errorf("no hold and no record for request %s: %w", requestID, ErrNotFound)
	}
	if err != nil {
		return Record{}, err
	}
	rows, err := tx.QueryContext(ctx, l.db.Rebind(`SELECT account_id, amount_micros FROM ledger_postings WHERE journal_id = ?`), id)
	if err != nil {
		return Record{}, err
	}
	defer rows.Close()
	for rows.Next() {
		var acct string
		var amt int64
		if err := rows.Scan(&acct, &amt); err != nil {
			return Record{}, err
		}
		switch {
		case acct == PlatformAccount:
			rec.Platform = amt
		case len(acct) > 5 && acct[:5] == "host:":
			rec.Hosts[acct[5:]] = amt
		}
	}
	return rec, rows.Err()
}

// Recover settles holds older than age with their last checkpointed usage
// (status "recovered"). The orchestrator calls it at start, so work done
// before a crash is still paid for and charged. It returns how many holds it
// settled.
func (l *Ledger) Recover(ctx context.Context, age time.Duration) (int, error) {
	cutoff := l.now().Add(-age).Unix()
	rows, err := l.db.QueryContext(ctx, l.db.Rebind(`SELECT request_id, usage_json FROM ledger_holds WHERE created_unix <= ?`), cutoff)
	if err != nil {
		return 0, fmt.Errorf("recover: %w", err)
	}
	type orphan struct {
		id string
		u  Usage
	}
	var orphans []orphan
	for rows.Next() {
		var o orphan
		var js string
		if err := rows.Scan(&o.id, &js); err != nil {
			rows.Close()
			return 0, fmt.Errorf("recover: %w", err)
		}
		if err := json.Unmarshal([]byte(js), &o.u); err != nil {
			o.u = Usage{}
		}
		o.u.Status = "recovered"
		orphans = append(orphans, o)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("recover: %w", err)
	}
	for _, o := range orphans {
		if _, err := l.Settle(ctx, o.id, o.u); err != nil {
			return 0, fmt.Errorf("recover: %w", err)
		}
	}
	return len(orphans), nil
}

// addSpend adds a charge to the running monthly spend of an account or a
// key, which budget checks read instead of summing the month's charges.
func (l *Ledger) addSpend(ctx context.Context, tx *sql.Tx, scope, id, per string, amount int64) error {
	_, err := tx.ExecContext(ctx, l.db.Rebind(`INSERT INTO ledger_spend (scope, id, period, spent_micros) VALUES (?, ?, ?, ?)
		ON CONFLICT (scope, id, period) DO UPDATE SET spent_micros = ledger_spend.spent_micros + excluded.spent_micros`), scope, id, per, amount)
	return err
}
