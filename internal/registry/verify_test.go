package registry_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/peerllm/peerllm/internal/registry"
)

func TestDivergedAgainstConsensus(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	r, _ := open(t, c)
	ctx := context.Background()
	h, _, err := r.AddHost(ctx, registry.HostSpec{Name: "liar", Owner: "mallory", Region: "eu"})
	if err != nil {
		t.Fatal(err)
	}
	at := r.Policy().VerifyStrikeAt
	if at != 3 || r.Policy().VerifyWindow != 24*time.Hour {
		t.Fatalf("default verification policy %+v", r.Policy())
	}
	verdict := func() registry.Verdict {
		t.Helper()
		v, err := r.DivergedAgainstConsensus(ctx, h.ID, "verification:token")
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	// Old divergences fall out of the window: two, a day passes, then the
	// count starts again.
	verdict()
	verdict()
	c.Add(25 * time.Hour)
	for i := 1; i < at; i++ {
		if v := verdict(); v.Struck || v.Count != i {
			t.Fatalf("divergence %d: %+v", i, v)
		}
	}
	if st, _ := r.Strikes(ctx, h.ID); len(st) != 0 {
		t.Fatalf("struck below the threshold: %+v", st)
	}
	v := verdict()
	if !v.Struck || v.Count != at || v.Strike.Action != registry.ActionWarning {
		t.Fatalf("threshold divergence: %+v", v)
	}
	st, _ := r.Strikes(ctx, h.ID)
	if len(st) != 1 || st[0].Reason != registry.ReasonVerification {
		t.Fatalf("strikes %+v", st)
	}
	// The counted divergences were used: the next strike needs as many new ones.
	for i := 1; i < at; i++ {
		if v := verdict(); v.Struck {
			t.Fatalf("struck again after %d new divergences", i)
		}
	}
	if v := verdict(); !v.Struck || v.Strike.Action != registry.ActionSuspend {
		t.Fatalf("second threshold: %+v", v)
	}
	if err := r.Eligible(h.ID); err == nil {
		t.Fatal("a suspended host is still eligible")
	}
	if err := r.ClearStrikes(ctx, h.ID); err != nil {
		t.Fatal(err)
	}
	if v := verdict(); v.Count != 1 {
		t.Fatalf("ClearStrikes kept the divergences: %+v", v)
	}
	if _, err := r.DivergedAgainstConsensus(ctx, "nobody-000000", "verification:token"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("unknown host: %v", err)
	}
	if _, err := r.DivergedAgainstConsensus(ctx, h.ID, " "); !errors.Is(err, registry.ErrInvalid) {
		t.Fatalf("empty reason: %v", err)
	}
}
