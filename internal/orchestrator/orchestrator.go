// Package orchestrator wires the orchestrator process together: the store,
// the host registry, API keys, the embedded (or an external) NATS server,
// the dispatcher, the request pipeline and the HTTP API, with one
// Prometheus registry and one logger. cmd/peerllm's serve command is its
// only importer; tests start it as a real process through internal/testenv.
package orchestrator

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/peerllm/peerllm/internal/auth"
	"github.com/peerllm/peerllm/internal/dispatch"
	"github.com/peerllm/peerllm/internal/fabric"
	"github.com/peerllm/peerllm/internal/httpapi"
	"github.com/peerllm/peerllm/internal/ledger"
	"github.com/peerllm/peerllm/internal/pipeline"
	"github.com/peerllm/peerllm/internal/registry"
	"github.com/peerllm/peerllm/internal/store"
	"github.com/peerllm/peerllm/internal/web"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Config configures an orchestrator.
type Config struct {
	Listen     string // HTTP API address; default ":8080"
	NATSListen string // embedded NATS address; default ":4222"; ignored with NATSURL
	// NATSURL selects an external NATS server instead of the embedded one,
	// authenticated with NATSUser and NATSPassword.
	NATSURL      string
	NATSUser     string
	NATSPassword string
	// HostURL is the NATS URL written into host credentials; default the
	// embedded server's URL (or NATSURL).
	HostURL string
	// DataDir holds the SQLite database (peerllm.db); default "./data".
	// DatabaseURL, when set (postgres://...), is used instead.
	DataDir     string
	DatabaseURL string
	// AdminToken is the admin API's bearer token. Empty: the token stored by
	// an earlier start, or a new one, reported by Generated().
	AdminToken string
	TLS        *tls.Config // NATS TLS; nil means plain TCP (loopback or a VPN)
	// SegmentTokens is the generation segment size in tokens; 0 means the
	// dispatcher's default.
	SegmentTokens int
	// Mode is the default redundancy mode: "parallel" (default), "hedged", "off".
	Mode string
	// Stages are the pipeline stages (safety, privacy), in order.
	Stages []pipeline.Stage
	Meters []pipeline.Meter
	// Pipeline, when set, builds more stages and meters (appended after
	// Stages and Meters) once the store, registry and dispatcher exist:
	// billing needs the database, strikes need the registry.
	Pipeline func(ctx context.Context, w Wiring) ([]pipeline.Stage, []pipeline.Meter, error)
	Log      *slog.Logger

	// Moderator serves POST /v1/moderations; nil: not served.
	Moderator httpapi.Moderator

	// Prices is the published price list. When set, every request is
	// billed (a hold before any host works, a balanced ledger record when
	// it ends) and the money routes are served; nil means no billing.
	Prices *ledger.PriceList
	// PricingRules are the rules Prices was validated with; zero means
	// ledger.DefaultPricingRules().
	PricingRules ledger.PricingRules
	// RecoverAfter: at start, holds older than this are settled with their
	// last checkpointed usage. Default 0 on SQLite (one process owns the
	// file); 10 minutes on PostgreSQL, where other replicas may be serving.
	RecoverAfter time.Duration
	// HostMultiplier gives a host's payout weight in permille (tier bonus);
	// nil means governance's weight for the host's tier.
	HostMultiplier func(hostID string) int64
	// Governance tunes seats, tiers, the capacity queue and federation
	// readiness (governance.go); the zero value is docs/POLICY.md's defaults.
	Governance GovernanceConfig
}

// Wiring is what a Config.Pipeline hook may use.
type Wiring struct {
	DB         *store.DB
	Registry   *registry.Registry
	Dispatcher *dispatch.Dispatcher
	Metrics    prometheus.Registerer
	Log        *slog.Logger
}

// Orchestrator is a running orchestrator.
type Orchestrator struct {
	cfg       Config
	log       *slog.Logger
	db        *store.DB
	reg       *registry.Registry
	keys      *auth.Keys
	nats      *fabric.Server // nil with an external NATS
	nc        *nats.Conn
	disp      *dispatch.Dispatcher
	metrics   *prometheus.Registry
	api       *httpapi.Server
	http      *http.Server
	ln        net.Listener
	generated string
	ledger    *ledger.Ledger // nil without Prices
	rules     ledger.PricingRules
	gov       *gov

	cancel context.CancelFunc
	wg     sync.WaitGroup
	errc   chan error
}

