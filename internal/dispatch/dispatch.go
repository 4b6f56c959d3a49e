// Package dispatch runs generation requests on hosts: it keeps the live host
// table from the hosts' Hello and Heartbeat messages, picks a main and a
// backup host per segment (through package router), sends each segment as a
// fabric.Task, merges the token streams into one ordered stream for the
// consumer, fails over mid-stream when a host dies, stalls or errors, hedges
// slow hosts, compares redundant outputs (verification) and reports measured
// figures to the registry.
//
// Only orchestrator wiring (serve, httpapi) imports it. It never imports an
// engine implementation and never logs or stores prompt or answer text.
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/peerllm/peerllm/internal/fabric"
	"github.com/peerllm/peerllm/internal/registry"
)

// Sentinel errors the HTTP layer maps to statuses.
var (
	// ErrNoHost means no live host can serve the model now (503 with Retry-After).
	ErrNoHost = errors.New("no host available for the model")
	// ErrModelNotFound means no host has served the model since the
	// orchestrator started (404).
	ErrModelNotFound = errors.New("model not found")
	// ErrContextLength means the request does not fit any host's context (400).
	ErrContextLength = errors.New("request exceeds the model's context length")
	// ErrOverloaded means every host serving the model is at capacity (429/503
	// with Retry-After).
	ErrOverloaded = errors.New("all hosts serving the model are at capacity")
	// ErrBadRequest means a host refused the request as invalid (400).
	ErrBadRequest = errors.New("invalid generation request")
)

// Redundancy modes of Config.Mode and Request.Mode.
const (
	ModeParallel = "parallel" // main and backup from the start
	ModeHedged   = "hedged"   // backup starts when the main is late
	ModeOff      = "off"      // main only; a fresh host on failure
)

// Config tunes a Dispatcher. Zero values take the defaults given.
type Config struct {
	// SegmentTokens is the first segment's size K in tokens; default 16
	// (minimum 4). Segments double while the main host stays healthy, up to
	// MaxSegmentTokens.
	SegmentTokens int
	// MaxSegmentTokens caps the adaptive segment size; default 256.
	MaxSegmentTokens int
	// Mode is the default redundancy mode: "parallel" (default), "hedged", "off".
	Mode string
	// HeartbeatEvery is the interval hosts are told to heartbeat at; default 2s.
	HeartbeatEvery time.Duration
	// DeadAfter is how long without a heartbeat makes a host dead; default
	// 3×HeartbeatEvery.
	DeadAfter time.Duration
	// StallFloor is the least time a streaming host may take for its next
	// token before it is declared stalled; default 2s. The deadline is
	// StallFactor × its measured ms/token (or TTFT for the first token) when
	// that is longer.
	StallFloor time.Duration
	// StallFactor multiplies the measured figures into a stall deadline; default 10.
	StallFactor float64
	// FirstTokenTimeout bounds the first token of a host with no measured
	// TTFT yet; default 30s.
	FirstTokenTimeout time.Duration
	// HedgeFactor: in hedged mode the backup starts when the main is
	// HedgeFactor × later than its own history predicts; default 3.
	HedgeFactor float64
	// HedgeFloor is the least delay before hedging; default 50ms.
	HedgeFloor time.Duration
	// ProbeFloor is the least silence after which the streaming host is
	// asked whether it is still connected; default 50ms. The probe runs
	// after max(ProbeFloor, 3 × its ms/token) and finds a host whose process
	// or connection died in about one round trip.
	ProbeFloor time.Duration
	// MaxFailovers bounds the fresh attempts one request may start after
	// failures and divergences; default 6.
	MaxFailovers int
	// PersistEvery is how often measured figures are written to the
	// registry; default 15s.
	PersistEvery time.Duration
	// Region is the orchestrator's region; hosts there are preferred.
	Region string
	// TaskDeadline is carried in tasks when the request context has no
	// deadline; default 10 minutes.
	TaskDeadline time.Duration
	// Admit, when set, is asked on every Hello of an eligible host whether
	// it may work now (regional seat gating). A refusal's reason is sent in
	// the HelloAck (e.g. "waitlisted: position 2 in region eu") and the
	// host retries. nil admits every eligible host.
	Admit func(ctx context.Context, hostID, region string) (ok bool, reason string)
}

