package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/peerllm/peerllm/internal/engine"
	"github.com/peerllm/peerllm/internal/pipeline"
)

// errFiltered stops a generation whose answer an output stage ended.
var errFiltered = errors.New("answer stopped by an output stage")

// choice is one of the n answers of a request.
type choice struct {
	index  int
	filter pipeline.Filter
	text   strings.Builder // non-streaming only
	out    GenOutcome
	tokens int // tokens seen in deltas
	finish string
	stop   *pipeline.Stop
	host   string // host of the latest delta, for Stop.Host
	err    error
	role   bool // the chat role chunk was sent
}

// exchange is one consumer request in flight.
type exchange struct {
	s        *Server
	w        http.ResponseWriter
	endpoint string
	p        *parsed
	id       string // response id: chatcmpl-… or cmpl-…
	created  int64
	start    time.Time

	mu      sync.Mutex // guards the fields below and writes to w
	started bool       // the SSE response has begun
	// unflushed: writes go to the response buffer without a flush, because
	// more follows at once (a lone choice's finish event, then [DONE]).
	unflushed bool
	failed    *Error // first error before the response began
	ttft      time.Duration
	choices   []*choice

	progMu   sync.Mutex   // orders checkpoints; guards progress
	progress []GenOutcome // per choice, at its last segment boundary
}

// Checkpointer is a Meter that also takes a request's usage so far, at
// segment boundaries while it runs (billing, so that a crash of the
// orchestrator loses at most one segment of usage). Checkpoint runs on the
// request's generating goroutine and must return quickly.
type Checkpointer interface {
	Checkpoint(ctx context.Context, o pipeline.Outcome)
}

func (s *Server) handleGenerate(endpoint string) http.Handler {
	promptParam := "prompt"
	if endpoint == "chat" {
		promptParam = "messages"
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		reqID := requestID(ctx)
		start := time.Now()
		fail := func(err error) {
			e := errorFor(err, promptParam)
			if e.Status >= 500 && e.Status != 503 {
				s.log.Error("request failed", "request_id", reqID, "status", e.Status, "err", err)
			}
			s.m.observe(endpoint, e.Status, time.Since(start))
			writeError(w, e)
		}
		body, e := readBody(w, r, s.cfg.MaxBodyBytes)
		if e != nil {
			fail(e)
			return
		}
		p, e := parseRequest(body, endpoint)
		if e != nil {
			fail(e)
			return
		}
		m, err := s.checkModel(p.model)
		if err != nil {
			fail(err)
			return
		}
		if m.ContextLength > 0 && p.inputBytes() > m.ContextLength*maxBytesPerToken {
			fail(ErrContextLength)
			return
		}
		if m.ContextLength > 0 && p.maxTokens >= m.ContextLength {
			// The dispatcher would refuse it too, but blaming the prompt.
			fail(&Error{Status: http.StatusBadRequest, Type: "invalid_request_error", Param: p.maxParam, Code: "context_length_exceeded",
				Message: fmt.Sprintf("'%s' is %d, but the largest context window serving this model is %d tokens, prompt included.", p.maxParam, p.maxTokens, m.ContextLength)})
			return
		}
		key := apiKey(ctx)
		preq := &pipeline.Request{
			ID: reqID, Endpoint: endpoint, Model: p.model,
			Prompt: p.prompt, Messages: p.messages,
			MaxTokens: p.maxTokens, Stop: p.stop, Sampling: p.sampling,
			N: p.n, Mode: p.mode, Account: key.Account, KeyID: key.ID,
		}
		adm, err := s.chain.Admit(ctx, preq)
		if err != nil {
			fail(err)
			return
		}
		x := &exchange{s: s, w: w, endpoint: endpoint, p: p, created: time.Now().Unix(), start: start}
		x.id = "cmpl-" + reqID[3:]
		if endpoint == "chat" {
			x.id = "chatcmpl-" + reqID[3:]
		}
		err = x.run(ctx, preq, adm)
		o := x.outcome(preq, err)
		s.chain.Meter(context.WithoutCancel(ctx), o)
		s.m.observeOutcome(o)
		status := http.StatusOK
		if err != nil && !x.started {
			fail(err)
			return
		}
		if err != nil {
			status = errorFor(err, promptParam).Status
			if status >= 500 && status != 499 {
				s.log.Error("stream failed", "request_id", reqID, "err", err)
			}
		}
		s.m.observe(endpoint, status, time.Since(start))
		s.log.Info("completion", "request_id", reqID, "model", p.model, "n", p.n, "stream", p.stream,
			"finish", o.FinishReasons, "prompt_tokens", o.PromptTokens, "completion_tokens", o.CompletionTokens,
			"failovers", o.Failovers, "hedges", o.Hedges, "ttft_ms", o.TTFT.Milliseconds())
	})
}

