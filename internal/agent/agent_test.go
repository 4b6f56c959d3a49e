package agent_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/peerllm/peerllm/internal/agent"
	"github.com/peerllm/peerllm/internal/engine"
	"github.com/peerllm/peerllm/internal/engine/benchengine"
	"github.com/peerllm/peerllm/internal/fabric"
)

const waitFor = 20 * time.Second

// eventually polls cond until it returns nil or the deadline passes.
func eventually(t testing.TB, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// orch is the orchestrator side of the link as the tests drive it: a real
// embedded NATS server, a privileged connection, a Hello responder and a
// heartbeat log.
type orch struct {
	t       testing.TB
	srv     *fabric.Server
	nc      *nats.Conn
	secrets map[string]string // host id → secret hash
	hellos  chan fabric.Hello
	refuse  atomic.Int32 // refuse this many more Hellos
	denied  atomic.Int32 // refuse this many more connections
	skew    atomic.Int64 // the orchestrator's clock minus the real one (ns), sent in HelloAck.Now
	mu      sync.Mutex
	hbs     []fabric.Heartbeat
}

func newOrch(t testing.TB, listen string, hosts map[string]string) *orch {
	t.Helper()
	return newOrchDenying(t, listen, hosts, 0)
}

// newOrchDenying is newOrch whose server refuses the first deny connections
// whatever their credentials (an orchestrator that cannot check them yet).
func newOrchDenying(t testing.TB, listen string, hosts map[string]string, deny int32) *orch {
	t.Helper()
	o := &orch{t: t, secrets: map[string]string{}, hellos: make(chan fabric.Hello, 16)}
	o.denied.Store(deny)
	for id, s := range hosts {
		o.secrets[id] = fabric.HashSecret(s)
	}
	srv, err := fabric.StartServer(fabric.ServerConfig{Listen: listen, VerifyHost: func(id, secret string) bool {
		if o.denied.Add(-1) >= 0 {
			return false
		}
		h, ok := o.secrets[id]
		return ok && fabric.CheckSecret(h, secret)
	}})
	if err != nil {
		t.Fatal(err)
	}
	o.srv = srv
	nc, err := srv.Connect("test-orchestrator")
	if err != nil {
		t.Fatal(err)
	}
	o.nc = nc
	if _, err := nc.Subscribe("peerllm.hello.*", func(m *nats.Msg) {
		var h fabric.Hello
		err := fabric.Decode(m.Data, &h)
		ack := fabric.HelloAck{OK: err == nil, HeartbeatEvery: 20 * time.Millisecond, Now: time.Now().Add(time.Duration(o.skew.Load()))}
		if err != nil {
			ack.Error = err.Error()
		}
		if o.refuse.Add(-1) >= 0 {
			ack = fabric.HelloAck{Error: "not now"}
		}
		b, _ := fabric.Encode(ack)
		_ = m.Respond(b)
		o.hellos <- h
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Subscribe("peerllm.hb.*", func(m *nats.Msg) {
		var hb fabric.Heartbeat
		if fabric.Decode(m.Data, &hb) == nil {
			o.mu.Lock()
			o.hbs = append(o.hbs, hb)
			o.mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(o.close)
	return o
}

func (o *orch) close() {
	o.nc.Close()
	o.srv.Close()
}

func (o *orch) lastHeartbeat() (fabric.Heartbeat, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.hbs) == 0 {
		return fabric.Heartbeat{}, false
	}
	return o.hbs[len(o.hbs)-1], true
}

func (o *orch) waitHello(t testing.TB) fabric.Hello {
	t.Helper()
	select {
	case h := <-o.hellos:
		return h
	case <-time.After(waitFor):
		t.Fatal("no hello")
		return fabric.Hello{}
	}
}

// stream is one task's chunks as the orchestrator receives them.
type stream struct {
	sub *nats.Subscription
	seq int // next expected sequence number
}

// send publishes task to host and returns its chunk stream.
func (o *orch) send(t testing.TB, host string, task fabric.Task) *stream {
	t.Helper()
	sub, err := o.nc.SubscribeSync(fabric.OutSubject(host, task.ID))
	if err != nil {
		t.Fatal(err)
	}
	b, err := fabric.Encode(&task)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.nc.Publish(fabric.TaskSubject(host), b); err != nil {
		t.Fatal(err)
	}
	return &stream{sub: sub}
}

func (o *orch) cancel(t testing.TB, host, task string) {
	t.Helper()
	b, _ := fabric.Encode(fabric.Cancel{TaskID: task})
	if err := o.nc.Publish(fabric.CancelSubject(host), b); err != nil {
		t.Fatal(err)
	}
}

// next returns the next chunk, checking its sequence number.
func (s *stream) next(t testing.TB) fabric.Chunk {
	t.Helper()
	seq := s.seq
	s.seq++
	m, err := s.sub.NextMsg(waitFor)
	if err != nil {
		t.Fatalf("chunk %d: %v", seq, err)
	}
	var c fabric.Chunk
	if err := fabric.Decode(m.Data, &c); err != nil {
		t.Fatal(err)
	}
	if c.Seq != seq {
		t.Fatalf("chunk seq %d, want %d", c.Seq, seq)
	}
	return c
}

// all reads chunks until the last one; it returns the tokens and the last.
func (s *stream) all(t testing.TB) ([]fabric.ChunkToken, fabric.Chunk) {
	t.Helper()
	var toks []fabric.ChunkToken
	for {
		c := s.next(t)
		toks = append(toks, c.Tokens...)
		if c.Done || c.Error != "" {
			return toks, c
		}
	}
}

// host runs an agent until the test ends (or stop is called).
type host struct {
	a    *agent.Agent
	stop context.CancelFunc
	errc chan error
}

func startAgent(t testing.TB, cfg agent.Config) *host {
	t.Helper()
	a, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &host{a: a, stop: cancel, errc: make(chan error, 1)}
	go func() { h.errc <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-h.errc:
		case <-time.After(waitFor):
			t.Error("agent did not stop")
		}
	})
	return h
}

// wait returns Run's result.
func (h *host) wait(t testing.TB) error {
	t.Helper()
	select {
	case err := <-h.errc:
		h.errc <- err // for the cleanup
		return err
	case <-time.After(waitFor):
		t.Fatal("Run did not return")
		return nil
	}
}

// gate holds a bench generation at token index at until released.
type gate struct {
	at      int
	reached chan struct{}
	release chan struct{}
	once    sync.Once
}

func newGate(at int) *gate {
	return &gate{at: at, reached: make(chan struct{}), release: make(chan struct{})}
}

func (g *gate) before(ctx context.Context, i int) error {
	if i != g.at {
		return nil
	}
	g.once.Do(func() { close(g.reached) })
	select {
	case <-g.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *gate) waitReached(t testing.TB) {
	t.Helper()
	select {
	case <-g.reached:
	case <-time.After(waitFor):
		t.Fatal("generation never reached the gate")
	}
}

func baseConfig(o *orch, id, secret string, engines map[string]engine.Engine) agent.Config {
	return agent.Config{URL: o.srv.URL(), HostID: id, Secret: secret, Engines: engines, Region: "eu", Tier: "standard",
		Log: testLogger(o.t)}
}

// testLogger sends the agent's log to the test log (shown on failure).
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func TestStreamsTokens(t *testing.T) {
	secret := fabric.NewSecret()
	o := newOrch(t, "127.0.0.1:0", map[string]string{"h1": secret})
	eng := benchengine.New(benchengine.Options{Model: "bench-mb", Multibyte: true})
	reg := prometheus.NewRegistry()
	cfg := baseConfig(o, "h1", secret, map[string]engine.Engine{"bench-mb": eng})
	cfg.Metrics = reg
	h := startAgent(t, cfg)
	hello := o.waitHello(t)
	if hello.HostID != "h1" || hello.Version != fabric.ProtocolVersion || hello.Capacity != 1 || hello.Region != "eu" ||
		len(hello.Models) != 1 || hello.Models[0].Name != "bench-mb" || hello.Models[0].Engine != "bench" ||
		hello.Models[0].ContextLength != 4096 || hello.Hardware.Cores <= 0 {
		t.Fatalf("hello %+v", hello)
	}

	req := engine.Request{Prompt: "Once upon a time", MaxTokens: 60}
	toks, last := o.send(t, "h1", fabric.Task{ID: "t1", Model: "bench-mb", Request: req}).all(t)
	if !last.Done || last.FinishReason != "length" || last.Usage == nil || last.Usage.CompletionTokens != 60 || last.Usage.PromptTokens != 5 {
		t.Fatalf("last chunk %+v usage %+v", last, last.Usage)
	}
	if len(toks) != 60 {
		t.Fatalf("%d tokens, want 60", len(toks))
	}
	var ids []int
	text, partials := "", 0
	for i, tok := range toks {
		want := eng.Token(req, i)
		if tok.ID != want.ID || tok.Index != i {
			t.Fatalf("token %d: %+v, want id %d", i, tok, want.ID)
		}
		if !utf8.ValidString(tok.Text) {
			t.Fatalf("token %d text %q is not valid UTF-8", i, tok.Text)
		}
		ids = append(ids, tok.ID)
		text += tok.Text
		if tok.Partial {
			partials++
			if tok.Text != "" {
				t.Fatalf("partial token %d carries text %q", i, tok.Text)
			}
			continue
		}
		// Every non-partial token ends on a character boundary: the text so
		// far is exactly the decoded ids so far.
		if text != benchengine.Decode(ids) {
			t.Fatalf("after token %d: text %q, decoded %q", i, text, benchengine.Decode(ids))
		}
	}
	if partials == 0 {
		t.Fatal("no partial tokens: the multibyte path was not exercised")
	}

	// Continuing after the last non-partial token on a fresh task yields
	// exactly the rest of the stream.
	k := 30
	for toks[k-1].Partial {
		k--
	}
	req2 := req
	req2.Continue, req2.MaxTokens = ids[:k], 60-k
	rest, last2 := o.send(t, "h1", fabric.Task{ID: "t2", Model: "bench-mb", Request: req2}).all(t)
	if !last2.Done || len(rest) != 60-k || rest[0].Index != k || rest[0].ID != ids[k] {
		t.Fatalf("continuation: %d tokens from index %d, last %+v", len(rest), rest[0].Index, last2)
	}

	eventually(t, "stats", func() error {
		if s := h.a.Stats(); s.Done != 2 || s.Tokens != uint64(60+60-k) || s.InFlight != 0 || !s.Connected {
			return fmt.Errorf("stats %+v", s)
		}
		return nil
	})
	if got := metricValue(t, reg, "peerllm_host_tasks_total", "done"); got != 2 {
		t.Fatalf("peerllm_host_tasks_total{result=done} = %v", got)
	}
	if got := metricValue(t, reg, "peerllm_host_tokens_total", ""); got != float64(60+60-k) {
		t.Fatalf("peerllm_host_tokens_total = %v", got)
	}
	eventually(t, "heartbeat", func() error {
		hb, ok := o.lastHeartbeat()
		if !ok || hb.HostID != "h1" || hb.Capacity != 1 {
			return fmt.Errorf("heartbeat %+v", hb)
		}
		return nil
	})
}

func metricValue(t testing.TB, reg *prometheus.Registry, name, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := result == ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					match = true
				}
			}
			if !match {
				continue
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			}
		}
	}
	return 0
}

