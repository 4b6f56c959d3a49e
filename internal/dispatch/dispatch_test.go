package dispatch_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"

	"github.com/peerllm/peerllm/internal/dispatch"
	"github.com/peerllm/peerllm/internal/engine"
	"github.com/peerllm/peerllm/internal/engine/benchengine"
	"github.com/peerllm/peerllm/internal/engine/llama"
	"github.com/peerllm/peerllm/internal/fabric"
	"github.com/peerllm/peerllm/internal/registry"
	"github.com/peerllm/peerllm/internal/testenv"
)

const model = "bench"

func bench(opts benchengine.Options) map[string]engine.Engine {
	opts.Model = model
	return map[string]engine.Engine{model: benchengine.New(opts)}
}

// reference is the text an uninterrupted run of the same request produces on
// one engine, called directly.
func reference(t testing.TB, req engine.Request, opts benchengine.Options) string {
	t.Helper()
	opts.Model = model
	var b strings.Builder
	_, err := benchengine.New(opts).Generate(context.Background(), req, func(tok engine.Token) error {
		b.WriteString(tok.Text)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

type result struct {
	text   string
	tokens int
	out    dispatch.Outcome
	err    error
}

// run calls Generate and checks every delta is valid UTF-8 and non-empty;
// onDelta, when set, is called after each delta with the tokens so far.
func run(t testing.TB, ctx context.Context, d *dispatch.Dispatcher, req dispatch.Request, onDelta func(tokens int)) result {
	t.Helper()
	var r result
	var b strings.Builder
	r.out, r.err = d.Generate(ctx, req, func(dl dispatch.Delta) error {
		if !utf8.ValidString(dl.Text) || dl.Tokens < 1 {
			t.Errorf("bad delta %q (%d tokens)", dl.Text, dl.Tokens)
		}
		b.WriteString(dl.Text)
		r.tokens += dl.Tokens
		if onDelta != nil {
			onDelta(r.tokens)
		}
		return nil
	})
	r.text = b.String()
	return r
}

func greedy(prompt string, maxTokens int) engine.Request {
	return engine.Request{Prompt: prompt, MaxTokens: maxTokens}
}

func TestGenerateMatchesUninterruptedRun(t *testing.T) {
	c := newCluster(t, testConfig())
	opts := benchengine.Options{Multibyte: true}
	for i, owner := range []string{"alice", "bob", "carol"} {
		c.addHost("h"+string(rune('a'+i)), owner, bench(opts))
	}
	tests := []struct {
		name string
		mode string
		req  engine.Request
	}{
		{"parallel", dispatch.ModeParallel, greedy("Once upon a time", 100)},
		{"hedged", dispatch.ModeHedged, greedy("Once upon a time", 100)},
		{"off", dispatch.ModeOff, greedy("Once upon a time", 100)},
		{"one segment", dispatch.ModeParallel, greedy("short", 3)},
		{"sampled with a seed", dispatch.ModeParallel, engine.Request{Prompt: "x", MaxTokens: 60,
			Sampling: engine.Sampling{Temperature: 0.8, Seed: 42}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, context.Background(), c.d, dispatch.Request{ID: tt.name, Model: model, Engine: tt.req, Mode: tt.mode}, nil)
			if r.err != nil {
				t.Fatal(r.err)
			}
			if want := reference(t, tt.req, opts); r.text != want {
				t.Fatalf("text differs from an uninterrupted run\n got %q\nwant %q", r.text, want)
			}
			if r.out.FinishReason != "length" || r.out.CompletionTokens != tt.req.MaxTokens || r.tokens != tt.req.MaxTokens {
				t.Fatalf("outcome %+v, %d tokens in deltas; want length after %d", r.out, r.tokens, tt.req.MaxTokens)
			}
			if r.out.Failovers != 0 || r.out.PromptTokens == 0 || r.out.TTFT <= 0 {
				t.Fatalf("outcome %+v", r.out)
			}
			sum := 0
			for _, n := range r.out.HostTokens {
				sum += n
			}
			if sum < tt.req.MaxTokens {
				t.Fatalf("host tokens %v sum to %d < %d delivered", r.out.HostTokens, sum, tt.req.MaxTokens)
			}
		})
	}
}

func TestStopAtEndOfSequence(t *testing.T) {
	c := newCluster(t, testConfig())
	opts := benchengine.Options{EOSAt: 37}
	c.addHost("a", "alice", bench(opts))
	c.addHost("b", "bob", bench(opts))
	req := greedy("tell me", 0)
	r := run(t, context.Background(), c.d, dispatch.Request{Model: model, Engine: req}, nil)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if want := reference(t, req, opts); r.text != want || r.out.FinishReason != "stop" || r.out.CompletionTokens != 37 {
		t.Fatalf("got %q (%+v), want %q stopping after 37 tokens", r.text, r.out, want)
	}
}

// busiest is the host agent streaming the most: in flight, most tokens. At a
// segment boundary no task may be in flight for a moment; it polls (the
// consumer callback blocking briefly is a slow consumer, which is fine).
func busiest(c *cluster, alive []*testHost) *testHost {
	deadline := time.Now().Add(2 * time.Second)
	for {
		var best *testHost
		var bestTokens uint64
		for _, h := range alive {
			s := h.agent.Stats()
			if s.InFlight > 0 && (best == nil || s.Tokens > bestTokens) {
				best, bestTokens = h, s.Tokens
			}
		}
		if best != nil || time.Now().After(deadline) {
			return best
		}
		time.Sleep(time.Millisecond)
	}
}

// TestFailoverWhenHostsDie cuts the streaming host off the network mid-answer
// (once, then a second one) and checks the consumer's text is exactly the
// uninterrupted greedy text: no duplicated, no missing token.
func TestFailoverWhenHostsDie(t *testing.T) {
	opts := benchengine.Options{Delay: 2 * time.Millisecond, Multibyte: true}
	tests := []struct {
		name   string
		mode   string
		killAt []int // consumer token counts at which to cut the busiest host
	}{
		{"off, one death", dispatch.ModeOff, []int{20}},
		{"parallel, one death", dispatch.ModeParallel, []int{20}},
		{"hedged, one death", dispatch.ModeHedged, []int{20}},
		{"parallel, two of three die", dispatch.ModeParallel, []int{20, 60}},
		{"off, two of three die", dispatch.ModeOff, []int{20, 60}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t, testConfig())
			alive := []*testHost{
				c.addHost("a", "alice", bench(opts)),
				c.addHost("b", "bob", bench(opts)),
				c.addHost("c", "carol", bench(opts)),
			}
			req := greedy("The failing host", 90)
			kills := tt.killAt
			var killed []string
			r := run(t, context.Background(), c.d, dispatch.Request{ID: "kill", Model: model, Engine: req, Mode: tt.mode}, func(n int) {
				if len(kills) == 0 || n < kills[0] {
					return
				}
				kills = kills[1:]
				h := busiest(c, alive)
				if h == nil {
					t.Errorf("no host streaming at token %d", n)
					return
				}
				h.proxy.Cut()
				killed = append(killed, h.id)
				for i, x := range alive {
					if x == h {
						alive = append(alive[:i], alive[i+1:]...)
						break
					}
				}
			})
			if r.err != nil {
				t.Fatalf("Generate: %v (killed %v)", r.err, killed)
			}
			if want := reference(t, req, opts); r.text != want {
				t.Fatalf("text differs from an uninterrupted run after killing %v\n got %q\nwant %q", killed, r.text, want)
			}
			if r.tokens != req.MaxTokens || r.out.CompletionTokens != req.MaxTokens {
				t.Fatalf("%d tokens delivered, outcome %+v; want %d", r.tokens, r.out, req.MaxTokens)
			}
			if len(killed) != len(tt.killAt) {
				t.Fatalf("killed %v, want %d hosts", killed, len(tt.killAt))
			}
			if tt.mode == dispatch.ModeOff && r.out.Failovers < len(killed) {
				t.Fatalf("failovers = %d, want >= %d", r.out.Failovers, len(killed))
			}
		})
	}
}

