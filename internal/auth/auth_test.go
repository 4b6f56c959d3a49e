package auth_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/peerllm/peerllm/internal/auth"
	"github.com/peerllm/peerllm/internal/store"
)

func TestKeys(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "k.db")
	db, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	keys, err := auth.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	k, secret, err := keys.Create(ctx, "alice", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, auth.KeyPrefix) || len(secret) < 40 || k.Account != "default" {
		t.Fatalf("key %+v secret %q", k, secret)
	}
	got, err := keys.Verify(ctx, secret)
	if err != nil || got.ID != k.ID {
		t.Fatalf("verify: %+v %v", got, err)
	}
	for _, bad := range []string{"", "pk-wrong", secret + "x"} {
		if _, err := keys.Verify(ctx, bad); !errors.Is(err, auth.ErrInvalidKey) {
			t.Fatalf("verify %q: %v", bad, err)
		}
	}
	for _, tc := range []struct {
		name, secret string
		want         error
	}{
		{"too short", "tooshort", auth.ErrBadKey},
		{"a space", "pk-has a space-0123456789abcdef0123456789", auth.ErrBadKey},
		{"not ASCII", "pk-ünïcödé-0123456789abcdef0123456789", auth.ErrBadKey},
		{"already stored", secret, auth.ErrKeyExists},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := keys.Create(ctx, "imported", "", tc.secret); !errors.Is(err, tc.want) {
				t.Fatalf("create %q: %v, want %v", tc.secret, err, tc.want)
			}
		})
	}
	if err := keys.Revoke(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := keys.Verify(ctx, secret); !errors.Is(err, auth.ErrInvalidKey) {
		t.Fatalf("revoked key verified: %v", err)
	}
	if err := keys.Revoke(ctx, "key_nope"); !errors.Is(err, auth.ErrNotFound) {
		t.Fatalf("revoke unknown: %v", err)
	}
	list, err := keys.List(ctx)
	if err != nil || len(list) != 1 || list[0].RevokedAt == nil {
		t.Fatalf("list %+v %v", list, err)
	}
	db.Close()
	// Only the hash is stored.
	for _, f := range []string{path, path + "-wal"} {
		b, _ := os.ReadFile(f)
		if strings.Contains(string(b), secret) {
			t.Fatalf("%s holds the key", f)
		}
	}
}

func TestAdminToken(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "a.db")
	open := func() (*auth.Keys, func()) {
		db, err := store.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		k, err := auth.Open(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		return k, func() { db.Close() }
	}
	k, closeDB := open()
	a, gen, err := k.SetupAdmin(ctx, "")
	if err != nil || gen == "" || !a.Check(gen) || a.Check("") || a.Check(gen+"x") {
		t.Fatalf("generated: %q %v", gen, err)
	}
	closeDB()
	// A restart without a token keeps the stored one and shows nothing.
	k, closeDB = open()
	a, gen2, err := k.SetupAdmin(ctx, "")
	if err != nil || gen2 != "" || !a.Check(gen) {
		t.Fatalf("restart: %q %v", gen2, err)
	}
	// An explicit token replaces it.
	a, _, err = k.SetupAdmin(ctx, "operator-chosen-token-123")
	if err != nil || !a.Check("operator-chosen-token-123") || a.Check(gen) {
		t.Fatalf("explicit: %v", err)
	}
	closeDB()
	if auth.BearerToken("Bearer abc ") != "abc" || auth.BearerToken("bearer x") != "x" || auth.BearerToken("Basic x") != "" {
		t.Fatal("BearerToken")
	}
}
