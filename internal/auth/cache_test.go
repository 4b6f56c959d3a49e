package auth_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/peerllm/peerllm/internal/auth"
	"github.com/peerllm/peerllm/internal/store"
)

// TestRevokeBeatsTheCache: a key verified a moment ago (and so cached) stops
// working the instant it is revoked.
func TestRevokeBeatsTheCache(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	keys, err := auth.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	k, secret, err := keys.Create(ctx, "a", "acct", "")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second is served from the cache
		if got, err := keys.Verify(ctx, secret); err != nil || got.ID != k.ID {
			t.Fatalf("verify: %v %v", got, err)
		}
	}
	if err := keys.Revoke(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := keys.Verify(ctx, secret); !errors.Is(err, auth.ErrInvalidKey) {
		t.Fatalf("revoked key verified: %v", err)
	}
}