func TestCancelAndRefusals(t *testing.T) {
	secret := fabric.NewSecret()
	o := newOrch(t, "127.0.0.1:0", map[string]string{"h1": secret})
	g := newGate(5)
	eng := benchengine.New(benchengine.Options{BeforeToken: g.before})
	reg := prometheus.NewRegistry()
	cfg := baseConfig(o, "h1", secret, map[string]engine.Engine{"bench": eng})
	cfg.Metrics = reg
	h := startAgent(t, cfg)
	o.waitHello(t)

	held := o.send(t, "h1", fabric.Task{ID: "held", Model: "bench", Request: engine.Request{Prompt: "p"}})
	// Tokens produced while a chunk is being published travel together, so
	// five tokens may come in fewer than five chunks.
	for n := 0; n < 5; {
		n += len(held.next(t).Tokens)
	}
	g.waitReached(t)

	t.Run("over capacity", func(t *testing.T) {
		_, last := o.send(t, "h1", fabric.Task{ID: "second", Model: "bench", Request: engine.Request{Prompt: "p"}}).all(t)
		if last.ErrorCode != "overloaded" || last.Seq != 0 {
			t.Fatalf("second task: %+v", last)
		}
	})
	for _, tc := range []struct {
		name string
		task fabric.Task
		code string
	}{
		{"unknown model", fabric.Task{ID: "m", Model: "nope", Request: engine.Request{Prompt: "p"}}, "bad_request"},
		{"other version", fabric.Task{Version: fabric.ProtocolVersion + 1, ID: "v", Model: "bench"}, "bad_request"},
		{"deadline passed", fabric.Task{ID: "d", Model: "bench", Request: engine.Request{Prompt: "p"}, Deadline: time.Now().Add(-time.Second)}, "cancelled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, last := o.send(t, "h1", tc.task).all(t)
			if last.ErrorCode != tc.code || last.Error == "" {
				t.Fatalf("chunk %+v, want code %s", last, tc.code)
			}
		})
	}

	o.cancel(t, "h1", "held")
	toks, last := held.all(t)
	// The cancel arrived while the engine was held before token 5: nothing
	// more was produced.
	if len(toks) != 0 || last.ErrorCode != "cancelled" || last.Seq != held.seq-1 {
		t.Fatalf("after cancel: %d more tokens, last %+v", len(toks), last)
	}
	eventually(t, "cancel counted", func() error {
		s := h.a.Stats()
		if s.Cancelled != 1 || s.InFlight != 0 || s.Rejected != 4 || s.Tokens != 5 {
			return fmt.Errorf("stats %+v", s)
		}
		hb, _ := o.lastHeartbeat()
		if hb.TasksCancelled != 1 {
			return fmt.Errorf("heartbeat %+v", hb)
		}
		return nil
	})
	if got := metricValue(t, reg, "peerllm_host_tasks_cancelled_total", ""); got != 1 {
		t.Fatalf("peerllm_host_tasks_cancelled_total = %v", got)
	}
	if got := metricValue(t, reg, "peerllm_host_tasks_total", "rejected"); got != 4 {
		t.Fatalf("rejected = %v", got)
	}

	// A cancel for a finished or unknown task is harmless; the host still
	// serves (capacity is free again).
	o.cancel(t, "h1", "held")
	o.cancel(t, "h1", "never-seen")
	close(g.release)
	if _, last := o.send(t, "h1", fabric.Task{ID: "after", Model: "bench", Request: engine.Request{Prompt: "p", MaxTokens: 8}}).all(t); !last.Done {
		t.Fatalf("task after cancel: %+v", last)
	}

	// A ping is answered with the host's load (the reply permission).
	b, _ := fabric.Encode(fabric.Control{Op: "ping"})
	m, err := o.nc.Request(fabric.ControlSubject("h1"), b, waitFor)
	if err != nil {
		t.Fatalf("ping: %v", err)
	}
	var hb fabric.Heartbeat
	if err := fabric.Decode(m.Data, &hb); err != nil || hb.HostID != "h1" || hb.Capacity != 1 {
		t.Fatalf("ping reply %+v: %v", hb, err)
	}
}

