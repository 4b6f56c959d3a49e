package dispatch

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/peerllm/peerllm/internal/engine"
	"github.com/peerllm/peerllm/internal/fabric"
)

// Request is one generation to run on hosts.
type Request struct {
	ID     string // request id, for logs
	Model  string
	Engine engine.Request // Continue must be empty; the dispatcher sets it
	Mode   string         // "parallel", "hedged", "off", or "" for Config.Mode
	Tier   string         // "enterprise" prefers enterprise hosts; "" any
	// Progress, when set, is called from the Generate goroutine at every
	// segment boundary with the outcome so far (tokens delivered and the
	// tokens each host generated). It must return quickly: billing
	// checkpoints usage with it so a crash loses at most one segment.
	Progress func(Outcome)
}

// Delta is the next piece of the answer: valid UTF-8, in order, never
// duplicated. Tokens is how many tokens it completes: more than one when a
// character spanned several byte tokens, or when tokens arrived faster than
// the consumer took them (those already waiting go out together).
type Delta struct {
	Text   string
	Tokens int
	Host   string // id of the host whose tokens these are (for strikes)
}

// Outcome is how a generation ended, for metering and logs.
type Outcome struct {
	FinishReason     string // "stop" or "length"
	PromptTokens     int
	CompletionTokens int
	// HostTokens counts tokens generated per host id, including backups'
	// and hedges' work that the consumer did not see, for the ledger.
	HostTokens map[string]int
	Failovers  int // times the streaming host failed and another continued
	Hedges     int // backups started because the main was late
	TTFT       time.Duration
}

var (
	errHostDead = errors.New("host dead")
	errStalled  = errors.New("host stalled")
	errDiverged = errors.New("host output diverged from the delivered stream")
	errProtocol = errors.New("host broke the chunk protocol")
	// errPreempted tells a request its backup gave its slot to a main task.
	errPreempted = errors.New("backup preempted")
	// errContextFull ends a generation that filled the context after
	// producing tokens: finish reason "length", not an error.
	errContextFull = errors.New("context full")
)

// event is a chunk or a failure for one attempt, queued for the request's
// goroutine.
type event struct {
	a       *attempt
	chunk   *fabric.Chunk
	err     error
	verdict *verdict // a verification's outcome (a is nil)
}

// queue hands events from NATS callbacks and the health loop to a request's
// goroutine without ever blocking the sender.
type queue struct {
	mu     sync.Mutex
	evs    []event
	signal chan struct{}
	// active counts the request's running attempts, so another request
	// can tell whether preempting one of them leaves it a runner.
	active atomic.Int32
}

