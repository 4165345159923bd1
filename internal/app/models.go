package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/pipewarden/pipewarden/internal/event"
	"github.com/pipewarden/pipewarden/internal/finding"
	"github.com/pipewarden/pipewarden/internal/httpapi"
	"github.com/pipewarden/pipewarden/internal/modelscan"
	"github.com/pipewarden/pipewarden/internal/modelwatch"
	"github.com/pipewarden/pipewarden/internal/signing"
)

// report is how the daemon's own detectors (model watcher, scanner, data monitor) hand in
// events and findings: events are stored and go through the bus like ingested ones, waiting
// while consumers are behind instead of failing; findings go to the findings bus.
func (a *App) report(ctx context.Context, evs []event.Event, fs []finding.Finding) error {
	if len(evs) > 0 {
		backoff := time.Millisecond
		for {
			err := a.ingest.Ingest(ctx, evs)
			if err == nil {
				break
			}
			if !errors.Is(err, httpapi.ErrBackpressure) {
				return err
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 200*time.Millisecond)
		}
	}
	if len(fs) > 0 {
		a.publishFindingsWait(ctx, fs)
	}
	return nil
}

// setupModels opens the approval manager and, for configured directories, the watcher; the
// models API is mounted either way so approvals can be recorded before watching starts.
func (a *App) setupModels() ([]httpapi.Mount, error) {
	c := a.cfg.Models
	mgr, err := modelwatch.Open(modelwatch.Options{DataDir: a.cfg.DataDir, CASMaxBytes: c.CASMaxBytes, Now: a.now, Logger: a.log})
	if err != nil {
		return nil, fmt.Errorf("models: %w", err)
	}
	a.models = mgr
	verifier, err := loadModelTrust(c.Trust.Key, c.Trust.CertChain)
	if err != nil {
		return nil, err
	}
	reporter := modelwatch.ReporterFunc(a.report)
	var roots []string
	if len(c.Watch) > 0 {
		var watches []modelwatch.Watch
		for _, w := range c.Watch {
			watches = append(watches, modelwatch.Watch{Name: w.Name, Path: w.Path, Verifier: verifier})
			roots = append(roots, w.Path)
		}
		a.watcher, err = modelwatch.NewWatcher(modelwatch.WatcherOptions{Manager: mgr, Watches: watches, Reporter: reporter, Rescan: c.Rescan, Now: a.now, Logger: a.log})
		if err != nil {
			return nil, fmt.Errorf("models: %w", err)
		}
		if c.Scan {
			sc, err := modelscan.New(modelscan.Options{Allow: c.Allow, Now: a.now})
			if err != nil {
				return nil, fmt.Errorf("models.allow: %w", err)
			}
			a.scanner = &dirScanner{sc: sc, roots: roots, report: a.report, seen: map[string]fileStamp{}, log: a.log}
		}
	}
	h := modelwatch.NewHandler(modelwatch.HandlerOptions{
		Manager: mgr, Watcher: a.watcher, Verifier: verifier, AllowedRoots: roots,
		Principal: func(r *http.Request) string {
			if p, ok := httpapi.PrincipalFrom(r.Context()); ok {
				return p.Name
			}
			return ""
		},
		Reporter: reporter, Auditor: a, Logger: a.log,
	})
	return []httpapi.Mount{
		{Pattern: modelwatch.RouteList, Roles: httpapi.ReadRoles, Handler: h},
		{Pattern: modelwatch.RouteApprove, Roles: httpapi.AdminRoles, Handler: h},
		{Pattern: modelwatch.RouteRollback, Roles: httpapi.RespondRoles, Handler: h},
	}, nil
}

func loadModelTrust(key, chain string) (signing.Verifier, error) {
	switch {
	case key != "":
		b, err := os.ReadFile(key)
		if err != nil {
			return nil, fmt.Errorf("models.trust.key: %w", err)
		}
		pub, err := signing.LoadPublicKey(b)
		if err != nil {
			return nil, fmt.Errorf("models.trust.key %s: %w", key, err)
		}
		return signing.NewKeyVerifier(pub)
	case chain != "":
		b, err := os.ReadFile(chain)
		if err != nil {
			return nil, fmt.Errorf("models.trust.cert_chain: %w", err)
		}
		certs, err := signing.LoadCertificates(b)
		if err != nil {
			return nil, fmt.Errorf("models.trust.cert_chain %s: %w", chain, err)
		}
		return signing.NewCertificateVerifier(certs), nil
	}
	return nil, nil
}

// Audit records what the models API did; until the audit log is wired it goes to the log.
func (a *App) Audit(ctx context.Context, action string, record any) error {
	return a.audit(ctx, "api", action, record)
}

func (a *App) runModels(ctx context.Context) {
	if a.watcher != nil {
		a.bg.Add(1)
		go func() {
			defer a.bg.Done()
			if err := a.watcher.Run(ctx); err != nil && ctx.Err() == nil {
				a.log.Error("model watcher stopped", "err", err)
			}
		}()
	}
	if a.scanner != nil {
		a.bg.Add(1)
		go func() { defer a.bg.Done(); a.scanner.loop(ctx, a.cfg.Models.ScanInterval) }()
	}
}

// dirScanner scans files of the watched model directories that are new or changed (by size and
// modification time) for unsafe serialization, and reports what is not clean.
type dirScanner struct {
	sc     *modelscan.Scanner
	roots  []string
	report func(context.Context, []event.Event, []finding.Finding) error
	log    *slog.Logger

	mu   sync.Mutex
	seen map[string]fileStamp
}

type fileStamp struct {
	size int64
	mod  time.Time
}

func (d *dirScanner) loop(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		d.pass(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// pass walks every root once; it returns the files it scanned.
func (d *dirScanner) pass(ctx context.Context) []string {
	var scanned []string
	for _, root := range d.roots {
		filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
			if err != nil || ctx.Err() != nil {
				return nil
			}
			if e.IsDir() {
				if e.Name() == ".git" {
					return filepath.SkipDir
				}
				return nil
			}
			info, err := e.Info()
			if err != nil || !info.Mode().IsRegular() {
				return nil
			}
			st := fileStamp{info.Size(), info.ModTime()}
			d.mu.Lock()
			old, ok := d.seen[p]
			d.seen[p] = st
			d.mu.Unlock()
			if ok && old == st {
				return nil
			}
			scanned = append(scanned, p)
			res, err := d.sc.ScanPath(ctx, p)
			if err != nil {
				d.log.Error("model scan", "file", p, "err", err)
				return nil
			}
			if fs := modelscan.AllFindings(res); len(fs) > 0 {
				if err := d.report(ctx, nil, fs); err != nil {
					d.log.Error("report model scan findings", "file", p, "err", err)
				}
			}
			return nil
		})
	}
	return scanned
}

// Rollback restores a model's last approved version (the rollback_model response and
// POST /v1/models/{name}/rollback).
func (a *App) Rollback(ctx context.Context, name string) (*modelwatch.RollbackResult, error) {
	res, err := a.models.Rollback(ctx, name)
	if res != nil {
		a.audit(ctx, "action", "rollback_model", res)
	}
	return res, err
}