func (c Config) withDefaults() (Config, error) {
	if c.SegmentTokens == 0 {
		c.SegmentTokens = 16
	}
	c.SegmentTokens = max(c.SegmentTokens, 4) // a character spans at most 4 byte tokens
	if c.MaxSegmentTokens == 0 {
		c.MaxSegmentTokens = 256
	}
	c.MaxSegmentTokens = max(c.MaxSegmentTokens, c.SegmentTokens)
	switch c.Mode {
	case "":
		c.Mode = ModeParallel
	case ModeParallel, ModeHedged, ModeOff:
	default:
		return c, fmt.Errorf("dispatch mode %q: want parallel, hedged or off", c.Mode)
	}
	if c.HeartbeatEvery <= 0 {
		c.HeartbeatEvery = 2 * time.Second
	}
	if c.DeadAfter <= 0 {
		c.DeadAfter = 3 * c.HeartbeatEvery
	}
	if c.StallFloor <= 0 {
		c.StallFloor = 2 * time.Second
	}
	if c.StallFactor <= 0 {
		c.StallFactor = 10
	}
	if c.FirstTokenTimeout <= 0 {
		c.FirstTokenTimeout = 30 * time.Second
	}
	if c.HedgeFactor <= 0 {
		c.HedgeFactor = 3
	}
	if c.HedgeFloor <= 0 {
		c.HedgeFloor = 50 * time.Millisecond
	}
	if c.ProbeFloor <= 0 {
		c.ProbeFloor = 50 * time.Millisecond
	}
	if c.MaxFailovers <= 0 {
		c.MaxFailovers = 6
	}
	if c.PersistEvery <= 0 {
		c.PersistEvery = 15 * time.Second
	}
	if c.TaskDeadline <= 0 {
		c.TaskDeadline = 10 * time.Minute
	}
	return c, nil
}

// Dispatcher is the orchestrator's side of the host link. Create it with New,
// start it with Run, then call Generate from any goroutine.
type Dispatcher struct {
	cfg Config
	nc  *nats.Conn
	reg *registry.Registry
	log *slog.Logger
	m   *metrics

	mu      sync.Mutex
	hosts   map[string]*liveHost
	tasks   map[string]*attempt // task id → attempt, for routing chunks
	pending map[string]*registry.FiguresUpdate
	known   map[string]bool // models seen since start
	rng     *rand.Rand
	// slotWait counts, per model, the answers under way that wait for a
	// slot on a full host; new requests yield to them (start.go).
	slotWait map[string]int

	// verifyCtx ends when Run stops; verifies counts the verification
	// tasks running (verify.go), which Run waits for.
	verifyCtx  context.Context
	stopVerify context.CancelFunc
	verifies   sync.WaitGroup
}

// liveHost is what the dispatcher knows about a host that said Hello. Guarded
// by Dispatcher.mu.
type liveHost struct {
	id, owner, region, tier, agent string
	models                         map[string]fabric.ModelInfo
	capacity                       int
	hb                             fabric.Heartbeat
	connectedAt, lastSeen          time.Time
	dead                           bool
	rtt                            time.Duration
	inflight                       int  // tasks this dispatcher runs on it
	fallback                       bool // operator-run: tasks only when no community host can
	ttftMs, msPerToken             float64
	successes, failures, diverged  int64
	attempts                       map[*attempt]struct{}
}