func (q *queue) push(e event) {
	q.mu.Lock()
	q.evs = append(q.evs, e)
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

func (q *queue) take() []event {
	q.mu.Lock()
	defer q.mu.Unlock()
	evs := q.evs
	q.evs = nil
	return evs
}

// attempt is one task on one host. Its fields after registration belong to
// the request goroutine; id, hostID and req are read by the chunk router.
type attempt struct {
	req    *queue
	id     string
	hostID string
	role   string // main, backup, hedge, failover
	start  int    // len(Continue)
	max    int    // MaxTokens of the task

	// firstLimit is the stall deadline for the first token, hedgeFirst the
	// hedge delay; tokenLimit and hedgeToken the same between tokens.
	firstLimit, tokenLimit, hedgeFirst, hedgeToken time.Duration
	// probeToken is the silence after which the host is probed; probed
	// records that it was, since the last progress.
	probeFirst, probeToken time.Duration
	probed                 bool

	// released (guarded by Dispatcher.mu) records that the attempt's host
	// slot and its place in queue.active were given back.
	released bool

	toks                    []fabric.ChunkToken
	nextSeq                 int
	sentAt, firstAt, lastAt time.Time
	done                    bool
	finish                  string
	ended                   bool
	// text marks a host whose engine counts streamed pieces, not the
	// model's tokens (HTTP engines: a server may pack several tokens in a
	// piece), so its "length" can come short of the segment.
	text bool
}

func (a *attempt) end() int { return a.start + len(a.toks) }

// gen is one Generate call's state. Only the calling goroutine touches it.
type gen struct {
	d   *Dispatcher
	ctx context.Context
	req Request
	// emit collects the deltas of one batch of events; sink is the
	// caller's emit, which flushDeltas calls once per batch and host.
	emit func(Delta) error
	sink func(Delta) error
	pend pending
	mode string
	q    *queue

	ids    []int    // delivered token ids by position
	from   []string // host that delivered each position
	commit int      // positions up to the last non-partial token (text emitted)
	text   strings.Builder

	stops      []string // the request's stop sequences, applied by deliver
	stopped    bool     // a stop sequence ended the answer
	hold       string   // delivered text held back: it may begin a stop sequence
	holdTokens int      // tokens of hold not yet reported in a Delta

	active     []*attempt
	lastLeader *attempt
	exclude    map[string]bool // hosts that failed this request
	// kind is the engine kind whose token ids the delivered stream holds;
	// a continuation needs that kind, or an engine that reads text.
	kind      string
	soft      map[string]bool      // of those, hosts that only stalled or went silent: a last resort
	ctxLimit  int                  // hosts with a context this small or smaller refused the request
	fresh     int                  // attempts started after failures
	noBackup  bool                 // no backup candidate this segment
	cooldown  map[string]time.Time // hosts that said "overloaded", skipped until then
	retryAt   time.Time            // when to retry a start refused for capacity
	overloads int
	// slotWaiting: the answer is under way and waits for a slot (counted in
	// Dispatcher.slotWait); slotWaits counts its retries.
	slotWaiting bool
	slotWaits   int
	verified    map[string]bool // hosts already in a verification of this request
	out         Outcome
	t0          time.Time

	probeCtx   context.Context // ends with the request
	stopProbes context.CancelFunc
	probes     sync.WaitGroup
}

// Generate runs req on hosts in segments, calling emit with each piece of the
// answer in order from the calling goroutine. It returns ErrModelNotFound,
// ErrNoHost, ErrOverloaded or ErrContextLength before emitting anything when
// the request cannot start; ctx.Err() when ctx ends (all host tasks are
// cancelled at once); emit's error if emit fails; or an error wrapping
// ErrNoHost if every host that could continue failed. The Outcome is filled
// as far as the generation got, also on error.
func (d *Dispatcher) Generate(ctx context.Context, req Request, emit func(Delta) error) (Outcome, error) {
	d.m.inflight.Inc()
	defer d.m.inflight.Dec()
	g := &gen{d: d, ctx: ctx, req: req, sink: emit, mode: req.Mode,
		q:       &queue{signal: make(chan struct{}, 1)},
		exclude: map[string]bool{}, soft: map[string]bool{}, cooldown: map[string]time.Time{}, t0: time.Now(),
		out: Outcome{HostTokens: map[string]int{}}}
	g.emit = g.queueDelta
	if g.mode == "" {
		g.mode = d.cfg.Mode
	}
	g.probeCtx, g.stopProbes = context.WithCancel(ctx)
	err := g.run()
	if g.slotWaiting {
		d.mu.Lock()
		g.endSlotWaitLocked()
		d.mu.Unlock()
	}
	if ferr := g.flushDeltas(); err == nil {
		err = ferr
	}
	if err == nil {
		err = g.flush() // empty after a stop sequence; text held at an end of sequence
	}
	if ferr := g.flushDeltas(); err == nil {
		err = ferr
	}
	g.cancelAll()
	g.stopProbes()
	g.probes.Wait()
	g.out.CompletionTokens = g.commit
	d.m.stage.WithLabelValues("request").Observe(time.Since(g.t0).Seconds())
	d.m.tokens.Add(float64(g.commit))
	if g.commit > 1 && g.out.TTFT > 0 {
		if rest := time.Since(g.t0) - g.out.TTFT; rest > 0 {
			d.m.tokensPerS.Observe(float64(g.commit-1) / rest.Seconds())
		}
	}
	d.m.requests.WithLabelValues(outcomeLabel(ctx, err)).Inc()
	return g.out, err
}

func outcomeLabel(ctx context.Context, err error) string {
	switch {
	case err == nil:
		return "ok"
	case ctx.Err() != nil:
		return "cancelled"
	case errors.Is(err, ErrOverloaded):
		return "overloaded"
	case errors.Is(err, ErrContextLength):
		return "context_length"
	case errors.Is(err, ErrModelNotFound):
		return "model_not_found"
	case errors.Is(err, ErrNoHost):
		return "no_host"
	}
	return "error"
}

func (g *gen) run() error {
	d, req := g.d, &g.req
	switch {
	case req.Model == "":
		return fmt.Errorf("%w: model is required", ErrBadRequest)
	case len(req.Engine.Continue) > 0:
		return fmt.Errorf("%w: continue is set by the dispatcher", ErrBadRequest)
	case g.mode != ModeParallel && g.mode != ModeHedged && g.mode != ModeOff:
		return fmt.Errorf("%w: mode %q", ErrBadRequest, g.mode)
	}
	// Main and backup must sample the same tokens, and a continuation must
	// sample what the dead host would have: fix the seed.
	if req.Engine.Sampling.Temperature > 0 && req.Engine.Sampling.Seed == 0 {
		d.mu.Lock()
		req.Engine.Sampling.Seed = d.rng.Uint64() | 1
		d.mu.Unlock()
	}
	if err := g.precheck(); err != nil {
		return err
	}
	g.stops, req.Engine.Stop = req.Engine.Stop, nil
	segSize := d.cfg.SegmentTokens
	var mainHost, backupHost string
	for {
		if mt := req.Engine.MaxTokens; mt > 0 && len(g.ids) >= mt {
			// The budget ended inside a multibyte character: its pieces
			// are dropped, as an uninterrupted run's would be unprintable.
			g.out.FinishReason = "length"
			return nil
		}
		g.ids, g.from = g.ids[:g.commit], g.from[:g.commit]
		segMax := segSize
		if mt := req.Engine.MaxTokens; mt > 0 {
			if mt-g.commit <= 0 {
				g.out.FinishReason = "length"
				return nil
			}
			segMax = min(segMax, mt-g.commit)
		}
		failovers := g.out.Failovers
		t := time.Now()
		finish, err := g.segment(g.commit+segMax, &mainHost, &backupHost)
		if err != nil {
			return err
		}
		d.m.stage.WithLabelValues("segment").Observe(time.Since(t).Seconds())
		if finish != "" {
			g.out.FinishReason = finish
			return nil
		}
		if req.Progress != nil {
			req.Progress(g.snapshot())
		}
		if g.out.Failovers == failovers {
			segSize = min(segSize*2, d.cfg.MaxSegmentTokens)
		} else {
			segSize = d.cfg.SegmentTokens
		}
	}
}

// precheck fails fast when no live host serves the model or the request
// cannot fit any of them.
func (g *gen) precheck() error {
	d := g.d
	d.mu.Lock()
	defer d.mu.Unlock()
	serving, fits := 0, 0
	for _, h := range d.hosts {
		mi, ok := h.models[g.req.Model]
		if !ok || !d.usable(h) {
			continue
		}
		serving++
		if mi.ContextLength <= 0 || g.req.Engine.MaxTokens < mi.ContextLength {
			fits++
		}
	}
	switch {
	case serving == 0 && !d.known[g.req.Model]:
		return fmt.Errorf("%w: %s", ErrModelNotFound, g.req.Model)
	case serving == 0:
		return fmt.Errorf("%w: %s", ErrNoHost, g.req.Model)
	case fits == 0:
		return fmt.Errorf("%w: max tokens %d", ErrContextLength, g.req.Engine.MaxTokens)
	}
	return nil
}

// segment runs positions [g.commit, segEnd) and returns the finish reason if
// the answer ended, or "" to go on with the next segment. On return
// *mainHost and *backupHost name the hosts to keep for the next segment.
func (g *gen) segment(segEnd int, mainHost, backupHost *string) (string, error) {
	d := g.d
	var cool errCoolingDown
	if _, err := g.start("main", *mainHost, segEnd); errors.As(err, &cool) {
		g.retryAt = time.Time(cool)
	} else if err != nil {
		return "", err
	}
	g.noBackup = false
	if g.mode == ModeParallel {
		g.startBackup(*backupHost, segEnd, "backup")
	}
	hedged := false
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if finish, ok := g.finished(segEnd, mainHost, backupHost); ok {
			return finish, nil
		}
		if len(g.active) == 0 && !time.Now().Before(g.retryAt) {
			if g.fresh >= d.cfg.MaxFailovers {
				return "", fmt.Errorf("%w: gave up after %d failovers", ErrNoHost, g.fresh)
			}
			_, err := g.start("failover", "", segEnd)
			switch {
			case errors.As(err, &cool) && g.overloads < maxOverloads:
				g.retryAt = time.Time(cool)
			case errors.As(err, &cool):
				return "", fmt.Errorf("%w: %s", ErrOverloaded, g.req.Model)
			case err != nil:
				return "", fmt.Errorf("continue after failover: %w", err)
			default:
				g.fresh++
			}
		}
		if g.mode == ModeParallel && len(g.active) == 1 && !g.noBackup && g.fresh < d.cfg.MaxFailovers {
			if g.startBackup("", segEnd, "backup") {
				g.fresh++
			}
		}
		now := time.Now()
		next := now.Add(time.Hour)
		if len(g.active) == 0 {
			next = g.retryAt
		}
		for _, a := range g.active {
			if dl, ok := a.deadline(false); ok && dl.Before(next) {
				next = dl
			}
		}
		if g.mode == ModeHedged && !hedged && len(g.active) == 1 {
			if dl, ok := g.active[0].deadline(true); ok && dl.Before(next) {
				next = dl
			}
		}
		for _, a := range g.active {
			if dl, ok := a.probeAt(); ok && dl.Before(next) {
				next = dl
			}
		}
		timer.Reset(max(next.Sub(now), 0))
		select {
		case <-g.ctx.Done():
			return "", g.ctx.Err()
		case <-g.q.signal:
		case <-timer.C:
		}
		evs := g.q.take()
		for i, ev := range evs {
			if err := g.handle(ev); errors.Is(err, errContextFull) {
				return "length", nil
			} else if errors.Is(err, errStopped) {
				if err := g.flushDeltas(); err != nil {
					return "", err
				}
				g.awaitUsage(evs[i+1:])
				return "stop", nil
			} else if err != nil {
				return "", err
			}
		}
		// Every token of the batch goes out in one write: the batch was
		// already waiting, so nothing is held back for later.
		if err := g.flushDeltas(); err != nil {
			return "", err
		}
		now = time.Now()
		for _, a := range append([]*attempt(nil), g.active...) {
			if dl, ok := a.deadline(false); ok && now.After(dl) {
				g.fail(a, errStalled, true)
			} else if dl, ok := a.probeAt(); ok && !now.Before(dl) {
				a.probed = true
				g.probes.Add(1)
				go func(host string) {
					defer g.probes.Done()
					pctx, cancel := context.WithTimeout(g.probeCtx, d.cfg.StallFloor)
					defer cancel()
					d.probe(pctx, host)
				}(a.hostID)
			}
		}
		if g.mode == ModeHedged && !hedged && len(g.active) == 1 {
			if dl, ok := g.active[0].deadline(true); ok && now.After(dl) {
				hedged = true
				if g.startBackup("", segEnd, "hedge") {
					g.out.Hedges++
					d.m.hedges.Inc()
				}
			}
		}
	}
}

