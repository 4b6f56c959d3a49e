// Package pipeline is the orchestrator's request pipeline without I/O: the
// consumer Request as the stages see it, the Stage contract (screen, rewrite
// or refuse a request before any host works on it, and transform the answer
// stream with bounded hold-back), the Meter hook that receives how a request
// ended (never its content), and the Chain that runs them in order.
//
// The consumer API (internal/httpapi) drives a Chain; stage implementations
// (internal/safety, internal/privacy, metering) import this package and
// nothing of the API. This package imports only internal/engine.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/peerllm/peerllm/internal/engine"
)

// Request is one consumer request as the stages see it. Stages may rewrite
// Prompt and Messages (anonymisation); the rest is read-only for them. The
// fields under "identity" never leave the orchestrator: nothing here but the
// generation fields is forwarded to hosts.
type Request struct {
	ID       string // request id, e.g. "req_…"; safe to log
	Endpoint string // "chat" or "completions"
	Model    string

	// Exactly one of Prompt and Messages is set.
	Prompt   string
	Messages []engine.Message

	MaxTokens int // 0 means until end of sequence or a full context
	Stop      []string
	Sampling  engine.Sampling
	N         int    // number of choices, >= 1
	Mode      string // redundancy: "parallel", "hedged" or "off"

	// Identity: for admission and metering only.
	Account string // account that owns the API key
	KeyID   string // API key id (never the key)
}

// Texts returns the request's input texts in order (the prompt, or each
// message's content), for stages that screen the whole input.
func (r *Request) Texts() []string {
	if r.Messages == nil {
		return []string{r.Prompt}
	}
	out := make([]string, len(r.Messages))
	for i, m := range r.Messages {
		out[i] = m.Content
	}
	return out
}

// Refusal is the error a stage returns to refuse a request before any host
// works on it. The consumer API answers it with HTTP 400 and Code (e.g.
// "content_policy_violation"); Message is shown to the consumer, so it must
// not quote the input.
type Refusal struct {
	// Status is the HTTP status; 0 means 400. Billing refuses with 402.
	Status     int
	Code       string   // machine-readable, e.g. "content_policy_violation"
	Message    string   // consumer-facing explanation, no input text
	Categories []string // e.g. "violence", "self-harm"
}

func (r *Refusal) Error() string {
	if len(r.Categories) == 0 {
		return r.Code + ": " + r.Message
	}
	return r.Code + " (" + strings.Join(r.Categories, ", ") + "): " + r.Message
}

// Stop ends an answer stream early. The consumer sees the text released
// before it and then finish_reason Reason ("content_filter").
type Stop struct {
	Reason     string   // finish reason shown to the consumer; "content_filter"
	Categories []string // why, for metrics and strikes; never content
	// HostFault is set by the stage when the host that produced the
	// stopped text is to blame (the safety stage: the prompt was safe), so a
	// meter may strike Host.
	HostFault bool
	// Host is set by the consumer API, not by filters: the id of the host
	// whose text was being written (the piece that completed the stopped
	// window) when the stop came; "" if unknown.
	Host string
}

// Filter transforms one answer stream (one choice of one request). It may
// hold back text (to screen a whole sentence, or to restore a stand-in split
// across tokens) but must keep the hold-back bounded so tokens keep flowing.
// A Filter is used from one goroutine and is not reused.
type Filter interface {
	// Write takes the next piece of the answer and returns the text that may
	// be released to the consumer now. A non-nil stop ends the stream after
	// release; Write is not called again, Close still is.
	Write(text string) (release string, stop *Stop)
	// Close flushes what is held back when the answer ends normally (or after
	// a stop). After a stop from Write, release is ignored.
	Close() (release string, stop *Stop)
}

// NewFilter makes a Filter for one answer stream of the request it was
// returned for.
type NewFilter func() Filter

// Stage is one step of the pipeline (safety, anonymisation).
type Stage interface {
	// Name identifies the stage in logs and metrics, e.g. "safety".
	Name() string
	// Admit runs once per request before any host works on it. It may
	// rewrite req in place, or refuse it by returning a *Refusal (any other
	// error is an internal failure: HTTP 500). It returns a NewFilter for the
	// request's answer streams, or nil if the stage does not look at
	// answers. The filter may keep per-request state captured here (the
	// stand-in mapping); that state lives only in memory and dies with the
	// request.
	Admit(ctx context.Context, req *Request) (NewFilter, error)
}

