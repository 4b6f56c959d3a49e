// Package agent is the host agent: it dials out to the orchestrator's NATS
// server with the host's credentials, announces the models it serves (Hello,
// again after every reconnect), reports its load (Heartbeat), runs the tasks
// it is sent on its engines and streams each token back as it is produced.
// Only the host side (cmd/peerllm's host command, tests) imports it; it
// imports the engine interface and fabric, never an orchestrator package.
package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/peerllm/peerllm/internal/engine"
	"github.com/peerllm/peerllm/internal/fabric"
)

// DefaultHeartbeat is the heartbeat period until a HelloAck names one.
const DefaultHeartbeat = 5 * time.Second

// helloTimeout bounds one Hello request; a lost one is retried with backoff.
const helloTimeout = 5 * time.Second

// Config configures an Agent.
type Config struct {
	// URL is the orchestrator's NATS address, e.g. nats://orch.example:4222.
	URL string
	// HostID and Secret are the credentials the orchestrator issued.
	HostID, Secret string
	// Engines maps each model name the host serves to its engine. The agent
	// does not close them.
	Engines map[string]engine.Engine
	// Region and Tier are declared in Hello; the orchestrator checks Tier.
	Region, Tier string
	// Capacity is how many tasks may run at once; default 1. A task over
	// capacity is refused with ErrorCode "overloaded".
	Capacity int
	// Throttle caps the host's output in tokens per second across all
	// tasks; 0 means no cap.
	Throttle float64
	// Hardware is declared in Hello; the zero value means auto-detect
	// (cores, total memory from /proc/meminfo).
	Hardware fabric.Hardware
	// Agent names the build in Hello; default "peerllm".
	Agent string
	// Log receives connection and task events (ids, counts, timings; never
	// text). Nil discards them.
	Log *slog.Logger
	// Metrics, when set, receives the agent's Prometheus collectors.
	Metrics prometheus.Registerer
	// TLS, when set, is used for the connection (a tls:// URL, or a server
	// that requires TLS).
	TLS *tls.Config
}

// Stats is a snapshot of an agent's work since it started.
type Stats struct {
	InFlight  int    // tasks running, until their final chunk is sent
	Done      uint64 // tasks that ended normally (Done chunk sent)
	Cancelled uint64 // tasks stopped by a Cancel
	Failed    uint64 // tasks that ended with an error (engine, deadline, link)
	Rejected  uint64 // tasks refused before starting (capacity, draining, model, version)
	Tokens    uint64 // tokens streamed
	Hellos    uint64 // Hellos acknowledged (1 + one per reconnect)
	Connected bool
	Draining  bool
}

// errCancelled is the cause of a task context ended by a Cancel message.
var errCancelled = errors.New("cancelled by the orchestrator")

// Agent is one host agent. Create it with New and start it with Run.
type Agent struct {
	cfg    Config
	log    *slog.Logger
	models []fabric.ModelInfo
	lim    *limiter
	cpu    cpuMeter
	m      metrics

	started   atomic.Bool
	connected atomic.Bool
	drainReq  chan struct{}
	drainOnce sync.Once

	// active counts task goroutines, until their final chunk is out
	// (Stats.InFlight and the in-flight gauge); running holds the tasks that
	// occupy a capacity slot, which is freed just before the final chunk.
	active   atomic.Int64
	mu       sync.Mutex
	running  map[string]context.CancelCauseFunc
	draining bool
	tasks    sync.WaitGroup

	done, cancelled, failed, rejected, tokens, hellos atomic.Uint64

	rateMu     sync.Mutex
	rateTokens uint64
	rateAt     time.Time

	conn epoch

	// clockOffset is the orchestrator's clock minus this host's, in
	// nanoseconds, as measured at the last acknowledged Hello.
	clockOffset atomic.Int64
}

// epoch is the lifetime of one connection to the server: its context ends
// when the connection drops, so that a request made on it stops waiting.
type epoch struct {
	mu     sync.Mutex
	ctx    context.Context
	cancel context.CancelFunc
}

// current returns the context of the current connection.
func (e *epoch) current() context.Context {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ctx == nil || e.ctx.Err() != nil {
		e.ctx, e.cancel = context.WithCancel(context.Background())
	}
	return e.ctx
}

// end marks the current connection as gone.
func (e *epoch) end() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cancel != nil {
		e.cancel()
	}
}

