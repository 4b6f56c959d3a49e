package dispatch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nuid"

	"github.com/peerllm/peerllm/internal/engine"
	"github.com/peerllm/peerllm/internal/fabric"
)

// Results of a verification, the label of peerllm_dispatch_verifications_total.
const (
	// VerifyConsensusMain: the third host agreed with the host whose token
	// was delivered; the host that diverged from the stream is against
	// consensus.
	VerifyConsensusMain = "consensus_main"
	// VerifyConsensusBackup: the third host agreed with the host that
	// diverged from the stream; the host whose token was delivered is
	// against consensus.
	VerifyConsensusBackup = "consensus_backup"
	// VerifyNoMajority: the third host agreed with neither.
	VerifyNoMajority = "no_majority"
	// VerifyNoThirdHost: no third host of another owner running the same
	// build was free, or it failed before answering. Nobody is blamed.
	VerifyNoThirdHost = "no_third_host"
)

// verifyTokens is the MaxTokens of a verification task: only the token at
// the divergence can be compared (the host that disagreed was dropped there,
// so nothing later of it exists to compare with).
const verifyTokens = 1

// verdict tells the request that diverged which host the consensus found
// wrong, so it stops following it.
type verdict struct{ liar, honest string }

// verifyJob is a divergence to settle with a third host.
type verifyJob struct {
	request, model string
	req            engine.Request // the request's engine request, Continue unset
	prefix         []int          // the agreed tokens before the divergence
	pos            int            // the position where the hosts disagree
	deliveredBy    string         // host whose token at pos the consumer got
	delivered      int
	divergedBy     string // host whose token at pos disagreed
	diverged       int
	q              *queue // the request's queue, for the verdict
}

// verify settles a divergence at pos between a (token got) and the host that
// delivered pos with a third voice, off the request's path: the consumer's
// stream keeps following the leader meanwhile. Only deterministic token
// streams of one build are verified: a greedy or seeded task, hosts reading
// token ids (not HTTP engines with their own tokenizer).
func (g *gen) verify(a *attempt, pos, got int) {
	if pos >= len(g.from) || a.text {
		return
	}
	s := g.req.Engine.Sampling
	if s.Temperature > 0 && s.Seed == 0 {
		return
	}
	other := g.from[pos]
	if other == "" || other == a.hostID || g.verified[other] || g.verified[a.hostID] {
		return // one verification per host and request: a liar lies at every position
	}
	if g.verified == nil {
		g.verified = map[string]bool{}
	}
	g.verified[other], g.verified[a.hostID] = true, true
	g.d.startVerify(verifyJob{request: g.req.ID, model: g.req.Model, req: g.req.Engine,
		prefix: append([]int(nil), g.ids[:pos]...), pos: pos,
		deliveredBy: other, delivered: g.ids[pos], divergedBy: a.hostID, diverged: got, q: g.q})
}

// startVerify sends job's verification task to a third host: another owner
// than both hosts, the same engine kind and quantization, free capacity.
func (d *Dispatcher) startVerify(job verifyJob) {
	d.mu.Lock()
	hd, hv := d.hosts[job.deliveredBy], d.hosts[job.divergedBy]
	if hd == nil || hv == nil || d.verifyCtx.Err() != nil {
		d.mu.Unlock()
		return
	}
	bd, okd := hd.models[job.model]
	bv, okv := hv.models[job.model]
	if !okd || !okv || bd.Engine != bv.Engine || bd.Quantization != bv.Quantization || textEngine(bd.Engine) {
		d.mu.Unlock()
		return // different builds may disagree honestly: no verdict possible
	}
	var third *liveHost
	for _, h := range d.hosts {
		mi, ok := h.models[job.model]
		if !ok || h == hd || h == hv || h.owner == hd.owner || h.owner == hv.owner || !d.usable(h) ||
			mi.Engine != bd.Engine || mi.Quantization != bd.Quantization || h.inflight >= max(h.capacity, 1) ||
			(mi.ContextLength > 0 && len(job.prefix)+verifyTokens > mi.ContextLength) {
			continue
		}
		if third == nil || h.inflight*third.capacity < third.inflight*h.capacity {
			third = h
		}
	}
	if third == nil {
		d.mu.Unlock()
		d.m.verifications.WithLabelValues(VerifyNoThirdHost).Inc()
		d.log.Info("divergence not verified: no third host", "request", job.request,
			"host", job.divergedBy, "other", job.deliveredBy, "position", job.pos)
		return
	}
	a := &attempt{req: &queue{signal: make(chan struct{}, 1)}, id: nuid.Next(), hostID: third.id,
		role: "verify", start: job.pos, max: verifyTokens, sentAt: time.Now()}
	d.tasks[a.id] = a
	third.attempts[a] = struct{}{}
	third.inflight++
	d.verifies.Add(1)
	d.mu.Unlock()
	d.m.tasks.Inc()
	go func() {
		defer d.verifies.Done()
		d.runVerify(job, a)
	}()
}

