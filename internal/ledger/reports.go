package ledger

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Problem is one inconsistency Check found.
type Problem struct {
	Kind string `json:"kind"` // "unbalanced_record", "balance_mismatch", "charge_mismatch", "spend_mismatch", "books_nonzero"
	ID   string `json:"id"`   // request id or account id
	Want int64  `json:"want"`
	Got  int64  `json:"got"`
}

func (p Problem) String() string {
	return fmt.Sprintf("%s %s: want %d, got %d", p.Kind, p.ID, p.Want, p.Got)
}

// Check verifies the books: every record's postings sum to zero, every
// charge's consumer debit equals its amount, every account's running balance
// equals the sum of its postings, and all balances together sum to zero.
func (l *Ledger) Check(ctx context.Context) ([]Problem, error) {
	var problems []Problem
	rows, err := l.db.QueryContext(ctx, `SELECT j.request_id, COALESCE(SUM(p.amount_micros), 0)
		FROM ledger_journal j LEFT JOIN ledger_postings p ON p.journal_id = j.id
		GROUP BY j.id, j.request_id HAVING COALESCE(SUM(p.amount_micros), 0) <> 0`)
	if err != nil {
		return nil, fmt.Errorf("check records: %w", err)
	}
	for rows.Next() {
		p := Problem{Kind: "unbalanced_record"}
		if err := rows.Scan(&p.ID, &p.Got); err != nil {
			rows.Close()
			return nil, err
		}
		problems = append(problems, p)
	}
	rows.Close()

	rows, err = l.db.QueryContext(ctx, `SELECT j.request_id, j.amount_micros, COALESCE(SUM(p.amount_micros), 0)
		FROM ledger_journal j LEFT JOIN ledger_postings p ON p.journal_id = j.id AND p.account_id = j.account_id
		WHERE j.kind = 'charge' GROUP BY j.id, j.request_id, j.amount_micros
		HAVING j.amount_micros <> -COALESCE(SUM(p.amount_micros), 0)`)
	if err != nil {
		return nil, fmt.Errorf("check charges: %w", err)
	}
	for rows.Next() {
		p := Problem{Kind: "charge_mismatch"}
		var debit int64
		if err := rows.Scan(&p.ID, &p.Want, &debit); err != nil {
			rows.Close()
			return nil, err
		}
		p.Got = -debit
		problems = append(problems, p)
	}
	rows.Close()

	// The running monthly spends budgets read must match the charges.
	rows, err = l.db.QueryContext(ctx, `SELECT c.scope, c.id, c.period, c.total, COALESCE(s.spent_micros, 0) FROM (
		SELECT 'account' AS scope, account_id AS id, period, SUM(amount_micros) AS total FROM ledger_journal WHERE kind = 'charge' GROUP BY account_id, period
		UNION ALL
		SELECT 'key', key_id, period, SUM(amount_micros) FROM ledger_journal WHERE kind = 'charge' AND key_id <> '' GROUP BY key_id, period
	) c LEFT JOIN ledger_spend s ON s.scope = c.scope AND s.id = c.id AND s.period = c.period
	WHERE c.total <> COALESCE(s.spent_micros, 0)`)
	if err != nil {
		return nil, fmt.Errorf("check spend: %w", err)
	}
	for rows.Next() {
		var scope, id, per string
		p := Problem{Kind: "spend_mismatch"}
		if err := rows.Scan(&scope, &id, &per, &p.Want, &p.Got); err != nil {
			rows.Close()
			return nil, err
		}
		p.ID = scope + ":" + id + "@" + per
		problems = append(problems, p)
	}
	rows.Close()

	sums := map[string]int64{}
	rows, err = l.db.QueryContext(ctx, `SELECT account_id, SUM(amount_micros) FROM ledger_postings GROUP BY account_id`)
	if err != nil {
		return nil, fmt.Errorf("check balances: %w", err)
	}
	for rows.Next() {
		var a string
		var s int64
		if err := rows.Scan(&a, &s); err != nil {
			rows.Close()
			return nil, err
		}
		sums[a] = s
	}
	rows.Close()
	balances := map[string]int64{}
	rows, err = l.db.QueryContext(ctx, `SELECT account_id, balance_micros FROM ledger_balances`)
	if err != nil {
		return nil, fmt.Errorf("check balances: %w", err)
	}
	var total int64
	for rows.Next() {
		var a string
		var b int64
		if err := rows.Scan(&a, &b); err != nil {
			rows.Close()
			return nil, err
		}
		balances[a] = b
		total += b
	}
	rows.Close()
	for a, s := range sums {
		if balances[a] != s {
			problems = append(problems, Problem{Kind: "balance_mismatch", ID: a, Want: s, Got: balances[a]})
		}
	}
	for a, b := range balances {
		if _, ok := sums[a]; !ok && b != 0 {
			problems = append(problems, Problem{Kind: "balance_mismatch", ID: a, Want: 0, Got: b})
		}
	}
	if total != 0 {
		problems = append(problems, Problem{Kind: "books_nonzero", ID: "*", Want: 0, Got: total})
	}
	sort.Slice(problems, func(i, j int) bool {
		if problems[i].Kind != problems[j].Kind {
			return problems[i].Kind < problems[j].Kind
		}
		return problems[i].ID < problems[j].ID
	})
	return problems, nil
}

