// Package auth owns consumer API keys and the operator's admin token. Keys
// are high-entropy random strings shown once when created; only their
// SHA-256 is stored, so a leaked database does not leak usable keys. The
// orchestrator's consumer and admin APIs import it; hosts never see a key.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/peerllm/peerllm/internal/store"
)

// KeyPrefix starts every consumer API key, so a key is recognisable in a
// secret scanner.
const KeyPrefix = "pk-"

// Sentinel errors a caller branches on.
var (
	// ErrInvalidKey means the key is unknown, malformed or revoked.
	ErrInvalidKey = errors.New("invalid API key")
	// ErrNotFound means no key has the id.
	ErrNotFound = errors.New("API key not found")
	// ErrBadKey means a key given to Create is too short to be safe, or
	// holds characters a client cannot send in an Authorization header.
	ErrBadKey = errors.New("API key too short (need at least 32 characters, printable ASCII without spaces)")
	// ErrKeyExists means a key given to Create is already stored.
	ErrKeyExists = errors.New("an API key with this secret already exists")
)

var migrations = []store.Migration{
	{SQL: `CREATE TABLE auth_keys (
		id TEXT PRIMARY KEY,
		name TEXT NOT NULL,
		account TEXT NOT NULL,
		hash TEXT NOT NULL UNIQUE,
		hint TEXT NOT NULL,
		created_at INTEGER NOT NULL,
		revoked_at INTEGER)`},
	{SQL: `CREATE TABLE auth_admin (
		id INTEGER PRIMARY KEY,
		hash TEXT NOT NULL,
		created_at INTEGER NOT NULL)`},
}

// Key is a stored API key (never the key itself).
type Key struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Account   string     `json:"account"`
	Hint      string     `json:"hint"` // first characters, for people to tell keys apart
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// Keys is the API key store.
type Keys struct {
	db *store.DB

	// cache holds recently verified keys by hash, so the hot path of every
	// request does not query the database. An entry lives verifyTTL: a key
	// revoked through this process is dropped at once, one revoked through
	// another orchestrator replica stops working within verifyTTL.
	mu    sync.Mutex
	cache map[string]cachedKey
}

type cachedKey struct {
	key     Key
	expires time.Time
}

// verifyTTL bounds how long a verified key is trusted without a lookup.
const verifyTTL = 5 * time.Second

// Open migrates the auth tables and returns the key store.
func Open(ctx context.Context, db *store.DB) (*Keys, error) {
	if err := db.Migrate(ctx, "auth", migrations); err != nil {
		return nil, err
	}
	return &Keys{db: db, cache: map[string]cachedKey{}}, nil
}

// Hash returns the hex SHA-256 of a secret. A fast hash is enough because
// keys are 256-bit random values, not passwords.
func Hash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// NewSecret returns a random secret of 32 bytes, URL-safe, with prefix.
func NewSecret(prefix string) string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand panics on failure)
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