// runVerify sends the verification task, waits for the third host's token at
// the divergence, and records the verdict: the host against the majority gets
// a divergence against consensus in the registry (a strike at the policy's
// threshold) and the request is told, so it stops following that host.
func (d *Dispatcher) runVerify(job verifyJob, a *attempt) {
	ctx, cancel := context.WithTimeout(d.verifyCtx, d.cfg.FirstTokenTimeout)
	defer cancel()
	er := job.req
	er.Continue, er.ContinueText, er.MaxTokens, er.Stop = job.prefix, "", verifyTokens, nil
	deadline, _ := ctx.Deadline()
	data, err := fabric.Encode(&fabric.Task{ID: a.id, Model: job.model, Request: er, Deadline: deadline})
	if err == nil {
		err = d.nc.Publish(fabric.TaskSubject(a.hostID), data)
	}
	third, err := d.awaitVerify(ctx, a, err)
	d.endVerify(a)
	result := VerifyNoMajority
	var v verdict
	switch {
	case err != nil:
		d.m.verifications.WithLabelValues(VerifyNoThirdHost).Inc()
		d.log.Info("divergence not verified: third host failed", "request", job.request, "host", job.divergedBy,
			"other", job.deliveredBy, "third", a.hostID, "position", job.pos, "err", err)
		return
	case third == job.delivered:
		result, v = VerifyConsensusMain, verdict{liar: job.divergedBy, honest: job.deliveredBy}
	case third == job.diverged:
		result, v = VerifyConsensusBackup, verdict{liar: job.deliveredBy, honest: job.divergedBy}
	}
	d.m.verifications.WithLabelValues(result).Inc()
	if v.liar == "" {
		d.log.Warn("divergence verified: no majority", "request", job.request, "host", job.divergedBy,
			"other", job.deliveredBy, "third", a.hostID, "position", job.pos)
		return
	}
	job.q.push(event{verdict: &v})
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(d.verifyCtx), 5*time.Second)
	defer rcancel()
	got, err := d.reg.DivergedAgainstConsensus(rctx, v.liar, "verification:token")
	if err != nil {
		d.log.Warn("record divergence against consensus", "host", v.liar, "err", err)
		return
	}
	d.log.Warn("host diverged against consensus", "request", job.request, "host", v.liar, "honest", v.honest,
		"third", a.hostID, "position", job.pos, "count", got.Count, "struck", got.Struck, "action", got.Strike.Action)
}

// awaitVerify returns the third host's token id at the divergence.
func (d *Dispatcher) awaitVerify(ctx context.Context, a *attempt, sendErr error) (int, error) {
	if sendErr != nil {
		return 0, fmt.Errorf("send verification task: %w", sendErr)
	}
	for {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-a.req.signal:
		}
		for _, ev := range a.req.take() {
			if ev.err != nil {
				return 0, ev.err
			}
			c := ev.chunk
			if c.Seq != a.nextSeq {
				return 0, fmt.Errorf("%w: chunk %d, want %d", errProtocol, c.Seq, a.nextSeq)
			}
			a.nextSeq++
			if len(c.Tokens) > 0 {
				t := c.Tokens[0]
				if t.Index != a.start {
					return 0, fmt.Errorf("%w: token index %d, want %d", errProtocol, t.Index, a.start)
				}
				a.toks = append(a.toks, t)
				return t.ID, nil
			}
			if c.Error != "" {
				return 0, fmt.Errorf("host %s: %s", a.hostID, c.ErrorCode)
			}
			if c.Done {
				return 0, errors.New("verification task ended without a token")
			}
		}
	}
}

// endVerify releases a verification task's slot and tells the host to stop.
func (d *Dispatcher) endVerify(a *attempt) {
	d.mu.Lock()
	delete(d.tasks, a.id)
	d.figures(a.hostID).AddTokens += int64(len(a.toks))
	if h := d.hosts[a.hostID]; h != nil {
		delete(h.attempts, a)
		if !a.released {
			a.released = true
			h.inflight--
		}
	}
	d.mu.Unlock()
	d.m.tasks.Dec()
	if data, err := fabric.Encode(fabric.Cancel{TaskID: a.id}); err == nil {
		d.nc.Publish(fabric.CancelSubject(a.hostID), data)
	}
}

// onVerdict stops following the host the consensus found wrong: it is
// dropped and excluded for the rest of the request, and the host it disagreed
// with may run the request's later segments again.
func (g *gen) onVerdict(v verdict) {
	delete(g.exclude, v.honest)
	delete(g.soft, v.honest)
	for _, a := range append([]*attempt(nil), g.active...) {
		if a.hostID == v.liar {
			g.fail(a, errDiverged, false)
		}
	}
	g.exclude[v.liar] = true
}