// Summary is the shape of GET /admin/v1/ledger/summary.
type Summary struct {
	Currency       string `json:"currency"`
	RevenueMicros  int64  `json:"revenue_micros"`
	HostsMicros    int64  `json:"hosts_micros"`
	PlatformMicros int64  `json:"platform_micros"`
	Requests       int64  `json:"requests"`
	HeldMicros     int64  `json:"held_micros"`
}

// Summary totals every charge so far.
func (l *Ledger) Summary(ctx context.Context) (Summary, error) {
	s := Summary{Currency: l.Prices().Currency}
	err := l.db.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(amount_micros), 0) FROM ledger_journal WHERE kind = 'charge'`).Scan(&s.Requests, &s.RevenueMicros)
	if err == nil {
		s.HostsMicros, err = sumInt(ctx, l.db, `SELECT SUM(p.amount_micros) FROM ledger_postings p JOIN ledger_journal j ON j.id = p.journal_id
			WHERE j.kind = 'charge' AND p.account_id LIKE 'host:%'`)
	}
	if err == nil {
		s.PlatformMicros, err = sumInt(ctx, l.db, l.db.Rebind(`SELECT SUM(p.amount_micros) FROM ledger_postings p JOIN ledger_journal j ON j.id = p.journal_id
			WHERE j.kind = 'charge' AND p.account_id = ?`), PlatformAccount)
	}
	if err == nil {
		s.HeldMicros, err = sumInt(ctx, l.db, `SELECT SUM(amount_micros) FROM ledger_holds`)
	}
	if err != nil {
		return Summary{}, fmt.Errorf("ledger summary: %w", err)
	}
	return s, nil
}

// Payout is one host's earnings for a period.
type Payout struct {
	HostID   string `json:"host_id"`
	Period   string `json:"period"`
	Micros   int64  `json:"earned_micros"`
	Tokens   int64  `json:"tokens"`
	Requests int64  `json:"requests"`
}

// ValidPeriod checks a "YYYY-MM" period.
func ValidPeriod(p string) error {
	if _, err := time.Parse("2006-01", p); err != nil || len(p) != 7 {
		return fmt.Errorf("period %q: want YYYY-MM", p)
	}
	return nil
}

// Payouts returns what each host earned in period ("YYYY-MM"), largest first.
func (l *Ledger) Payouts(ctx context.Context, period string) ([]Payout, error) {
	if err := ValidPeriod(period); err != nil {
		return nil, err
	}
	rows, err := l.db.QueryContext(ctx, l.db.Rebind(`SELECT p.account_id, SUM(p.amount_micros), SUM(p.tokens), COUNT(DISTINCT p.journal_id)
		FROM ledger_postings p JOIN ledger_journal j ON j.id = p.journal_id
		WHERE j.kind = 'charge' AND j.period = ? AND p.account_id LIKE 'host:%'
		GROUP BY p.account_id`), period)
	if err != nil {
		return nil, fmt.Errorf("payouts: %w", err)
	}
	defer rows.Close()
	var out []Payout
	for rows.Next() {
		var p Payout
		var acct string
		if err := rows.Scan(&acct, &p.Micros, &p.Tokens, &p.Requests); err != nil {
			return nil, err
		}
		p.HostID = strings.TrimPrefix(acct, "host:")
		p.Period = period
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Micros != out[j].Micros {
			return out[i].Micros > out[j].Micros
		}
		return out[i].HostID < out[j].HostID
	})
	return out, rows.Err()
}

// HostEarnings returns one host's earnings for period.
func (l *Ledger) HostEarnings(ctx context.Context, hostID, period string) (Payout, error) {
	ps, err := l.Payouts(ctx, period)
	if err != nil {
		return Payout{}, err
	}
	for _, p := range ps {
		if p.HostID == hostID {
			return p, nil
		}
	}
	return Payout{HostID: hostID, Period: period}, nil
}

// ConsumerUsage is the shape of GET /v1/usage: one account's (or key's) use
// in a period.
type ConsumerUsage struct {
	AccountID        string `json:"account_id"`
	KeyID            string `json:"key_id,omitempty"`
	Period           string `json:"period"`
	Currency         string `json:"currency"`
	Requests         int64  `json:"requests"`
	PromptTokens     int64  `json:"prompt_tokens"`
	CompletionTokens int64  `json:"completion_tokens"`
	SpentMicros      int64  `json:"spent_micros"`
	HeldMicros       int64  `json:"held_micros"`
	BudgetMicros     int64  `json:"monthly_budget_micros"`
	KeyBudgetMicros  int64  `json:"key_monthly_budget_micros,omitempty"`
	BalanceMicros    int64  `json:"balance_micros"`
	Prepaid          bool   `json:"prepaid"`
}

// Usage reports an account's use in period; with keyID, only that key's.
func (l *Ledger) Usage(ctx context.Context, accountID, keyID, period string) (ConsumerUsage, error) {
	if err := ValidPeriod(period); err != nil {
		return ConsumerUsage{}, err
	}
	a, err := l.Account(ctx, accountID)
	if err != nil {
		return ConsumerUsage{}, err
	}
	u := ConsumerUsage{AccountID: accountID, KeyID: keyID, Period: period, Currency: l.Prices().Currency,
		BudgetMicros: a.MonthlyBudget, BalanceMicros: a.Balance, Prepaid: a.Prepaid}
	q := `SELECT COUNT(*), COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0), COALESCE(SUM(amount_micros), 0)
		FROM ledger_journal WHERE kind = 'charge' AND account_id = ? AND period = ?`
	args := []any{accountID, period}
	hq := `SELECT SUM(amount_micros) FROM ledger_holds WHERE account_id = ?`
	hargs := []any{accountID}
	if keyID != "" {
		q += ` AND key_id = ?`
		args = append(args, keyID)
		hq += ` AND key_id = ?`
		hargs = append(hargs, keyID)
		_ = l.db.QueryRowContext(ctx, l.db.Rebind(`SELECT monthly_budget_micros FROM ledger_key_limits WHERE key_id = ?`), keyID).Scan(&u.KeyBudgetMicros)
	}
	if err := l.db.QueryRowContext(ctx, l.db.Rebind(q), args...).Scan(&u.Requests, &u.PromptTokens, &u.CompletionTokens, &u.SpentMicros); err != nil {
		return ConsumerUsage{}, fmt.Errorf("usage: %w", err)
	}
	if u.HeldMicros, err = sumInt(ctx, l.db, l.db.Rebind(hq), hargs...); err != nil {
		return ConsumerUsage{}, fmt.Errorf("usage: %w", err)
	}
	return u, nil
}

// HostEarningsSince returns each host's earnings from charges recorded at or
// after since (federation readiness uses the trailing 30 days).
func (l *Ledger) HostEarningsSince(ctx context.Context, since time.Time) (map[string]int64, error) {
	rows, err := l.db.QueryContext(ctx, l.db.Rebind(`SELECT p.account_id, SUM(p.amount_micros)
		FROM ledger_postings p JOIN ledger_journal j ON j.id = p.journal_id
		WHERE j.kind = 'charge' AND j.created_unix >= ? AND p.account_id LIKE 'host:%'
		GROUP BY p.account_id`), since.Unix())
	if err != nil {
		return nil, fmt.Errorf("host earnings: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var acct string
		var n int64
		if err := rows.Scan(&acct, &n); err != nil {
			return nil, err
		}
		out[strings.TrimPrefix(acct, "host:")] = n
	}
	return out, rows.Err()
}