func TestDrain(t *testing.T) {
	for _, how := range []string{"context", "control"} {
		t.Run(how, func(t *testing.T) {
			secret := fabric.NewSecret()
			o := newOrch(t, "127.0.0.1:0", map[string]string{"h1": secret})
			g := newGate(3)
			eng := benchengine.New(benchengine.Options{BeforeToken: g.before})
			cfg := baseConfig(o, "h1", secret, map[string]engine.Engine{"bench": eng})
			cfg.Capacity = 2
			h := startAgent(t, cfg)
			o.waitHello(t)
			held := o.send(t, "h1", fabric.Task{ID: "inflight", Model: "bench", Request: engine.Request{Prompt: "p", MaxTokens: 10}})
			g.waitReached(t)

			if how == "context" {
				h.stop()
			} else {
				b, _ := fabric.Encode(fabric.Control{Op: "drain"})
				if err := o.nc.Publish(fabric.ControlSubject("h1"), b); err != nil {
					t.Fatal(err)
				}
			}
			eventually(t, "draining", func() error {
				if !h.a.Stats().Draining {
					return errors.New("not draining")
				}
				hb, _ := o.lastHeartbeat()
				if !hb.Draining || hb.InFlight != 1 {
					return fmt.Errorf("heartbeat %+v", hb)
				}
				return nil
			})
			// New work is refused while the in-flight task runs on.
			if _, last := o.send(t, "h1", fabric.Task{ID: "late", Model: "bench", Request: engine.Request{Prompt: "p"}}).all(t); last.ErrorCode != "overloaded" {
				t.Fatalf("task during drain: %+v", last)
			}
			close(g.release)
			toks, last := held.all(t)
			if !last.Done || len(toks) != 10 {
				t.Fatalf("in-flight task: %d tokens, last %+v", len(toks), last)
			}
			if err := h.wait(t); err != nil {
				t.Fatalf("Run after drain: %v", err)
			}
			if s := h.a.Stats(); s.Done != 1 || s.Rejected != 1 || s.Connected {
				t.Fatalf("stats %+v", s)
			}
		})
	}
}

