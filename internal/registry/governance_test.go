package registry_test

import (
	"context"
	"errors"
	"testing"

	"github.com/peerllm/peerllm/internal/registry"
)

func TestFallbackAndTier(t *testing.T) {
	ctx := context.Background()
	r, db := open(t, nil)
	fbh, _, err := r.AddHost(ctx, registry.HostSpec{Name: "op", Owner: "operator", Fallback: true})
	if err != nil {
		t.Fatal(err)
	}
	ch, _, err := r.AddHost(ctx, registry.HostSpec{Name: "alice", Owner: "alice", Tier: registry.TierEnterprise})
	if err != nil {
		t.Fatal(err)
	}
	if !fbh.Fallback || !r.Fallback(fbh.ID) || ch.Fallback || r.Fallback(ch.ID) {
		t.Fatalf("fallback flags: %v %v %v %v", fbh.Fallback, r.Fallback(fbh.ID), ch.Fallback, r.Fallback(ch.ID))
	}
	if err := r.SetFallback(ctx, fbh.ID, false); err != nil {
		t.Fatal(err)
	}
	if err := r.SetTier(ctx, ch.ID, registry.TierStandard); err != nil {
		t.Fatal(err)
	}
	// A fresh registry over the same store sees what was persisted.
	r2, err := registry.Open(ctx, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	h, err := r2.Host(ctx, ch.ID)
	if err != nil {
		t.Fatal(err)
	}
	if h.Tier != registry.TierStandard || r2.Fallback(fbh.ID) {
		t.Fatalf("after reopen: tier %q, fallback %v", h.Tier, r2.Fallback(fbh.ID))
	}
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"unknown host tier", r.SetTier(ctx, "nope", registry.TierStandard), registry.ErrNotFound},
		{"bad tier", r.SetTier(ctx, ch.ID, "gold"), registry.ErrInvalid},
		{"unknown host fallback", r.SetFallback(ctx, "nope", true), registry.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !errors.Is(tc.err, tc.want) {
				t.Fatalf("err = %v, want %v", tc.err, tc.want)
			}
		})
	}
}
