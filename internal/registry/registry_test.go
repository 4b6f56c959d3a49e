package registry_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/peerllm/peerllm/internal/fabric"
	"github.com/peerllm/peerllm/internal/registry"
	"github.com/peerllm/peerllm/internal/store"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func open(t *testing.T, c *clock) (*registry.Registry, *store.DB) {
	t.Helper()
	ctx := context.Background()
	dsn := filepath.Join(t.TempDir(), "peerllm.db")
	if pg := os.Getenv("PEERLLM_TEST_POSTGRES"); pg != "" {
		dsn = postgresSchema(t, pg)
	}
	db, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	opt := registry.Options{}
	if c != nil {
		opt.Now = c.Now
	}
	r, err := registry.OpenOptions(ctx, db, nil, opt)
	if err != nil {
		t.Fatal(err)
	}
	return r, db
}

// postgresSchema makes a fresh schema on the PostgreSQL server at dsn
// (PEERLLM_TEST_POSTGRES, e.g. postgres://postgres@127.0.0.1:5432/db) and
// returns a DSN that uses it, so the tests also run on PostgreSQL.
func postgresSchema(t *testing.T, dsn string) string {
	t.Helper()
	ctx := context.Background()
	admin, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	schema := fmt.Sprintf("registry_test_%d", time.Now().UnixNano())
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if a, err := store.Open(ctx, dsn); err == nil {
			a.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE")
			a.Close()
		}
	})
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return dsn + sep + "search_path=" + schema
}

func TestAddVerifyRemove(t *testing.T) {
	ctx := context.Background()
	r, db := open(t, nil)
	h, secret, err := r.AddHost(ctx, registry.HostSpec{Name: "Alice's Desktop!", Owner: "alice", Region: "eu-west"})
	if err != nil {
		t.Fatal(err)
	}
	if h.Tier != registry.TierStandard || h.Status != registry.StatusActive || h.Owner != "alice" {
		t.Fatalf("host = %+v", h)
	}
	if !fabric.ValidHostID(h.ID) {
		t.Fatalf("id %q is not a valid host id", h.ID)
	}
	tests := []struct {
		name, id, secret string
		want             bool
	}{
		{"right", h.ID, secret, true},
		{"wrong secret", h.ID, secret + "x", false},
		{"empty secret", h.ID, "", false},
		{"unknown host", "nobody", secret, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.VerifyHost(tt.id, tt.secret); got != tt.want {
				t.Fatalf("VerifyHost = %v, want %v", got, tt.want)
			}
		})
	}
	// A second registry on the same database loads the credentials.
	r2, err := registry.Open(ctx, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !r2.VerifyHost(h.ID, secret) {
		t.Fatal("reopened registry does not verify the host")
	}
	if err := r.RemoveHost(ctx, h.ID); err != nil {
		t.Fatal(err)
	}
	if r.VerifyHost(h.ID, secret) {
		t.Fatal("removed host still verifies")
	}
	if _, err := r.Host(ctx, h.ID); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("Host after remove: %v, want ErrNotFound", err)
	}
	if err := r.RemoveHost(ctx, h.ID); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("second remove: %v, want ErrNotFound", err)
	}
}

func TestAddHostInvalid(t *testing.T) {
	r, _ := open(t, nil)
	for _, spec := range []registry.HostSpec{
		{Name: "", Owner: "a"},
		{Name: "x", Owner: ""},
		{Name: "x", Owner: "a", Tier: "gold"},
	} {
		if _, _, err := r.AddHost(context.Background(), spec); !errors.Is(err, registry.ErrInvalid) {
			t.Errorf("AddHost(%+v) = %v, want ErrInvalid", spec, err)
		}
	}
}