// stallOnce returns an engine hook that blocks the first generation to reach
// index at until its task is cancelled (a stalled host: alive, heartbeating,
// producing nothing). release unblocks it at cleanup.
func stallOnce(at int, release <-chan struct{}) (func(context.Context, int) error, *atomic.Bool) {
	var fired atomic.Bool
	return func(ctx context.Context, i int) error {
		if i == at && fired.CompareAndSwap(false, true) {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-release:
				return errors.New("released")
			}
		}
		return nil
	}, &fired
}

func TestFailoverWhenHostStalls(t *testing.T) {
	for _, mode := range []string{dispatch.ModeOff, dispatch.ModeParallel, dispatch.ModeHedged} {
		t.Run(mode, func(t *testing.T) {
			c := newCluster(t, testConfig())
			release := make(chan struct{})
			t.Cleanup(func() { close(release) })
			hook, fired := stallOnce(25, release)
			// A stalling engine: the real bench engine with a hook that blocks.
			opts := benchengine.Options{BeforeToken: hook}
			c.addHost("a", "alice", bench(opts))
			c.addHost("b", "bob", bench(opts))
			req := greedy("stall here", 60)
			r := run(t, context.Background(), c.d, dispatch.Request{Model: model, Engine: req, Mode: mode}, nil)
			if r.err != nil {
				t.Fatal(r.err)
			}
			if !fired.Load() {
				t.Fatal("no host stalled")
			}
			if want := reference(t, req, benchengine.Options{}); r.text != want {
				t.Fatalf("text differs from an uninterrupted run\n got %q\nwant %q", r.text, want)
			}
			if mode == dispatch.ModeOff && r.out.Failovers < 1 {
				t.Fatalf("failovers = %d, want at least 1", r.out.Failovers)
			}
			if mode == dispatch.ModeHedged && r.out.Hedges < 1 {
				t.Fatalf("hedges = %d, want a hedge for the stalled main", r.out.Hedges)
			}
		})
	}
}