// New creates a dispatcher that talks to hosts over nc (a privileged
// orchestrator connection) and checks them against reg. metrics may be nil.
func New(cfg Config, nc *nats.Conn, reg *registry.Registry, log *slog.Logger, metrics prometheus.Registerer) (*Dispatcher, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if nc == nil || reg == nil {
		return nil, errors.New("dispatch: nats connection and registry are required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Dispatcher{cfg: cfg, nc: nc, reg: reg, log: log,
		hosts: map[string]*liveHost{}, tasks: map[string]*attempt{}, slotWait: map[string]int{},
		pending: map[string]*registry.FiguresUpdate{}, known: map[string]bool{},
		rng: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))}
	d.verifyCtx, d.stopVerify = context.WithCancel(context.Background())
	if d.m, err = newMetrics(metrics, d.liveHostCount); err != nil {
		return nil, err
	}
	return d, nil
}

// Run subscribes to hosts' hellos, heartbeats and token streams, watches for
// dead hosts and persists measured figures, until ctx is done. It returns nil
// then, or an error if it cannot subscribe.
func (d *Dispatcher) Run(ctx context.Context) error {
	var subs []*nats.Subscription
	defer func() {
		for _, s := range subs {
			s.Unsubscribe()
		}
	}()
	for subj, h := range map[string]nats.MsgHandler{
		fabric.SubjectPrefix + ".hello.*": d.onHello,
		fabric.SubjectPrefix + ".hb.*":    d.onHeartbeat,
		fabric.SubjectPrefix + ".out.*.*": d.onChunk,
	} {
		s, err := d.nc.Subscribe(subj, h)
		if err != nil {
			return fmt.Errorf("dispatch: subscribe %s: %w", subj, err)
		}
		s.SetPendingLimits(-1, -1) // chunks must never be dropped as a slow consumer
		subs = append(subs, s)
	}
	if err := d.nc.FlushTimeout(5 * time.Second); err != nil {
		return fmt.Errorf("dispatch: flush subscriptions: %w", err)
	}
	health := time.NewTicker(max(d.cfg.HeartbeatEvery/2, 10*time.Millisecond))
	defer health.Stop()
	persist := time.NewTicker(d.cfg.PersistEvery)
	defer persist.Stop()
	for {
		select {
		case <-ctx.Done():
			for _, s := range subs {
				s.Unsubscribe()
			}
			subs = nil
			d.mu.Lock()
			d.stopVerify() // under d.mu: no verification starts after this
			d.mu.Unlock()
			d.verifies.Wait()
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			d.persist(fctx)
			cancel()
			d.mu.Lock()
			for id := range d.hosts {
				d.reg.SetLive(id, registry.Live{})
			}
			d.hosts = map[string]*liveHost{}
			d.mu.Unlock()
			return nil
		case now := <-health.C:
			d.checkHealth(now)
		case <-persist.C:
			d.persist(ctx)
		}
	}
}

// ModelStatus is one model served right now.
type ModelStatus struct {
	Name          string
	Hosts         int // live, eligible hosts serving it
	ContextLength int // the largest context among them
}

// Models lists the models served right now by at least one live, eligible
// host, by name.
func (d *Dispatcher) Models() []ModelStatus {
	d.mu.Lock()
	defer d.mu.Unlock()
	byName := map[string]*ModelStatus{}
	var names []string
	for _, h := range d.hosts {
		if !d.usable(h) {
			continue
		}
		for name, mi := range h.models {
			s := byName[name]
			if s == nil {
				s = &ModelStatus{Name: name}
				byName[name] = s
				names = append(names, name)
			}
			s.Hosts++
			s.ContextLength = max(s.ContextLength, mi.ContextLength)
		}
	}
	slices.Sort(names)
	out := make([]ModelStatus, 0, len(names))
	for _, n := range names {
		out = append(out, *byName[n])
	}
	return out
}

// usable reports whether h may get new tasks. Caller holds d.mu.
func (d *Dispatcher) usable(h *liveHost) bool {
	return !h.dead && !h.hb.Draining && d.reg.Eligible(h.id) == nil
}

func (d *Dispatcher) liveHostCount() float64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, h := range d.hosts {
		if !h.dead {
			n++
		}
	}
	return float64(n)
}

