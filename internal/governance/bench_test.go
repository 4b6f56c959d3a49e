package governance_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/peerllm/peerllm/internal/governance"
	"github.com/peerllm/peerllm/internal/store"
)

// BenchmarkGateFree is the capacity gate's cost on a request that finds a
// free host (the common case): what every request pays.
func BenchmarkGateFree(b *testing.B) {
	g := governance.NewGate(governance.GateConfig{})
	ctx := context.Background()
	fn := func() (bool, error) { return true, nil }
	b.ReportAllocs()
	for b.Loop() {
		if err := g.Run(ctx, "m", fn); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSeatAdmit is one Hello's seat check on SQLite (a region with 50
// seated hosts and a waitlist).
func BenchmarkSeatAdmit(b *testing.B) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(b.TempDir(), "seats.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	s, err := governance.OpenSeats(ctx, db, governance.Policy{MinSeats: 50}, nil)
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < 60; i++ {
		if _, err := s.Admit(ctx, fmt.Sprintf("h%02d", i), "eu"); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if _, err := s.Admit(ctx, fmt.Sprintf("h%02d", i%60), "eu"); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
