package dispatch

import (
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"

	"github.com/peerllm/peerllm/internal/fabric"
	"github.com/peerllm/peerllm/internal/router"
)

// errCoolingDown means the only hosts left refused for capacity a moment
// ago; retry at the given time.
type errCoolingDown time.Time

func (e errCoolingDown) Error() string { return "hosts at capacity, retrying shortly" }

const (
	// overloadBackoff is how long a host that refused a task for capacity
	// is skipped; maxOverloads bounds such refusals per request.
	overloadBackoff = 20 * time.Millisecond
	maxOverloads    = 250
	// maxSlotWaits bounds how often an answer under way, with every host
	// full, looks for a slot again, overloadBackoff apart (30 s in all).
	maxSlotWaits = 1500
)

// endSlotWaitLocked ends g's wait for a slot. d.mu must be held.
func (g *gen) endSlotWaitLocked() {
	g.d.slotWait[g.req.Model]--
	if g.d.slotWait[g.req.Model] <= 0 {
		delete(g.d.slotWait, g.req.Model)
	}
	g.slotWaiting = false
}

const ewmaAlpha = 0.2

func ewma(old, sample float64) float64 {
	if old <= 0 {
		return sample
	}
	return old + ewmaAlpha*(sample-old)
}

// observeFirstToken feeds a's time to first token into its host's EWMA.
func (d *Dispatcher) observeFirstToken(a *attempt, now time.Time) {
	dt := now.Sub(a.sentAt)
	d.m.stage.WithLabelValues("first_token").Observe(dt.Seconds())
	d.mu.Lock()
	if h := d.hosts[a.hostID]; h != nil {
		h.ttftMs = ewma(h.ttftMs, float64(dt)/float64(time.Millisecond))
	}
	d.mu.Unlock()
}

// startBackup starts a backup (role "backup" or "hedge") beside the current
// attempts, preferring host prefer. It reports whether one started; when no
// host qualifies it stops trying for this segment.
func (g *gen) startBackup(prefer string, segEnd int, role string) bool {
	if _, err := g.start(role, prefer, segEnd); err != nil {
		g.noBackup = true
		return false
	}
	return true
}

