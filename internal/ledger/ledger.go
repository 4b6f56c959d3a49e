// Package ledger owns PeerLLM's money: the published price list, consumer
// accounts with prepaid balances and monthly budgets, holds taken before any
// host works, and the balanced double-entry record every request writes (95%
// to the hosts that generated its tokens, 5% to the platform). Amounts are
// integer micro-units of the price list's currency. The orchestrator imports
// it; hosts never do. It stores token counts and amounts, never content.
package ledger

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/peerllm/peerllm/internal/store"
)

// Well-known account ids. Host accounts are HostAccount(hostID).
const (
	PlatformAccount = "platform"
	// ExternalAccount is the outside world: top-ups are credited to a
	// consumer and debited here, payouts the other way, so every record sums
	// to zero.
	ExternalAccount = "external"
)

// HostAccount is the ledger account of a host.
func HostAccount(hostID string) string { return "host:" + hostID }

// HostSharePercent is the hosts' share of every charge. The platform keeps
// the rest, including the rounding remainder.
const HostSharePercent = 95

// Errors a caller branches on (the API maps both to 402).
var (
	ErrBudgetExceeded    = errors.New("monthly budget exceeded")
	ErrInsufficientFunds = errors.New("insufficient prepaid balance")
	ErrNotFound          = errors.New("not found")
	// ErrReservedAccount: the id belongs to the platform, the outside world
	// or a host, never to a consumer.
	ErrReservedAccount = errors.New("account id is reserved")
)

// Account is a consumer account.
type Account struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Prepaid accounts may spend only their balance; others are invoiced and
	// limited by MonthlyBudget alone.
	Prepaid bool `json:"prepaid"`
	// MonthlyBudget is a hard limit on spend per calendar month (UTC), in
	// micro-units; 0 means none.
	MonthlyBudget int64 `json:"monthly_budget_micros"`
	Balance       int64 `json:"balance_micros"`
}

// Ledger records money in the store.
type Ledger struct {
	db     *store.DB
	now    func() time.Time
	mu     sync.RWMutex
	prices *PriceList
}

// Options configure a Ledger.
type Options struct {
	// Now is the clock; default time.Now. Tests move it.
	Now func() time.Time
}