// hostFromSubject returns the <host> token of peerllm.<kind>.<host>[.<task>].
// The NATS permissions guarantee a host publishes only under its own id, so
// the subject, not the message body, says who sent it.
func hostFromSubject(subj string) (host, task string) {
	parts := strings.Split(subj, ".")
	if len(parts) >= 3 {
		host = parts[2]
	}
	if len(parts) >= 4 {
		task = parts[3]
	}
	return host, task
}

func (d *Dispatcher) onHello(msg *nats.Msg) {
	hostID, _ := hostFromSubject(msg.Subject)
	// NATS does not check the reply subject a client names: answering on
	// the orchestrator's privileged connection to anything but the host's
	// own inbox would let a host publish onto another host's subjects.
	if !fabric.ReplyAllowed(hostID, msg.Reply) {
		d.log.Warn("host hello with a foreign reply subject dropped", "host", hostID)
		return
	}
	var hello fabric.Hello
	// Now lets the host correct task deadlines for a wrong local clock.
	ack := fabric.HelloAck{HeartbeatEvery: d.cfg.HeartbeatEvery, Now: time.Now()}
	err := fabric.Decode(msg.Data, &hello)
	switch {
	case err != nil:
		ack.Error = err.Error()
	case hello.HostID != hostID:
		ack.Error = "host id does not match credentials"
	default:
		if e := d.reg.Eligible(hostID); e != nil {
			ack.Error = e.Error()
		}
	}
	var h registry.Host
	if ack.Error == "" {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		h, err = d.reg.Host(ctx, hostID)
		cancel()
		if err != nil {
			ack.Error = "host not registered"
		}
	}
	if ack.Error == "" && d.cfg.Admit != nil {
		region := h.Region
		if region == "" {
			region = hello.Region
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if ok, reason := d.cfg.Admit(ctx, hostID, region); !ok {
			ack.Error = reason
		}
		cancel()
	}
	if ack.Error == "" {
		ack.OK = true
		d.addHost(h, hello)
		d.log.Info("host hello", "host", hostID, "models", len(hello.Models), "capacity", hello.Capacity, "agent", hello.Agent)
	} else {
		d.log.Warn("host hello refused", "host", hostID, "reason", ack.Error)
	}
	if data, err := fabric.Encode(ack); err == nil && msg.Reply != "" {
		msg.Respond(data)
	}
}

func (d *Dispatcher) addHost(h registry.Host, hello fabric.Hello) {
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	lh := d.hosts[h.ID]
	if lh == nil {
		lh = &liveHost{id: h.ID, attempts: map[*attempt]struct{}{},
			ttftMs: float64(h.Figures.TTFT) / float64(time.Millisecond), msPerToken: h.Figures.MsPerToken,
			successes: h.Figures.Successes, failures: h.Figures.Failures, diverged: h.Figures.Divergences}
		d.hosts[h.ID] = lh
	}
	lh.owner, lh.tier, lh.region, lh.agent = h.Owner, h.Tier, h.Region, hello.Agent
	lh.fallback = h.Fallback
	if lh.region == "" {
		lh.region = hello.Region
	}
	lh.models = map[string]fabric.ModelInfo{}
	for _, m := range hello.Models {
		lh.models[m.Name] = m
		d.known[m.Name] = true
	}
	lh.capacity = max(hello.Capacity, 1)
	lh.hb = fabric.Heartbeat{HostID: h.ID, Capacity: lh.capacity}
	lh.connectedAt, lh.lastSeen, lh.dead = now, now, false
	d.publishLive(lh)
}

func (d *Dispatcher) onHeartbeat(msg *nats.Msg) {
	hostID, _ := hostFromSubject(msg.Subject)
	var hb fabric.Heartbeat
	if err := fabric.Decode(msg.Data, &hb); err != nil {
		return
	}
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	lh := d.hosts[hostID]
	if lh == nil {
		return // a host must say Hello first
	}
	hb.HostID = hostID
	if hb.Capacity <= 0 {
		hb.Capacity = lh.capacity
	}
	lh.capacity = hb.Capacity
	lh.hb, lh.lastSeen, lh.dead = hb, now, false
	// One-way delay as an RTT estimate: exact on one machine, skewed by
	// clock offsets across machines, so it is clamped and smoothed.
	if !hb.Sent.IsZero() {
		lag := min(max(now.Sub(hb.Sent), 0), 5*time.Second)
		lh.rtt = (lh.rtt*4 + 2*lag) / 5
	}
	d.publishLive(lh)
}

// publishLive mirrors lh into the registry's live view. Caller holds d.mu.
func (d *Dispatcher) publishLive(lh *liveHost) {
	if lh.dead {
		d.reg.SetLive(lh.id, registry.Live{})
		return
	}
	models := make([]fabric.ModelInfo, 0, len(lh.models))
	for _, m := range lh.models {
		models = append(models, m)
	}
	d.reg.SetLive(lh.id, registry.Live{Online: true, Agent: lh.agent, Models: models,
		InFlight: max(lh.inflight, lh.hb.InFlight), Capacity: lh.capacity, TokensPerSec: lh.hb.TokensPerSec,
		CPUUtil: lh.hb.CPUUtil, GPUUtil: lh.hb.GPUUtil, RTT: lh.rtt, Draining: lh.hb.Draining,
		ConnectedAt: lh.connectedAt, LastHeartbeat: lh.lastSeen})
}

// checkHealth declares hosts dead after DeadAfter without a heartbeat and
// fails their running attempts at once, so requests fail over without
// waiting for a stall deadline. Dead hosts come back with a heartbeat.
func (d *Dispatcher) checkHealth(now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for id, h := range d.hosts {
		if h.dead {
			if now.Sub(h.lastSeen) > 100*d.cfg.DeadAfter {
				delete(d.hosts, id)
			}
			continue
		}
		if now.Sub(h.lastSeen) <= d.cfg.DeadAfter {
			continue
		}
		d.markDead(h, "no heartbeat for "+now.Sub(h.lastSeen).Round(time.Millisecond).String())
	}
}

// markDead takes h out of service and fails its running attempts at once.
// Caller holds d.mu.
func (d *Dispatcher) markDead(h *liveHost, why string) {
	if h.dead {
		return
	}
	h.dead = true
	d.publishLive(h)
	d.log.Warn("host dead", "host", h.id, "why", why)
	for a := range h.attempts {
		a.req.push(event{a: a, err: errHostDead})
	}
}

// probe asks host id whether it is still connected (a ping on its control
// subject). When no subscriber answers, the host's NATS connection is gone
// (a killed process, a dropped link): it is declared dead at once instead of
// after a stall deadline. A slow answer proves nothing either way.
func (d *Dispatcher) probe(ctx context.Context, hostID string) {
	data, err := fabric.Encode(fabric.Control{Op: "ping"})
	if err != nil {
		return
	}
	_, err = d.nc.RequestWithContext(ctx, fabric.ControlSubject(hostID), data)
	if !errors.Is(err, nats.ErrNoResponders) {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if h := d.hosts[hostID]; h != nil {
		d.markDead(h, "not connected")
	}
}

// persist writes the figures gathered since the last call to the registry.
func (d *Dispatcher) persist(ctx context.Context) {
	d.mu.Lock()
	ups := make([]registry.FiguresUpdate, 0, len(d.pending))
	for id, u := range d.pending {
		if h := d.hosts[id]; h != nil {
			u.TTFT = time.Duration(h.ttftMs * float64(time.Millisecond))
			u.MsPerToken = h.msPerToken
			u.LastSeen = h.lastSeen
		}
		ups = append(ups, *u)
	}
	d.pending = map[string]*registry.FiguresUpdate{}
	d.mu.Unlock()
	if err := d.reg.RecordFigures(ctx, ups); err != nil {
		d.log.Warn("persist host figures", "err", err, "hosts", len(ups))
	}
}

// figures returns the pending update for host id. Caller holds d.mu.
func (d *Dispatcher) figures(id string) *registry.FiguresUpdate {
	u := d.pending[id]
	if u == nil {
		u = &registry.FiguresUpdate{HostID: id}
		d.pending[id] = u
	}
	return u
}
