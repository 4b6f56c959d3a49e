// Package registry owns the hosts the orchestrator knows: their identity,
// owner, region and tier, their hashed credentials, their measured figures
// (time to first token, ms/token, success history, divergences), their strikes
// and lifecycle (warning, suspension, ban), and the live state the dispatcher
// reports for the ones connected right now.
//
// The orchestrator side imports it (dispatch, httpapi, serve); the host side
// never does. Nothing here holds prompt or answer text: a strike records a
// reason category and a time, never the content that caused it.
package registry

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/peerllm/peerllm/internal/fabric"
	"github.com/peerllm/peerllm/internal/store"
)

// Sentinel errors a caller branches on.
var (
	// ErrNotFound means no host has the given id.
	ErrNotFound = errors.New("host not found")
	// ErrInvalid means a HostSpec or argument is not acceptable.
	ErrInvalid = errors.New("invalid host")
	// ErrSuspended means the host is suspended and gets no tasks until its
	// suspension ends.
	ErrSuspended = errors.New("host is suspended")
	// ErrBanned means the host was banned for repeated rule violations.
	ErrBanned = errors.New("host is banned")
)

// Tiers.
const (
	TierStandard   = "standard"
	TierEnterprise = "enterprise"
)

// Status values of Host.Status.
const (
	StatusActive    = "active"
	StatusSuspended = "suspended"
	StatusBanned    = "banned"
)

// Strike actions reported in StrikeState.Action.
const (
	ActionWarning = "warning"
	ActionSuspend = "suspended"
	ActionBan     = "banned"
)

// HostSpec is what an operator gives to register a host.
type HostSpec struct {
	Name   string // human label, e.g. "alice-desktop"
	Owner  string // who is paid and who is responsible; backups come from another owner
	Region string // e.g. "eu-west"; empty means unknown
	Tier   string // "standard" (default) or "enterprise"
	// Fallback marks an operator-run host: the router gives it tasks only
	// when no community host can take them.
	Fallback bool
}

// Host is a registered host with its lifecycle, measured figures and, when
// connected, its live state.
type Host struct {
	ID             string
	Name           string
	Owner          string
	Region         string
	Tier           string
	Fallback       bool      // operator-run fallback host
	Status         string    // StatusActive, StatusSuspended or StatusBanned
	SuspendedUntil time.Time // zero unless suspended
	CreatedAt      time.Time
	// Strikes counts strikes within the ban window (StrikePolicy.BanWindow).
	Strikes int
	Figures Figures
	Live    Live
}

// Figures are a host's measured performance, persisted periodically by the
// dispatcher. They lower or raise its routing score; they never strike it.
type Figures struct {
	TTFT        time.Duration // time to first token, EWMA
	MsPerToken  float64       // decode time per token in ms, EWMA
	Successes   int64         // tasks that ended well
	Failures    int64         // tasks that died, stalled or errored
	Divergences int64         // verification disagreements with another host
	Tokens      int64         // tokens generated, all tasks
	LastSeen    time.Time
}

// FiguresUpdate is one periodic report for a host: the current EWMAs and
// counter increments since the last report.
type FiguresUpdate struct {
	HostID         string
	TTFT           time.Duration // 0 keeps the stored value
	MsPerToken     float64       // 0 keeps the stored value
	AddSuccesses   int64
	AddFailures    int64
	AddDivergences int64
	AddTokens      int64
	LastSeen       time.Time // zero keeps the stored value
}

// Live is what the dispatcher knows about a connected host. The zero value
// means offline.
type Live struct {
	Online        bool
	Agent         string
	Models        []fabric.ModelInfo
	InFlight      int
	Capacity      int
	TokensPerSec  float64
	CPUUtil       float64
	GPUUtil       float64
	RTT           time.Duration
	Draining      bool
	ConnectedAt   time.Time
	LastHeartbeat time.Time
}

// Strike is one recorded rule violation. Reason is a category such as
// "safety:violence", never content.
type Strike struct {
	ID     int64
	HostID string
	Reason string
	At     time.Time
}