func TestConsumerCancelStopsHostTasks(t *testing.T) {
	c := newCluster(t, testConfig())
	opts := benchengine.Options{Delay: 2 * time.Millisecond}
	hosts := []*testHost{c.addHost("a", "alice", bench(opts)), c.addHost("b", "bob", bench(opts))}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := run(t, ctx, c.d, dispatch.Request{Model: model, Engine: greedy("long", 3000), Mode: dispatch.ModeParallel}, func(n int) {
		if n >= 10 { // a delta may carry several tokens
			cancel()
		}
	})
	if !errors.Is(r.err, context.Canceled) {
		t.Fatalf("Generate = %v, want context.Canceled", r.err)
	}
	waitFor(t, "both host tasks cancelled", func() bool {
		var inflight int
		var cancelled uint64
		for _, h := range hosts {
			s := h.agent.Stats()
			inflight += s.InFlight
			cancelled += s.Cancelled
		}
		return inflight == 0 && cancelled == 2
	})
}

func TestNoHost(t *testing.T) {
	t.Parallel()
	c := newCluster(t, testConfig())
	req := dispatch.Request{Model: model, Engine: greedy("x", 5)}
	if r := run(t, context.Background(), c.d, req, nil); !errors.Is(r.err, dispatch.ErrModelNotFound) {
		t.Fatalf("no host ever: %v, want ErrModelNotFound", r.err)
	}
	h := c.addHost("a", "alice", bench(benchengine.Options{}))
	if r := run(t, context.Background(), c.d, dispatch.Request{Model: "other", Engine: greedy("x", 5)}, nil); !errors.Is(r.err, dispatch.ErrModelNotFound) {
		t.Fatalf("unknown model: %v, want ErrModelNotFound", r.err)
	}
	if r := run(t, context.Background(), c.d, dispatch.Request{Model: model, Engine: greedy("x", 1<<20)}, nil); !errors.Is(r.err, dispatch.ErrContextLength) {
		t.Fatalf("huge max tokens: %v, want ErrContextLength", r.err)
	}
	h.proxy.Cut()
	waitFor(t, "host dead", func() bool { return len(c.d.Models()) == 0 })
	if r := run(t, context.Background(), c.d, req, nil); !errors.Is(r.err, dispatch.ErrNoHost) {
		t.Fatalf("all hosts dead: %v, want ErrNoHost", r.err)
	}
}

