package agent

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/peerllm/peerllm/internal/engine"
	"github.com/peerllm/peerllm/internal/fabric"
)

// maxTaskIDLen bounds a task id (it is a subject token).
const maxTaskIDLen = 128

// validTaskID reports whether id is usable as the last token of an out
// subject: [a-zA-Z0-9_-], so it can never add tokens or wildcards.
func validTaskID(id string) bool {
	if id == "" || len(id) > maxTaskIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

// onTask admits a task and starts it, or refuses it with one error chunk.
// It runs on the task subscription's goroutine, so it only decides and
// starts; the work happens in a goroutine tracked by a.tasks.
func (a *Agent) onTask(base context.Context, nc *nats.Conn, m *nats.Msg) {
	var task fabric.Task
	err := fabric.Decode(m.Data, &task)
	if !validTaskID(task.ID) {
		a.rejected.Add(1)
		a.m.tasks.WithLabelValues("rejected").Inc()
		a.log.Warn("task without a usable id dropped", "err", err)
		return
	}
	if err != nil {
		a.refuse(nc, task.ID, "bad_request", err.Error())
		return
	}
	eng, ok := a.cfg.Engines[task.Model]
	if !ok {
		a.refuse(nc, task.ID, "bad_request", fmt.Sprintf("model %q is not served by this host", task.Model))
		return
	}
	var deadline time.Time
	if !task.Deadline.IsZero() {
		deadline = a.localTime(task.Deadline)
	}
	if !deadline.IsZero() && !time.Now().Before(deadline) {
		a.refuse(nc, task.ID, "cancelled", "deadline passed before the task started")
		return
	}
	a.mu.Lock()
	if a.draining {
		a.mu.Unlock()
		a.refuse(nc, task.ID, "overloaded", "host is draining")
		return
	}
	if len(a.running) >= a.cfg.Capacity {
		a.mu.Unlock()
		a.refuse(nc, task.ID, "overloaded", "host is at capacity")
		return
	}
	if _, dup := a.running[task.ID]; dup {
		a.mu.Unlock()
		a.log.Warn("duplicate task ignored", "task", task.ID)
		return
	}
	ctx, cancel := context.WithCancelCause(base)
	stop := func() { cancel(nil) }
	if !deadline.IsZero() {
		var cancelDeadline context.CancelFunc
		ctx, cancelDeadline = context.WithDeadline(ctx, deadline)
		stop = func() { cancelDeadline(); cancel(nil) }
	}
	a.running[task.ID] = cancel
	a.tasks.Add(1)
	a.mu.Unlock()
	a.m.inFlight.Inc()
	a.active.Add(1)
	var once sync.Once
	release := func() {
		once.Do(func() {
			a.mu.Lock()
			delete(a.running, task.ID)
			a.mu.Unlock()
			stop()
		})
	}
	go func() {
		defer a.tasks.Done()
		defer func() {
			a.active.Add(-1)
			a.m.inFlight.Dec()
		}()
		defer release()
		a.runTask(ctx, nc, task, eng, release)
	}()
}

// refuse answers a task that will not run with a single error chunk.
func (a *Agent) refuse(nc *nats.Conn, taskID, code, msg string) {
	a.rejected.Add(1)
	a.m.tasks.WithLabelValues("rejected").Inc()
	a.log.Info("task refused", "task", taskID, "code", code)
	b, err := fabric.Encode(&fabric.Chunk{TaskID: taskID, Error: msg, ErrorCode: code})
	if err == nil {
		err = nc.Publish(fabric.OutSubject(a.cfg.HostID, taskID), b)
	}
	if err != nil {
		a.log.Warn("refusal not sent", "task", taskID, "err", err)
	}
}

// runTask generates one task, publishing a chunk per token and a final one.
// It calls release (which frees the task's capacity slot) before the final
// chunk goes out, so an orchestrator that sends the next segment as soon as
// it sees Done never finds the host still full.
func (a *Agent) runTask(ctx context.Context, nc *nats.Conn, task fabric.Task, eng engine.Engine, release func()) {
	subject := fabric.OutSubject(a.cfg.HostID, task.ID)
	seq := 0
	start := time.Now()
	var first time.Duration
	// One buffer per task: Publish copies the bytes into the connection's
	// write buffer, so the next chunk may reuse it.
	var buf []byte
	publish := func(c *fabric.Chunk) error {
		c.TaskID, c.Seq = task.ID, seq
		buf = fabric.AppendChunk(buf[:0], c)
		if err := nc.Publish(subject, buf); err != nil {
			return fmt.Errorf("publish chunk: %w", err)
		}
		if seq == 0 && len(c.Tokens) > 0 {
			first = time.Since(start)
		}
		seq++
		return nil
	}
	st := newStreamer(publish)
	var joiner utf8Joiner
	res, err := a.generate(ctx, eng, task.Request, func(tok engine.Token) error {
		if err := a.lim.wait(ctx); err != nil {
			return err
		}
		text, partial := joiner.add(tok.Text)
		if err := st.add(fabric.ChunkToken{ID: tok.ID, Text: text, Partial: partial, Index: tok.Index}); err != nil {
			return err
		}
		a.tokens.Add(1)
		a.m.tokens.Inc()
		return nil
	})
	if perr := st.close(); perr != nil && err == nil {
		err = perr
	}
	final := &fabric.Chunk{}
	var result string
	switch cause := context.Cause(ctx); {
	case err == nil:
		final.Done, final.FinishReason = true, res.FinishReason
		final.Usage = &fabric.Usage{
			PromptTokens:     res.Usage.PromptTokens,
			CachedTokens:     res.Usage.CachedTokens,
			CompletionTokens: res.Usage.CompletionTokens,
			PromptEvalMicros: res.Usage.PromptEval.Microseconds(),
			GenerationMicros: res.Usage.Generation.Microseconds(),
		}
		result = "done"
	case errors.Is(cause, errCancelled):
		final.Error, final.ErrorCode = "cancelled", "cancelled"
		result = "cancelled"
	case errors.Is(cause, context.DeadlineExceeded):
		final.Error, final.ErrorCode = "task deadline exceeded", "cancelled"
		result = "failed"
	case errors.Is(err, engine.ErrContextLength):
		final.Error, final.ErrorCode = err.Error(), "context_length"
		result = "failed"
	case errors.Is(err, engine.ErrBadRequest):
		final.Error, final.ErrorCode = err.Error(), "bad_request"
		result = "failed"
	default:
		// Engine errors stay in the host's log; the orchestrator gets a code.
		final.Error, final.ErrorCode = "engine failed", "internal"
		result = "failed"
	}
	// The link is gone for good when the base context was aborted: no
	// final chunk can be delivered then.
	deliver := ctx.Err() == nil || result == "cancelled" || errors.Is(context.Cause(ctx), context.DeadlineExceeded)
	switch result {
	case "done":
		a.done.Add(1)
	case "cancelled":
		a.cancelled.Add(1)
		a.m.cancelled.Inc()
	default:
		a.failed.Add(1)
	}
	a.m.tasks.WithLabelValues(result).Inc()
	release()
	if deliver {
		if perr := publish(final); perr != nil {
			a.log.Warn("final chunk not sent", "task", task.ID, "err", perr)
		}
	}
	attrs := []any{"task", task.ID, "model", task.Model, "result", result,
		"tokens", res.Usage.CompletionTokens, "first_token", first, "elapsed", time.Since(start)}
	if result == "failed" {
		attrs = append(attrs, "code", final.ErrorCode, "err", err)
	}
	a.log.Info("task ended", attrs...)
}

// errPanic is the error of an engine that panicked.
var errPanic = errors.New("engine panicked")

// generate calls eng.Generate, turning a panic into an error: one broken
// request must not take the host and its other tasks down.
func (a *Agent) generate(ctx context.Context, eng engine.Engine, req engine.Request, emit func(engine.Token) error) (res engine.Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			a.log.Error("engine panic", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = errPanic
		}
	}()
	return eng.Generate(ctx, req, emit)
}

// metrics are the agent's Prometheus collectors.
type metrics struct {
	tasks     *prometheus.CounterVec
	cancelled prometheus.Counter
	tokens    prometheus.Counter
	inFlight  prometheus.Gauge
}

func newMetrics() metrics {
	m := metrics{
		tasks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "peerllm_host_tasks_total",
			Help: "Tasks handled by this host, by result (done, cancelled, failed, rejected).",
		}, []string{"result"}),
		cancelled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "peerllm_host_tasks_cancelled_total",
			Help: "Tasks stopped by an orchestrator Cancel.",
		}),
		tokens: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "peerllm_host_tokens_total",
			Help: "Tokens streamed to the orchestrator.",
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "peerllm_host_in_flight",
			Help: "Tasks running now.",
		}),
	}
	for _, r := range []string{"done", "cancelled", "failed", "rejected"} {
		m.tasks.WithLabelValues(r) // export zeros, so rates work from the start
	}
	return m
}

func (m metrics) register(r prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.tasks, m.cancelled, m.tokens, m.inFlight} {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}
