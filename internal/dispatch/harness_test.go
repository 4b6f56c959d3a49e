package dispatch_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/peerllm/peerllm/internal/agent"
	"github.com/peerllm/peerllm/internal/dispatch"
	"github.com/peerllm/peerllm/internal/engine"
	"github.com/peerllm/peerllm/internal/fabric"
	"github.com/peerllm/peerllm/internal/registry"
	"github.com/peerllm/peerllm/internal/store"
)

// cluster is a real orchestrator side (SQLite registry, embedded NATS server,
// dispatcher) with real host agents, each dialling through its own TCP proxy
// so a test can cut a host off the network abruptly.
type cluster struct {
	t       testing.TB
	srv     *fabric.Server
	reg     *registry.Registry
	d       *dispatch.Dispatcher
	metrics *prometheus.Registry
	mu      sync.Mutex
	hosts   []*testHost
}

type testHost struct {
	id, owner string
	agent     *agent.Agent
	proxy     *proxy
	cancel    context.CancelFunc
	done      chan struct{}
}

// testConfig keeps deadlines short so failures are detected quickly; the
// values are generous enough for -race on a loaded 2-core machine.
func testConfig() dispatch.Config {
	return dispatch.Config{
		HeartbeatEvery:    50 * time.Millisecond,
		DeadAfter:         400 * time.Millisecond,
		StallFloor:        400 * time.Millisecond,
		FirstTokenTimeout: 3 * time.Second,
		PersistEvery:      100 * time.Millisecond,
	}
}

func newCluster(t testing.TB, cfg dispatch.Config) *cluster {
	t.Helper()
	return newClusterOpts(t, cfg, registry.Options{})
}

// newClusterOpts is newCluster with registry options (strike policy).
func newClusterOpts(t testing.TB, cfg dispatch.Config, opt registry.Options) *cluster {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "peerllm.db"))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := registry.OpenOptions(ctx, db, nil, opt)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := fabric.StartServer(fabric.ServerConfig{Listen: "127.0.0.1:0", VerifyHost: reg.VerifyHost})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := srv.Connect("dispatch-test")
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, srv: srv, reg: reg, metrics: prometheus.NewRegistry()}
	c.d, err = dispatch.New(cfg, nc, reg, testLogger(t), c.metrics)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	runDone := make(chan error, 1)
	go func() { runDone <- c.d.Run(runCtx) }()
	t.Cleanup(func() {
		c.mu.Lock()
		hosts := c.hosts
		c.mu.Unlock()
		// Drain the agents while their link is up (a cut host's agent waits
		// out its final flush, so tests that cut hosts run in parallel).
		for _, h := range hosts {
			h.cancel()
		}
		for _, h := range hosts {
			<-h.done
			h.proxy.Cut()
			h.proxy.wg.Wait()
		}
		stop()
		if err := <-runDone; err != nil {
			t.Errorf("dispatcher Run: %v", err)
		}
		nc.Close()
		srv.Close()
		db.Close()
	})
	return c
}

// addHost registers a host, starts a real agent serving engines and waits
// until the dispatcher has its Hello.
func (c *cluster) addHost(name, owner string, engines map[string]engine.Engine) *testHost {
	c.t.Helper()
	return c.addHostCap(name, owner, engines, 8)
}

// addHostCap is addHost with the agent's capacity (concurrent tasks).
func (c *cluster) addHostCap(name, owner string, engines map[string]engine.Engine, capacity int) *testHost {
	c.t.Helper()
	return c.addHostSpec(registry.HostSpec{Name: name, Owner: owner, Region: "local"}, engines, capacity)
}

// addHostSpec is addHostCap with the full registration (tier).
func (c *cluster) addHostSpec(spec registry.HostSpec, engines map[string]engine.Engine, capacity int) *testHost {
	c.t.Helper()
	ctx := context.Background()
	owner := spec.Owner
	h, secret, err := c.reg.AddHost(ctx, spec)
	if err != nil {
		c.t.Fatal(err)
	}
	p := newProxy(c.t, strings.TrimPrefix(c.srv.URL(), "nats://"))
	a, err := agent.New(agent.Config{URL: p.URL(), HostID: h.ID, Secret: secret, Engines: engines, Capacity: capacity})
	if err != nil {
		c.t.Fatal(err)
	}
	actx, cancel := context.WithCancel(ctx)
	th := &testHost{id: h.ID, owner: owner, agent: a, proxy: p, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(th.done)
		a.Run(actx)
	}()
	c.mu.Lock()
	c.hosts = append(c.hosts, th)
	c.mu.Unlock()
	waitFor(c.t, "host "+h.ID+" online", func() bool {
		got, err := c.reg.Host(ctx, h.ID)
		return err == nil && got.Live.Online
	})
	return th
}

// testLogger sends the dispatcher's log to the test log (ids and counts only:
// the dispatcher never logs content).
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// waitFor polls cond until it holds or 10s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// proxy forwards TCP connections to the NATS server until Cut, which closes
// every connection at once and refuses new ones: to the orchestrator the host
// vanishes exactly like a machine that lost power or network.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	cut    bool
	wg     sync.WaitGroup
}

func newProxy(t testing.TB, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.accept()
	return p // the cluster's cleanup cuts it after draining the agent
}

func (p *proxy) URL() string { return "nats://" + p.ln.Addr().String() }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			in.Close()
			continue
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			in.Close()
			out.Close()
			return
		}
		p.conns = append(p.conns, in, out)
		p.wg.Add(2)
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			defer p.wg.Done()
			io.Copy(dst, src)
			dst.Close()
			src.Close()
		}
		go pipe(in, out)
		go pipe(out, in)
	}
}

// Cut disconnects the host for good.
func (p *proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		return
	}
	p.cut = true
	p.ln.Close()
	for _, c := range p.conns {
		c.Close()
	}
}