// Start opens the store, starts NATS, the dispatcher and the HTTP API. The
// orchestrator runs until ctx is cancelled or Close is called.
func Start(ctx context.Context, cfg Config) (_ *Orchestrator, err error) {
	if cfg.Listen == "" {
		cfg.Listen = ":8080"
	}
	if cfg.NATSListen == "" {
		cfg.NATSListen = ":4222"
	}
	if cfg.DataDir == "" {
		cfg.DataDir = "./data"
	}
	if cfg.Mode == "" {
		cfg.Mode = "parallel"
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	o := &Orchestrator{cfg: cfg, log: cfg.Log, errc: make(chan error, 2)}
	defer func() {
		if err != nil {
			o.Close()
		}
	}()
	dsn := cfg.DatabaseURL
	if dsn == "" {
		dsn = filepath.Join(cfg.DataDir, "peerllm.db")
	}
	if o.db, err = store.Open(ctx, dsn); err != nil {
		return nil, err
	}
	if o.reg, err = registry.Open(ctx, o.db, o.log.With("component", "registry")); err != nil {
		return nil, fmt.Errorf("open registry: %w", err)
	}
	if o.keys, err = auth.Open(ctx, o.db); err != nil {
		return nil, fmt.Errorf("open keys: %w", err)
	}
	admin, generated, err := o.keys.SetupAdmin(ctx, cfg.AdminToken)
	if err != nil {
		return nil, err
	}
	o.generated = generated

	o.metrics = prometheus.NewRegistry()
	o.metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	hostURL := cfg.HostURL
	if cfg.NATSURL != "" {
		if o.nc, err = fabric.ConnectExternal(cfg.NATSURL, cfg.NATSUser, cfg.NATSPassword); err != nil {
			return nil, err
		}
		if hostURL == "" {
			hostURL = cfg.NATSURL
		}
	} else {
		o.nats, err = fabric.StartServer(fabric.ServerConfig{
			Listen: cfg.NATSListen, TLS: cfg.TLS, VerifyHost: o.reg.VerifyHost,
			Log: o.log.With("component", "nats"),
		})
		if err != nil {
			return nil, err
		}
		if o.nc, err = o.nats.Connect("orchestrator"); err != nil {
			return nil, err
		}
		if hostURL == "" {
			hostURL = o.nats.URL()
		}
	}

	if o.gov, err = o.openGovernance(ctx); err != nil {
		return nil, err
	}
	if o.cfg.HostMultiplier == nil {
		o.cfg.HostMultiplier = o.gov.multiplier
	}
	o.disp, err = dispatch.New(dispatch.Config{SegmentTokens: cfg.SegmentTokens, Mode: cfg.Mode, Admit: o.gov.admit}, o.nc, o.reg, o.log.With("component", "dispatch"), o.metrics)
	if err != nil {
		return nil, fmt.Errorf("start dispatcher: %w", err)
	}
	o.gov.startGate()
	stages := append([]pipeline.Stage(nil), cfg.Stages...)
	meters := append([]pipeline.Meter(nil), cfg.Meters...)
	if cfg.Pipeline != nil {
		st, me, err := cfg.Pipeline(ctx, Wiring{DB: o.db, Registry: o.reg, Dispatcher: o.disp, Metrics: o.metrics, Log: o.log})
		if err != nil {
			return nil, fmt.Errorf("build pipeline: %w", err)
		}
		stages, meters = append(stages, st...), append(meters, me...)
	}
	var money *httpapi.Money
	if cfg.Prices != nil {
		st, me, m, err := o.startMoney(ctx)
		if err != nil {
			return nil, err
		}
		stages, meters, money = append(stages, st), append(meters, me), m
	}
	o.api = httpapi.New(httpapi.Config{
		Backend:  &govBackend{backend: backend{d: o.disp, mode: cfg.Mode}, g: o.gov},
		Keys:     o.keys,
		Chain:    &pipeline.Chain{Stages: stages, Meters: meters},
		Admin:    &httpapi.Admin{Token: admin, Keys: o.keys, Hosts: &hostAdmin{reg: o.reg}, HostURL: hostURL},
		Log:      o.log.With("component", "api"),
		Registry: o.metrics,
		Money:    money,
		Pages:    web.Handler(),

		Moderator:  cfg.Moderator,
		Governance: o.gov,
	})
	if o.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
		return nil, fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	o.http = &http.Server{Handler: o.api, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(o.log.Handler(), slog.LevelWarn)}

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	o.cancel = cancel
	o.wg.Add(3)
	go func() {
		defer o.wg.Done()
		o.gov.run(runCtx)
	}()
	go func() {
		defer o.wg.Done()
		if err := o.disp.Run(runCtx); err != nil && !errors.Is(err, context.Canceled) {
			o.errc <- fmt.Errorf("dispatcher: %w", err)
		}
	}()
	srv, ln := o.http, o.ln // Close may clear o.http before this goroutine runs
	go func() {
		defer o.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			o.errc <- fmt.Errorf("http: %w", err)
		}
	}()
	if o.ledger != nil {
		o.wg.Add(1)
		go func() {
			defer o.wg.Done()
			o.sweepHolds(runCtx)
		}()
	}
	o.log.Info("orchestrator started", "api", o.APIURL(), "nats", hostURL, "data", dsn, "mode", cfg.Mode)
	return o, nil
}

// APIURL is the HTTP API's base URL (loopback when listening on all interfaces).
func (o *Orchestrator) APIURL() string {
	return "http://" + dialable(o.ln.Addr())
}

// NATSURL is the URL hosts dial.
func (o *Orchestrator) NATSURL() string {
	if o.nats != nil {
		return o.nats.URL()
	}
	return o.cfg.NATSURL
}

// GeneratedAdminToken is the admin token generated at this start, or "" if
// one was given or stored earlier. Show it once.
func (o *Orchestrator) GeneratedAdminToken() string { return o.generated }

// Wait blocks until ctx is done or a component fails, then shuts down.
func (o *Orchestrator) Wait(ctx context.Context) error {
	var err error
	select {
	case <-ctx.Done():
	case err = <-o.errc:
	}
	o.Close()
	return err
}

// Close stops the HTTP API (letting requests in flight finish for a few
// seconds), the dispatcher, NATS and the store. It is safe to call twice.
func (o *Orchestrator) Close() {
	if o.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := o.http.Shutdown(ctx); err != nil {
			o.http.Close()
		}
		cancel()
		o.http = nil
	} else if o.ln != nil {
		o.ln.Close()
	}
	if o.cancel != nil {
		o.cancel()
		o.cancel = nil
	}
	o.wg.Wait()
	if o.nc != nil {
		o.nc.Close()
		o.nc = nil
	}
	if o.nats != nil {
		o.nats.Close()
		o.nats = nil
	}
	if o.db != nil {
		o.db.Close()
		o.db = nil
	}
}

func dialable(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