// deadline is when a is stalled (or, with hedge, late enough to hedge).
func (a *attempt) deadline(hedge bool) (time.Time, bool) {
	if a.done {
		return time.Time{}, false
	}
	switch {
	case a.firstAt.IsZero() && hedge:
		return a.sentAt.Add(a.hedgeFirst), true
	case a.firstAt.IsZero():
		return a.sentAt.Add(a.firstLimit), true
	case hedge:
		return a.lastAt.Add(a.hedgeToken), true
	}
	return a.lastAt.Add(a.tokenLimit), true
}

// probeAt is when a's host should be asked whether it is still connected,
// if it has not been since a's last token.
func (a *attempt) probeAt() (time.Time, bool) {
	switch {
	case a.done || a.probed:
		return time.Time{}, false
	case a.firstAt.IsZero():
		return a.sentAt.Add(a.probeFirst), true
	}
	return a.lastAt.Add(a.probeToken), true
}

// finished ends the segment when an attempt that agrees with the delivered
// stream has reported Done after its last token was delivered. Other done
// attempts are retired.
func (g *gen) finished(segEnd int, mainHost, backupHost *string) (string, bool) {
	var win *attempt
	for _, a := range append([]*attempt(nil), g.active...) {
		if !a.done {
			continue
		}
		if a.end() == len(g.ids) && win == nil {
			win = a
			continue
		}
		// Done short of what another host delivered: a smaller context, or
		// an end of sequence the other host did not see.
		if a.finish == "stop" {
			g.diverged(a, a.end())
		}
		g.retire(a, false)
	}
	if win == nil {
		return "", false
	}
	finish := win.finish
	if finish == "" {
		finish = "stop"
	}
	// A segment that ran to its length continues the answer. An HTTP engine
	// reports "length" after fewer pieces than the segment asked for when
	// the server packs tokens; it continues too while it makes progress.
	segDone := finish == "length" && (win.end() >= segEnd || (win.text && win.end() > win.start))
	*mainHost, *backupHost = win.hostID, ""
	for _, a := range g.active {
		if a != win {
			*backupHost = a.hostID
		}
	}
	if *backupHost == "" && g.lastBackup(win) != "" {
		*backupHost = g.lastBackup(win)
	}
	g.retire(win, false)
	for _, a := range append([]*attempt(nil), g.active...) {
		g.retire(a, true)
	}
	if segDone {
		return "", true
	}
	return finish, true
}

