// Package store owns the SQL connection: embedded SQLite (pure Go, the
// default) or PostgreSQL (when several orchestrator replicas share state),
// and the schema migrations of every component. Feature packages (registry,
// ledger, ...) keep their own queries and hand their schema to Migrate; they
// write queries with '?' placeholders and pass them through Rebind.
//
// Nothing in this package, or in any table, holds prompt or answer text.
package store

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
	_ "modernc.org/sqlite"             // registers "sqlite"
)

// Dialect names the SQL flavour behind a DB.
type Dialect string

// The supported dialects.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// DB is an open store.
type DB struct {
	*sql.DB
	Dialect Dialect
}

// Open opens dsn: a "postgres://" or "postgresql://" URL selects PostgreSQL;
// anything else is a SQLite file path (created with its directory), or
// ":memory:" for a private in-memory database.
func Open(ctx context.Context, dsn string) (*DB, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			return nil, fmt.Errorf("open postgres: %w", err)
		}
		if err := db.PingContext(ctx); err != nil {
			db.Close()
			return nil, fmt.Errorf("connect postgres: %w", err)
		}
		return &DB{DB: db, Dialect: Postgres}, nil
	}
	name := dsn
	if dsn != ":memory:" {
		if err := os.MkdirAll(filepath.Dir(dsn), 0o700); err != nil {
			return nil, fmt.Errorf("create data directory: %w", err)
		}
		name = "file:" + dsn
	} else {
		name = "file::memory:"
	}
	// WAL lets readers run beside the one writer; busy_timeout makes a second
	// writer wait instead of failing; foreign keys are off by default in SQLite.
	name += "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	db, err := sql.Open("sqlite", name)
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	// One connection: SQLite has one writer anyway, and an in-memory database
	// exists per connection.
	db.SetMaxOpenConns(1)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", dsn, err)
	}
	return &DB{DB: db, Dialect: SQLite}, nil
}

// Rebind rewrites '?' placeholders for the DB's dialect ($1, $2, ... on
// PostgreSQL). Question marks inside single-quoted literals are left alone.
func (db *DB) Rebind(query string) string {
	if db.Dialect != Postgres {
		return query
	}
	var b strings.Builder
	n, quoted := 0, false
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case c == '\'':
			quoted = !quoted
		case c == '?' && !quoted:
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// Migration is one schema step: a single statement. SQL runs as is on SQLite; PostgresSQL, when
// set, replaces it on PostgreSQL (types differ: BLOB/BYTEA, autoincrement).
type Migration struct {
	SQL         string
	PostgresSQL string
}

// Migrate applies the steps of component that have not run yet, each in its
// own transaction, recording them in schema_migrations. Steps are append-only:
// never edit or reorder a released step.
func (db *DB) Migrate(ctx context.Context, component string, steps []Migration) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		component TEXT NOT NULL, version INTEGER NOT NULL, PRIMARY KEY (component, version))`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	for i, step := range steps {
		version := i + 1
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("migrate %s: %w", component, err)
		}
		var done int
		err = tx.QueryRowContext(ctx, db.Rebind(`SELECT COUNT(*) FROM schema_migrations WHERE component = ? AND version = ?`), component, version).Scan(&done)
		if err == nil && done == 0 {
			q := step.SQL
			if db.Dialect == Postgres && step.PostgresSQL != "" {
				q = step.PostgresSQL
			}
			if _, err = tx.ExecContext(ctx, q); err == nil {
				_, err = tx.ExecContext(ctx, db.Rebind(`INSERT INTO schema_migrations (component, version) VALUES (?, ?)`), component, version)
			}
		}
		if err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate %s step %d: %w", component, version, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migrate %s step %d: %w", component, version, err)
		}
	}
	return nil
}

// InTx runs fn in a transaction, committing when it returns nil.
func (db *DB) InTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}
