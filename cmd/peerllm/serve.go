package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/peerllm/peerllm/internal/orchestrator"
	"github.com/peerllm/peerllm/internal/pipeline"
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
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	readyFile := fs.String("ready-file", "", "write {\"api\",\"nats\"} JSON here once serving (for scripts and tests)")
	pricesFile := fs.String("prices", "", "price list JSON file (default: the embedded list, docs/MONEY.md); re-read on SIGHUP")
	recoverAfter := fs.Duration("recover-after", 0, "at start, settle unfinished requests older than this (default 0 on SQLite, 10m on PostgreSQL)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
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
	o, err := orchestrator.Start(ctx, orchestrator.Config{
		Listen: *listen, NATSListen: *natsListen, NATSURL: *natsURL, NATSUser: *natsUser, NATSPassword: *natsPassword,
		HostURL: *hostURL, DataDir: *dataDir, DatabaseURL: *dbURL, AdminToken: *adminToken, TLS: tlsConf,
		SegmentTokens: *segment, Mode: *mode, Stages: serveStages(log), Log: log,
		Prices: prices, RecoverAfter: *recoverAfter,
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

// serveStages are the pipeline stages of `peerllm serve`; the safety and
// privacy layers are added here as they land.
func serveStages(log *slog.Logger) []pipeline.Stage { return nil }

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
