package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pipewarden/pipewarden/internal/bus"
	"github.com/pipewarden/pipewarden/internal/event"
	"github.com/pipewarden/pipewarden/internal/finding"
	"github.com/pipewarden/pipewarden/internal/rules"
	"github.com/pipewarden/pipewarden/internal/store"
)

const rulesStateKey = "rules.snapshot"

// setupRules loads the rules (a broken file stops the start with its file and line), restores
// correlation state, and subscribes the engine to the event bus.
func (a *App) setupRules(ctx context.Context) error {
	c := a.cfg.Rules
	opts := rules.LoadOptions{Files: c.Files, NoDefaults: c.DisableDefaults, Policy: c.Policy, Logger: a.log, Clock: a.now}
	rs, err := rules.Load(ctx, opts)
	if err != nil {
		return fmt.Errorf("rules: %w", err)
	}
	eng, err := rules.NewEngine(rs, rules.EngineOptions{Logger: a.log, Registerer: a.reg})
	if err != nil {
		return fmt.Errorf("rules: %w", err)
	}
	rl, err := rules.NewReloader(eng, opts, a.reg)
	if err != nil {
		return fmt.Errorf("rules: %w", err)
	}
	a.engine, a.reloader = eng, rl
	if snap, err := store.GetLargeState(ctx, a.store, rulesStateKey); err == nil {
		if err := eng.Restore(snap); err != nil {
			a.log.Warn("rules: correlation state not restored", "err", err)
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		// Correlation state is a cache of recent history: a snapshot that cannot be read is
		// reported, and the rules start without it.
		a.log.Warn("rules: saved correlation state not read", "err", err)
	}
	a.events.Subscribe("rules", a.evaluateRules)
	return nil
}

// evaluateRules runs on the rules consumer's goroutine, one batch at a time in arrival order.
func (a *App) evaluateRules(ctx context.Context, evs []event.Event) {
	var out []finding.Finding
	for i := range evs {
		out = append(out, a.engine.Evaluate(evs[i])...)
	}
	if len(out) > 0 {
		a.publishFindingsWait(ctx, out)
	}
}

// publishFindingsWait hands findings to the findings bus, waiting while it is full: a finding is
// never dropped because a consumer is slow.
func (a *App) publishFindingsWait(ctx context.Context, fs []finding.Finding) {
	a.prepareFindings(fs)
	backoff := time.Millisecond
	for {
		r, err := a.findings.Reserve(len(fs))
		if err == nil {
			r.Publish(fs)
			return
		}
		if !errors.Is(err, bus.ErrFull) {
			a.log.Error("findings lost: bus closed", "count", len(fs), "err", err)
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 100*time.Millisecond)
	}
}

func (a *App) saveRulesState(ctx context.Context, pause time.Duration) {
	if a.engine == nil {
		return
	}
	snap, err := a.engine.SnapshotPaced(pause)
	if err != nil {
		a.log.Error("rules: snapshot", "err", err)
		return
	}
	// In parts: a snapshot is megabytes, and one write of it would hold the store's writer.
	if err := store.PutLargeState(ctx, a.store, rulesStateKey, snap); err != nil {
		a.log.Error("rules: save state", "err", err)
	}
}

func (a *App) rulesLoop(ctx context.Context) {
	if a.cfg.Rules.WatchInterval > 0 {
		a.bg.Add(1)
		go func() {
			defer a.bg.Done()
			if err := a.reloader.Watch(ctx, a.cfg.Rules.WatchInterval); err != nil && ctx.Err() == nil {
				a.log.Error("rules: watch stopped", "err", err)
			}
		}()
	}
	a.auditRulesDigest(ctx)
	// snapshot_interval 0: correlation state is saved at stop only.
	var snapshot <-chan time.Time
	if a.cfg.Rules.SnapshotInterval > 0 {
		t := time.NewTicker(a.cfg.Rules.SnapshotInterval)
		defer t.Stop()
		snapshot = t.C
	}
	check := time.NewTicker(time.Second)
	defer check.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-snapshot:
			a.saveRulesState(ctx, time.Millisecond) // beside ingestion: in slices
		case <-check.C:
			a.auditRulesDigest(ctx)
		}
	}
}

// rulesAPI serves GET /v1/rules and POST /v1/rules/reload.
type rulesAPI struct{ a *App }

func (r rulesAPI) ListRules(ctx context.Context) (any, error) {
	out := map[string]any{
		"rules":     r.a.engine.Stats(),
		"histories": r.a.engine.Histories(),
		"reload":    r.a.reloader.Status(),
	}
	// False-positive feedback per rule: alerts raised, marked false positive, precision.
	if r.a.alerts != nil {
		if fb, err := r.a.alerts.Feedback(ctx, 0); err == nil {
			out["feedback"] = fb.Rules
		}
	}
	return out, nil
}

func (r rulesAPI) ReloadRules(ctx context.Context) (any, error) {
	err := r.a.reloader.Reload(ctx)
	return r.a.reloader.Status(), err
}

// ReloadRules reloads rule files (SIGHUP); on error the running rules stay.
func (a *App) ReloadRules(ctx context.Context) error {
	if a.reloader == nil {
		return nil
	}
	return a.reloader.Reload(ctx)
}

// prepareFindings gives every finding its id and time before it is published: the findings bus
// hands one slice to several consumers, which must only read it.
func (a *App) prepareFindings(fs []finding.Finding) {
	now := a.now().UTC()
	for i := range fs {
		if fs[i].ID == "" {
			fs[i].ID = store.NewID()
		}
		if fs[i].Time.IsZero() {
			fs[i].Time = now
		}
	}
}
