package dispatch

import (
	"errors"
	"strings"
	"time"
)

// errStopped ends a generation whose text reached a stop sequence.
var errStopped = errors.New("stop sequence reached")

// Stop sequences are applied here, on the delivered text, not by the hosts:
// a stop string can straddle two segments (or two hosts), and only the
// orchestrator sees the whole stream. Text that could be the start of a stop
// string is held back until it is known not to be; the answer ends where the
// first stop string begins, exactly as an engine applying it would end it.

// deliver passes committed text to the consumer, holding back a tail that
// may begin a stop sequence. It returns errStopped when one is complete.
func (g *gen) deliver(text string, tokens int, host string) error {
	if len(g.stops) == 0 {
		return g.emit(Delta{Text: text, Tokens: tokens, Host: host})
	}
	g.hold += text
	g.holdTokens += tokens
	if i := firstStop(g.hold, g.stops); i >= 0 {
		out, n := g.hold[:i], g.holdTokens
		g.hold, g.holdTokens = "", 0
		if out != "" {
			if err := g.emit(Delta{Text: out, Tokens: n, Host: host}); err != nil {
				return err
			}
		}
		return errStopped
	}
	if cut := len(g.hold) - heldSuffix(g.hold, g.stops); cut > 0 {
		out, n := g.hold[:cut], g.holdTokens
		g.hold, g.holdTokens = g.hold[cut:], 0
		return g.emit(Delta{Text: out, Tokens: n, Host: host})
	}
	return nil
}

// awaitUsage handles the events left after a stop sequence and, when the
// prompt's size is not known yet (a stop in the first segment), waits for a host
// to finish its task and report the prompt's token count, which only a Done
// chunk carries and billing needs. The wait is bounded by the segment (at
// most SegmentTokens more tokens) and by StallFloor.
func (g *gen) awaitUsage(evs []event) {
	g.stopped = true
	deadline := time.NewTimer(g.d.cfg.StallFloor)
	defer deadline.Stop()
	for {
		for _, ev := range evs {
			g.handle(ev) // only usage matters now: tokens are counted, not delivered
		}
		for _, a := range append([]*attempt(nil), g.active...) {
			if a.done {
				g.retire(a, false)
			}
		}
		if g.out.PromptTokens > 0 || len(g.active) == 0 {
			return
		}
		select {
		case <-g.ctx.Done():
			return
		case <-deadline.C:
			return
		case <-g.q.signal:
			evs = g.q.take()
		}
	}
}

// flush delivers held-back text at the end of an answer that did not stop
// on a stop sequence.
func (g *gen) flush() error {
	if g.hold == "" {
		return nil
	}
	out, n := g.hold, g.holdTokens
	g.hold, g.holdTokens = "", 0
	return g.emit(Delta{Text: out, Tokens: n})
}

// firstStop is the index where the earliest stop sequence in s begins, or -1.
func firstStop(s string, stops []string) int {
	first := -1
	for _, st := range stops {
		if st == "" {
			continue
		}
		if i := strings.Index(s, st); i >= 0 && (first < 0 || i < first) {
			first = i
		}
	}
	return first
}

// heldSuffix is the length of the longest suffix of s that is a proper
// prefix of a stop sequence. Stop strings are valid UTF-8, so the suffix
// never starts inside a character.
func heldSuffix(s string, stops []string) int {
	longest := 0
	for _, st := range stops {
		for k := min(len(s), len(st)-1); k > longest; k-- {
			if strings.HasPrefix(st, s[len(s)-k:]) {
				longest = k
				break
			}
		}
	}
	return longest
}

// pending is the text delivered while one batch of queued events is
// handled, not yet passed to the caller.
type pending struct {
	text   strings.Builder
	tokens int
	host   string
}

// queueDelta adds d to the pending delta. When a host's tokens arrive faster
// than the consumer's writes, the events pile up in the request's queue and
// are handled as one batch; their text then goes out as one Delta (one SSE
// event, one write) instead of one per token. A delta of another host flushes
// the pending one first, so every Delta names the host of all its tokens.
func (g *gen) queueDelta(d Delta) error {
	if g.pend.tokens > 0 && d.Host != g.pend.host {
		if err := g.flushDeltas(); err != nil {
			return err
		}
	}
	g.pend.text.WriteString(d.Text)
	g.pend.tokens += d.Tokens
	g.pend.host = d.Host
	return nil
}

// flushDeltas passes the pending delta to the caller.
func (g *gen) flushDeltas() error {
	if g.pend.tokens == 0 && g.pend.text.Len() == 0 {
		return nil
	}
	d := Delta{Text: g.pend.text.String(), Tokens: g.pend.tokens, Host: g.pend.host}
	g.pend.text.Reset()
	g.pend.tokens, g.pend.host = 0, ""
	return g.sink(d)
}