func TestThrottle(t *testing.T) {
	secret := fabric.NewSecret()
	o := newOrch(t, "127.0.0.1:0", map[string]string{"h1": secret})
	cfg := baseConfig(o, "h1", secret, map[string]engine.Engine{"bench": benchengine.New(benchengine.Options{})})
	cfg.Throttle = 200 // 5 ms apart
	cfg.Capacity = 2
	startAgent(t, cfg)
	if got := o.waitHello(t).Throttle; got != 200 {
		t.Fatalf("hello throttle %v", got)
	}
	// Two tasks at once share the cap: 40 tokens cannot take less than 39
	// intervals. (A lower bound only: it holds however slow the machine is.)
	start := time.Now()
	a := o.send(t, "h1", fabric.Task{ID: "a", Model: "bench", Request: engine.Request{Prompt: "a", MaxTokens: 20}})
	b := o.send(t, "h1", fabric.Task{ID: "b", Model: "bench", Request: engine.Request{Prompt: "b", MaxTokens: 20}})
	ta, la := a.all(t)
	tb, lb := b.all(t)
	elapsed := time.Since(start)
	if !la.Done || !lb.Done || len(ta)+len(tb) != 40 {
		t.Fatalf("throttled tasks: %d+%d tokens, %+v %+v", len(ta), len(tb), la, lb)
	}
	if min := 39 * 5 * time.Millisecond; elapsed < min {
		t.Fatalf("40 tokens in %v at 200 tokens/s (at least %v)", elapsed, min)
	}
}

