package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/peerllm/peerllm/internal/agent"
	"github.com/peerllm/peerllm/internal/engine"
	"github.com/peerllm/peerllm/internal/engine/benchengine"
	"github.com/peerllm/peerllm/internal/engine/llama"
	"github.com/peerllm/peerllm/internal/engine/models"
	"github.com/peerllm/peerllm/internal/engine/ollama"
	"github.com/peerllm/peerllm/internal/engine/openai"
)

// hostCredentials is the file `peerllm admin` prints for a new host.
type hostCredentials struct {
	URL    string `json:"url"`
	HostID string `json:"host_id"`
	Secret string `json:"secret"`
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(s string) error { *l = append(*l, s); return nil }

// runHost is `peerllm host`: load the engines, dial out to the orchestrator
// and serve tasks until SIGINT/SIGTERM, then drain (finish the tasks in
// flight, take no new ones) and exit 0. `peerllm host status` is a
// subcommand (host_status.go).
func runHost(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "status" {
		return runHostStatus(ctx, args[1:])
	}
	fs := newFlags("host")
	orchURL := fs.String("orchestrator", "", "orchestrator NATS URL, e.g. nats://orch.example:4222 (or from --credentials)")
	hostID := fs.String("host-id", "", "host id issued by the orchestrator (or from --credentials)")
	secret := fs.String("secret", "", "host secret (default $PEERLLM_HOST_SECRET, or from --credentials)")
	credFile := fs.String("credentials", "", `credentials file: JSON {"url","host_id","secret"} as printed by peerllm admin`)
	var modelArgs stringList
	fs.Var(&modelArgs, "model", "model to serve: a file (GGUF or llama2.c .bin) or a name; repeat for several")
	tokPath := fs.String("tokenizer", "", "llama2.c tokenizer for a .bin model (default tokenizer.bin or tok512.bin beside it)")
	modelsDir := fs.String("models-dir", os.Getenv("PEERLLM_MODELS"), "directory searched for model names (default $PEERLLM_MODELS)")
	engineKind := fs.String("engine", "builtin", "engine: builtin (pure-Go), openai (any OpenAI-compatible server: llama.cpp, vLLM, LM Studio, LocalAI), ollama, or bench (model-free test engine; never for real traffic)")
	engineURL := fs.String("engine-url", "", "base URL of the engine for --engine openai (e.g. http://127.0.0.1:8081/v1) or ollama (default http://127.0.0.1:11434)")
	engineKeyFile := fs.String("engine-key-file", "", "file holding the API key for --engine-url (default $PEERLLM_ENGINE_KEY)")
	engineChat := fs.Bool("engine-chat", false, "with --engine openai: send prompts to /v1/chat/completions (for servers without /v1/completions)")
	name := fs.String("name", "", "name the model is served under (default: the --model name, or the file name without extension)")
	region := fs.String("region", "", "region this host declares, e.g. eu-west")
	tier := fs.String("tier", "standard", "tier: standard or enterprise")
	capacity := fs.Int("capacity", 1, "tasks run at once (the builtin engine gets as many KV-cache slots)")
	throttle := fs.Float64("throttle", 0, "cap on tokens per second across all tasks (0: none)")
	threads := fs.Int("threads", 0, "cores the builtin engine uses (default: all)")
	ctxLen := fs.Int("context", 0, "context length cap in tokens (default: the model's)")
	benchDelay := fs.Duration("bench-delay", 0, "time per token of the bench engine")
	benchScript := fs.String("bench-script", "", "TEST FAULT INJECTION, with --engine bench: echo (answer with the input) or unsafe (answer with a threat)")
	metricsListen := fs.String("metrics-listen", "", "serve /metrics and /healthz on this address (host:port)")
	tlsCA := fs.String("tls-ca", "", "PEM file of the CA that signed the orchestrator's NATS certificate (for tls:// URLs)")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *benchScript != "" && *engineKind != "bench" {
		return usagef("--bench-script needs --engine bench")
	}
	creds := hostCredentials{URL: *orchURL, HostID: *hostID, Secret: *secret}
	if *credFile != "" {
		fileCreds, err := readCredentials(*credFile)
		if err != nil {
			return err
		}
		creds = mergeCredentials(creds, fileCreds)
	}
	if creds.Secret == "" {
		creds.Secret = os.Getenv("PEERLLM_HOST_SECRET")
	}
	switch {
	case creds.URL == "":
		return usagef("--orchestrator (or --credentials) is required")
	case creds.HostID == "":
		return usagef("--host-id (or --credentials) is required")
	case creds.Secret == "":
		return usagef("--secret, $PEERLLM_HOST_SECRET or --credentials is required")
	case len(modelArgs) == 0:
		return usagef("--model is required")
	case *tier != "standard" && *tier != "enterprise":
		return usagef("--tier must be standard or enterprise")
	case *capacity < 1:
		return usagef("--capacity must be at least 1")
	case !(*throttle >= 0):
		return usagef("--throttle must not be negative")
	case *threads < 0, *ctxLen < 0:
		return usagef("--threads and --context must not be negative")
	case *name != "" && len(modelArgs) > 1:
		return usagef("--name names one model; drop it or serve one --model")
	}
	if err := checkNATSURLs(creds.URL); err != nil {
		return err
	}
	if *engineURL != "" {
		if u, err := url.Parse(*engineURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return usagef("--engine-url must be an http:// or https:// URL, got %q", *engineURL)
		}
	}
	log, err := newLogger(*logFormat, *logLevel)
	if err != nil {
		return err
	}
	var tlsConf *tls.Config
	if *tlsCA != "" {
		if tlsConf, err = caConfig(*tlsCA); err != nil {
			return err
		}
	}

	engineKey := os.Getenv("PEERLLM_ENGINE_KEY")
	if *engineKeyFile != "" {
		b, err := os.ReadFile(*engineKeyFile)
		if err != nil {
			return fmt.Errorf("--engine-key-file: %w", err)
		}
		engineKey = strings.TrimSpace(string(b))
	}
	engines := map[string]engine.Engine{}
	defer func() {
		for _, e := range engines {
			e.Close()
		}
	}()
	for _, m := range modelArgs {
		served := *name
		if served == "" {
			served = modelName(m)
		}
		if _, dup := engines[served]; dup {
			return usagef("model %q given twice", served)
		}
		e, err := loadEngine(ctx, *engineKind, m, served, engineOptions{
			modelsDir: *modelsDir, tokenizer: *tokPath, threads: *threads, slots: *capacity,
			context: *ctxLen, benchDelay: *benchDelay, benchScript: *benchScript,
			engineURL: *engineURL, engineKey: engineKey, engineChat: *engineChat,
		})
		if err != nil {
			return err
		}
		engines[served] = e
		info := e.Info()
		log.Info("model loaded", "model", served, "engine", *engineKind, "context", info.ContextLength,
			"quantization", info.Quantization, "parameters", info.Parameters)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a, err := agent.New(agent.Config{
		URL: creds.URL, HostID: creds.HostID, Secret: creds.Secret, Engines: engines,
		Region: *region, Tier: *tier, Capacity: *capacity, Throttle: *throttle,
		Agent: "peerllm/" + version, Log: log, Metrics: reg, TLS: tlsConf,
	})
	if err != nil {
		return err
	}
	if *metricsListen != "" {
		addr, stop, err := serveHostMetrics(*metricsListen, reg, a, log)
		if err != nil {
			return err
		}
		defer stop()
		log.Info("metrics listening", "addr", addr)
	}
	log.Info("host starting", "orchestrator", creds.URL, "host", creds.HostID, "models", len(engines),
		"capacity", *capacity, "throttle", *throttle)
	return a.Run(ctx)
}

func readCredentials(path string) (hostCredentials, error) {
	var c hostCredentials
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("read credentials: %w", err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("credentials file %s: %w", path, err)
	}
	return c, nil
}

// mergeCredentials fills what the flags left empty from the file.
func mergeCredentials(flags, file hostCredentials) hostCredentials {
	if flags.URL == "" {
		flags.URL = file.URL
	}
	if flags.HostID == "" {
		flags.HostID = file.HostID
	}
	if flags.Secret == "" {
		flags.Secret = file.Secret
	}
	return flags
}

// modelName is the name a --model argument is served under: a name as
// given, a file path's base name without its extension.
func modelName(arg string) string {
	if strings.ContainsRune(arg, os.PathSeparator) || strings.ContainsRune(arg, '/') || isRegularFile(arg) {
		base := filepath.Base(arg)
		return strings.TrimSuffix(base, filepath.Ext(base))
	}
	return arg
}

func isRegularFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

type engineOptions struct {
	modelsDir, tokenizer string
	threads, slots       int
	context              int
	benchDelay           time.Duration
	benchScript          string // test fault injection (benchengine.NewScript)
	engineURL, engineKey string // --engine openai/ollama: the server and its API key
	engineChat           bool
}

// loadEngine opens the engine of kind for model arg, served as name.
func loadEngine(ctx context.Context, kind, arg, name string, o engineOptions) (engine.Engine, error) {
	switch kind {
	case "builtin":
		path, err := models.Resolve(ctx, arg, models.Options{Dir: o.modelsDir, Progress: os.Stderr})
		if err != nil {
			return nil, err
		}
		e, err := llama.Load(path, llama.Options{
			TokenizerPath: o.tokenizer, Name: name, Threads: o.threads, Slots: o.slots, ContextLength: o.context,
		})
		if err != nil {
			return nil, err // llama.Load names the file
		}
		return e, nil
	case "bench":
		if o.benchScript != "" {
			e, err := benchengine.NewScript(benchengine.Options{Model: name, ContextLength: o.context, Delay: o.benchDelay}, o.benchScript)
			if err != nil {
				return nil, usagef("--bench-script: %v", err)
			}
			return e, nil
		}
		return benchengine.New(benchengine.Options{Model: name, ContextLength: o.context, Delay: o.benchDelay}), nil
	case "openai":
		if o.engineURL == "" {
			return nil, usagef("--engine openai needs --engine-url")
		}
		e, err := openai.Connect(ctx, openai.Config{BaseURL: o.engineURL, APIKey: o.engineKey, Model: arg, ContextLength: o.context, UseChat: o.engineChat})
		if err != nil {
			return nil, fmt.Errorf("connect to %s: %w", o.engineURL, err)
		}
		return e, nil
	case "ollama":
		url := o.engineURL
		if url == "" {
			url = ollama.DefaultBaseURL
		}
		e, err := ollama.Connect(ctx, ollama.Config{BaseURL: url, Model: arg, ContextLength: o.context})
		if err != nil {
			return nil, fmt.Errorf("connect to ollama at %s: %w", url, err)
		}
		return e, nil
	}
	return nil, usagef("--engine must be builtin, openai, ollama or bench")
}

func caConfig(path string) (*tls.Config, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read --tls-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--tls-ca %s: no PEM certificates", path)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// serveHostMetrics serves /metrics and /healthz (200 while connected to the
// orchestrator, 503 otherwise) until the returned stop is called. It
// returns the address it listens on (port 0 picks one).
func serveHostMetrics(addr string, reg *prometheus.Registry, a *agent.Agent, log *slog.Logger) (string, func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("metrics listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		s := a.Stats()
		w.Header().Set("Content-Type", "application/json")
		if !s.Connected {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(map[string]any{
			"connected": s.Connected, "draining": s.Draining, "in_flight": s.InFlight,
		})
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server", "err", err)
		}
	}()
	return ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}, nil
}

// checkNATSURLs refuses an orchestrator address NATS cannot dial, such as
// the orchestrator's http:// API URL, which would otherwise be retried
// forever in silence. Like nats.go it accepts a comma-separated list and
// addresses without a scheme (nats:// is implied).
func checkNATSURLs(list string) error {
	for _, raw := range strings.Split(list, ",") {
		raw = strings.TrimSpace(raw)
		if !strings.Contains(raw, "://") {
			raw = "nats://" + raw
		}
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			return usagef("orchestrator URL %q is not a NATS address like nats://HOST:4222", raw)
		}
		switch u.Scheme {
		case "nats", "tls", "ws", "wss":
		default:
			return usagef("orchestrator URL %q: scheme must be nats, tls, ws or wss (hosts dial the orchestrator's NATS port, not its HTTP API)", raw)
		}
	}
	return nil
}
