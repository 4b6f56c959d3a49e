// Package httpapi is the orchestrator's HTTP surface: the OpenAI-compatible
// consumer API (/v1/chat/completions, /v1/completions, /v1/models), the
// admin API (/admin/v1/...), /healthz and /metrics, the SSE writer and the
// one mapping from errors to HTTP statuses. It drives a pipeline.Chain and a
// Backend (the dispatcher, adapted by internal/orchestrator); it never talks
// to hosts itself. Only internal/orchestrator imports it.
package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/peerllm/peerllm/internal/auth"
	"github.com/peerllm/peerllm/internal/engine"
	"github.com/peerllm/peerllm/internal/pipeline"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Model is one model served now.
type Model struct {
	Name          string
	Hosts         int // hosts connected and serving it
	ContextLength int // the largest context among those hosts, tokens
}

// GenRequest is one generation (one choice) handed to the Backend. It holds
// only what a host may see: no key, account, client address or user field.
type GenRequest struct {
	ID     string // unique per choice; [a-zA-Z0-9]
	Model  string
	Engine engine.Request
	Mode   string // "parallel", "hedged" or "off"
	// Progress, when set, is called from the Generate goroutine at every
	// segment boundary with the outcome so far; it must return quickly.
	Progress func(GenOutcome)
}

// Delta is a piece of generated text and how many tokens it holds.
type Delta struct {
	Text   string
	Tokens int
	Host   string // id of the host that produced it; "" if unknown
}

// GenOutcome is how one generation ended.
type GenOutcome struct {
	FinishReason     string // "stop" or "length"
	PromptTokens     int
	CompletionTokens int
	HostTokens       map[string]int
	Failovers        int
	Hedges           int
}

// Backend runs generations on hosts. The orchestrator adapts the dispatcher
// to it.
type Backend interface {
	// Models lists the models served now. It does not block.
	Models() []Model
	// Generate runs req, calling emit in order from the calling goroutine.
	// If emit returns an error Generate stops and returns it. Cancelling ctx
	// cancels the host tasks. Errors before any emit wrap ErrModelNotFound,
	// ErrContextLength, ErrNoHost or ErrOverloaded where they apply.
	Generate(ctx context.Context, req GenRequest, emit func(Delta) error) (GenOutcome, error)
}

// KeyVerifier checks consumer API keys.
type KeyVerifier interface {
	Verify(ctx context.Context, secret string) (auth.Key, error)
}

// Config configures a Server.
type Config struct {
	Backend Backend     // required
	Keys    KeyVerifier // required
	Chain   *pipeline.Chain
	Admin   *Admin // nil: no admin API
	// Money serves /v1/pricing, /v1/usage, /host/v1/status and the ledger's
	// admin routes; nil: none of them.
	Money *Money
	// Pages, when set, serves the dashboard (/dashboard/) and the pricing
	// page (/pricing).
	Pages http.Handler
	Log   *slog.Logger
	// Registry receives the API's metrics and is served at /metrics.
	Registry *prometheus.Registry
	// MaxBodyBytes bounds a request body; default 1 MiB.
	MaxBodyBytes int64
	// Moderator serves POST /v1/moderations; nil: the route is not served.
	Moderator Moderator
	// Governance serves the admin API's seats, federation, overview, key
	// tier and fallback routes (needs Admin); nil: not served.
	Governance Governance
}

// Server is the HTTP handler. Build it once with New.
type Server struct {
	cfg     Config
	log     *slog.Logger
	handler http.Handler
	m       *metrics
	chain   *pipeline.Chain
	// checkpointers are the chain's meters that take usage so far.
	checkpointers []Checkpointer
}

// New builds the handler: routes and middleware are compiled once here.
func New(cfg Config) *Server {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	s := &Server{cfg: cfg, log: cfg.Log, m: newMetrics(cfg.Registry), chain: cfg.Chain}
	if s.chain == nil {
		s.chain = &pipeline.Chain{}
	}
	for _, m := range s.chain.Meters {
		if c, ok := m.(Checkpointer); ok {
			s.checkpointers = append(s.checkpointers, c)
		}
	}
	mux := http.NewServeMux()
	mux.Handle("POST /v1/chat/completions", s.consumer(s.handleGenerate("chat")))
	mux.Handle("POST /v1/completions", s.consumer(s.handleGenerate("completions")))
	mux.Handle("GET /v1/models", s.consumer(http.HandlerFunc(s.handleModels)))
	mux.Handle("GET /v1/models/{id...}", s.consumer(http.HandlerFunc(s.handleModel)))
	if cfg.Moderator != nil {
		mux.Handle("POST /v1/moderations", s.consumer(http.HandlerFunc(s.handleModerations)))
	}
	mux.HandleFunc("GET /healthz", s.handleHealth)
	mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{}))
	if cfg.Admin != nil {
		cfg.Admin.routes(mux, s)
	}
	if cfg.Money != nil {
		cfg.Money.routes(mux, s)
	}
	if cfg.Governance != nil && cfg.Admin != nil {
		s.governanceRoutes(mux)
	}
	if cfg.Pages != nil {
		mux.Handle("GET /dashboard/", cfg.Pages)
		mux.Handle("GET /dashboard", cfg.Pages)
		mux.Handle("GET /pricing", cfg.Pages)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if allow := allowedMethods(mux, r); len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeError(w, &Error{Status: http.StatusMethodNotAllowed, Type: "invalid_request_error", Code: "method_not_allowed", Message: "Method " + r.Method + " is not allowed on " + r.URL.Path + "; use " + strings.Join(allow, " or ") + "."})
			return
		}
		writeError(w, &Error{Status: http.StatusNotFound, Type: "invalid_request_error", Code: "not_found", Message: "Unknown endpoint " + r.Method + " " + r.URL.Path + "."})
	})
	s.handler = s.logged(mux)
	return s
}