var migrations = []store.Migration{
	{SQL: `CREATE TABLE ledger_accounts (
		id TEXT PRIMARY KEY, name TEXT NOT NULL, prepaid INTEGER NOT NULL,
		monthly_budget_micros BIGINT NOT NULL, created_unix BIGINT NOT NULL)`},
	{SQL: `CREATE TABLE ledger_balances (account_id TEXT PRIMARY KEY, balance_micros BIGINT NOT NULL)`},
	{SQL: `CREATE TABLE ledger_key_limits (key_id TEXT PRIMARY KEY, account_id TEXT NOT NULL,
		monthly_budget_micros BIGINT NOT NULL)`},
	{SQL: `CREATE TABLE ledger_journal (
		id INTEGER PRIMARY KEY AUTOINCREMENT, request_id TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,
		account_id TEXT NOT NULL, key_id TEXT NOT NULL, model TEXT NOT NULL, price_version INTEGER NOT NULL,
		prompt_tokens BIGINT NOT NULL, completion_tokens BIGINT NOT NULL, amount_micros BIGINT NOT NULL,
		status TEXT NOT NULL, period TEXT NOT NULL, created_unix BIGINT NOT NULL)`,
		PostgresSQL: `CREATE TABLE ledger_journal (
		id BIGSERIAL PRIMARY KEY, request_id TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,
		account_id TEXT NOT NULL, key_id TEXT NOT NULL, model TEXT NOT NULL, price_version INTEGER NOT NULL,
		prompt_tokens BIGINT NOT NULL, completion_tokens BIGINT NOT NULL, amount_micros BIGINT NOT NULL,
		status TEXT NOT NULL, period TEXT NOT NULL, created_unix BIGINT NOT NULL)`},
	{SQL: `CREATE TABLE ledger_postings (journal_id BIGINT NOT NULL, account_id TEXT NOT NULL,
		amount_micros BIGINT NOT NULL, tokens BIGINT NOT NULL)`},
	{SQL: `CREATE INDEX ledger_postings_journal ON ledger_postings (journal_id)`},
	{SQL: `CREATE INDEX ledger_journal_account ON ledger_journal (account_id, period)`},
	{SQL: `CREATE TABLE ledger_holds (
		request_id TEXT PRIMARY KEY, account_id TEXT NOT NULL, key_id TEXT NOT NULL,
		model TEXT NOT NULL, price_version INTEGER NOT NULL, input_price BIGINT NOT NULL,
		output_price BIGINT NOT NULL, amount_micros BIGINT NOT NULL, period TEXT NOT NULL,
		usage_json TEXT NOT NULL, created_unix BIGINT NOT NULL)`},
	// Budget checks sum a key's month and an account's or key's holds.
	{SQL: `CREATE INDEX ledger_journal_key ON ledger_journal (key_id, period)`},
	{SQL: `CREATE INDEX ledger_holds_account ON ledger_holds (account_id)`},
	{SQL: `CREATE INDEX ledger_holds_key ON ledger_holds (key_id)`},
	// Running monthly spend per account and per key: a budget check reads
	// one row instead of summing the month's charges. Filled from the
	// journal for books that predate it.
	{SQL: `CREATE TABLE ledger_spend (scope TEXT NOT NULL, id TEXT NOT NULL, period TEXT NOT NULL,
		spent_micros BIGINT NOT NULL, PRIMARY KEY (scope, id, period))`},
	{SQL: `INSERT INTO ledger_spend (scope, id, period, spent_micros)
		SELECT 'account', account_id, period, SUM(amount_micros) FROM ledger_journal WHERE kind = 'charge' AND amount_micros > 0 GROUP BY account_id, period`},
	{SQL: `INSERT INTO ledger_spend (scope, id, period, spent_micros)
		SELECT 'key', key_id, period, SUM(amount_micros) FROM ledger_journal WHERE kind = 'charge' AND amount_micros > 0 AND key_id <> '' GROUP BY key_id, period`},
}

// Open runs the ledger's migrations and returns a Ledger using prices.
func Open(ctx context.Context, db *store.DB, prices *PriceList, opts Options) (*Ledger, error) {
	if err := db.Migrate(ctx, "ledger", migrations); err != nil {
		return nil, err
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Ledger{db: db, now: opts.Now, prices: prices}, nil
}

// SetPrices replaces the price list (a reload). Requests already holding a
// quote keep their price.
func (l *Ledger) SetPrices(pl *PriceList) {
	l.mu.Lock()
	l.prices = pl
	l.mu.Unlock()
}

// Prices returns the price list in use.
func (l *Ledger) Prices() *PriceList {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.prices
}

func period(t time.Time) string { return t.UTC().Format("2006-01") }

func newID(prefix string) string {
	b := make([]byte, 8)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// forUpdate is the row-lock suffix: PostgreSQL needs it to serialise two
// replicas spending the same account; SQLite's immediate transactions already
// hold the one write lock.
func (l *Ledger) forUpdate() string {
	if l.db.Dialect == store.Postgres {
		return " FOR UPDATE"
	}
	return ""
}

// CreateAccount creates a consumer account. An empty ID gets a fresh one.
func (l *Ledger) CreateAccount(ctx context.Context, a Account) (Account, error) {
	if a.MonthlyBudget < 0 || a.MonthlyBudget > MaxAmount {
		return Account{}, fmt.Errorf("monthly budget must be between 0 and %d", int64(MaxAmount))
	}
	if a.ID == "" {
		a.ID = newID("acct_")
	}
	if a.ID == PlatformAccount || a.ID == ExternalAccount || strings.HasPrefix(a.ID, "host:") {
		return Account{}, fmt.Errorf("%w: %q", ErrReservedAccount, a.ID)
	}
	err := l.db.InTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, l.db.Rebind(`INSERT INTO ledger_accounts (id, name, prepaid, monthly_budget_micros, created_unix) VALUES (?, ?, ?, ?, ?)`),
			a.ID, a.Name, boolInt(a.Prepaid), a.MonthlyBudget, l.now().Unix())
		return err
	})
	if err != nil {
		return Account{}, fmt.Errorf("create account: %w", err)
	}
	return a, nil
}