// StrikeState is the outcome of recording a strike.
type StrikeState struct {
	HostID         string
	Count          int       // strikes within the ban window, including this one
	Action         string    // ActionWarning, ActionSuspend or ActionBan
	SuspendedUntil time.Time // set when Action is ActionSuspend
}

// StrikePolicy is the strike lifecycle: the first strike is a warning; a
// second within SuspendWindow suspends the host for SuspendFor; a third within
// BanWindow bans it (its credentials stop working).
type StrikePolicy struct {
	SuspendWindow time.Duration // default 24h
	SuspendFor    time.Duration // default 24h
	BanWindow     time.Duration // default 30 days
	BanAt         int           // strikes within BanWindow that ban; default 3
	// VerifyStrikeAt is how many divergences against consensus (a third
	// host sided with the other one) within VerifyWindow give a strike
	// "verification:diverged"; default 3.
	VerifyStrikeAt int
	VerifyWindow   time.Duration // default 24h
}

func (p StrikePolicy) withDefaults() StrikePolicy {
	if p.SuspendWindow <= 0 {
		p.SuspendWindow = 24 * time.Hour
	}
	if p.SuspendFor <= 0 {
		p.SuspendFor = 24 * time.Hour
	}
	if p.BanWindow <= 0 {
		p.BanWindow = 30 * 24 * time.Hour
	}
	if p.BanAt <= 1 {
		p.BanAt = 3
	}
	if p.VerifyStrikeAt <= 0 {
		p.VerifyStrikeAt = 3
	}
	if p.VerifyWindow <= 0 {
		p.VerifyWindow = 24 * time.Hour
	}
	return p
}

// Options tune a Registry. The zero value is the production default.
type Options struct {
	Policy StrikePolicy
	// Now is the clock; nil means time.Now. Tests move it to expire suspensions.
	Now func() time.Time
}

// Registry is the host registry. It is safe for concurrent use.
type Registry struct {
	db     *store.DB
	log    *slog.Logger
	policy StrikePolicy
	now    func() time.Time

	mu   sync.RWMutex
	auth map[string]authEntry // id → credentials and lifecycle, for VerifyHost and Eligible
	live map[string]Live
}

type authEntry struct {
	hash           [sha256.Size]byte
	owner          string
	status         string // StatusActive or StatusBanned
	suspendedUntil time.Time
	fallback       bool
}

var migrations = []store.Migration{
	{SQL: `CREATE TABLE hosts (
		id TEXT PRIMARY KEY,
		name TEXT NOT NULL,
		owner TEXT NOT NULL,
		region TEXT NOT NULL,
		tier TEXT NOT NULL,
		secret_hash TEXT NOT NULL,
		status TEXT NOT NULL,
		suspended_until BIGINT NOT NULL DEFAULT 0,
		created_at BIGINT NOT NULL,
		ttft_us BIGINT NOT NULL DEFAULT 0,
		ms_per_token DOUBLE PRECISION NOT NULL DEFAULT 0,
		successes BIGINT NOT NULL DEFAULT 0,
		failures BIGINT NOT NULL DEFAULT 0,
		divergences BIGINT NOT NULL DEFAULT 0,
		tokens BIGINT NOT NULL DEFAULT 0,
		last_seen BIGINT NOT NULL DEFAULT 0)`},
	{SQL: `CREATE TABLE host_strikes (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		host_id TEXT NOT NULL,
		reason TEXT NOT NULL,
		created_at BIGINT NOT NULL)`,
		PostgresSQL: `CREATE TABLE host_strikes (
		id BIGSERIAL PRIMARY KEY,
		host_id TEXT NOT NULL,
		reason TEXT NOT NULL,
		created_at BIGINT NOT NULL)`},
	{SQL: `CREATE INDEX host_strikes_host ON host_strikes (host_id, created_at)`},
	{SQL: `ALTER TABLE hosts ADD COLUMN fallback INTEGER NOT NULL DEFAULT 0`},
	// Divergences against consensus (verify.go): a reason category and a
	// time, never content; struck marks those already turned into a strike.
	{SQL: `CREATE TABLE host_verdicts (
		host_id TEXT NOT NULL,
		reason TEXT NOT NULL,
		created_at BIGINT NOT NULL,
		struck INTEGER NOT NULL DEFAULT 0)`},
	{SQL: `CREATE INDEX host_verdicts_host ON host_verdicts (host_id, created_at)`},
}