// lastBackup is the host that delivered most recently other than win's, as a
// backup candidate for the next segment.
func (g *gen) lastBackup(win *attempt) string {
	for i := len(g.from) - 1; i >= 0; i-- {
		if g.from[i] != win.hostID && !g.exclude[g.from[i]] {
			return g.from[i]
		}
	}
	return ""
}

func (g *gen) handle(ev event) error {
	if ev.verdict != nil {
		g.onVerdict(*ev.verdict)
		return nil
	}
	a := ev.a
	if a.ended {
		return nil
	}
	if errors.Is(ev.err, errPreempted) {
		g.noBackup = true // a main elsewhere needed the slot; run on without
		g.retire(a, true)
		return nil
	}
	if ev.err != nil {
		g.fail(a, ev.err, true)
		return nil
	}
	c := ev.chunk
	if c.Seq != a.nextSeq {
		g.fail(a, fmt.Errorf("%w: chunk %d, want %d", errProtocol, c.Seq, a.nextSeq), true)
		return nil
	}
	a.nextSeq++
	now := time.Now()
	for _, t := range c.Tokens {
		if g.stopped {
			a.toks = append(a.toks, t)
			g.out.HostTokens[a.hostID]++
			continue
		}
		pos := a.end()
		if t.Index != pos {
			g.fail(a, fmt.Errorf("%w: token index %d, want %d", errProtocol, t.Index, pos), true)
			return nil
		}
		a.toks = append(a.toks, t)
		g.out.HostTokens[a.hostID]++
		if a.firstAt.IsZero() {
			a.firstAt = now
			g.d.observeFirstToken(a, now)
		}
		if pos < len(g.ids) {
			if g.ids[pos] != t.ID {
				g.diverged(a, pos)
				g.verify(a, pos, t.ID)
				g.fail(a, errDiverged, false)
				return nil
			}
			continue
		}
		g.ids = append(g.ids, t.ID)
		g.from = append(g.from, a.hostID)
		g.lastLeader = a
		if t.Partial {
			continue
		}
		n := len(g.ids) - g.commit
		g.commit = len(g.ids)
		if g.out.TTFT == 0 {
			g.out.TTFT = time.Since(g.t0)
			g.d.m.ttft.Observe(g.out.TTFT.Seconds())
		}
		g.text.WriteString(t.Text)
		if err := g.deliver(t.Text, n, a.hostID); errors.Is(err, errStopped) {
			g.stopped = true // the rest is counted, not delivered
		} else if err != nil {
			return err
		}
	}
	if len(c.Tokens) > 0 {
		a.lastAt, a.probed = now, false
	}
	if c.Done {
		a.done, a.finish = true, c.FinishReason
		if c.Usage != nil && g.out.PromptTokens == 0 {
			g.out.PromptTokens = c.Usage.PromptTokens
		}
	}
	switch {
	case g.stopped:
		if c.Error != "" {
			g.retire(a, false)
		}
		return errStopped
	case c.Error != "":
		return g.hostError(a, c)
	}
	return nil
}

