package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/peerllm/peerllm/internal/orchestrator"
	"github.com/peerllm/peerllm/internal/pipeline"
	"github.com/peerllm/peerllm/internal/privacy"
	"github.com/peerllm/peerllm/internal/safety"
	"github.com/peerllm/peerllm/internal/stages"
)

// runServe runs the orchestrator until SIGINT/SIGTERM.
func runServe(ctx context.Context, args []string) error {
	fs := newFlags("serve")
	listen := fs.String("listen", ":8080", "HTTP API address (host:port; port 0 picks one)")
	natsListen := fs.String("nats-listen", ":4222", "embedded NATS address hosts dial (port 0 picks one)")
	natsURL := fs.String("nats-url", "", "use this external NATS server instead of the embedded one")
	natsUser := fs.String("nats-user", "", "user for --nats-url")
	natsPassword := fs.String("nats-password", "", "password for --nats-url (default $PEERLLM_NATS_PASSWORD)")
	hostURL := fs.String("public-nats-url", "", "NATS URL written into host credentials (default: the listening address)")
	dataDir := fs.String("data-dir", "./data", "directory for the SQLite database")
	dbURL := fs.String("database-url", "", "postgres:// URL to use instead of SQLite (default $PEERLLM_DATABASE_URL)")
	adminToken := fs.String("admin-token", "", "admin API token (default $PEERLLM_ADMIN_TOKEN; generated and printed once if absent)")
	tlsCert := fs.String("tls-cert", "", "TLS certificate for the NATS listener")
	tlsKey := fs.String("tls-key", "", "TLS key for the NATS listener")
	segment := fs.Int("segment-tokens", 0, "generation segment size in tokens (0: the dispatcher's default)")
	mode := fs.String("mode", "parallel", "default redundancy: parallel, hedged or off")
	var scrFlags screenFlags
	scrFlags.register(fs)
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	readyFile := fs.String("ready-file", "", "write {\"api\",\"nats\"} JSON here once serving (for scripts and tests)")
	pricesFile := fs.String("prices", "", "price list JSON file (default: the embedded list, docs/MONEY.md); re-read on SIGHUP")
	recoverAfter := fs.Duration("recover-after", 0, "at start, settle unfinished requests older than this (default 0 on SQLite, 10m on PostgreSQL)")
	gov := govFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if err := noNegativeFlags(fs); err != nil {
		return err
	}
	switch *mode {
	case "parallel", "hedged", "off":
	default:
		return usagef("--mode must be parallel, hedged or off")
	}
	if *adminToken == "" {
		*adminToken = os.Getenv("PEERLLM_ADMIN_TOKEN")
	}
	if *natsPassword == "" {
		*natsPassword = os.Getenv("PEERLLM_NATS_PASSWORD")
	}
	if *dbURL == "" {
		*dbURL = os.Getenv("PEERLLM_DATABASE_URL")
	}
	log, err := newLogger(*logFormat, *logLevel)
	if err != nil {
		return err
	}
	prices, err := loadPrices(*pricesFile)
	if err != nil {
		return err
	}
	var tlsConf *tls.Config
	if *tlsCert != "" || *tlsKey != "" {
		cert, err := tls.LoadX509KeyPair(*tlsCert, *tlsKey)
		if err != nil {
			return fmt.Errorf("load tls key pair: %w", err)
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	scr, err := scrFlags.build()
	if err != nil {
		return err
	}
	o, err := orchestrator.Start(ctx, orchestrator.Config{
		Listen: *listen, NATSListen: *natsListen, NATSURL: *natsURL, NATSUser: *natsUser, NATSPassword: *natsPassword,
		HostURL: *hostURL, DataDir: *dataDir, DatabaseURL: *dbURL, AdminToken: *adminToken, TLS: tlsConf,
		SegmentTokens: *segment, Mode: *mode, Log: log, Pipeline: screeningHook(scr), Moderator: scr,
		Prices: prices, RecoverAfter: *recoverAfter, Governance: gov(),
	})
	if err != nil {
		return err
	}
	defer reloadPricesOnHUP(ctx, o, *pricesFile, log)()
	if t := o.GeneratedAdminToken(); t != "" {
		fmt.Fprintf(os.Stderr, "\nNo admin token was given, so one was generated. It is shown only now:\n\n  PEERLLM_ADMIN_TOKEN=%s\n\n", t)
	}
	fmt.Fprintf(os.Stderr, "peerllm serve: API %s, hosts dial %s\n", o.APIURL(), o.NATSURL())
	if *readyFile != "" {
		if err := writeReadyFile(*readyFile, map[string]any{"api": o.APIURL(), "nats": o.NATSURL(), "pid": os.Getpid()}); err != nil {
			o.Close()
			return err
		}
	}
	return o.Wait(ctx)
}

// screenFlags are serve's flags for the safety and privacy layers.
type screenFlags struct {
	policy, moderation, moderationURL, moderationModel, privacyMode string
	sanitizerURL, sanitizerModel                                    string
	answerMargin                                                    float64
	noSafety, noPrivacy                                             bool
}

func (f *screenFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.policy, "safety-policy", "", "content-screen policy file (JSON thresholds; default: the built-in policy, docs/SAFETY.md)")
	fs.StringVar(&f.moderation, "moderation", "", "optional AI moderation for prompts the built-in screen is unsure about: openai (a /v1/moderations endpoint) or llamaguard (a Llama-Guard model behind /v1/chat/completions); an operator-trusted backend only, key from $PEERLLM_MODERATION_KEY")
	fs.StringVar(&f.moderationURL, "moderation-url", "", "base URL of the --moderation backend, e.g. http://10.0.0.5:8000/v1")
	fs.StringVar(&f.moderationModel, "moderation-model", "", "model name for the --moderation backend")
	fs.Float64Var(&f.answerMargin, "safety-answer-margin", 0.15, "raise every threshold by this much (0..0.5) for screening answers; prompts are screened at the policy's thresholds")
	fs.StringVar(&f.sanitizerURL, "privacy-sanitizer-url", "", "optional LLM sanitizer (second detector) behind an OpenAI-compatible /chat/completions at this base URL; an operator-trusted backend only, key from $PEERLLM_SANITIZER_KEY")
	fs.StringVar(&f.sanitizerModel, "privacy-sanitizer-model", "", "model name for --privacy-sanitizer-url")
	fs.StringVar(&f.privacyMode, "privacy-mode", "surrogates", "stand-ins for personal identifiers: surrogates or placeholders")
	fs.BoolVar(&f.noSafety, "no-safety", false, "do not screen prompts and answers (hosts may then receive harmful requests)")
	fs.BoolVar(&f.noPrivacy, "no-privacy", false, "send personal identifiers to hosts unchanged")
}

// build makes the screening set-up (docs/SCREENING.md).
func (f *screenFlags) build() (*stages.Screening, error) {
	pol := safety.DefaultPolicy()
	if f.policy != "" {
		var err error
		if pol, err = safety.LoadPolicy(f.policy); err != nil {
			return nil, err
		}
	}
	cl, err := safety.New(pol)
	if err != nil {
		return nil, err
	}
	ch := &safety.Checker{Classifier: cl}
	key := os.Getenv("PEERLLM_MODERATION_KEY")
	switch f.moderation {
	case "":
	case "openai":
		ch.AI = &safety.OpenAIModerator{BaseURL: f.moderationURL, APIKey: key, Model: f.moderationModel}
	case "llamaguard":
		ch.AI = &safety.LlamaGuardModerator{BaseURL: f.moderationURL, APIKey: key, Model: f.moderationModel}
	default:
		return nil, usagef("--moderation must be openai or llamaguard")
	}
	if ch.AI != nil && f.moderationURL == "" {
		return nil, usagef("--moderation needs --moderation-url")
	}
	if f.answerMargin < 0 || f.answerMargin > 0.5 {
		return nil, usagef("--safety-answer-margin must be in [0, 0.5]")
	}
	scr := &stages.Screening{Checker: ch, Safety: !f.noSafety, Policy: pol, AnswerMargin: f.answerMargin}
	if !f.noPrivacy {
		mode, err := privacy.ParseMode(f.privacyMode)
		if err != nil {
			return nil, usagef("--privacy-mode: %v", err)
		}
		if scr.Scanner, err = privacy.NewScanner(privacy.Config{Mode: mode}); err != nil {
			return nil, err
		}
		if f.sanitizerURL != "" {
			scr.Sanitizer = &privacy.LLMSanitizer{BaseURL: f.sanitizerURL, APIKey: os.Getenv("PEERLLM_SANITIZER_KEY"), Model: f.sanitizerModel}
		}
	}
	return scr, nil
}

// screeningHook adds the screening stages (safety, then privacy) and the
// strike meter once the registry exists.
func screeningHook(scr *stages.Screening) func(context.Context, orchestrator.Wiring) ([]pipeline.Stage, []pipeline.Meter, error) {
	return func(_ context.Context, w orchestrator.Wiring) ([]pipeline.Stage, []pipeline.Meter, error) {
		return scr.Pipeline(w.Registry, w.Metrics, w.Log)
	}
}

// newLogger builds the process logger on stderr.
func newLogger(format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usagef("--log-level: %v", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	case "text", "":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	}
	return nil, usagef("--log-format must be text or json")
}

// writeReadyFile writes v as JSON atomically (rename), so a reader never
// sees half a file.
func writeReadyFile(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write ready file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write ready file: %w", err)
	}
	return nil
}

// noNegativeFlags refuses a negative value in any numeric flag given: serve's
// counts, sizes and periods all start at 0.
func noNegativeFlags(fs *flag.FlagSet) error {
	var err error
	fs.Visit(func(f *flag.Flag) {
		g, ok := f.Value.(flag.Getter)
		if !ok || err != nil {
			return
		}
		switch v := g.Get().(type) {
		case int:
			if v < 0 {
				err = usagef("--%s must not be negative", f.Name)
			}
		case time.Duration:
			if v < 0 {
				err = usagef("--%s must not be negative", f.Name)
			}
		case float64:
			if !(v >= 0) {
				err = usagef("--%s must not be negative", f.Name)
			}
		}
	})
	return err
}
