package governance

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"
)

// ErrAtCapacity is wrapped by the errors a Gate's run function returns when
// every host serving the model is at capacity; the gate then queues the
// request instead of failing it.
var ErrAtCapacity = errors.New("every host serving the model is at capacity")

// Busy is the Gate's answer when a request cannot start within the bound:
// the consumer should retry after RetryAfter (an honest estimate, rounded up
// to whole seconds by the API).
type Busy struct {
	Model      string
	Position   int           // place in the model's queue when it gave up (1 = next)
	RetryAfter time.Duration // estimated wait for that place
}

func (b *Busy) Error() string {
	return fmt.Sprintf("model %s at capacity: queue position %d, estimated wait %s", b.Model, b.Position, b.RetryAfter.Round(time.Millisecond))
}

// RetryAfterSeconds is RetryAfter rounded up to whole seconds, at least 1.
func (b *Busy) RetryAfterSeconds() int {
	return max(1, int(math.Ceil(b.RetryAfter.Seconds())))
}

// GateConfig tunes a Gate.
type GateConfig struct {
	// Bound is the longest a request waits in the queue; default 10s. A
	// request whose estimated wait is longer is refused at once.
	Bound time.Duration
	// Poll is how often the head of a queue checks for free capacity
	// besides being woken when a request ends; default 20ms.
	Poll time.Duration
	// Free reports whether the model's hosts have a free task slot now
	// (the dispatcher's in-memory load). The head of a queue tries when a
	// request ends, and at every Poll when Free says so; nil means at
	// every Poll.
	Free func(model string) bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Gate queues requests for a model whose hosts are all at capacity, in
// order of arrival, for at most Bound, with a wait estimate from measured
// service times and the queue position; past the bound it refuses with
// *Busy. It never drops a request silently and never lets one hang.
type Gate struct {
	cfg GateConfig

	mu     sync.Mutex
	models map[string]*modelQueue
}

type modelQueue struct {
	waiters []*waiter     // FIFO
	running int           // requests through the gate running now
	service time.Duration // EWMA of request durations (measured)
	wake    chan struct{} // closed and replaced when a request ends
	queued  int64         // requests that waited, for the overview
	refused int64         // requests refused with Busy
}

// waiter is one queued request. It is not zero-sized, so that every
// waiter has its own address (pointers to zero-sized values may be equal).
type waiter struct{ _ byte }

// NewGate returns a gate.
func NewGate(cfg GateConfig) *Gate {
	if cfg.Bound <= 0 {
		cfg.Bound = 10 * time.Second
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 20 * time.Millisecond
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Gate{cfg: cfg, models: map[string]*modelQueue{}}
}

// Bound is the longest a request may wait.
func (g *Gate) Bound() time.Duration { return g.cfg.Bound }

func (g *Gate) queue(model string) *modelQueue {
	q := g.models[model]
	if q == nil {
		q = &modelQueue{wake: make(chan struct{})}
		g.models[model] = q
	}
	return q
}

// estimate is the expected wait of queue position pos (1-based): pos
// completions at the measured rate of running requests per service time.
// Caller holds g.mu.
func (q *modelQueue) estimate(pos int) time.Duration {
	s := q.service
	if s <= 0 {
		s = time.Second // nothing measured yet: assume one second a request
	}
	return time.Duration(float64(pos) * float64(s) / float64(max(q.running, 1)))
}

// Run runs fn for model, queueing it while fn reports ErrAtCapacity before it
// started anything (started false). It returns fn's result, ctx.Err() if the
// consumer leaves while queued, or *Busy when the request cannot start
// within the bound.
func (g *Gate) Run(ctx context.Context, model string, fn func() (started bool, err error)) error {
	t0 := g.cfg.Now()
	deadline := t0.Add(g.cfg.Bound)
	g.mu.Lock()
	q := g.queue(model)
	var me *waiter
	if len(q.waiters) > 0 { // never barge past waiting requests
		if est := q.estimate(len(q.waiters) + 1); est > g.cfg.Bound {
			q.refused++
			g.mu.Unlock()
			return &Busy{Model: model, Position: len(q.waiters) + 1, RetryAfter: est}
		}
		me = &waiter{}
		q.waiters = append(q.waiters, me)
		q.queued++
	}
	g.mu.Unlock()

	leave := func() {
		g.mu.Lock()
		for i, w := range q.waiters {
			if w == me {
				q.waiters = append(q.waiters[:i], q.waiters[i+1:]...)
				break
			}
		}
		g.mu.Unlock()
		g.signal(q) // the next in line may go
		me = nil
	}
	// The timers are made only when the request has to wait: a request
	// that finds a free host pays for none of this.
	var poll *time.Ticker
	var timer *time.Timer
	defer func() {
		if poll != nil {
			poll.Stop()
			timer.Stop()
		}
	}()
	woken := false // a request ended or left: try even if Free says full
	for {
		g.mu.Lock()
		head := me == nil || (len(q.waiters) > 0 && q.waiters[0] == me)
		wake := q.wake
		g.mu.Unlock()
		if head && (me == nil || woken || g.cfg.Free == nil || g.cfg.Free(model)) {
			// The head stays at the front of the line while it tries, so
			// nobody behind it can try at the same time and overtake it.
			g.mu.Lock()
			q.running++
			g.mu.Unlock()
			start := g.cfg.Now()
			started, err := fn()
			g.mu.Lock()
			q.running--
			if err == nil {
				d := g.cfg.Now().Sub(start)
				if q.service <= 0 {
					q.service = d
				} else {
					q.service += (d - q.service) / 5
				}
			}
			if started || !errors.Is(err, ErrAtCapacity) {
				for i, w := range q.waiters {
					if me != nil && w == me {
						q.waiters = append(q.waiters[:i], q.waiters[i+1:]...)
						break
					}
				}
				g.mu.Unlock()
				g.signal(q) // its slot is free: the next in line may go
				return err
			}
			// Refused for capacity before anything started: a waiting
			// request keeps its place at the front; a new one joins the back.
			if me == nil {
				me = &waiter{}
				q.waiters = append(q.waiters, me)
				q.queued++
			}
			pos := 1
			for i, w := range q.waiters {
				if w == me {
					pos = i + 1
				}
			}
			if est := q.estimate(pos); est > deadline.Sub(g.cfg.Now()) {
				q.refused++
				g.mu.Unlock()
				leave()
				return &Busy{Model: model, Position: pos, RetryAfter: est}
			}
			g.mu.Unlock()
		}
		if poll == nil {
			poll = time.NewTicker(g.cfg.Poll)
			timer = time.NewTimer(max(deadline.Sub(g.cfg.Now()), 0))
		}
		select {
		case <-ctx.Done():
			leave()
			return ctx.Err()
		case <-timer.C:
			g.mu.Lock()
			pos := 1
			for i, w := range q.waiters {
				if w == me {
					pos = i + 1
				}
			}
			est := q.estimate(pos)
			q.refused++
			g.mu.Unlock()
			leave()
			return &Busy{Model: model, Position: pos, RetryAfter: est}
		case <-wake:
			woken = true
			continue
		case <-poll.C:
		}
		woken = false
	}
}

// signal wakes q's waiters (a request ended or left the line).
func (g *Gate) signal(q *modelQueue) {
	g.mu.Lock()
	close(q.wake)
	q.wake = make(chan struct{})
	g.mu.Unlock()
}

// QueueStats is one model's queue for the overview.
type QueueStats struct {
	Model     string  `json:"model"`
	Waiting   int     `json:"waiting"`
	Running   int     `json:"running"`
	ServiceMs float64 `json:"service_ms"` // measured mean request time (EWMA)
	Queued    int64   `json:"queued_total"`
	Refused   int64   `json:"refused_total"`
}

// Stats lists every model's queue.
func (g *Gate) Stats() []QueueStats {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]QueueStats, 0, len(g.models))
	for m, q := range g.models {
		out = append(out, QueueStats{Model: m, Waiting: len(q.waiters), Running: q.running,
			ServiceMs: float64(q.service) / float64(time.Millisecond), Queued: q.queued, Refused: q.refused})
	}
	return out
}