// maxBytesPerToken bounds how many bytes of input one token can cover. The
// orchestrator has no tokenizer (hosts hold the models), so it refuses, without
// forwarding, only prompts that cannot fit the largest context even at this
// generous rate; a prompt just over the limit is refused by the host before
// it generates anything.
const maxBytesPerToken = 64

// checkModel answers unknown models before any stage or host works.
func (s *Server) checkModel(name string) (Model, error) {
	models := s.cfg.Backend.Models()
	for _, m := range models {
		if m.Name == name {
			if m.Hosts == 0 {
				return m, ErrNoHost
			}
			return m, nil
		}
	}
	if len(models) == 0 {
		// No host is connected at all (e.g. just after a restart): the
		// model may well exist, so this is an availability problem.
		return Model{}, ErrNoHost
	}
	return Model{}, ErrModelNotFound
}

// run generates every choice and writes the response. It returns the first
// error; if the response had not begun, the caller answers it with a status.
func (x *exchange) run(ctx context.Context, preq *pipeline.Request, adm *pipeline.Admitted) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p := x.p
	base := p.sampling.Seed
	if !p.seeded {
		var b [8]byte
		rand.Read(b[:])
		base = binary.LittleEndian.Uint64(b[:])
	}
	x.choices = make([]*choice, p.n)
	x.progress = make([]GenOutcome, p.n)
	for i := range x.choices {
		x.choices[i] = &choice{index: i, filter: adm.Output()}
	}
	gen := func(c *choice) {
		sampling := preq.Sampling
		sampling.Seed = base + uint64(c.index)
		req := GenRequest{
			ID:    preq.ID + "c" + strconv.Itoa(c.index),
			Model: preq.Model,
			Engine: engine.Request{
				Prompt: preq.Prompt, Messages: preq.Messages,
				MaxTokens: preq.MaxTokens, Stop: preq.Stop, Sampling: sampling,
			},
			Mode: preq.Mode,
		}
		if len(x.s.checkpointers) > 0 {
			req.Progress = func(o GenOutcome) { x.checkpoint(ctx, preq, c.index, o) }
		}
		c.err = x.generate(ctx, c, req)
		if c.err != nil {
			cancel() // one failed choice fails the request
		}
	}
	if p.n == 1 {
		gen(x.choices[0])
	} else {
		var wg sync.WaitGroup
		for _, c := range x.choices {
			wg.Add(1)
			go func() {
				defer wg.Done()
				gen(c)
			}()
		}
		wg.Wait()
	}
	x.mu.Lock()
	x.unflushed = false // everything from here on ends the response: flush it
	x.mu.Unlock()
	var first error
	for _, c := range x.choices {
		if c.err != nil && (first == nil || errors.Is(first, context.Canceled)) {
			first = c.err
		}
	}
	if first != nil {
		if x.started {
			x.writeEvent(map[string]any{"error": errorFor(first, "")})
		}
		return first
	}
	if !p.stream {
		x.writeComplete()
		return nil
	}
	x.begin()
	if p.includeUsage {
		o := x.usage()
		x.writeEvent(x.chunk(nil, &o))
	}
	x.writeRaw("data: [DONE]\n\n")
	return nil
}