// Open runs the registry's migrations on db and loads the credentials cache.
func Open(ctx context.Context, db *store.DB, log *slog.Logger) (*Registry, error) {
	return OpenOptions(ctx, db, log, Options{})
}

// OpenOptions is Open with a strike policy and clock.
func OpenOptions(ctx context.Context, db *store.DB, log *slog.Logger, opt Options) (*Registry, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := db.Migrate(ctx, "registry", migrations); err != nil {
		return nil, fmt.Errorf("open registry: %w", err)
	}
	r := &Registry{db: db, log: log, policy: opt.Policy.withDefaults(), now: opt.Now,
		auth: map[string]authEntry{}, live: map[string]Live{}}
	if r.now == nil {
		r.now = time.Now
	}
	rows, err := db.QueryContext(ctx, `SELECT id, owner, secret_hash, status, suspended_until, fallback FROM hosts`)
	if err != nil {
		return nil, fmt.Errorf("load hosts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, owner, hash, status string
		var until, fallback int64
		if err := rows.Scan(&id, &owner, &hash, &status, &until, &fallback); err != nil {
			return nil, fmt.Errorf("load hosts: %w", err)
		}
		e := authEntry{owner: owner, status: status, suspendedUntil: fromMillis(until), fallback: fallback != 0}
		// fabric.HashSecret format: "sha256:" + hex.
		if b, err := hex.DecodeString(strings.TrimPrefix(hash, "sha256:")); err == nil && len(b) == sha256.Size {
			copy(e.hash[:], b)
		}
		r.auth[id] = e
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load hosts: %w", err)
	}
	return r, nil
}

// Policy reports the strike policy in force.
func (r *Registry) Policy() StrikePolicy { return r.policy }

// AddHost registers a host and returns it with its secret. The secret is shown
// only here; the registry keeps a hash.
func (r *Registry) AddHost(ctx context.Context, spec HostSpec) (Host, string, error) {
	spec.Name = strings.TrimSpace(spec.Name)
	spec.Owner = strings.TrimSpace(spec.Owner)
	spec.Region = strings.TrimSpace(spec.Region)
	if spec.Tier == "" {
		spec.Tier = TierStandard
	}
	switch {
	case spec.Name == "" || len(spec.Name) > 100:
		return Host{}, "", fmt.Errorf("%w: name must be 1-100 characters", ErrInvalid)
	case spec.Owner == "" || len(spec.Owner) > 100:
		return Host{}, "", fmt.Errorf("%w: owner must be 1-100 characters", ErrInvalid)
	case len(spec.Region) > 64:
		return Host{}, "", fmt.Errorf("%w: region too long", ErrInvalid)
	case spec.Tier != TierStandard && spec.Tier != TierEnterprise:
		return Host{}, "", fmt.Errorf("%w: tier must be %q or %q", ErrInvalid, TierStandard, TierEnterprise)
	}
	id := newID(spec.Name)
	secret := fabric.NewSecret()
	sum := sha256.Sum256([]byte(secret))
	now := r.now()
	fallback := 0
	if spec.Fallback {
		fallback = 1
	}
	_, err := r.db.ExecContext(ctx, r.db.Rebind(`INSERT INTO hosts (id, name, owner, region, tier, secret_hash, status, created_at, fallback)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`), id, spec.Name, spec.Owner, spec.Region, spec.Tier, fabric.HashSecret(secret), StatusActive, now.UnixMilli(), fallback)
	if err != nil {
		return Host{}, "", fmt.Errorf("add host: %w", err)
	}
	r.mu.Lock()
	r.auth[id] = authEntry{hash: sum, owner: spec.Owner, status: StatusActive, fallback: spec.Fallback}
	r.mu.Unlock()
	h, err := r.Host(ctx, id)
	if err != nil {
		return Host{}, "", err
	}
	return h, secret, nil
}

// RemoveHost deletes a host and its strikes. Its credentials stop working at
// once; a connected agent gets no further tasks.
func (r *Registry) RemoveHost(ctx context.Context, id string) error {
	err := r.db.InTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, r.db.Rebind(`DELETE FROM hosts WHERE id = ?`), id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		if _, err = tx.ExecContext(ctx, r.db.Rebind(`DELETE FROM host_verdicts WHERE host_id = ?`), id); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, r.db.Rebind(`DELETE FROM host_strikes WHERE host_id = ?`), id)
		return err
	})
	if err != nil {
		return fmt.Errorf("remove host %s: %w", id, err)
	}
	r.mu.Lock()
	delete(r.auth, id)
	delete(r.live, id)
	r.mu.Unlock()
	return nil
}

