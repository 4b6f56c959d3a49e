package governance

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/peerllm/peerllm/internal/store"
)

// Book keeps governance's own measurements and settings in the store: each
// host's observed and online seconds per day (uptime for the enterprise bar)
// and the host tier each API key prefers.
type Book struct {
	db  *store.DB
	now func() time.Time

	mu    sync.RWMutex
	tiers map[string]string // key id → preferred tier (cache of gov_key_tiers)
}

var bookMigrations = []store.Migration{
	{SQL: `CREATE TABLE gov_uptime (host_id TEXT NOT NULL, day BIGINT NOT NULL,
		observed_ms BIGINT NOT NULL, online_ms BIGINT NOT NULL, PRIMARY KEY (host_id, day))`},
	{SQL: `CREATE TABLE gov_key_tiers (key_id TEXT PRIMARY KEY, tier TEXT NOT NULL)`},
}

// OpenBook runs the book's migrations and loads the key preferences.
func OpenBook(ctx context.Context, db *store.DB, now func() time.Time) (*Book, error) {
	if err := db.Migrate(ctx, "governance_book", bookMigrations); err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	b := &Book{db: db, now: now, tiers: map[string]string{}}
	rows, err := db.QueryContext(ctx, `SELECT key_id, tier FROM gov_key_tiers`)
	if err != nil {
		return nil, fmt.Errorf("load key tiers: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k, t string
		if err := rows.Scan(&k, &t); err != nil {
			return nil, fmt.Errorf("load key tiers: %w", err)
		}
		b.tiers[k] = t
	}
	return b, rows.Err()
}

// ErrBadTier means a tier name is neither standard nor enterprise.
var ErrBadTier = errors.New("tier must be standard or enterprise")

// SetKeyTier makes keyID prefer hosts of tier; "" or "standard" clears the
// preference (any host).
func (b *Book) SetKeyTier(ctx context.Context, keyID, tier string) error {
	switch tier {
	case "", TierStandard:
		if _, err := b.db.ExecContext(ctx, b.db.Rebind(`DELETE FROM gov_key_tiers WHERE key_id = ?`), keyID); err != nil {
			return fmt.Errorf("clear key tier: %w", err)
		}
		b.mu.Lock()
		delete(b.tiers, keyID)
		b.mu.Unlock()
		return nil
	case TierEnterprise:
	default:
		return ErrBadTier
	}
	err := b.db.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, b.db.Rebind(`DELETE FROM gov_key_tiers WHERE key_id = ?`), keyID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, b.db.Rebind(`INSERT INTO gov_key_tiers (key_id, tier) VALUES (?, ?)`), keyID, tier)
		return err
	})
	if err != nil {
		return fmt.Errorf("set key tier: %w", err)
	}
	b.mu.Lock()
	b.tiers[keyID] = tier
	b.mu.Unlock()
	return nil
}

// KeyTier is the tier keyID prefers ("" for any). It reads memory only.
func (b *Book) KeyTier(keyID string) string {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.tiers[keyID]
}

func day(t time.Time) int64 { return t.UTC().Unix() / 86400 }

// RecordUptime adds elapsed observed time to every host in online, and
// elapsed online time to those marked true.
func (b *Book) RecordUptime(ctx context.Context, online map[string]bool, elapsed time.Duration) error {
	if len(online) == 0 || elapsed <= 0 {
		return nil
	}
	d := day(b.now())
	ms := elapsed.Milliseconds()
	err := b.db.InTx(ctx, func(tx *sql.Tx) error {
		for id, on := range online {
			var onMs int64
			if on {
				onMs = ms
			}
			res, err := tx.ExecContext(ctx, b.db.Rebind(`UPDATE gov_uptime SET observed_ms = observed_ms + ?, online_ms = online_ms + ? WHERE host_id = ? AND day = ?`),
				ms, onMs, id, d)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n > 0 {
				continue
			}
			if _, err := tx.ExecContext(ctx, b.db.Rebind(`INSERT INTO gov_uptime (host_id, day, observed_ms, online_ms) VALUES (?, ?, ?, ?)`),
				id, d, ms, onMs); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record uptime: %w", err)
	}
	return nil
}

// Uptime returns each host's online fraction of the time observed within
// the trailing window (hosts never observed are absent).
func (b *Book) Uptime(ctx context.Context, window time.Duration) (map[string]float64, error) {
	rows, err := b.db.QueryContext(ctx, b.db.Rebind(`SELECT host_id, SUM(observed_ms), SUM(online_ms) FROM gov_uptime WHERE day >= ? GROUP BY host_id`),
		day(b.now().Add(-window)))
	if err != nil {
		return nil, fmt.Errorf("uptime: %w", err)
	}
	defer rows.Close()
	out := map[string]float64{}
	for rows.Next() {
		var id string
		var obs, on int64
		if err := rows.Scan(&id, &obs, &on); err != nil {
			return nil, fmt.Errorf("uptime: %w", err)
		}
		if obs > 0 {
			out[id] = float64(on) / float64(obs)
		}
	}
	return out, rows.Err()
}

// ActiveHosts returns the hosts online at some time within the trailing
// window (federation readiness counts them per region).
func (b *Book) ActiveHosts(ctx context.Context, window time.Duration) (map[string]bool, error) {
	rows, err := b.db.QueryContext(ctx, b.db.Rebind(`SELECT DISTINCT host_id FROM gov_uptime WHERE day >= ? AND online_ms > 0`),
		day(b.now().Add(-window)))
	if err != nil {
		return nil, fmt.Errorf("active hosts: %w", err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("active hosts: %w", err)
		}
		out[id] = true
	}
	return out, rows.Err()
}
