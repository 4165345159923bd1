// Package app wires the pipewarden daemon: store, bus, ingestion, HTTP API, metrics and
// background jobs. It can be started and stopped from a test on 127.0.0.1:0.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/pipewarden/pipewarden/internal/alert"
	"github.com/pipewarden/pipewarden/internal/audit"
	"github.com/pipewarden/pipewarden/internal/bus"
	"github.com/pipewarden/pipewarden/internal/config"
	"github.com/pipewarden/pipewarden/internal/dataset/monitor"
	"github.com/pipewarden/pipewarden/internal/event"
	"github.com/pipewarden/pipewarden/internal/finding"
	"github.com/pipewarden/pipewarden/internal/gateway"
	"github.com/pipewarden/pipewarden/internal/httpapi"
	"github.com/pipewarden/pipewarden/internal/modelwatch"
	"github.com/pipewarden/pipewarden/internal/rules"
	"github.com/pipewarden/pipewarden/internal/store"
	"github.com/pipewarden/pipewarden/internal/store/postgres"
	"github.com/pipewarden/pipewarden/internal/store/sqlite"
)

// Options are what the daemon gets from its caller; nothing is read from globals.
type Options struct {
	Config *config.Config
	Logger *slog.Logger
	// Registry collects every metric; a fresh one is made when nil.
	Registry *prometheus.Registry
	Now      func() time.Time
	// Out receives the few lines a person starting the daemon must see (where the admin token
	// is, where it listens). Never a secret.
	Out     io.Writer
	Version string
	// Reload, when it receives, reloads rule files (the command wires SIGHUP to it).
	Reload <-chan struct{}
}

// App is the running daemon.
type App struct {
	cfg  *config.Config
	log  *slog.Logger
	reg  *prometheus.Registry
	now  func() time.Time
	out  io.Writer
	vers string

	store    store.Store
	writer   *store.Writer
	events   *bus.Bus[event.Event]
	findings *bus.Bus[finding.Finding]
	api      *httpapi.Server
	auth     *authenticator
	engine   *rules.Engine
	reloader *rules.Reloader
	ingest   *ingester
	models   *modelwatch.Manager
	watcher  *modelwatch.Watcher
	scanner  *dirScanner

	alerts      *alert.Pipeline
	data        *monitor.Monitor
	gw          *gateway.Gateway
	gwLn        net.Listener
	gwSrv       *gateway.Server
	auditLog    *audit.Log
	auditMu     sync.Mutex
	audited     int64 // highest event seq audited; guarded by tailMu
	auditSaved  int64 // highest seq saved as the audit cursor; guarded by tailMu
	tailMu      sync.Mutex
	rulesDigest auditState

	srv      *http.Server
	ln       net.Listener
	bg       sync.WaitGroup
	cancelBG context.CancelFunc
	draining atomic.Bool
	stopOnce sync.Once
	stopErr  error
}