// generate runs one choice through the backend and the output filter.
func (x *exchange) generate(ctx context.Context, c *choice, req GenRequest) error {
	out, err := x.s.cfg.Backend.Generate(ctx, req, func(d Delta) error {
		c.tokens += d.Tokens
		if d.Host != "" {
			c.host = d.Host
		}
		rel, stop := c.filter.Write(d.Text)
		if rel != "" {
			x.release(c, rel)
		}
		if stop != nil {
			c.stop = stop
			return errFiltered
		}
		return ctx.Err()
	})
	c.out = out
	if err != nil && !errors.Is(err, errFiltered) {
		c.filter.Close()
		return err
	}
	rel, stop := c.filter.Close()
	if c.stop == nil {
		if rel != "" {
			x.release(c, rel)
		}
		c.stop = stop
	}
	if c.stop != nil && c.stop.Host == "" {
		c.stop.Host = c.host
	}
	switch {
	case c.stop != nil:
		c.finish = c.stop.Reason
		if c.finish == "" {
			c.finish = "content_filter"
		}
	case out.FinishReason == "length":
		c.finish = "length"
	default:
		c.finish = "stop"
	}
	if x.p.stream {
		x.mu.Lock()
		defer x.mu.Unlock()
		x.startLocked()
		x.roleLocked(c)
		fr := c.finish
		// A lone choice's finish event goes out with [DONE], in one write.
		x.unflushed = x.p.n == 1
		x.writeEventLocked(x.chunk(&chunkChoice{index: c.index, finish: &fr}, nil))
	}
	return nil
}

// release sends text the output filter let through.
func (x *exchange) release(c *choice, text string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.ttft == 0 {
		x.ttft = time.Since(x.start)
	}
	if !x.p.stream {
		c.text.WriteString(text)
		return
	}
	x.startLocked()
	x.roleLocked(c)
	x.writeEventLocked(x.chunk(&chunkChoice{index: c.index, text: &text}, nil))
}

// begin starts the SSE response if nothing has been sent yet.
func (x *exchange) begin() {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.startLocked()
}

func (x *exchange) startLocked() {
	if x.started {
		return
	}
	x.started = true
	h := x.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	h.Set("X-Accel-Buffering", "no")
	x.w.WriteHeader(http.StatusOK)
}

func (x *exchange) roleLocked(c *choice) {
	if x.endpoint != "chat" || c.role {
		return
	}
	c.role = true
	empty := ""
	x.writeEventLocked(x.chunk(&chunkChoice{index: c.index, text: &empty, role: true}, nil))
}

func (x *exchange) writeEvent(v any) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.writeEventLocked(v)
}

func (x *exchange) writeEventLocked(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	// Three writes into the response's buffer, one flush: no copy of the
	// event to build the line.
	x.w.Write(sseData)
	x.w.Write(b)
	x.w.Write(sseEnd)
	if f, ok := x.w.(http.Flusher); ok && !x.unflushed {
		f.Flush()
	}
}

var sseData, sseEnd = []byte("data: "), []byte("\n\n")

func (x *exchange) writeRaw(s string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.writeRawLocked(s)
}

// writeRawLocked writes and flushes. A write error means the consumer went
// away; the request context is cancelled by net/http, which stops the hosts.
func (x *exchange) writeRawLocked(s string) {
	x.w.Write([]byte(s))
	if f, ok := x.w.(http.Flusher); ok {
		f.Flush()
	}
}

// usage sums the choices' token counts. The prompt is counted once.
func (x *exchange) usage() wireUsage {
	var u wireUsage
	for _, c := range x.choices {
		if c.out.PromptTokens > u.PromptTokens {
			u.PromptTokens = c.out.PromptTokens
		}
		u.CompletionTokens += max(c.out.CompletionTokens, c.tokens)
	}
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
	return u
}

func (x *exchange) outcome(preq *pipeline.Request, err error) pipeline.Outcome {
	u := x.usage()
	o := pipeline.Outcome{
		RequestID: preq.ID, Account: preq.Account, KeyID: preq.KeyID, Model: preq.Model,
		Choices: len(x.choices), PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens,
		HostTokens: map[string]int{}, TTFT: x.ttft, Duration: time.Since(x.start), Err: err,
	}
	for _, c := range x.choices {
		o.FinishReasons = append(o.FinishReasons, c.finish)
		o.Failovers += c.out.Failovers
		o.Hedges += c.out.Hedges
		for h, n := range c.out.HostTokens {
			o.HostTokens[h] += n
		}
		if c.stop != nil {
			o.Stops = append(o.Stops, c.stop)
		}
	}
	return o
}