// Outcome is how one request ended, for metering. It carries no content.
type Outcome struct {
	RequestID        string
	Account          string
	KeyID            string
	Model            string
	Choices          int
	FinishReasons    []string // per choice
	PromptTokens     int
	CompletionTokens int
	// HostTokens counts completion tokens per host id (for payouts).
	HostTokens map[string]int
	Failovers  int
	Hedges     int
	TTFT       time.Duration // time to the first released token
	Duration   time.Duration
	Stops      []*Stop // output-stage stops, if any
	Err        error   // nil on success; the cause when the request failed
}

// Meter receives the Outcome of every admitted request, after the answer has
// been sent. It must not block for long; it runs on the request goroutine.
type Meter interface {
	Meter(ctx context.Context, o Outcome)
}

// MeterFunc adapts a function to Meter.
type MeterFunc func(ctx context.Context, o Outcome)

// Meter calls f.
func (f MeterFunc) Meter(ctx context.Context, o Outcome) { f(ctx, o) }

// Chain runs stages in order. Output filters run in stage order too, so with
// stages [safety, privacy] the answer is screened (still anonymised) and then
// restored, as the design's request path says. The zero Chain admits
// everything and passes answers through.
type Chain struct {
	Stages []Stage
	Meters []Meter
}

// Admitted is a request that passed every stage.
type Admitted struct {
	filters []NewFilter
}

// Admit runs every stage's Admit in order; the first error stops it. A
// *Refusal is returned as is (errors.As finds it); other errors are wrapped
// with the stage name.
func (c *Chain) Admit(ctx context.Context, req *Request) (*Admitted, error) {
	a := &Admitted{}
	for _, s := range c.Stages {
		nf, err := s.Admit(ctx, req)
		if err != nil {
			var r *Refusal
			if errors.As(err, &r) {
				return nil, err
			}
			return nil, fmt.Errorf("stage %s: %w", s.Name(), err)
		}
		if nf != nil {
			a.filters = append(a.filters, nf)
		}
	}
	return a, nil
}

// Output returns the composed filter for one answer stream.
func (a *Admitted) Output() Filter {
	fs := make([]Filter, len(a.filters))
	for i, nf := range a.filters {
		fs[i] = nf()
	}
	return &composed{fs: fs, closed: make([]bool, len(fs))}
}

// Meter hands o to every meter.
func (c *Chain) Meter(ctx context.Context, o Outcome) {
	for _, m := range c.Meters {
		m.Meter(ctx, o)
	}
}

// composed chains filters: what filter i releases is written into filter i+1.
type composed struct {
	fs      []Filter
	closed  []bool
	stopped bool
}

func (c *composed) Write(text string) (string, *Stop) {
	if c.stopped {
		return "", nil
	}
	for i, f := range c.fs {
		rel, stop := f.Write(text)
		if stop != nil {
			// What filter i released is approved by it and by every filter
			// before it; push it through the later filters and flush them so
			// nothing approved is lost.
			c.stopped = true
			return c.flushFrom(i+1, rel), stop
		}
		text = rel
		if text == "" {
			return "", nil
		}
	}
	return text, nil
}

// flushFrom writes text through the filters from index i on, closing each.
// If one of them stops, what it had not released is dropped.
func (c *composed) flushFrom(i int, text string) string {
	for ; i < len(c.fs); i++ {
		var rel string
		var stop *Stop
		if text != "" {
			rel, stop = c.fs[i].Write(text)
		}
		tail, stop2 := c.fs[i].Close()
		c.closed[i] = true
		if stop == nil {
			rel += tail
		}
		text = rel
		if stop != nil || stop2 != nil {
			c.closeRest(i + 1)
			return ""
		}
	}
	return text
}

func (c *composed) closeRest(i int) {
	for ; i < len(c.fs); i++ {
		if !c.closed[i] {
			c.fs[i].Close()
			c.closed[i] = true
		}
	}
}

func (c *composed) Close() (string, *Stop) {
	if c.stopped {
		c.closeRest(0)
		return "", nil
	}
	c.stopped = true
	text := ""
	for i, f := range c.fs {
		if text != "" {
			rel, stop := f.Write(text)
			if stop != nil {
				f.Close()
				c.closed[i] = true
				return c.flushFrom(i+1, rel), stop
			}
			text = rel
		}
		tail, stop := f.Close()
		c.closed[i] = true
		text += tail
		if stop != nil {
			return c.flushFrom(i+1, text), stop
		}
	}
	return text, nil
}