// New opens the store and builds every component; nothing listens until Start.
func New(ctx context.Context, o Options) (*App, error) {
	if o.Config == nil {
		o.Config = config.Default()
	}
	if err := o.Config.Validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	cfg := o.Config
	if cfg.Bus.Driver != "memory" {
		return nil, fmt.Errorf("config: bus.driver %q is not available in this build; use memory (see docs/decisions.md)", cfg.Bus.Driver)
	}
	a := &App{cfg: cfg, log: o.Logger, reg: o.Registry, now: o.Now, out: o.Out, vers: o.Version}
	a.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	build := prometheus.NewGauge(prometheus.GaugeOpts{Name: "pipewarden_build_info", Help: "Build information.", ConstLabels: prometheus.Labels{"version": o.Version}})
	build.Set(1)
	a.reg.MustRegister(build)

	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory %s: %w", cfg.DataDir, err)
	}
	st, err := OpenStore(ctx, cfg, o.Now)
	if err != nil {
		return nil, err
	}
	a.store = st
	a.auth = newAuthenticator(cfg.Auth.Tokens, st)
	if err := a.bootstrapToken(ctx); err != nil {
		st.Close()
		return nil, err
	}

	m := newIngestMetrics(a.reg)
	a.writer = store.NewWriter(st, store.WriterOptions{
		MaxEvents: cfg.Store.Batch.MaxEvents,
		MaxWait:   cfg.Store.Batch.MaxWait,
		Observe:   m.observeCommit,
	})
	// Every events subscriber (rules, data, audit, gateway findings) is done with the events it
	// is handed when it returns, so the bus reuses its merge buffers (a third of all allocation
	// under load was copies of coalesced batches).
	a.events = bus.New[event.Event](bus.Options{Name: "events", QueueSize: cfg.Bus.QueueSize, Registerer: a.reg, Logger: a.log, ReuseBatches: true})
	a.findings = bus.New[finding.Finding](bus.Options{Name: "findings", QueueSize: cfg.Bus.QueueSize, Registerer: a.reg, Logger: a.log})
	a.findings.Subscribe("store", a.storeFindings)
	if err := a.setupRules(ctx); err != nil {
		a.writer.Close()
		st.Close()
		return nil, err
	}

	a.ingest = &ingester{w: a.writer, bus: a.events, m: m}
	var mounts []httpapi.Mount
	modelMounts, err := a.setupModels()
	if err != nil {
		a.writer.Close()
		st.Close()
		return nil, err
	}
	mounts = append(mounts, modelMounts...)
	dataMounts, err := a.setupData()
	if err != nil {
		a.writer.Close()
		st.Close()
		return nil, err
	}
	mounts = append(mounts, dataMounts...)
	gwMounts, err := a.setupGateway()
	if err != nil {
		a.writer.Close()
		st.Close()
		return nil, err
	}
	mounts = append(mounts, gwMounts...)
	mounts = append(mounts, a.debugMounts()...)
	auditMounts, err := a.setupAudit()
	if err != nil {
		a.writer.Close()
		st.Close()
		return nil, err
	}
	mounts = append(mounts, auditMounts...)
	alertMounts, err := a.setupAlerting(ctx)
	if err != nil {
		a.writer.Close()
		a.auditLog.Close()
		st.Close()
		return nil, err
	}
	mounts = append(mounts, alertMounts...)
	// Tokens, including the one bootstrapped above, are audited by auditTokens at start.
	a.api = httpapi.New(httpapi.Options{
		Decoder: event.NewDecoder(event.Limits{
			MaxBodyBytes: cfg.Limits.MaxBodyBytes, MaxEventBytes: cfg.Limits.MaxEventBytes,
			MaxBatch: cfg.Limits.MaxBatchEvents, MaxDepth: cfg.Limits.MaxDepth,
		}, o.Now),
		Ingester:      a.ingest,
		Reader:        st,
		Auth:          a.auth,
		Ready:         a.ready,
		Gatherer:      a.reg,
		Registerer:    a.reg,
		MetricsAccess: cfg.Metrics.Access,
		Logger:        a.log,
		Now:           o.Now,
		Rules:         rulesAPI{a},
		Mounts:        mounts,
		AuditAPI:      a.auditAPI,
	})
	return a, nil
}

// OpenStore opens the store the configuration names.
func OpenStore(ctx context.Context, cfg *config.Config, now func() time.Time) (store.Store, error) {
	switch cfg.Store.Driver {
	case "sqlite":
		return sqlite.Open(ctx, cfg.SQLitePath(), sqlite.Options{Synchronous: cfg.Store.SQLite.Synchronous, Now: now})
	case "postgres":
		return postgres.Open(ctx, cfg.Store.Postgres.DSN, postgres.Options{Now: now})
	}
	return nil, fmt.Errorf("store driver %q is not available in this build", cfg.Store.Driver)
}

// Events is the event bus; subscribe to it before Start.
func (a *App) Events() *bus.Bus[event.Event] { return a.events }

// Findings is the findings bus: detectors publish here; the store subscribes.
func (a *App) Findings() *bus.Bus[finding.Finding] { return a.findings }

// Store is the daemon's store.
func (a *App) Store() store.Store { return a.store }

// Handler is the HTTP API, for tests that do not need a socket.
func (a *App) Handler() http.Handler { return a.api }

// Routes lists the API's routes.
func (a *App) Routes() []string { return a.api.Routes() }

// Start listens and serves; it returns once the listener is bound.
func (a *App) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", a.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.cfg.Listen, err)
	}
	a.ln = ln
	bgCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a.cancelBG = cancel
	// Consumers keep a context that outlives the producers so they can drain on Stop.
	a.events.Start(context.WithoutCancel(ctx))
	a.findings.Start(context.WithoutCancel(ctx))
	// Events acknowledged before the last stop (or crash) but not yet audited are audited
	// before anything new can arrive.
	a.auditEventsOnce(ctx)
	a.srv = &http.Server{
		Handler:           a.api,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	a.bg.Add(1)
	go func() {
		defer a.bg.Done()
		if err := a.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("http server stopped", "err", err)
		}
	}()
	a.bg.Add(1)
	go func() { defer a.bg.Done(); a.rulesLoop(bgCtx) }()
	a.runModels(bgCtx)
	if err := a.startGateway(); err != nil {
		return err
	}
	a.bg.Add(1)
	go func() { defer a.bg.Done(); a.auditTail(bgCtx) }()
	a.bg.Add(1)
	go func() { defer a.bg.Done(); a.alerts.Run(bgCtx) }()
	if a.cfg.Store.Retention.Events > 0 {
		a.bg.Add(1)
		go func() { defer a.bg.Done(); a.retentionLoop(bgCtx) }()
	}
	a.log.Info("pipewarden serving", "addr", a.Addr(), "data_dir", a.cfg.DataDir, "store", a.cfg.Store.Driver, "version", a.vers)
	return nil
}