// hostError handles a chunk carrying an error. Errors about the request end
// it; errors about the host fail over.
func (g *gen) hostError(a *attempt, c *fabric.Chunk) error {
	err := fmt.Errorf("host %s: %s (%s)", a.hostID, c.ErrorCode, firstLine(c.Error))
	switch c.ErrorCode {
	case "bad_request":
		g.fail(a, err, false)
		return fmt.Errorf("%w: refused by host", ErrBadRequest)
	case "context_length":
		g.d.mu.Lock()
		if h := g.d.hosts[a.hostID]; h != nil {
			g.ctxLimit = max(g.ctxLimit, h.models[g.req.Model].ContextLength)
		}
		g.d.mu.Unlock()
		g.fail(a, err, false)
		if len(g.active) == 0 && !g.anyFits() {
			if g.commit > 0 {
				// The answer has filled the context: a normal end.
				return errContextFull
			}
			return fmt.Errorf("%w: on every host", ErrContextLength)
		}
	case "overloaded":
		// Often a race with the host's previous task ending: try another
		// host, or this one again shortly. Not a failure, not a failover.
		g.overloads++
		g.cooldown[a.hostID] = time.Now().Add(overloadBackoff)
		g.retire(a, false)
	case "cancelled":
		g.fail(a, err, false)
	default:
		g.fail(a, err, true)
	}
	return nil
}

