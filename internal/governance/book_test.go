package governance_test

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/peerllm/peerllm/internal/governance"
	"github.com/peerllm/peerllm/internal/testenv"
)

func TestBookUptimeAndKeyTiers(t *testing.T) {
	for _, d := range testenv.Databases(t) {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			db := testenv.OpenStore(t, d)
			now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
			clock := func() time.Time { return now }
			b, err := governance.OpenBook(ctx, db, clock)
			if err != nil {
				t.Fatal(err)
			}
			// h1 online 3 periods of 4, h2 never; one period 40 days ago
			// falls out of the window.
			for _, on := range []bool{true, true, false, true} {
				if err := b.RecordUptime(ctx, map[string]bool{"h1": on, "h2": false}, time.Minute); err != nil {
					t.Fatal(err)
				}
			}
			now = now.Add(-40 * 24 * time.Hour)
			if err := b.RecordUptime(ctx, map[string]bool{"h1": false, "h3": true}, time.Hour); err != nil {
				t.Fatal(err)
			}
			now = now.Add(40 * 24 * time.Hour)
			up, err := b.Uptime(ctx, 30*24*time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(up["h1"]-0.75) > 1e-9 || up["h2"] != 0 || len(up) != 2 {
				t.Fatalf("uptime = %v, want h1 0.75, h2 0, no h3", up)
			}
			active, err := b.ActiveHosts(ctx, 30*24*time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if !active["h1"] || active["h2"] || active["h3"] {
				t.Fatalf("active = %v", active)
			}

			if err := b.SetKeyTier(ctx, "k1", "enterprise"); err != nil {
				t.Fatal(err)
			}
			if err := b.SetKeyTier(ctx, "k1", "enterprise"); err != nil { // idempotent
				t.Fatal(err)
			}
			if err := b.SetKeyTier(ctx, "k2", "gold"); !errors.Is(err, governance.ErrBadTier) {
				t.Fatalf("bad tier: %v", err)
			}
			b2, err := governance.OpenBook(ctx, db, clock) // reloads from the store
			if err != nil {
				t.Fatal(err)
			}
			if b2.KeyTier("k1") != "enterprise" || b2.KeyTier("k2") != "" {
				t.Fatalf("reloaded tiers: %q %q", b2.KeyTier("k1"), b2.KeyTier("k2"))
			}
			if err := b2.SetKeyTier(ctx, "k1", "standard"); err != nil || b2.KeyTier("k1") != "" {
				t.Fatalf("clear: %v %q", err, b2.KeyTier("k1"))
			}
		})
	}
}