func TestReconnect(t *testing.T) {
	for _, tc := range []struct {
		name string
		deny int32 // connections the restarted server refuses first
	}{
		{"restart", 0},
		{"restart refusing the first reconnects", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			secret := fabric.NewSecret()
			hosts := map[string]string{"h1": secret}
			o := newOrch(t, "127.0.0.1:0", hosts)
			port := o.srv.Port()
			h := startAgent(t, baseConfig(o, "h1", secret, map[string]engine.Engine{"bench": benchengine.New(benchengine.Options{})}))
			o.waitHello(t)
			eventually(t, "first hello acknowledged", func() error {
				if s := h.a.Stats(); s.Hellos != 1 {
					return fmt.Errorf("stats %+v", s)
				}
				return nil
			})

			o.close()
			eventually(t, "disconnect noticed", func() error {
				if h.a.Stats().Connected {
					return errors.New("still connected")
				}
				return nil
			})
			o2 := newOrchDenying(t, "127.0.0.1:"+strconv.Itoa(port), hosts, tc.deny)
			if hello := o2.waitHello(t); hello.HostID != "h1" {
				t.Fatalf("hello after restart %+v", hello)
			}
			if left := o2.denied.Load(); left > 0 {
				t.Fatalf("reconnected with %d refusals still to come", left)
			}
			toks, last := o2.send(t, "h1", fabric.Task{ID: "t", Model: "bench", Request: engine.Request{Prompt: "p", MaxTokens: 5}}).all(t)
			if !last.Done || len(toks) != 5 {
				t.Fatalf("after reconnect: %d tokens, %+v", len(toks), last)
			}
			eventually(t, "second hello counted", func() error {
				if s := h.a.Stats(); s.Hellos != 2 || !s.Connected {
					return fmt.Errorf("stats %+v", s)
				}
				return nil
			})
		})
	}
}

