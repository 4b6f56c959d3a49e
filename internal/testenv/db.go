package testenv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver for creating test databases

	"github.com/peerllm/peerllm/internal/store"
)

// Database is a fresh, empty store for one test.
type Database struct {
	Name string // "sqlite" or "postgres"
	DSN  string
}

// Databases returns the stores a test about SQL should run on: always a
// SQLite file in a temp dir, and a fresh PostgreSQL database when
// PEERLLM_TEST_POSTGRES holds a server URL (.ci/run starts one). Under CI a
// missing PostgreSQL fails the test instead of skipping it.
func Databases(t testing.TB) []Database {
	t.Helper()
	dbs := []Database{{Name: "sqlite", DSN: filepath.Join(t.TempDir(), "peerllm.db")}}
	base := os.Getenv("PEERLLM_TEST_POSTGRES")
	if base == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("PEERLLM_TEST_POSTGRES is not set: CI must run the PostgreSQL tests")
		}
		t.Log("PEERLLM_TEST_POSTGRES not set: PostgreSQL part skipped")
		return dbs
	}
	b := make([]byte, 6)
	rand.Read(b)
	name := "peerllm_test_" + hex.EncodeToString(b)
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	defer admin.Close()
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("postgres: create database: %v", err)
	}
	t.Cleanup(func() {
		admin, err := sql.Open("pgx", base)
		if err != nil {
			return
		}
		defer admin.Close()
		admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
	})
	dsn := replaceDBName(base, name)
	return append(dbs, Database{Name: "postgres", DSN: dsn})
}

// replaceDBName swaps the database path of a postgres:// URL.
func replaceDBName(url, name string) string {
	q := ""
	if i := strings.IndexByte(url, '?'); i >= 0 {
		url, q = url[:i], url[i:]
	}
	scheme := strings.Index(url, "://") + 3
	if slash := strings.IndexByte(url[scheme:], '/'); slash >= 0 {
		url = url[:scheme+slash]
	}
	return url + "/" + name + q
}

// OpenStore opens d and closes it when the test ends.
func OpenStore(t testing.TB, d Database) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), d.DSN)
	if err != nil {
		t.Fatalf("open %s store: %v", d.Name, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