func TestStrikeLifecycle(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	r, _ := open(t, c)
	h, secret, err := r.AddHost(ctx, registry.HostSpec{Name: "h", Owner: "o"})
	if err != nil {
		t.Fatal(err)
	}
	st, err := r.Strike(ctx, h.ID, "safety:violence")
	if err != nil || st.Action != registry.ActionWarning || st.Count != 1 {
		t.Fatalf("first strike = %+v, %v; want warning", st, err)
	}
	if err := r.Eligible(h.ID); err != nil {
		t.Fatalf("warned host not eligible: %v", err)
	}
	c.Add(time.Hour)
	st, err = r.Strike(ctx, h.ID, "safety:hate")
	if err != nil || st.Action != registry.ActionSuspend {
		t.Fatalf("second strike = %+v, %v; want suspension", st, err)
	}
	if err := r.Eligible(h.ID); !errors.Is(err, registry.ErrSuspended) {
		t.Fatalf("Eligible = %v, want ErrSuspended", err)
	}
	if !r.VerifyHost(h.ID, secret) {
		t.Fatal("suspended host must still authenticate (it is told why it gets no work)")
	}
	got, _ := r.Host(ctx, h.ID)
	if got.Status != registry.StatusSuspended || got.Strikes != 2 {
		t.Fatalf("host = %+v", got)
	}
	c.Add(25 * time.Hour) // suspension over
	if err := r.Eligible(h.ID); err != nil {
		t.Fatalf("after suspension: %v", err)
	}
	st, err = r.Strike(ctx, h.ID, "safety:hate")
	if err != nil || st.Action != registry.ActionBan || st.Count != 3 {
		t.Fatalf("third strike = %+v, %v; want ban", st, err)
	}
	if r.VerifyHost(h.ID, secret) {
		t.Fatal("banned host still authenticates")
	}
	if err := r.Eligible(h.ID); !errors.Is(err, registry.ErrBanned) {
		t.Fatalf("Eligible = %v, want ErrBanned", err)
	}
	strikes, err := r.Strikes(ctx, h.ID)
	if err != nil || len(strikes) != 3 || strikes[0].Reason != "safety:violence" {
		t.Fatalf("Strikes = %+v, %v", strikes, err)
	}
	if err := r.ClearStrikes(ctx, h.ID); err != nil {
		t.Fatal(err)
	}
	if err := r.Eligible(h.ID); err != nil || !r.VerifyHost(h.ID, secret) {
		t.Fatalf("after ClearStrikes: eligible %v", err)
	}
	if _, err := r.Strike(ctx, "nobody", "x"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("strike unknown host: %v", err)
	}
}

func TestStrikesOutsideWindowWarnOnly(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	r, _ := open(t, c)
	h, _, _ := r.AddHost(ctx, registry.HostSpec{Name: "h", Owner: "o"})
	for i := 0; i < 2; i++ {
		st, err := r.Strike(ctx, h.ID, "safety:x")
		if err != nil || st.Action != registry.ActionWarning {
			t.Fatalf("strike %d = %+v, %v; want warning (strikes 25h apart)", i, st, err)
		}
		c.Add(25 * time.Hour)
	}
}

func TestFiguresAndLive(t *testing.T) {
	ctx := context.Background()
	r, _ := open(t, nil)
	h, _, _ := r.AddHost(ctx, registry.HostSpec{Name: "h", Owner: "o", Tier: registry.TierEnterprise})
	seen := time.Now().Truncate(time.Millisecond)
	for i := 0; i < 2; i++ {
		err := r.RecordFigures(ctx, []registry.FiguresUpdate{{HostID: h.ID, TTFT: 30 * time.Millisecond, MsPerToken: 2.5,
			AddSuccesses: 3, AddFailures: 1, AddDivergences: 1, AddTokens: 100, LastSeen: seen}, {HostID: "unknown", AddTokens: 1}})
		if err != nil {
			t.Fatal(err)
		}
	}
	r.SetLive(h.ID, registry.Live{Online: true, Capacity: 4, InFlight: 1})
	hosts, err := r.ListHosts(ctx)
	if err != nil || len(hosts) != 1 {
		t.Fatalf("ListHosts = %v, %v", hosts, err)
	}
	f := hosts[0].Figures
	want := registry.Figures{TTFT: 30 * time.Millisecond, MsPerToken: 2.5, Successes: 6, Failures: 2, Divergences: 2, Tokens: 200, LastSeen: seen}
	if !f.LastSeen.Equal(want.LastSeen) {
		t.Fatalf("LastSeen = %v, want %v", f.LastSeen, want.LastSeen)
	}
	f.LastSeen = want.LastSeen
	if f != want {
		t.Fatalf("figures = %+v, want %+v", f, want)
	}
	if !hosts[0].Live.Online || hosts[0].Live.Capacity != 4 || hosts[0].Tier != registry.TierEnterprise {
		t.Fatalf("host = %+v", hosts[0])
	}
	r.SetLive(h.ID, registry.Live{})
	if got, _ := r.Host(ctx, h.ID); got.Live.Online {
		t.Fatal("host still online after SetLive(Live{})")
	}
}

func TestRotateSecret(t *testing.T) {
	ctx := context.Background()
	r, db := open(t, nil)
	h, old, err := r.AddHost(ctx, registry.HostSpec{Name: "h", Owner: "o"})
	if err != nil {
		t.Fatal(err)
	}
	secret, err := r.RotateSecret(ctx, h.ID)
	if err != nil {
		t.Fatal(err)
	}
	if secret == old || r.VerifyHost(h.ID, old) || !r.VerifyHost(h.ID, secret) {
		t.Fatal("after rotation the new secret, and only it, must verify")
	}
	r2, err := registry.Open(ctx, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !r2.VerifyHost(h.ID, secret) || r2.VerifyHost(h.ID, old) {
		t.Fatal("rotation not persisted")
	}
	if _, err := r.RotateSecret(ctx, "nobody"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("rotate unknown host: %v", err)
	}
}