func TestSuspendedHostGetsNoWork(t *testing.T) {
	c := newCluster(t, testConfig())
	opts := benchengine.Options{Delay: time.Millisecond}
	bad := c.addHost("bad", "mallory", bench(opts))
	c.addHost("good1", "alice", bench(opts))
	c.addHost("good2", "bob", bench(opts))
	ctx := context.Background()
	for _, reason := range []string{"safety:violence", "safety:hate"} {
		if _, err := c.reg.Strike(ctx, bad.id, reason); err != nil {
			t.Fatal(err)
		}
	}
	if m := c.d.Models(); len(m) != 1 || m[0].Hosts != 2 {
		t.Fatalf("Models = %+v, want bench on 2 hosts", m)
	}
	for i := 0; i < 6; i++ {
		r := run(t, ctx, c.d, dispatch.Request{Model: model, Engine: greedy("p"+string(rune('a'+i)), 20)}, nil)
		if r.err != nil {
			t.Fatal(r.err)
		}
		if n := r.out.HostTokens[bad.id]; n != 0 {
			t.Fatalf("suspended host generated %d tokens", n)
		}
	}
	if s := bad.agent.Stats(); s.Done+s.Cancelled+s.Failed != 0 {
		t.Fatalf("suspended host ran tasks: %+v", s)
	}
}

func TestBackupFromAnotherOwner(t *testing.T) {
	c := newCluster(t, testConfig())
	opts := benchengine.Options{Delay: time.Millisecond}
	owner := map[string]string{}
	for _, h := range []*testHost{
		c.addHost("a1", "alice", bench(opts)),
		c.addHost("a2", "alice", bench(opts)),
		c.addHost("b1", "bob", bench(opts)),
	} {
		owner[h.id] = h.owner
	}
	for i := 0; i < 6; i++ {
		r := run(t, context.Background(), c.d, dispatch.Request{Model: model, Engine: greedy("q"+string(rune('a'+i)), 24), Mode: dispatch.ModeParallel}, nil)
		if r.err != nil {
			t.Fatal(r.err)
		}
		owners := map[string]bool{}
		for id := range r.out.HostTokens {
			owners[owner[id]] = true
		}
		if !owners["alice"] || !owners["bob"] {
			t.Fatalf("request %d ran on %v: main and backup must have different owners", i, r.out.HostTokens)
		}
	}
}

// liar is a host that fakes work: a real bench engine whose token ids are
// altered from index 10 on (a labelled double of a dishonest host). With a
// gate, it sends an altered token only once the consumer has received that
// position from another host, so the consumer's stream stays honest and the
// lie is still compared (a cheater that is slower than its peers).
type liar struct {
	engine.Engine
	gate *gate
}

// Kind claims the honest build's engine kind, as a cheater would.
func (liar) Kind() string { return "bench" }

func (l liar) Generate(ctx context.Context, req engine.Request, emit func(engine.Token) error) (engine.Result, error) {
	return l.Engine.Generate(ctx, req, func(tok engine.Token) error {
		if tok.Index >= 10 {
			if err := l.gate.wait(ctx, tok.Index+1); err != nil {
				return err
			}
			if tok.ID+1 < l.Info().VocabSize {
				tok.ID++
			} else {
				tok.ID-- // still a valid id: an honest host may continue after it
			}
		}
		return emit(tok)
	})
}

func TestDivergenceIsCounted(t *testing.T) {
	c := newCluster(t, testConfig())
	opts := benchengine.Options{Delay: time.Millisecond, Model: model}
	honest := c.addHost("honest", "alice", bench(opts))
	fake := c.addHost("fake", "mallory", map[string]engine.Engine{model: liar{Engine: benchengine.New(opts)}})
	r := run(t, context.Background(), c.d, dispatch.Request{Model: model, Engine: greedy("verify", 40), Mode: dispatch.ModeParallel}, nil)
	if r.err != nil {
		t.Fatal(r.err)
	}
	ctx := context.Background()
	waitFor(t, "divergences persisted for both hosts", func() bool {
		a, _ := c.reg.Host(ctx, honest.id)
		b, _ := c.reg.Host(ctx, fake.id)
		return a.Figures.Divergences > 0 && b.Figures.Divergences > 0
	})
	if st, _ := c.reg.Strikes(ctx, fake.id); len(st) != 0 {
		t.Fatalf("a divergence must not strike: %+v", st)
	}
	// Two voices: no third host to settle it, nobody is blamed.
	if n := verifications(t, c, dispatch.VerifyNoThirdHost); n < 1 {
		t.Fatalf("verifications{no_third_host} = %v, want >= 1", n)
	}
	for _, id := range []string{honest.id, fake.id} {
		if st, _ := c.reg.Strikes(ctx, id); len(st) != 0 {
			t.Fatalf("host %s struck with two voices: %+v", id, st)
		}
	}
}