// allowedMethods lists the methods other than r's that have a route for r's
// path, so a wrong method gets 405 rather than the catch-all's 404.
func allowedMethods(mux *http.ServeMux, r *http.Request) []string {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if m == r.Method {
			continue
		}
		r2 := r.Clone(r.Context())
		r2.Method = m
		if _, pattern := mux.Handler(r2); pattern != "" && pattern != "/" {
			allow = append(allow, m)
		}
	}
	return allow
}

// ServeHTTP serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

type ctxKey int

const (
	keyRequestID ctxKey = iota
	keyAPIKey
)

// newID returns prefix and 24 random hex digits.
func newID(prefix string) string {
	b := make([]byte, 12)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// statusWriter records the status for the access log and keeps Flush.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// logged gives each request an id (X-Request-Id), logs method, path, status
// and duration (never bodies or headers), and turns panics into 500s.
func (s *Server) logged(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := newID("req")
		w.Header().Set("X-Request-Id", id)
		sw := &statusWriter{ResponseWriter: w}
		r = r.WithContext(context.WithValue(r.Context(), keyRequestID, id))
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.Error("panic in handler", "request_id", id, "panic", p)
				if sw.status == 0 {
					writeError(sw, errorFor(nil, ""))
				}
			}
			level := slog.LevelInfo
			if r.URL.Path == "/healthz" || r.URL.Path == "/metrics" {
				level = slog.LevelDebug
			}
			s.log.Log(r.Context(), level, "http request", "request_id", id, "method", r.Method, "path", r.URL.Path,
				"status", sw.status, "bytes", sw.bytes, "duration_ms", time.Since(start).Milliseconds())
		}()
		next.ServeHTTP(sw, r)
	})
}

// consumer requires a valid API key.
func (s *Server) consumer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, err := s.cfg.Keys.Verify(r.Context(), auth.BearerToken(r.Header.Get("Authorization")))
		if err != nil {
			e := errorFor(err, "")
			if e.Status >= 500 {
				s.log.Error("verify api key", "request_id", requestID(r.Context()), "err", err)
			}
			s.m.requests.WithLabelValues(endpointLabel(r.URL.Path), "401").Inc()
			writeError(w, e)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), keyAPIKey, key)))
	})
}

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(keyRequestID).(string)
	return id
}

func apiKey(ctx context.Context) auth.Key {
	k, _ := ctx.Value(keyAPIKey).(auth.Key)
	return k
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`{"status":"ok"}` + "\n"))
}

type wireModel struct {
	ID            string `json:"id"`
	Object        string `json:"object"`
	Created       int64  `json:"created"`
	OwnedBy       string `json:"owned_by"`
	Hosts         int    `json:"hosts"`
	ContextLength int    `json:"context_length"`
}

func (s *Server) handleModels(w http.ResponseWriter, r *http.Request) {
	models := s.cfg.Backend.Models()
	out := struct {
		Object string      `json:"object"`
		Data   []wireModel `json:"data"`
	}{Object: "list", Data: []wireModel{}}
	for _, m := range models {
		out.Data = append(out.Data, wireModel{ID: m.Name, Object: "model", OwnedBy: "peerllm", Hosts: m.Hosts, ContextLength: m.ContextLength})
	}
	writeJSON(w, http.StatusOK, out)
}

// handleModel is OpenAI's "retrieve model": one model served now, or 404.
func (s *Server) handleModel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	for _, m := range s.cfg.Backend.Models() {
		if m.Name == id {
			writeJSON(w, http.StatusOK, wireModel{ID: m.Name, Object: "model", OwnedBy: "peerllm", Hosts: m.Hosts, ContextLength: m.ContextLength})
			return
		}
	}
	writeError(w, errorFor(ErrModelNotFound, "model"))
}