// MaxAmount bounds any single amount an operator enters (a top-up, a
// budget): 10^15 micro-units, a billion currency units, so sums of many of
// them stay far from int64 overflow.
const MaxAmount = 1_000_000_000_000_000

// ListAccounts returns every consumer account with its balance, by id.
func (l *Ledger) ListAccounts(ctx context.Context) ([]Account, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT a.id, a.name, a.prepaid, a.monthly_budget_micros, COALESCE(b.balance_micros, 0)
		FROM ledger_accounts a LEFT JOIN ledger_balances b ON b.account_id = a.id ORDER BY a.id`)
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	defer rows.Close()
	var out []Account
	for rows.Next() {
		var a Account
		var prepaid int
		if err := rows.Scan(&a.ID, &a.Name, &prepaid, &a.MonthlyBudget, &a.Balance); err != nil {
			return nil, fmt.Errorf("list accounts: %w", err)
		}
		a.Prepaid = prepaid != 0
		out = append(out, a)
	}
	return out, rows.Err()
}

// Account returns an account with its balance.
func (l *Ledger) Account(ctx context.Context, id string) (Account, error) {
	var a Account
	var prepaid int
	err := l.db.QueryRowContext(ctx, l.db.Rebind(`SELECT id, name, prepaid, monthly_budget_micros FROM ledger_accounts WHERE id = ?`), id).
		Scan(&a.ID, &a.Name, &prepaid, &a.MonthlyBudget)
	if errors.Is(err, sql.ErrNoRows) {
		return Account{}, fmt.Errorf("account %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Account{}, fmt.Errorf("account %s: %w", id, err)
	}
	a.Prepaid = prepaid != 0
	a.Balance, err = balance(ctx, l.db, l.db.DB, id)
	return a, err
}

// SetKeyBudget attaches API key keyID to accountID with its own monthly
// budget (0 = only the account's). A school gives each class a key.
func (l *Ledger) SetKeyBudget(ctx context.Context, keyID, accountID string, monthly int64) error {
	if monthly < 0 || monthly > MaxAmount {
		return fmt.Errorf("monthly budget must be between 0 and %d", int64(MaxAmount))
	}
	if _, err := l.Account(ctx, accountID); err != nil {
		return err
	}
	return l.db.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, l.db.Rebind(`DELETE FROM ledger_key_limits WHERE key_id = ?`), keyID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, l.db.Rebind(`INSERT INTO ledger_key_limits (key_id, account_id, monthly_budget_micros) VALUES (?, ?, ?)`), keyID, accountID, monthly)
		return err
	})
}

// KeyAccount returns the account an API key bills to.
func (l *Ledger) KeyAccount(ctx context.Context, keyID string) (string, error) {
	var acct string
	err := l.db.QueryRowContext(ctx, l.db.Rebind(`SELECT account_id FROM ledger_key_limits WHERE key_id = ?`), keyID).Scan(&acct)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("key %s: %w", keyID, ErrNotFound)
	}
	return acct, err
}

// TopUp credits amount to a prepaid account. ref makes it idempotent: the
// same ref twice credits once.
func (l *Ledger) TopUp(ctx context.Context, accountID string, amount int64, ref string) error {
	if amount <= 0 || amount > MaxAmount {
		return fmt.Errorf("top-up amount must be between 1 and %d", int64(MaxAmount))
	}
	if ref == "" {
		ref = newID("topup_")
	}
	if _, err := l.Account(ctx, accountID); err != nil {
		return err
	}
	now := l.now()
	return l.db.InTx(ctx, func(tx *sql.Tx) error {
		id, dup, err := l.insertJournal(ctx, tx, journalRow{
			requestID: "topup:" + ref, kind: "topup", account: accountID, amount: amount,
			status: "completed", period: period(now), created: now.Unix(),
		})
		if err != nil || dup {
			return err
		}
		return l.post(ctx, tx, id, []posting{{accountID, amount, 0}, {ExternalAccount, -amount, 0}})
	})
}

type journalRow struct {
	requestID, kind, account, key, model string
	version                              int
	prompt, completion, amount           int64
	status, period                       string
	created                              int64
}

// insertJournal writes a journal row; dup reports that the request id was
// already recorded (nothing written).
func (l *Ledger) insertJournal(ctx context.Context, tx *sql.Tx, j journalRow) (id int64, dup bool, err error) {
	var n int
	if err := tx.QueryRowContext(ctx, l.db.Rebind(`SELECT COUNT(*) FROM ledger_journal WHERE request_id = ?`), j.requestID).Scan(&n); err != nil {
		return 0, false, err
	}
	if n > 0 {
		return 0, true, nil
	}
	err = tx.QueryRowContext(ctx, l.db.Rebind(`INSERT INTO ledger_journal
		(request_id, kind, account_id, key_id, model, price_version, prompt_tokens, completion_tokens, amount_micros, status, period, created_unix)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`),
		j.requestID, j.kind, j.account, j.key, j.model, j.version, j.prompt, j.completion, j.amount, j.status, j.period, j.created).Scan(&id)
	return id, false, err
}

type posting struct {
	account string
	amount  int64
	tokens  int64
}

// post writes balanced postings and updates the running balances.
func (l *Ledger) post(ctx context.Context, tx *sql.Tx, journal int64, ps []posting) error {
	var sum int64
	for _, p := range ps {
		sum += p.amount
	}
	if sum != 0 {
		return fmt.Errorf("unbalanced record %d: postings sum to %d", journal, sum)
	}
	for _, p := range ps {
		if _, err := tx.ExecContext(ctx, l.db.Rebind(`INSERT INTO ledger_postings (journal_id, account_id, amount_micros, tokens) VALUES (?, ?, ?, ?)`),
			journal, p.account, p.amount, p.tokens); err != nil {
			return err
		}
		// An upsert: two records crediting an account for the first time
		// at once (PostgreSQL, read committed) must not collide.
		if _, err := tx.ExecContext(ctx, l.db.Rebind(`INSERT INTO ledger_balances (account_id, balance_micros) VALUES (?, ?)
			ON CONFLICT (account_id) DO UPDATE SET balance_micros = ledger_balances.balance_micros + excluded.balance_micros`), p.account, p.amount); err != nil {
			return err
		}
	}
	return nil
}

type querier interface {
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

func balance(ctx context.Context, db *store.DB, q querier, account string) (int64, error) {
	var b sql.NullInt64
	err := q.QueryRowContext(ctx, db.Rebind(`SELECT balance_micros FROM ledger_balances WHERE account_id = ?`), account).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return b.Int64, err
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// splitHosts divides pool among hosts pro rata to weight (tokens × tier
// multiplier in permille). Each share is floored; the micro-units left over
// go one each to the largest remainders, ties to the smaller host id, so the
// shares always sum to pool exactly.
func splitHosts(pool int64, weights map[string]int64) map[string]int64 {
	out := make(map[string]int64, len(weights))
	var total int64
	ids := make([]string, 0, len(weights))
	for id, w := range weights {
		if w > 0 {
			total += w
			ids = append(ids, id)
		}
	}
	if total == 0 || pool == 0 {
		return out
	}
	sort.Strings(ids)
	type rem struct {
		id string
		r  int64
	}
	rems := make([]rem, 0, len(ids))
	var given int64
	for _, id := range ids {
		share, r := mulDiv(pool, weights[id], total)
		out[id] = share
		given += share
		rems = append(rems, rem{id, r})
	}
	sort.SliceStable(rems, func(i, j int) bool { return rems[i].r > rems[j].r })
	for i := 0; given < pool; i++ {
		out[rems[i%len(rems)].id]++
		given++
	}
	return out
}

// mulDiv returns floor(a*b/c) and the remainder for non-negative a and
// 0 ≤ b ≤ c, using a 128-bit product so no magnitude overflows.
func mulDiv(a, b, c int64) (int64, int64) {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	q, r := bits.Div64(hi, lo, uint64(c))
	return int64(q), int64(r)
}

func marshalUsage(u Usage) string {
	b, _ := json.Marshal(u)
	return string(b)
}