const hostColumns = `id, name, owner, region, tier, status, suspended_until, created_at,
	ttft_us, ms_per_token, successes, failures, divergences, tokens, last_seen, fallback`

// Host returns one host with its live state and figures.
func (r *Registry) Host(ctx context.Context, id string) (Host, error) {
	row := r.db.QueryRowContext(ctx, r.db.Rebind(`SELECT `+hostColumns+` FROM hosts WHERE id = ?`), id)
	h, err := r.scanHost(row.Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return Host{}, fmt.Errorf("host %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Host{}, fmt.Errorf("host %s: %w", id, err)
	}
	counts, err := r.strikeCounts(ctx, id)
	if err != nil {
		return Host{}, err
	}
	h.Strikes = counts[id]
	return h, nil
}

// ListHosts returns every registered host, ordered by id, with live state and
// measured figures.
func (r *Registry) ListHosts(ctx context.Context) ([]Host, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT `+hostColumns+` FROM hosts ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list hosts: %w", err)
	}
	defer rows.Close()
	var hosts []Host
	for rows.Next() {
		h, err := r.scanHost(rows.Scan)
		if err != nil {
			return nil, fmt.Errorf("list hosts: %w", err)
		}
		hosts = append(hosts, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list hosts: %w", err)
	}
	rows.Close()
	counts, err := r.strikeCounts(ctx, "")
	if err != nil {
		return nil, err
	}
	for i := range hosts {
		hosts[i].Strikes = counts[hosts[i].ID]
	}
	return hosts, nil
}

func (r *Registry) scanHost(scan func(...any) error) (Host, error) {
	var h Host
	var until, created, ttft, lastSeen, fallback int64
	err := scan(&h.ID, &h.Name, &h.Owner, &h.Region, &h.Tier, &h.Status, &until, &created,
		&ttft, &h.Figures.MsPerToken, &h.Figures.Successes, &h.Figures.Failures,
		&h.Figures.Divergences, &h.Figures.Tokens, &lastSeen, &fallback)
	if err != nil {
		return Host{}, err
	}
	h.CreatedAt = fromMillis(created)
	h.Fallback = fallback != 0
	h.Figures.TTFT = time.Duration(ttft) * time.Microsecond
	h.Figures.LastSeen = fromMillis(lastSeen)
	if su := fromMillis(until); h.Status == StatusActive && su.After(r.now()) {
		h.Status, h.SuspendedUntil = StatusSuspended, su
	}
	r.mu.RLock()
	h.Live = r.live[h.ID]
	r.mu.RUnlock()
	return h, nil
}

// strikeCounts counts strikes within the ban window, for one host or all ("").
func (r *Registry) strikeCounts(ctx context.Context, id string) (map[string]int, error) {
	since := r.now().Add(-r.policy.BanWindow).UnixMilli()
	q, args := `SELECT host_id, COUNT(*) FROM host_strikes WHERE created_at > ? GROUP BY host_id`, []any{since}
	if id != "" {
		q, args = `SELECT host_id, COUNT(*) FROM host_strikes WHERE created_at > ? AND host_id = ? GROUP BY host_id`, []any{since, id}
	}
	rows, err := r.db.QueryContext(ctx, r.db.Rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("count strikes: %w", err)
	}
	defer rows.Close()
	counts := map[string]int{}
	for rows.Next() {
		var hid string
		var n int
		if err := rows.Scan(&hid, &n); err != nil {
			return nil, fmt.Errorf("count strikes: %w", err)
		}
		counts[hid] = n
	}
	return counts, rows.Err()
}

// VerifyHost reports whether secret is hostID's credential and the host is not
// banned. It reads an in-memory cache and runs in constant time in the secret,
// so the NATS auth hook can call it on every connect. A suspended host still
// verifies (it may connect and is told why it gets no work).
func (r *Registry) VerifyHost(hostID, secret string) bool {
	r.mu.RLock()
	e, ok := r.auth[hostID]
	r.mu.RUnlock()
	sum := sha256.Sum256([]byte(secret))
	if !ok {
		return false
	}
	return subtle.ConstantTimeCompare(sum[:], e.hash[:]) == 1 && e.status != StatusBanned
}

// Eligible reports whether hostID may receive tasks now: nil, or an error
// wrapping ErrNotFound, ErrSuspended or ErrBanned. It reads memory only.
func (r *Registry) Eligible(hostID string) error {
	r.mu.RLock()
	e, ok := r.auth[hostID]
	r.mu.RUnlock()
	switch {
	case !ok:
		return ErrNotFound
	case e.status == StatusBanned:
		return ErrBanned
	case e.suspendedUntil.After(r.now()):
		return fmt.Errorf("%w until %s", ErrSuspended, e.suspendedUntil.UTC().Format(time.RFC3339))
	}
	return nil
}

// Owner returns hostID's owner from memory ("" if unknown).
func (r *Registry) Owner(hostID string) string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.auth[hostID].owner
}