// TestBackToBackSegments sends each segment the moment the previous one's
// final chunk arrives, as the dispatcher does with a healthy main host: a
// host at capacity 1 must never refuse the next one.
func TestBackToBackSegments(t *testing.T) {
	secret := fabric.NewSecret()
	o := newOrch(t, "127.0.0.1:0", map[string]string{"h1": secret})
	eng := benchengine.New(benchengine.Options{})
	startAgent(t, baseConfig(o, "h1", secret, map[string]engine.Engine{"bench": eng}))
	o.waitHello(t)
	req := engine.Request{Prompt: "segments", MaxTokens: 4}
	var ids []int
	for i := range 100 {
		toks, last := o.send(t, "h1", fabric.Task{ID: "seg" + strconv.Itoa(i), Model: "bench", Request: req}).all(t)
		if !last.Done {
			t.Fatalf("segment %d: %+v", i, last)
		}
		for _, tok := range toks {
			ids = append(ids, tok.ID)
		}
		req.Continue = ids
	}
	for i, id := range ids {
		if want := eng.Token(req, i).ID; id != want {
			t.Fatalf("token %d across segments: %d, want %d", i, id, want)
		}
	}
}

func TestRefusedCredentials(t *testing.T) {
	o := newOrch(t, "127.0.0.1:0", map[string]string{"h1": fabric.NewSecret()})
	a, err := agent.New(baseConfig(o, "h1", fabric.NewSecret(), map[string]engine.Engine{"bench": benchengine.New(benchengine.Options{})}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := a.Run(ctx); !errors.Is(err, fabric.ErrAuth) {
		t.Fatalf("Run with a wrong secret: %v", err)
	}
}

func TestNewChecksConfig(t *testing.T) {
	engines := map[string]engine.Engine{"bench": benchengine.New(benchengine.Options{})}
	good := agent.Config{URL: "nats://127.0.0.1:1", HostID: "h1", Secret: "s", Engines: engines}
	for _, tc := range []struct {
		name string
		edit func(*agent.Config)
	}{
		{"no url", func(c *agent.Config) { c.URL = "" }},
		{"bad host id", func(c *agent.Config) { c.HostID = "H.1" }},
		{"no secret", func(c *agent.Config) { c.Secret = "" }},
		{"no engines", func(c *agent.Config) { c.Engines = nil }},
		{"nil engine", func(c *agent.Config) { c.Engines = map[string]engine.Engine{"x": nil} }},
		{"negative throttle", func(c *agent.Config) { c.Throttle = -1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.edit(&c)
			if _, err := agent.New(c); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	if _, err := agent.New(good); err != nil {
		t.Fatal(err)
	}
	// Stopping before the orchestrator was ever reached is not an error.
	a, _ := agent.New(good)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := a.Run(ctx); err != nil {
		t.Fatalf("Run with a cancelled context: %v", err)
	}
	if err := a.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("second Run: %v", err)
	}
}

func TestNoGoroutineLeak(t *testing.T) {
	secret := fabric.NewSecret()
	o := newOrch(t, "127.0.0.1:0", map[string]string{"h1": secret})
	before := runtime.NumGoroutine()
	a, err := agent.New(baseConfig(o, "h1", secret, map[string]engine.Engine{"bench": benchengine.New(benchengine.Options{})}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- a.Run(ctx) }()
	o.waitHello(t)
	for i := range 3 {
		if _, last := o.send(t, "h1", fabric.Task{ID: "t" + strconv.Itoa(i), Model: "bench", Request: engine.Request{Prompt: "p", MaxTokens: 20}}).all(t); !last.Done {
			t.Fatal(last)
		}
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	eventually(t, "goroutines back to the baseline", func() error {
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<16)
			return fmt.Errorf("%d goroutines, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
		}
		return nil
	})
}

// funcEngine is an engine made of a function, for failure cases the bench
// engine does not produce (a panic, an unexpected error).
type funcEngine struct {
	gen func(ctx context.Context, req engine.Request, emit func(engine.Token) error) (engine.Result, error)
}

func (f funcEngine) Info() engine.Info { return engine.Info{Model: "f", ContextLength: 64} }
func (f funcEngine) Close() error      { return nil }
func (f funcEngine) Generate(ctx context.Context, req engine.Request, emit func(engine.Token) error) (engine.Result, error) {
	return f.gen(ctx, req, emit)
}

func TestEngineFailures(t *testing.T) {
	secret := fabric.NewSecret()
	o := newOrch(t, "127.0.0.1:0", map[string]string{"h1": secret})
	engines := map[string]engine.Engine{
		"panics": funcEngine{gen: func(ctx context.Context, req engine.Request, emit func(engine.Token) error) (engine.Result, error) {
			_ = emit(engine.Token{ID: 1, Text: "a"})
			var m map[string]int
			m["boom"]++ // nil map write
			return engine.Result{}, nil
		}},
		"fails": funcEngine{gen: func(ctx context.Context, req engine.Request, emit func(engine.Token) error) (engine.Result, error) {
			return engine.Result{}, errors.New("gpu fell off")
		}},
		"too-long": benchengine.New(benchengine.Options{ContextLength: 4}),
		"bench":    benchengine.New(benchengine.Options{}),
	}
	h := startAgent(t, baseConfig(o, "h1", secret, engines))
	if got := len(o.waitHello(t).Models); got != 4 {
		t.Fatalf("hello lists %d models", got)
	}
	for _, tc := range []struct {
		model, code string
		tokens      int
	}{
		{"panics", "internal", 1},
		{"fails", "internal", 0},
		{"too-long", "context_length", 0},
	} {
		t.Run(tc.model, func(t *testing.T) {
			toks, last := o.send(t, "h1", fabric.Task{ID: "x" + tc.model, Model: tc.model, Request: engine.Request{Prompt: "one two three four five"}}).all(t)
			if last.ErrorCode != tc.code || len(toks) != tc.tokens || strings.Contains(last.Error, "gpu") {
				t.Fatalf("%d tokens, last %+v", len(toks), last)
			}
		})
	}
	// The host still serves.
	if _, last := o.send(t, "h1", fabric.Task{ID: "ok", Model: "bench", Request: engine.Request{Prompt: "p", MaxTokens: 2}}).all(t); !last.Done {
		t.Fatalf("after failures: %+v", last)
	}
	eventually(t, "failures counted", func() error {
		if s := h.a.Stats(); s.Failed != 3 || s.Done != 1 {
			return fmt.Errorf("stats %+v", s)
		}
		return nil
	})
}

func TestHelloRetriedUntilAcknowledged(t *testing.T) {
	secret := fabric.NewSecret()
	o := newOrch(t, "127.0.0.1:0", map[string]string{"h1": secret})
	o.refuse.Store(2)
	h := startAgent(t, baseConfig(o, "h1", secret, map[string]engine.Engine{"bench": benchengine.New(benchengine.Options{})}))
	for range 3 {
		o.waitHello(t)
	}
	eventually(t, "hello acknowledged after two refusals", func() error {
		if s := h.a.Stats(); s.Hellos != 1 {
			return fmt.Errorf("stats %+v", s)
		}
		if _, ok := o.lastHeartbeat(); !ok {
			return errors.New("no heartbeat after the ack")
		}
		return nil
	})
}

// TestCancelRightBehindTask publishes a Cancel immediately after its Task:
// the agent must handle them in order (a lost Cancel would leave the task
// held at the gate forever and this test waiting for its last chunk).
func TestCancelRightBehindTask(t *testing.T) {
	secret := fabric.NewSecret()
	o := newOrch(t, "127.0.0.1:0", map[string]string{"h1": secret})
	g := newGate(0)
	cfg := baseConfig(o, "h1", secret, map[string]engine.Engine{"bench": benchengine.New(benchengine.Options{BeforeToken: g.before})})
	cfg.Log = nil
	h := startAgent(t, cfg)
	o.waitHello(t)
	const n = 50
	for i := range n {
		id := "c" + strconv.Itoa(i)
		s := o.send(t, "h1", fabric.Task{ID: id, Model: "bench", Request: engine.Request{Prompt: "p"}})
		o.cancel(t, "h1", id)
		toks, last := s.all(t)
		if len(toks) != 0 || last.ErrorCode != "cancelled" {
			t.Fatalf("task %d: %d tokens, last %+v", i, len(toks), last)
		}
	}
	if s := h.a.Stats(); s.Cancelled != n {
		t.Fatalf("stats %+v", s)
	}
}

// TestClockSkew gives the orchestrator a clock ten minutes off the host's:
// task deadlines, written in the orchestrator's time, are corrected by the
// offset measured at Hello.
func TestClockSkew(t *testing.T) {
	for _, tc := range []struct {
		name     string
		skew     time.Duration
		deadline time.Duration // after the orchestrator's now
		done     bool
	}{
		{"orchestrator behind, live task", -10 * time.Minute, time.Minute, true},
		{"orchestrator ahead, expired task", 10 * time.Minute, -time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			secret := fabric.NewSecret()
			o := newOrch(t, "127.0.0.1:0", map[string]string{"h1": secret})
			o.skew.Store(int64(tc.skew))
			h := startAgent(t, baseConfig(o, "h1", secret, map[string]engine.Engine{"bench": benchengine.New(benchengine.Options{})}))
			o.waitHello(t)
			eventually(t, "hello acknowledged", func() error {
				if h.a.Stats().Hellos == 0 {
					return errors.New("no ack yet")
				}
				return nil
			})
			task := fabric.Task{ID: "t", Model: "bench", Request: engine.Request{Prompt: "p", MaxTokens: 3},
				Deadline: time.Now().Add(tc.skew + tc.deadline)}
			_, last := o.send(t, "h1", task).all(t)
			if last.Done != tc.done || (!tc.done && last.ErrorCode != "cancelled") {
				t.Fatalf("last chunk %+v", last)
			}
		})
	}
}