// anyFits reports whether a usable host has a context above g.ctxLimit.
func (g *gen) anyFits() bool {
	g.d.mu.Lock()
	defer g.d.mu.Unlock()
	for _, h := range g.d.hosts {
		if mi, ok := h.models[g.req.Model]; ok && g.d.usable(h) && !g.exclude[h.id] && mi.ContextLength > g.ctxLimit {
			return true
		}
	}
	return false
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// diverged records that a's token at pos disagrees with the delivered stream
// (or that a ended there while another host went on). Both hosts are counted:
// one disagreement cannot tell which is wrong, a host that fakes work
// disagrees with everyone. No strike: operators review the counters.
func (g *gen) diverged(a *attempt, pos int) {
	other := ""
	if pos < len(g.from) {
		other = g.from[pos]
	}
	g.d.m.divergences.Inc()
	g.d.mu.Lock()
	for _, id := range []string{a.hostID, other} {
		if id == "" || (id == other && other == a.hostID) {
			continue
		}
		g.d.figures(id).AddDivergences++
		if h := g.d.hosts[id]; h != nil {
			h.diverged++
		}
	}
	g.d.mu.Unlock()
	g.d.log.Warn("host output diverged", "request", g.req.ID, "host", a.hostID, "other", other, "position", pos)
}

// fail stops a after err, excludes its host for the rest of the request and,
// when countFailure, lowers the host's success history.
func (g *gen) fail(a *attempt, err error, countFailure bool) {
	if a.ended {
		return
	}
	if g.lastLeader == a || (g.lastLeader == nil && a.role == "main") {
		g.out.Failovers++
		g.d.m.failovers.Inc()
	}
	g.exclude[a.hostID] = true
	g.soft[a.hostID] = errors.Is(err, errStalled) || errors.Is(err, errHostDead)
	g.d.log.Warn("host task failed", "request", g.req.ID, "host", a.hostID, "task", a.id, "role", a.role,
		"at", a.end(), "err", err)
	if countFailure {
		g.d.mu.Lock()
		g.d.figures(a.hostID).AddFailures++
		if h := g.d.hosts[a.hostID]; h != nil {
			h.failures++
		}
		g.d.mu.Unlock()
	}
	g.retire(a, !errors.Is(err, errHostDead))
}

// retire ends a: it is forgotten by the chunk router, its host slot is
// released, and, with cancel, the host is told to stop.
func (g *gen) retire(a *attempt, cancel bool) {
	if a.ended {
		return
	}
	a.ended = true
	for i, x := range g.active {
		if x == a {
			g.active = append(g.active[:i], g.active[i+1:]...)
			break
		}
	}
	if g.lastLeader == a {
		g.lastLeader = nil
	}
	d := g.d
	d.m.tasks.Dec()
	d.mu.Lock()
	delete(d.tasks, a.id)
	u := d.figures(a.hostID)
	u.AddTokens += int64(len(a.toks))
	if h := d.hosts[a.hostID]; h != nil {
		delete(h.attempts, a)
		if !a.released {
			a.released = true
			h.inflight--
			a.req.active.Add(-1)
		}
		if a.done {
			u.AddSuccesses++
			h.successes++
			if n := len(a.toks); n > 1 && a.lastAt.After(a.firstAt) {
				ms := float64(a.lastAt.Sub(a.firstAt)) / float64(time.Millisecond) / float64(n-1)
				h.msPerToken = ewma(h.msPerToken, ms)
			}
		}
	}
	d.mu.Unlock()
	if cancel && !a.done {
		if data, err := fabric.Encode(fabric.Cancel{TaskID: a.id}); err == nil {
			d.nc.Publish(fabric.CancelSubject(a.hostID), data)
		}
	}
}

// cancelAll stops every running attempt (the request is over).
func (g *gen) cancelAll() {
	for _, a := range append([]*attempt(nil), g.active...) {
		g.retire(a, true)
	}
}