func TestFiguresPersisted(t *testing.T) {
	c := newCluster(t, testConfig())
	h := c.addHost("a", "alice", bench(benchengine.Options{Delay: time.Millisecond}))
	for i := 0; i < 3; i++ {
		if r := run(t, context.Background(), c.d, dispatch.Request{Model: model, Engine: greedy("m", 30)}, nil); r.err != nil {
			t.Fatal(r.err)
		}
	}
	waitFor(t, "figures persisted", func() bool {
		got, _ := c.reg.Host(context.Background(), h.id)
		f := got.Figures
		return f.Successes >= 3 && f.Tokens >= 90 && f.TTFT > 0 && f.MsPerToken > 0
	})
}

func TestConcurrentRequests(t *testing.T) {
	c := newCluster(t, testConfig())
	opts := benchengine.Options{}
	for i, owner := range []string{"alice", "bob", "carol"} {
		c.addHost("h"+string(rune('a'+i)), owner, bench(opts))
	}
	var wg sync.WaitGroup
	for i := 0; i < 12; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := greedy("concurrent "+string(rune('a'+i)), 40)
			r := run(t, context.Background(), c.d, dispatch.Request{Model: model, Engine: req}, nil)
			if r.err != nil {
				t.Error(r.err)
				return
			}
			if want := reference(t, req, opts); r.text != want {
				t.Errorf("request %d: text differs", i)
			}
		}()
	}
	wg.Wait()
}

// TestCapacityOneHosts runs back-to-back segments on hosts that take one task
// at a time (the agent's default), where a new segment can reach the host
// before its previous task has left its books: the refusal ("overloaded") is
// retried, never an error or a failover.
func TestCapacityOneHosts(t *testing.T) {
	c := newCluster(t, testConfig())
	opts := benchengine.Options{}
	c.addHostCap("a", "alice", bench(opts), 1)
	c.addHostCap("b", "bob", bench(opts), 1)
	for _, mode := range []string{dispatch.ModeParallel, dispatch.ModeOff, dispatch.ModeHedged} {
		for i := 0; i < 3; i++ {
			req := greedy("capacity "+mode+string(rune('a'+i)), 120)
			r := run(t, context.Background(), c.d, dispatch.Request{Model: model, Engine: req, Mode: mode}, nil)
			if r.err != nil {
				t.Fatalf("%s: %v", mode, r.err)
			}
			if want := reference(t, req, opts); r.text != want || r.out.Failovers != 0 {
				t.Fatalf("%s: text ok %v, failovers %d", mode, r.text == want, r.out.Failovers)
			}
		}
	}
}

// TestAnswerUnderWayWaitsForASlot: with one host of capacity one, other
// requests keep trying to take its slot, and win it between two segments of
// a long answer. The answer waits for the slot and completes; only new
// requests are refused for capacity (the orchestrator queues those).
func TestAnswerUnderWayWaitsForASlot(t *testing.T) {
	c := newCluster(t, testConfig())
	opts := benchengine.Options{Delay: time.Millisecond}
	c.addHostCap("a", "alice", bench(opts), 1)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var others, refused atomic.Int64
	defer wg.Wait()
	defer cancel()
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				_, err := c.d.Generate(ctx, dispatch.Request{Model: model, Engine: greedy("other", 4), Mode: dispatch.ModeOff}, func(dispatch.Delta) error { return nil })
				switch {
				case err == nil:
					others.Add(1)
				case errors.Is(err, dispatch.ErrOverloaded):
					refused.Add(1)
				case ctx.Err() == nil:
					t.Errorf("other request: %v", err)
				}
			}
		}()
	}
	req := greedy("a long answer", 160)
	r := run(t, context.Background(), c.d, dispatch.Request{Model: model, Engine: req, Mode: dispatch.ModeOff}, nil)
	cancel()
	if r.err != nil {
		t.Fatalf("the long answer failed mid-way: %v (others served %d, refused %d)", r.err, others.Load(), refused.Load())
	}
	if want := reference(t, req, opts); r.text != want {
		t.Fatal("the long answer's text differs from an uninterrupted run")
	}
	t.Logf("others served %d, refused %d", others.Load(), refused.Load())
}