// start sends a task for positions [g.commit, segEnd) to a host: prefer if it
// is usable, else the router's choice (for a backup: from another owner than
// the running attempt's host).
func (g *gen) start(role, prefer string, segEnd int) (*attempt, error) {
	d := g.d
	t := time.Now()
	busy := map[string]bool{}
	for _, a := range g.active {
		busy[a.hostID] = true
	}
	var leader string
	if len(g.active) > 0 {
		leader = g.active[0].hostID
		if g.lastLeader != nil {
			leader = g.lastLeader.hostID
		}
	}
	if len(g.active) == 0 && g.commit < len(g.ids) {
		// Partial tokens delivered by a host that is gone: the new host
		// regenerates them after the last complete character.
		g.ids, g.from = g.ids[:g.commit], g.from[:g.commit]
	}

	now := time.Now()
	var cooling time.Time
	d.mu.Lock()
	var cands []router.Candidate
	var hosts []*liveHost
	// A host that stalled or went silent earlier in this request is taken
	// again only when nothing else is left (it may have been a hiccup).
	lastResort := false
	// A backup runs beside the leader and its tokens are compared with the
	// delivered ones, so it must run the same build of the model (engine
	// kind and quantization); a fresh continuation may run on any.
	var build *fabric.ModelInfo
	if role != "main" && role != "failover" && leader != "" {
		if lh := d.hosts[leader]; lh != nil {
			if mi, ok := lh.models[g.req.Model]; ok {
				build = &mi
			}
		}
	}
again:
	for _, h := range d.hosts {
		mi, ok := h.models[g.req.Model]
		if !ok || !d.usable(h) || busy[h.id] || (g.ctxLimit > 0 && mi.ContextLength <= g.ctxLimit) {
			continue
		}
		if build != nil && (mi.Engine != build.Engine || mi.Quantization != build.Quantization) {
			continue
		}
		if g.commit > 0 && g.kind != "" && mi.Engine != g.kind && !textEngine(mi.Engine) {
			continue // its engine would read the delivered token ids as its own
		}
		if g.exclude[h.id] && !(lastResort && g.soft[h.id]) {
			continue
		}
		if until := g.cooldown[h.id]; until.After(now) {
			if cooling.IsZero() || until.Before(cooling) {
				cooling = until
			}
			continue
		}
		hosts = append(hosts, h)
		cands = append(cands, router.Candidate{ID: h.id, Owner: h.owner, Region: h.region, Tier: h.tier,
			TTFT: time.Duration(h.ttftMs * float64(time.Millisecond)), MsPerToken: h.msPerToken,
			Successes: h.successes, Failures: h.failures, Divergences: h.diverged, InFlight: h.inflight,
			Capacity: h.capacity, RTT: h.rtt, Fallback: h.fallback})
	}
	if len(hosts) == 0 && cooling.IsZero() && !lastResort && (role == "main" || role == "failover") {
		lastResort = true
		goto again
	}
	want := router.Want{Tokens: segEnd - g.commit, Region: d.cfg.Region, Tier: g.req.Tier}
	idx := -1
	for i, c := range cands {
		// A fallback host keeps the next segment only while no community
		// host is free: community hosts get the work back as capacity returns.
		if c.ID == prefer && c.InFlight < max(c.Capacity, 1) && (!c.Fallback || !router.CommunityFree(cands, want)) {
			idx = i
		}
	}
	full := false
	if idx < 0 && role != "main" && role != "failover" && leader != "" {
		main := router.Candidate{ID: leader}
		if h := d.hosts[leader]; h != nil {
			main.Owner, main.Region, main.Fallback = h.owner, h.region, h.fallback
		}
		idx = router.ChooseBackup(cands, main, want, d.rng)
	} else if idx < 0 {
		ch := router.Choose(cands, want, d.rng)
		if ch.Full && d.preemptBackup(hosts, cands) {
			ch = router.Choose(cands, want, d.rng)
		}
		idx, full = ch.Main, ch.Full
	}
	// Answers under way that wait for a slot go before new requests.
	if idx >= 0 && g.commit == 0 && d.slotWait[g.req.Model] > 0 {
		idx, full = -1, true
	}
	// An answer under way whose hosts are all full (another request took
	// its host's slot between two segments) waits for a slot: its consumer
	// already has tokens, so a 429 now would cut the answer.
	midAnswer := idx < 0 && full && g.commit > 0 && (role == "main" || role == "failover") && g.slotWaits < maxSlotWaits
	if midAnswer && !g.slotWaiting {
		d.slotWait[g.req.Model]++
		g.slotWaiting = true
	} else if idx >= 0 && g.slotWaiting {
		g.endSlotWaitLocked()
	}
	if idx < 0 {
		d.mu.Unlock()
		if !cooling.IsZero() {
			return nil, errCoolingDown(cooling)
		}
		if midAnswer {
			g.slotWaits++
			return nil, errCoolingDown(time.Now().Add(overloadBackoff))
		}
		if full {
			return nil, fmt.Errorf("%w: %s", ErrOverloaded, g.req.Model)
		}
		if g.ctxLimit > 0 {
			return nil, fmt.Errorf("%w: no host with a larger context", ErrContextLength)
		}
		return nil, fmt.Errorf("%w: %s", ErrNoHost, g.req.Model)
	}
	h := hosts[idx]
	prior := router.Prior(cands)
	expTTFT, measured := time.Duration(h.ttftMs*float64(time.Millisecond)), h.ttftMs > 0
	if !measured {
		expTTFT = prior.TTFT
	}
	expTok := time.Duration(h.msPerToken * float64(time.Millisecond))
	if expTok <= 0 {
		expTok = time.Duration(prior.MsPerToken * float64(time.Millisecond))
	}
	a := &attempt{req: g.q, id: nuid.Next(), hostID: h.id, role: role, start: g.commit, max: segEnd - g.commit,
		firstLimit: d.cfg.FirstTokenTimeout,
		tokenLimit: max(d.cfg.StallFloor, time.Duration(d.cfg.StallFactor*float64(expTok))),
		hedgeFirst: max(d.cfg.HedgeFloor, time.Duration(d.cfg.HedgeFactor*float64(expTTFT))),
		hedgeToken: max(d.cfg.HedgeFloor, time.Duration(d.cfg.HedgeFactor*float64(expTok))),
		probeFirst: max(d.cfg.ProbeFloor, 3*expTTFT),
		probeToken: max(d.cfg.ProbeFloor, 3*expTok),
		sentAt:     time.Now()}
	if measured {
		a.firstLimit = max(d.cfg.StallFloor, time.Duration(d.cfg.StallFactor*float64(expTTFT)))
	}
	if mi := h.models[g.req.Model]; g.kind == "" || textEngine(mi.Engine) {
		g.kind = mi.Engine
	}
	a.text = textEngine(h.models[g.req.Model].Engine)
	d.tasks[a.id] = a
	h.attempts[a] = struct{}{}
	g.q.active.Add(1)
	h.inflight++
	d.mu.Unlock()
	d.m.tasks.Inc()
	g.active = append(g.active, a)
	d.m.stage.WithLabelValues("pick").Observe(time.Since(t).Seconds())

	er := g.req.Engine
	er.Continue = append([]int(nil), g.ids[:g.commit]...)
	er.ContinueText = g.text.String()
	er.MaxTokens = a.max
	deadline := time.Now().Add(d.cfg.TaskDeadline)
	if dl, ok := g.ctx.Deadline(); ok {
		deadline = dl
	}
	data, err := fabric.Encode(&fabric.Task{ID: a.id, Model: g.req.Model, Request: er, Deadline: deadline})
	if err == nil {
		err = d.nc.Publish(fabric.TaskSubject(h.id), data)
	}
	if err != nil {
		g.fail(a, fmt.Errorf("send task: %w", err), false)
		return nil, fmt.Errorf("send task to host %s: %w", h.id, err)
	}
	return a, nil
}