// SetLive records a connected host's live state; Live{} (Online false) marks
// it offline. The dispatcher calls it on hello, heartbeat and death.
func (r *Registry) SetLive(hostID string, l Live) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !l.Online {
		delete(r.live, hostID)
		return
	}
	if _, ok := r.auth[hostID]; ok {
		r.live[hostID] = l
	}
}

// RecordFigures adds measured figures for several hosts in one transaction.
// Unknown hosts are skipped.
func (r *Registry) RecordFigures(ctx context.Context, ups []FiguresUpdate) error {
	if len(ups) == 0 {
		return nil
	}
	err := r.db.InTx(ctx, func(tx *sql.Tx) error {
		for _, u := range ups {
			_, err := tx.ExecContext(ctx, r.db.Rebind(`UPDATE hosts SET
				ttft_us = CASE WHEN ? > 0 THEN ? ELSE ttft_us END,
				ms_per_token = CASE WHEN CAST(? AS DOUBLE PRECISION) > 0 THEN CAST(? AS DOUBLE PRECISION) ELSE ms_per_token END,
				successes = successes + ?, failures = failures + ?,
				divergences = divergences + ?, tokens = tokens + ?,
				last_seen = CASE WHEN ? > last_seen THEN ? ELSE last_seen END
				WHERE id = ?`),
				u.TTFT.Microseconds(), u.TTFT.Microseconds(), u.MsPerToken, u.MsPerToken,
				u.AddSuccesses, u.AddFailures, u.AddDivergences, u.AddTokens,
				toMillis(u.LastSeen), toMillis(u.LastSeen), u.HostID)
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record figures: %w", err)
	}
	return nil
}

func newID(name string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(name) {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			b.WriteRune(c)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
		if b.Len() >= 24 {
			break
		}
	}
	slug := strings.Trim(b.String(), "-")
	if slug == "" {
		slug = "host"
	}
	const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
	var rnd [6]byte
	rand.Read(rnd[:])
	suffix := make([]byte, len(rnd))
	for i, c := range rnd {
		suffix[i] = alphabet[int(c)%len(alphabet)]
	}
	return slug + "-" + string(suffix)
}

func fromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

func toMillis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}