// checkpoint records choice i's outcome at a segment boundary and hands the
// request's usage so far to the checkpointers.
func (x *exchange) checkpoint(ctx context.Context, preq *pipeline.Request, i int, g GenOutcome) {
	x.progMu.Lock()
	defer x.progMu.Unlock()
	x.progress[i] = g
	o := pipeline.Outcome{RequestID: preq.ID, Account: preq.Account, KeyID: preq.KeyID, Model: preq.Model,
		Choices: len(x.progress), HostTokens: map[string]int{}}
	for _, p := range x.progress {
		o.PromptTokens = max(o.PromptTokens, p.PromptTokens)
		o.CompletionTokens += p.CompletionTokens
		for h, n := range p.HostTokens {
			o.HostTokens[h] += n
		}
	}
	ctx = context.WithoutCancel(ctx)
	for _, c := range x.s.checkpointers {
		c.Checkpoint(ctx, o)
	}
}

// Wire shapes (OpenAI's).

type wireUsage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

type chunkChoice struct {
	index  int
	text   *string
	role   bool
	finish *string
}

type chatDelta struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
}

type chatChunkChoice struct {
	Index        int       `json:"index"`
	Delta        chatDelta `json:"delta"`
	Logprobs     any       `json:"logprobs"`
	FinishReason *string   `json:"finish_reason"`
}

type textChoice struct {
	Text         string  `json:"text"`
	Index        int     `json:"index"`
	Logprobs     any     `json:"logprobs"`
	FinishReason *string `json:"finish_reason"`
}

type chunkEnvelope struct {
	ID                string     `json:"id"`
	Object            string     `json:"object"`
	Created           int64      `json:"created"`
	Model             string     `json:"model"`
	SystemFingerprint any        `json:"system_fingerprint"`
	Choices           any        `json:"choices"`
	Usage             *wireUsage `json:"usage,omitempty"`
}

// chunkWithNullUsage is a chunk that carries "usage": null, as OpenAI sends
// on every chunk but the last when include_usage is set.
type chunkWithNullUsage struct {
	chunkEnvelope
	Usage *wireUsage `json:"usage"`
}

// chunk builds one streamed event: a choice delta, or (c nil) the usage chunk.
func (x *exchange) chunk(c *chunkChoice, usage *wireUsage) any {
	env := chunkEnvelope{ID: x.id, Created: x.created, Model: x.p.model, Object: "text_completion"}
	if x.endpoint == "chat" {
		env.Object = "chat.completion.chunk"
	}
	switch {
	case c == nil:
		env.Choices = []any{}
	case x.endpoint == "chat":
		d := chatDelta{Content: c.text}
		if c.role {
			d.Role = "assistant"
		}
		if c.finish != nil {
			d = chatDelta{}
		}
		env.Choices = []chatChunkChoice{{Index: c.index, Delta: d, FinishReason: c.finish}}
	default:
		t := ""
		if c.text != nil {
			t = *c.text
		}
		env.Choices = []textChoice{{Index: c.index, Text: t, FinishReason: c.finish}}
	}
	if x.p.includeUsage {
		return chunkWithNullUsage{chunkEnvelope: env, Usage: usage}
	}
	return env
}

type chatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
	Refusal any    `json:"refusal"`
}

type chatChoice struct {
	Index        int         `json:"index"`
	Message      chatMessage `json:"message"`
	Logprobs     any         `json:"logprobs"`
	FinishReason string      `json:"finish_reason"`
}

// writeComplete writes a non-streaming response.
func (x *exchange) writeComplete() {
	u := x.usage()
	resp := struct {
		ID                string    `json:"id"`
		Object            string    `json:"object"`
		Created           int64     `json:"created"`
		Model             string    `json:"model"`
		SystemFingerprint any       `json:"system_fingerprint"`
		Choices           any       `json:"choices"`
		Usage             wireUsage `json:"usage"`
	}{ID: x.id, Created: x.created, Model: x.p.model, Usage: u}
	if x.endpoint == "chat" {
		resp.Object = "chat.completion"
		cs := make([]chatChoice, len(x.choices))
		for i, c := range x.choices {
			cs[i] = chatChoice{Index: i, Message: chatMessage{Role: "assistant", Content: c.text.String()}, FinishReason: c.finish}
		}
		resp.Choices = cs
	} else {
		resp.Object = "text_completion"
		cs := make([]textChoice, len(x.choices))
		for i, c := range x.choices {
			fr := c.finish
			cs[i] = textChoice{Index: i, Text: c.text.String(), FinishReason: &fr}
		}
		resp.Choices = cs
	}
	writeJSON(x.w, http.StatusOK, resp)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