// Addr is the bound address (useful with port 0).
func (a *App) Addr() string {
	if a.ln == nil {
		return ""
	}
	return a.ln.Addr().String()
}

// Stop stops taking requests, lets in-flight ones finish, drains the queues and closes the
// store, all within ctx.
func (a *App) Stop(ctx context.Context) error {
	a.stopOnce.Do(func() {
		a.draining.Store(true)
		var errs []error
		if a.srv != nil {
			if err := a.srv.Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("http shutdown: %w", err))
				a.srv.Close()
			}
		}
		a.stopGateway(ctx)
		// Stop the daemon's own producers (watchers, scanners, loops) so nothing new is published.
		if a.cancelBG != nil {
			a.cancelBG()
		}
		a.bg.Wait()
		// No request or producer can publish any more: drain what consumers still hold.
		if err := a.events.Close(ctx); err != nil {
			errs = append(errs, err)
		}
		if err := a.findings.Close(ctx); err != nil {
			errs = append(errs, err)
		}
		a.saveRulesState(context.Background(), 0)
		a.writer.Close()
		// Every committed event is audited before the log closes (with a final checkpoint).
		a.auditEventsOnce(context.Background())
		if a.auditLog != nil {
			if err := a.auditLog.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close audit log: %w", err))
			}
		}
		if a.data != nil {
			a.data.Close()
		}
		if err := a.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close store: %w", err))
		}
		a.stopErr = errors.Join(errs...)
		a.log.Info("pipewarden stopped")
	})
	return a.stopErr
}

// Run starts the daemon and stops it when ctx ends, draining within the configured timeout.
func Run(ctx context.Context, o Options) error {
	a, err := New(ctx, o)
	if err != nil {
		return err
	}
	if err := a.Start(ctx); err != nil {
		a.Stop(context.Background())
		return err
	}
	fmt.Fprintf(a.out, "pipewarden %s listening on http://%s (data in %s)\n", a.vers, a.Addr(), a.cfg.DataDir)
	if g := a.GatewayAddr(); g != "" {
		fmt.Fprintf(a.out, "gateway proxying on http://%s\n", g)
	}
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-o.Reload:
			if err := a.ReloadRules(ctx); err != nil {
				a.log.Error("reload on SIGHUP failed; previous rules keep running", "err", err)
			} else {
				a.log.Info("rules reloaded on SIGHUP")
			}
		}
	}
	a.log.Info("shutting down", "timeout", a.cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	return a.Stop(sctx)
}

func (a *App) ready(ctx context.Context) error {
	if a.draining.Load() {
		return errors.New("shutting down")
	}
	if _, err := a.store.CountTokens(ctx); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

func (a *App) storeFindings(ctx context.Context, fs []finding.Finding) {
	if err := a.store.AddFindings(ctx, fs); err != nil {
		a.log.Error("store findings", "count", len(fs), "err", err)
	}
}

// PublishFindings hands detector findings to the findings bus (and so to the store).
func (a *App) PublishFindings(fs []finding.Finding) error {
	a.prepareFindings(fs)
	r, err := a.findings.Reserve(len(fs))
	if err != nil {
		return err
	}
	r.Publish(fs)
	return nil
}

func (a *App) retentionLoop(ctx context.Context) {
	t := time.NewTicker(a.cfg.Store.Retention.Interval)
	defer t.Stop()
	for {
		a.applyRetention(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (a *App) applyRetention(ctx context.Context) {
	cut := a.now().Add(-a.cfg.Store.Retention.Events)
	n, err := a.store.DeleteEventsBefore(ctx, cut)
	if err != nil {
		if ctx.Err() == nil {
			a.log.Error("retention", "err", err)
		}
		return
	}
	if n > 0 {
		a.log.Info("retention deleted old events", "events", n, "before", cut)
	}
}

// TokenFile is where the bootstrap admin token is written.
func TokenFile(dataDir string) string { return filepath.Join(dataDir, "admin.token") }