// Kinder is implemented by engines that name their kind for Hello
// ("bench", "openai", "ollama"); engines without it are "builtin".
type Kinder interface {
	Kind() string
}

// New checks cfg and returns an agent ready to Run.
func New(cfg Config) (*Agent, error) {
	if cfg.URL == "" {
		return nil, errors.New("agent: no orchestrator URL")
	}
	if !fabric.ValidHostID(cfg.HostID) {
		return nil, fmt.Errorf("agent: invalid host id %q", cfg.HostID)
	}
	if cfg.Secret == "" {
		return nil, errors.New("agent: no host secret")
	}
	if len(cfg.Engines) == 0 {
		return nil, errors.New("agent: no engines")
	}
	if cfg.Capacity <= 0 {
		cfg.Capacity = 1
	}
	if cfg.Throttle < 0 {
		return nil, fmt.Errorf("agent: negative throttle %v", cfg.Throttle)
	}
	if cfg.Hardware == (fabric.Hardware{}) {
		cfg.Hardware = detectHardware()
	}
	if cfg.Agent == "" {
		cfg.Agent = "peerllm"
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Agent{
		cfg:      cfg,
		log:      log.With("host", cfg.HostID),
		lim:      newLimiter(cfg.Throttle, time.Now),
		cpu:      cpuMeter{path: "/proc/stat"},
		m:        newMetrics(),
		drainReq: make(chan struct{}),
		running:  map[string]context.CancelCauseFunc{},
		rateAt:   time.Now(),
	}
	for name, e := range cfg.Engines {
		if e == nil {
			return nil, fmt.Errorf("agent: model %q has no engine", name)
		}
		info := e.Info()
		kind := "builtin"
		if k, ok := e.(Kinder); ok {
			kind = k.Kind()
		}
		a.models = append(a.models, fabric.ModelInfo{
			Name:          name,
			Architecture:  info.Architecture,
			ContextLength: info.ContextLength,
			Quantization:  info.Quantization,
			Parameters:    info.Parameters,
			Engine:        kind,
		})
	}
	sort.Slice(a.models, func(i, j int) bool { return a.models[i].Name < a.models[j].Name })
	if cfg.Metrics != nil {
		if err := a.m.register(cfg.Metrics); err != nil {
			return nil, fmt.Errorf("agent: metrics: %w", err)
		}
	}
	return a, nil
}

// Stats returns a snapshot of the agent's counters.
func (a *Agent) Stats() Stats {
	a.mu.Lock()
	draining := a.draining
	a.mu.Unlock()
	return Stats{
		InFlight:  int(a.active.Load()),
		Done:      a.done.Load(),
		Cancelled: a.cancelled.Load(),
		Failed:    a.failed.Load(),
		Rejected:  a.rejected.Load(),
		Tokens:    a.tokens.Load(),
		Hellos:    a.hellos.Load(),
		Connected: a.connected.Load(),
		Draining:  draining,
	}
}

// Run connects and serves tasks until ctx is cancelled or the orchestrator
// sends a "drain" control; then it drains (takes no new tasks, finishes the
// ones in flight, tells the orchestrator in a heartbeat) and returns nil. It
// returns an error if the orchestrator refuses the credentials on the first
// connect (wrapping fabric.ErrAuth) or its certificate does not verify, or if
// the connection closes for good, after aborting the tasks in flight. Lost
// connections are re-dialled forever, through refused credentials too. A
// cancelled ctx before the first connection returns nil. Run may be called
// once.
func (a *Agent) Run(ctx context.Context) error {
	if !a.started.CompareAndSwap(false, true) {
		return errors.New("agent: Run called twice")
	}
	reconnected := make(chan struct{}, 1)
	closed := make(chan struct{})
	var closeOnce sync.Once
	opts := []nats.Option{
		nats.ReconnectHandler(func(*nats.Conn) {
			a.connected.Store(true)
			a.log.Info("reconnected to orchestrator")
			select {
			case reconnected <- struct{}{}:
			default:
			}
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			a.connected.Store(false)
			a.conn.end() // a Hello in flight will get no answer: stop waiting
			if err != nil {
				a.log.Warn("disconnected from orchestrator", "err", err)
			}
		}),
		nats.ClosedHandler(func(*nats.Conn) {
			a.connected.Store(false)
			closeOnce.Do(func() { close(closed) })
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			a.log.Warn("host link error", "err", err)
		}),
	}
	if a.cfg.TLS != nil {
		opts = append(opts, nats.Secure(a.cfg.TLS))
	}
	retry := func(err error, wait time.Duration) {
		a.log.Warn("cannot reach the orchestrator; retrying", "url", a.cfg.URL, "err", err, "retry_in", wait.Round(time.Millisecond))
	}
	nc, err := fabric.ConnectHostNotify(ctx, a.cfg.URL, a.cfg.HostID, a.cfg.Secret, retry, opts...)
	if err != nil {
		if ctx.Err() != nil && !errors.Is(err, fabric.ErrAuth) {
			return nil
		}
		return fmt.Errorf("agent: %w", err)
	}
	defer nc.Close()
	a.connected.Store(true)
	a.log.Info("connected to orchestrator", "models", len(a.models), "capacity", a.cfg.Capacity)

	// taskCtx outlives ctx so that in-flight tasks finish during a drain; it
	// ends early only when the link is lost for good.
	taskCtx, abortTasks := context.WithCancel(context.Background())
	defer abortTasks()
	// One subscription for task, cancel and ctl, so they are handled in the
	// order the orchestrator sent them: a Cancel right behind its Task must
	// find the task registered, not overtake it on another goroutine.
	id := a.cfg.HostID
	taskSubj, cancelSubj, ctlSubj := fabric.TaskSubject(id), fabric.CancelSubject(id), fabric.ControlSubject(id)
	inbound := fabric.SubjectPrefix + ".host." + id + ".*"
	sub, err := nc.Subscribe(inbound, func(m *nats.Msg) {
		switch m.Subject {
		case taskSubj:
			a.onTask(taskCtx, nc, m)
		case cancelSubj:
			a.onCancel(m)
		case ctlSubj:
			a.onControl(nc, m)
		default:
			a.log.Warn("message on an unknown subject", "subject", m.Subject)
		}
	})
	if err != nil {
		return fmt.Errorf("agent: subscribe %s: %w", inbound, err)
	}
	subs := []*nats.Subscription{sub}

	linkCtx, stopLink := context.WithCancel(context.Background())
	linkDone := make(chan struct{})
	go func() {
		defer close(linkDone)
		a.link(linkCtx, nc, reconnected)
	}()

	var runErr error
	select {
	case <-ctx.Done():
		a.log.Info("draining: stop requested")
	case <-a.drainReq:
		a.log.Info("draining: orchestrator asked")
	case <-closed:
		runErr = fmt.Errorf("agent: connection closed: %v", nc.LastError())
		a.log.Error("connection closed for good; aborting tasks", "err", nc.LastError())
		abortTasks()
	}
	a.mu.Lock()
	a.draining = true
	a.mu.Unlock()
	a.publishHeartbeat(nc)
	a.tasks.Wait()
	stopLink()
	<-linkDone
	for _, s := range subs {
		_ = s.Unsubscribe()
	}
	if runErr == nil && nc.IsConnected() {
		a.publishHeartbeat(nc) // InFlight 0, Draining: the orchestrator can forget us
		_ = nc.FlushTimeout(5 * time.Second)
	}
	nc.Close()
	a.connected.Store(false) // the closed handler runs asynchronously
	a.log.Info("stopped", "done", a.done.Load(), "cancelled", a.cancelled.Load(), "failed", a.failed.Load())
	return runErr
}

// link says Hello (at start and after every reconnect, retried with backoff
// until acknowledged) and sends heartbeats, until ctx ends.
func (a *Agent) link(ctx context.Context, nc *nats.Conn, reconnected <-chan struct{}) {
	every := DefaultHeartbeat
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	needHello, attempt := true, 0
	for {
		if needHello {
			ack, err := a.hello(ctx, nc)
			switch {
			case err == nil:
				needHello, attempt = false, 0
				a.hellos.Add(1)
				if ack.HeartbeatEvery > 0 && ack.HeartbeatEvery != every {
					every = ack.HeartbeatEvery
					ticker.Reset(every)
				}
				a.log.Info("hello acknowledged", "heartbeat_every", every)
				a.publishHeartbeat(nc)
			case ctx.Err() != nil:
				return
			default:
				d := fabric.ReconnectDelay(attempt)
				attempt++
				a.log.Warn("hello not acknowledged; retrying", "err", err, "in", d)
				retry.Reset(d)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-reconnected:
			needHello = true
		case <-retry.C:
		case <-ticker.C:
			if !needHello {
				a.publishHeartbeat(nc)
			}
		}
	}
}

func (a *Agent) hello(ctx context.Context, nc *nats.Conn) (fabric.HelloAck, error) {
	b, err := fabric.Encode(&fabric.Hello{
		HostID:   a.cfg.HostID,
		Agent:    a.cfg.Agent,
		Models:   a.models,
		Hardware: a.cfg.Hardware,
		Region:   a.cfg.Region,
		Tier:     a.cfg.Tier,
		Capacity: a.cfg.Capacity,
		Throttle: a.cfg.Throttle,
	})
	if err != nil {
		return fabric.HelloAck{}, err
	}
	rctx, cancel := context.WithTimeout(ctx, helloTimeout)
	defer cancel()
	stop := context.AfterFunc(a.conn.current(), cancel)
	defer stop()
	sent := time.Now()
	msg, err := nc.RequestWithContext(rctx, fabric.HelloSubject(a.cfg.HostID), b)
	if err != nil {
		return fabric.HelloAck{}, fmt.Errorf("hello: %w", err)
	}
	received := time.Now()
	var ack fabric.HelloAck
	if err := fabric.Decode(msg.Data, &ack); err != nil {
		return ack, fmt.Errorf("hello: %w", err)
	}
	if !ack.OK {
		return ack, fmt.Errorf("hello refused: %s", ack.Error)
	}
	if !ack.Now.IsZero() {
		// The answer was written about halfway through the round trip.
		mid := sent.Add(received.Sub(sent) / 2)
		off := ack.Now.Sub(mid)
		a.clockOffset.Store(int64(off))
		if off > time.Second || off < -time.Second {
			a.log.Warn("host clock differs from the orchestrator's; correcting task deadlines", "offset", off.Round(time.Millisecond))
		}
	}
	return ack, nil
}

// localTime converts an orchestrator time (a Task deadline) to this host's
// clock, using the offset measured at the last Hello.
func (a *Agent) localTime(t time.Time) time.Time {
	return t.Add(-time.Duration(a.clockOffset.Load()))
}

// heartbeat is the agent's current load. TokensPerSec is the rate since the
// previous periodic heartbeat; advance starts the next period (a ping's
// answer does not).
func (a *Agent) heartbeat(advance bool) fabric.Heartbeat {
	now := time.Now()
	tokens := a.tokens.Load()
	a.rateMu.Lock()
	var rate float64
	if dt := now.Sub(a.rateAt).Seconds(); dt > 0 {
		rate = float64(tokens-a.rateTokens) / dt
	}
	if advance {
		a.rateTokens, a.rateAt = tokens, now
	}
	a.rateMu.Unlock()
	cpu := a.cpu.lastUtil()
	if advance {
		cpu = a.cpu.util()
	}
	a.mu.Lock()
	inFlight, draining := len(a.running), a.draining
	a.mu.Unlock()
	return fabric.Heartbeat{
		HostID:         a.cfg.HostID,
		Sent:           now,
		InFlight:       inFlight,
		Capacity:       a.cfg.Capacity,
		TokensPerSec:   rate,
		CPUUtil:        cpu,
		Draining:       draining,
		TasksCancelled: a.cancelled.Load(),
	}
}

func (a *Agent) publishHeartbeat(nc *nats.Conn) {
	b, err := fabric.Encode(a.heartbeat(true))
	if err != nil {
		return
	}
	if err := nc.Publish(fabric.HeartbeatSubject(a.cfg.HostID), b); err != nil {
		a.log.Debug("heartbeat not sent", "err", err)
	}
}

func (a *Agent) onCancel(m *nats.Msg) {
	var c fabric.Cancel
	if err := fabric.Decode(m.Data, &c); err != nil {
		a.log.Warn("bad cancel message", "err", err)
		return
	}
	a.mu.Lock()
	cancel := a.running[c.TaskID]
	a.mu.Unlock()
	if cancel != nil {
		cancel(errCancelled)
	}
}

func (a *Agent) onControl(nc *nats.Conn, m *nats.Msg) {
	var c fabric.Control
	if err := fabric.Decode(m.Data, &c); err != nil {
		a.log.Warn("bad control message", "err", err)
		return
	}
	switch c.Op {
	case "drain":
		a.drainOnce.Do(func() { close(a.drainReq) })
	case "ping":
		if m.Reply != "" {
			if b, err := fabric.Encode(a.heartbeat(false)); err == nil {
				_ = m.Respond(b)
			}
		}
	default:
		a.log.Warn("unknown control op", "op", c.Op)
	}
}
