package dispatch_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/peerllm/peerllm/internal/dispatch"
	"github.com/peerllm/peerllm/internal/engine"
	"github.com/peerllm/peerllm/internal/engine/benchengine"
	"github.com/peerllm/peerllm/internal/registry"
)

// gate counts the positions the consumer has received; a gated liar waits on
// it. A nil gate never waits.
type gate struct {
	mu sync.Mutex
	n  int
	ch chan struct{} // closed and replaced at every change
}

func newGate() *gate { return &gate{ch: make(chan struct{})} }

func (g *gate) set(n int) {
	g.mu.Lock()
	g.n = n
	close(g.ch)
	g.ch = make(chan struct{})
	g.mu.Unlock()
}

func (g *gate) wait(ctx context.Context, n int) error {
	if g == nil {
		return nil
	}
	for {
		g.mu.Lock()
		ok, ch := g.n >= n, g.ch
		g.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// verifications reads peerllm_dispatch_verifications_total{result}; 0 when
// never counted.
func verifications(t *testing.T, c *cluster, result string) float64 {
	t.Helper()
	families, err := c.metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "peerllm_dispatch_verifications_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestConsensusStrikesLiar runs a lying host among three honest hosts of
// different owners. Honest runs never start a verification; once the liar
// works, every divergence is settled by a third host against the liar, which
// is struck at the threshold, suspended and then gets no tasks, while every
// consumer stream stays identical to an uninterrupted run.
func TestConsensusStrikesLiar(t *testing.T) {
	// Two divergences against consensus give a strike; two strikes suspend.
	c := newClusterOpts(t, testConfig(), registry.Options{Policy: registry.StrikePolicy{VerifyStrikeAt: 2}})
	ctx := context.Background()
	opts := benchengine.Options{Delay: 200 * time.Microsecond}
	var honest []*testHost
	for i, owner := range []string{"alice", "bob", "carol"} {
		honest = append(honest, c.addHost("h"+string(rune('a'+i)), owner, bench(opts)))
	}
	delivered := newGate()
	req := func(i int) dispatch.Request {
		return dispatch.Request{ID: "r", Model: model, Mode: dispatch.ModeParallel, Tier: registry.TierEnterprise,
			Engine: engine.Request{Prompt: "consensus " + string(rune('a'+i%26)), MaxTokens: 40,
				Sampling: engine.Sampling{Temperature: 0.7, Seed: uint64(i + 1)}}}
	}
	generate := func(t *testing.T, i int) dispatch.Outcome {
		t.Helper()
		delivered.set(0)
		r := run(t, ctx, c.d, req(i), delivered.set)
		if r.err != nil {
			t.Fatal(r.err)
		}
		if want := reference(t, req(i).Engine, opts); r.text != want {
			t.Fatalf("request %d: text differs from an uninterrupted run\n got %q\nwant %q", i, r.text, want)
		}
		return r.out
	}

	t.Run("honest runs verify nothing", func(t *testing.T) {
		for i := range 3 {
			generate(t, i)
		}
		for _, res := range []string{dispatch.VerifyConsensusMain, dispatch.VerifyConsensusBackup,
			dispatch.VerifyNoMajority, dispatch.VerifyNoThirdHost} {
			if n := verifications(t, c, res); n != 0 {
				t.Fatalf("verifications{%s} = %v without a divergence", res, n)
			}
		}
	})

	// The liar claims the enterprise tier, so the requests prefer it and it
	// keeps getting work after its first strike.
	fake := c.addHostSpec(registry.HostSpec{Name: "fake", Owner: "mallory", Region: "local", Tier: registry.TierEnterprise},
		map[string]engine.Engine{model: liar{Engine: benchengine.New(opts), gate: delivered}}, 8)

	t.Run("liar struck and suspended", func(t *testing.T) {
		var i int
		for i = 3; i < 80 && c.reg.Eligible(fake.id) == nil; i++ {
			generate(t, i)
		}
		// The verdict is recorded off the consumer's path: wait for it.
		waitFor(t, "liar suspended", func() bool { return c.reg.Eligible(fake.id) != nil })
		st, err := c.reg.Strikes(ctx, fake.id)
		if err != nil {
			t.Fatal(err)
		}
		if len(st) != 2 || st[0].Reason != registry.ReasonVerification || st[1].Reason != registry.ReasonVerification {
			t.Fatalf("liar strikes %+v, want two %s", st, registry.ReasonVerification)
		}
		if n := verifications(t, c, dispatch.VerifyConsensusMain) + verifications(t, c, dispatch.VerifyConsensusBackup); n < 4 {
			t.Fatalf("%v verdicts against the liar, want >= 4", n)
		}
		for _, h := range honest {
			if st, _ := c.reg.Strikes(ctx, h.id); len(st) != 0 {
				t.Fatalf("honest host %s struck: %+v", h.id, st)
			}
		}
		t.Logf("liar suspended after %d requests", i-3)
	})

	t.Run("suspended liar gets no tasks", func(t *testing.T) {
		for i := 100; i < 105; i++ {
			if out := generate(t, i); out.HostTokens[fake.id] != 0 {
				t.Fatalf("request %d ran %d tokens on the suspended liar", i, out.HostTokens[fake.id])
			}
		}
	})
}

// TestConsensusAgainstLeader runs a liar faster than its peers, so the
// consumer's stream follows it: the host that disagrees with it is dropped,
// the third host sides with that one, and the request moves off the liar to
// an honest host for the rest of the answer. (The tokens the liar delivered
// before the verdict are not taken back: the stream never waits.)
func TestConsensusAgainstLeader(t *testing.T) {
	c := newCluster(t, testConfig())
	ctx := context.Background()
	for i, owner := range []string{"alice", "bob", "carol"} {
		c.addHost("h"+string(rune('a'+i)), owner, bench(benchengine.Options{Delay: 2500 * time.Microsecond}))
	}
	fake := c.addHostSpec(registry.HostSpec{Name: "fake", Owner: "mallory", Region: "local", Tier: registry.TierEnterprise},
		map[string]engine.Engine{model: liar{Engine: benchengine.New(benchengine.Options{Model: model, Delay: time.Millisecond})}}, 8)
	var last string
	out, err := c.d.Generate(ctx, dispatch.Request{ID: "lead", Model: model, Mode: dispatch.ModeParallel, Tier: registry.TierEnterprise,
		Engine: greedy("the liar leads", 200)}, func(dl dispatch.Delta) error {
		last = dl.Host
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if out.CompletionTokens != 200 {
		t.Fatalf("outcome %+v", out)
	}
	if n := verifications(t, c, dispatch.VerifyConsensusBackup); n != 1 {
		t.Fatalf("verifications{consensus_backup} = %v, want 1", n)
	}
	if out.HostTokens[fake.id] == 0 || last == fake.id || last == "" {
		t.Fatalf("the answer ended on %q (liar %s, host tokens %v): it should have moved to an honest host", last, fake.id, out.HostTokens)
	}
}