func newID(prefix string) string {
	b := make([]byte, 6)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// Create stores a new key for account (default: name, or "default") and
// returns it with the secret, which is not retrievable later. If secret is
// non-empty it is used instead of a random one (operators importing a key).
func (k *Keys) Create(ctx context.Context, name, account, secret string) (Key, string, error) {
	if secret == "" {
		secret = NewSecret(KeyPrefix)
	} else if len(secret) < 32 || strings.IndexFunc(secret, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0 {
		return Key{}, "", ErrBadKey
	} else {
		// An imported key may collide; say so rather than fail the INSERT.
		var n int
		if err := k.db.QueryRowContext(ctx, k.db.Rebind(`SELECT COUNT(*) FROM auth_keys WHERE hash = ?`), Hash(secret)).Scan(&n); err != nil {
			return Key{}, "", fmt.Errorf("create key: %w", err)
		}
		if n > 0 {
			return Key{}, "", ErrKeyExists
		}
	}
	if name == "" {
		name = "key"
	}
	if account == "" {
		account = "default"
	}
	key := Key{ID: newID("key_"), Name: name, Account: account, Hint: hint(secret), CreatedAt: time.Now().UTC().Truncate(time.Second)}
	_, err := k.db.ExecContext(ctx, k.db.Rebind(`INSERT INTO auth_keys (id, name, account, hash, hint, created_at) VALUES (?, ?, ?, ?, ?, ?)`),
		key.ID, key.Name, key.Account, Hash(secret), key.Hint, key.CreatedAt.Unix())
	if err != nil {
		return Key{}, "", fmt.Errorf("create key: %w", err)
	}
	return key, secret, nil
}

func hint(secret string) string {
	if len(secret) <= 8 {
		return "…"
	}
	return secret[:7] + "…"
}

// Verify returns the key whose secret this is, or ErrInvalidKey.
func (k *Keys) Verify(ctx context.Context, secret string) (Key, error) {
	if secret == "" {
		return Key{}, ErrInvalidKey
	}
	h := Hash(secret)
	now := time.Now()
	k.mu.Lock()
	c, ok := k.cache[h]
	k.mu.Unlock()
	if ok && now.Before(c.expires) {
		return c.key, nil
	}
	row := k.db.QueryRowContext(ctx, k.db.Rebind(`SELECT id, name, account, hint, created_at, revoked_at FROM auth_keys WHERE hash = ?`), h)
	key, err := scanKey(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Key{}, ErrInvalidKey
	}
	if err != nil {
		return Key{}, fmt.Errorf("verify key: %w", err)
	}
	if key.RevokedAt != nil {
		return Key{}, ErrInvalidKey
	}
	k.mu.Lock()
	if len(k.cache) > 100_000 {
		clear(k.cache) // bounded: many keys in a burst just cost lookups
	}
	k.cache[h] = cachedKey{key: key, expires: now.Add(verifyTTL)}
	k.mu.Unlock()
	return key, nil
}

// forget drops key id from the verification cache.
func (k *Keys) forget(id string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for h, c := range k.cache {
		if c.key.ID == id {
			delete(k.cache, h)
		}
	}
}

// List returns every key, newest first, revoked ones included.
func (k *Keys) List(ctx context.Context) ([]Key, error) {
	rows, err := k.db.QueryContext(ctx, `SELECT id, name, account, hint, created_at, revoked_at FROM auth_keys ORDER BY created_at DESC, id`)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	defer rows.Close()
	var out []Key
	for rows.Next() {
		key, err := scanKey(rows)
		if err != nil {
			return nil, fmt.Errorf("list keys: %w", err)
		}
		out = append(out, key)
	}
	return out, rows.Err()
}

// Revoke marks key id revoked; requests with it get 401 from then on.
func (k *Keys) Revoke(ctx context.Context, id string) error {
	defer k.forget(id)
	res, err := k.db.ExecContext(ctx, k.db.Rebind(`UPDATE auth_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`), time.Now().Unix(), id)
	if err != nil {
		return fmt.Errorf("revoke key: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		var exists int
		if err := k.db.QueryRowContext(ctx, k.db.Rebind(`SELECT COUNT(*) FROM auth_keys WHERE id = ?`), id).Scan(&exists); err != nil {
			return fmt.Errorf("revoke key: %w", err)
		}
		if exists == 0 {
			return ErrNotFound
		}
	}
	return nil
}

type scanner interface{ Scan(...any) error }

func scanKey(s scanner) (Key, error) {
	var key Key
	var created int64
	var revoked sql.NullInt64
	if err := s.Scan(&key.ID, &key.Name, &key.Account, &key.Hint, &created, &revoked); err != nil {
		return Key{}, err
	}
	key.CreatedAt = time.Unix(created, 0).UTC()
	if revoked.Valid {
		t := time.Unix(revoked.Int64, 0).UTC()
		key.RevokedAt = &t
	}
	return key, nil
}

// AdminToken checks the operator's admin token. Only the token's hash is
// kept, in memory and in the database.
type AdminToken struct {
	hash [sha256.Size]byte
}

// SetupAdmin decides the admin token. A non-empty token (from the flag or
// the environment) is used and its hash stored. With none, the stored hash
// from an earlier start is used; with none stored either, a token is
// generated, stored hashed and returned in generated so the caller can show
// it once.
func (k *Keys) SetupAdmin(ctx context.Context, token string) (a *AdminToken, generated string, err error) {
	if token == "" {
		var h string
		err := k.db.QueryRowContext(ctx, `SELECT hash FROM auth_admin WHERE id = 1`).Scan(&h)
		if err == nil {
			a := &AdminToken{}
			if b, err := hex.DecodeString(h); err == nil && len(b) == sha256.Size {
				copy(a.hash[:], b)
				return a, "", nil
			}
			return nil, "", errors.New("stored admin token hash is corrupt")
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return nil, "", fmt.Errorf("read admin token: %w", err)
		}
		token = NewSecret("padm-")
		generated = token
	}
	if len(token) < 16 {
		return nil, "", errors.New("admin token too short (need at least 16 characters)")
	}
	h := Hash(token)
	err = k.db.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM auth_admin WHERE id = 1`); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, k.db.Rebind(`INSERT INTO auth_admin (id, hash, created_at) VALUES (1, ?, ?)`), h, time.Now().Unix())
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("store admin token: %w", err)
	}
	return NewAdminToken(token), generated, nil
}

// NewAdminToken returns a checker for token without storing it.
func NewAdminToken(token string) *AdminToken {
	return &AdminToken{hash: sha256.Sum256([]byte(token))}
}

// Check reports whether token is the admin token, in constant time.
func (a *AdminToken) Check(token string) bool {
	if token == "" {
		return false
	}
	h := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(h[:], a.hash[:]) == 1
}

// BearerToken returns the token of an "Authorization: Bearer <token>"
// header value, or "".
func BearerToken(header string) string {
	const p = "bearer "
	if len(header) < len(p) || !strings.EqualFold(header[:len(p)], p) {
		return ""
	}
	return strings.TrimSpace(header[len(p):])
}