// TestFailoverOnTinyModel runs the real built-in engine (stories260K) on three
// hosts, cuts the streaming host off mid-answer, then a second one, and checks
// the consumer's text is byte-identical to an uninterrupted greedy run.
func TestFailoverOnTinyModel(t *testing.T) {
	t.Parallel()
	path := filepath.Join(testenv.ModelsDir(t), "stories260K.gguf")
	load := func() engine.Engine {
		e, err := llama.Load(path, llama.Options{Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		return e
	}
	ref := load()
	name := ref.Info().Model
	for _, mode := range []string{dispatch.ModeOff, dispatch.ModeParallel} {
		t.Run(mode, func(t *testing.T) {
			c := newCluster(t, testConfig())
			alive := []*testHost{
				c.addHost("a", "alice", map[string]engine.Engine{name: slow{load()}}),
				c.addHost("b", "bob", map[string]engine.Engine{name: slow{load()}}),
				c.addHost("c", "carol", map[string]engine.Engine{name: slow{load()}}),
			}
			req := engine.Request{Prompt: "Once upon a time", MaxTokens: 120}
			var want strings.Builder
			if _, err := ref.Generate(context.Background(), req, func(tok engine.Token) error {
				want.WriteString(tok.Text)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			kills := []int{20, 60}
			r := run(t, context.Background(), c.d, dispatch.Request{Model: name, Engine: req, Mode: mode}, func(n int) {
				if len(kills) == 0 || n < kills[0] {
					return
				}
				kills = kills[1:]
				if h := busiest(c, alive); h != nil {
					h.proxy.Cut()
					for i, x := range alive {
						if x == h {
							alive = append(alive[:i], alive[i+1:]...)
							break
						}
					}
				}
			})
			if r.err != nil {
				t.Fatal(r.err)
			}
			if len(alive) != 1 {
				t.Fatalf("%d hosts left, want 1 (two cut)", len(alive))
			}
			if r.text != want.String() {
				t.Fatalf("text differs from an uninterrupted run\n got %q\nwant %q", r.text, want.String())
			}
		})
	}
}

// slow paces a real engine at 2ms per token so a host can be cut while it is
// streaming (the tiny model is faster than the test can react).
type slow struct{ engine.Engine }

func (s slow) Generate(ctx context.Context, req engine.Request, emit func(engine.Token) error) (engine.Result, error) {
	return s.Engine.Generate(ctx, req, func(tok engine.Token) error {
		select {
		case <-time.After(2 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
		return emit(tok)
	})
}

func TestHelloRefusedForSuspendedHost(t *testing.T) {
	c := newCluster(t, testConfig())
	ctx := context.Background()
	h, secret, err := c.reg.AddHost(ctx, registry.HostSpec{Name: "s", Owner: "o"})
	if err != nil {
		t.Fatal(err)
	}
	hello := func() fabric.HelloAck {
		nc, err := fabric.ConnectHost(ctx, c.srv.URL(), h.ID, secret)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		data, _ := fabric.Encode(&fabric.Hello{HostID: h.ID, Models: []fabric.ModelInfo{{Name: model, ContextLength: 100}}, Capacity: 1})
		// The dispatcher subscribes when Run starts; until then NATS
		// answers "no responders" and a host retries, as this does.
		var msg *nats.Msg
		waitFor(t, "dispatcher answering hellos", func() bool {
			msg, err = nc.Request(fabric.HelloSubject(h.ID), data, 5*time.Second)
			return !errors.Is(err, nats.ErrNoResponders)
		})
		if err != nil {
			t.Fatal(err)
		}
		var ack fabric.HelloAck
		if err := fabric.Decode(msg.Data, &ack); err != nil {
			t.Fatal(err)
		}
		return ack
	}
	if ack := hello(); !ack.OK || ack.HeartbeatEvery != testConfig().HeartbeatEvery {
		t.Fatalf("active host: ack %+v", ack)
	}
	for _, reason := range []string{"safety:a", "safety:b"} {
		if _, err := c.reg.Strike(ctx, h.ID, reason); err != nil {
			t.Fatal(err)
		}
	}
	if ack := hello(); ack.OK || !strings.Contains(ack.Error, "suspended") {
		t.Fatalf("suspended host: ack %+v, want refusal", ack)
	}
}

// TestBudgetEndsInsideACharacter cuts answers at every length, including in
// the middle of characters made of two byte tokens: the consumer gets the
// uninterrupted run's text up to the last complete character.
func TestBudgetEndsInsideACharacter(t *testing.T) {
	c := newCluster(t, testConfig())
	opts := benchengine.Options{Multibyte: true}
	c.addHost("a", "alice", bench(opts))
	c.addHost("b", "bob", bench(opts))
	cuts := 0
	for n := 1; n <= 40; n++ {
		req := greedy("multibyte budget", n)
		want := reference(t, req, opts)
		if !utf8.ValidString(want) {
			cuts++
		}
		for !utf8.ValidString(want) {
			want = want[:len(want)-1]
		}
		r := run(t, context.Background(), c.d, dispatch.Request{Model: model, Engine: req, Mode: dispatch.ModeParallel}, nil)
		if r.err != nil || r.text != want || r.out.FinishReason != "length" {
			t.Fatalf("max tokens %d: %q, %+v, %v; want %q", n, r.text, r.out, r.err, want)
		}
	}
	if cuts == 0 {
		t.Fatal("no budget ended inside a character: the test exercises nothing")
	}
}

// TestAnswerFillsTheContext lets answers run until the context is full, at
// several context sizes so the end falls inside a segment and on its edge.
func TestAnswerFillsTheContext(t *testing.T) {
	c := newCluster(t, testConfig())
	for _, ctxLen := range []int{20, 21, 36, 52, 53} {
		opts := benchengine.Options{ContextLength: ctxLen}
		opts.Model = fmt.Sprintf("ctx%d", ctxLen)
		c.addHost(opts.Model, "alice", map[string]engine.Engine{opts.Model: benchengine.New(opts)})
		req := greedy("fill", 0)
		var want strings.Builder
		res, err := benchengine.New(opts).Generate(context.Background(), req, func(tok engine.Token) error {
			want.WriteString(tok.Text)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		r := run(t, context.Background(), c.d, dispatch.Request{Model: opts.Model, Engine: req, Mode: dispatch.ModeOff}, nil)
		if r.err != nil || r.text != want.String() || r.out.FinishReason != res.FinishReason {
			t.Fatalf("context %d: %q %+v %v; want %q (%s)", ctxLen, r.text, r.out, r.err, want.String(), res.FinishReason)
		}
	}
}

// requant is the bench engine advertising another quantization: the same
// model name, a different build (a labelled double of a host running, say,
// Q4_K_M where the others run F32).
type requant struct{ *benchengine.Engine }

func (r requant) Info() engine.Info {
	i := r.Engine.Info()
	i.Quantization = "Q4_K_M"
	return i
}

// TestBackupRunsTheSameBuild checks that main and backup, whose tokens are
// compared, serve the same build of the model; another build may still take
// over after a failure (it continues from the delivered text).
func TestBackupRunsTheSameBuild(t *testing.T) {
	c := newCluster(t, testConfig())
	opts := benchengine.Options{Model: model, Delay: time.Millisecond}
	c.addHost("f32", "alice", bench(opts))
	c.addHost("q4", "bob", map[string]engine.Engine{model: requant{benchengine.New(opts)}})
	for i := 0; i < 4; i++ {
		r := run(t, context.Background(), c.d, dispatch.Request{Model: model, Engine: greedy("build "+string(rune('a'+i)), 30), Mode: dispatch.ModeParallel}, nil)
		if r.err != nil {
			t.Fatal(r.err)
		}
		if len(r.out.HostTokens) != 1 {
			t.Fatalf("request %d ran on %v: a backup of another build must not be paired", i, r.out.HostTokens)
		}
	}
}

// TestStopSequences checks stop strings that begin inside a segment, straddle
// a segment boundary (16 tokens, then 16+32) or never complete, against the
// engine applying them itself in one uninterrupted run.
func TestStopSequences(t *testing.T) {
	c := newCluster(t, testConfig())
	opts := benchengine.Options{}
	c.addHost("a", "alice", bench(opts))
	c.addHost("b", "bob", bench(opts))
	base := greedy("stop sequences", 100)
	e := benchengine.New(benchengine.Options{Model: model})
	var toks []string
	if _, err := e.Generate(context.Background(), base, func(tok engine.Token) error {
		toks = append(toks, tok.Text)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	span := func(from, to int) string { return strings.Join(toks[from:to], "") }
	tests := []struct {
		name string
		stop []string
	}{
		{"inside the first segment", []string{span(5, 7)}},
		{"across the first boundary", []string{span(15, 17)}},
		{"across the second boundary", []string{span(46, 50)}},
		{"never completes", []string{span(15, 16) + "\x00never"}},
		{"two stops, earliest wins", []string{span(60, 62), span(30, 32)}},
	}
	for _, tt := range tests {
		for _, mode := range []string{dispatch.ModeOff, dispatch.ModeParallel} {
			t.Run(tt.name+"/"+mode, func(t *testing.T) {
				req := base
				req.Stop = tt.stop
				var want strings.Builder
				res, err := e.Generate(context.Background(), req, func(tok engine.Token) error {
					want.WriteString(tok.Text)
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				r := run(t, context.Background(), c.d, dispatch.Request{Model: model, Engine: req, Mode: mode}, nil)
				if r.err != nil || r.text != want.String() || r.out.FinishReason != res.FinishReason {
					t.Fatalf("got %q (%s, %v)\nwant %q (%s)", r.text, r.out.FinishReason, r.err, want.String(), res.FinishReason)
				}
				if r.out.PromptTokens != res.Usage.PromptTokens {
					t.Fatalf("prompt tokens %d, want %d (billing needs them also after an early stop)", r.out.PromptTokens, res.Usage.PromptTokens)
				}
			})
		}
	}
}

// TestBackupsYieldToMains fills two one-task hosts with one parallel request
// (main and backup) and sends a second request: the backup yields its slot,
// so the second request runs instead of being refused as overloaded.
func TestBackupsYieldToMains(t *testing.T) {
	c := newCluster(t, testConfig())
	opts := benchengine.Options{Delay: 2 * time.Millisecond}
	hosts := []*testHost{c.addHostCap("a", "alice", bench(opts), 1), c.addHostCap("b", "bob", bench(opts), 1)}
	first := greedy("first request", 150)
	done := make(chan result, 1)
	started := make(chan struct{})
	go func() {
		var once sync.Once
		done <- run(t, context.Background(), c.d, dispatch.Request{Model: model, Engine: first, Mode: dispatch.ModeParallel}, func(int) {
			once.Do(func() { close(started) })
		})
	}()
	<-started
	waitFor(t, "both hosts busy with the first request", func() bool {
		return hosts[0].agent.Stats().InFlight == 1 && hosts[1].agent.Stats().InFlight == 1
	})
	second := greedy("second request", 40)
	r2 := run(t, context.Background(), c.d, dispatch.Request{Model: model, Engine: second, Mode: dispatch.ModeParallel}, nil)
	r1 := <-done
	for i, r := range []struct {
		res result
		req engine.Request
	}{{r1, first}, {r2, second}} {
		if r.res.err != nil {
			t.Fatalf("request %d: %v", i+1, r.res.err)
		}
		if want := reference(t, r.req, opts); r.res.text != want {
			t.Fatalf("request %d: text differs from an uninterrupted run", i+1)
		}
	}
}