// onChunk routes a host's chunk to the request running the task.
func (d *Dispatcher) onChunk(msg *nats.Msg) {
	hostID, taskID := hostFromSubject(msg.Subject)
	d.mu.Lock()
	a := d.tasks[taskID]
	d.mu.Unlock()
	if a == nil || a.hostID != hostID {
		return // a late chunk of a finished task, or not this host's task
	}
	var c fabric.Chunk
	if err := fabric.Decode(msg.Data, &c); err != nil {
		a.req.push(event{a: a, err: fmt.Errorf("%w: %v", errProtocol, err)})
		return
	}
	a.req.push(event{a: a, chunk: &c})
}

// preemptBackup frees one slot for a main task when every host is full: a
// backup or hedge whose request has another attempt running yields (it is
// redundancy; the main is the work). The yielding request is told through
// its queue; its host slot is released here so the caller can use it. It
// reports whether a slot was freed, updating cands. Caller holds d.mu.
func (d *Dispatcher) preemptBackup(hosts []*liveHost, cands []router.Candidate) bool {
	for i, h := range hosts {
		for a := range h.attempts {
			if (a.role != "backup" && a.role != "hedge") || a.released || a.req.active.Load() < 2 {
				continue
			}
			a.released = true
			h.inflight--
			a.req.active.Add(-1)
			cands[i].InFlight--
			d.log.Info("backup yields to a main task", "host", h.id, "task", a.id)
			a.req.push(event{a: a, err: errPreempted})
			return true
		}
	}
	return false
}

// textEngine reports whether an engine kind continues from ContinueText (an
// HTTP engine with its own tokenizer) rather than from token ids.
func textEngine(kind string) bool { return kind == "openai" || kind == "ollama" }
