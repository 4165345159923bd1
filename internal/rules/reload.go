package rules

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Reloader loads the rule files again and swaps them into an engine, keeping the running
// ruleset when the new files do not compile. The daemon calls Reload on SIGHUP and on
// POST /v1/rules/reload, and runs Watch to reload when a file changes.
type Reloader struct {
	engine *Engine
	opts   LoadOptions
	logger *slog.Logger

	mu       sync.Mutex // one reload at a time
	seen     string     // digest of the files at the last load attempt, guarded by mu
	status   ReloadStatus
	statusMu sync.RWMutex

	reloads  *prometheus.CounterVec
	lastOK   prometheus.Gauge
	lastTime prometheus.Gauge
}

// ReloadStatus is the outcome of the last reload.
type ReloadStatus struct {
	Time    time.Time `json:"time"`
	OK      bool      `json:"ok"`
	Digest  string    `json:"digest,omitempty"` // of the ruleset running
	Errors  Errors    `json:"-"`
	Message string    `json:"error,omitempty"`
}

// NewReloader returns a reloader for e that loads with opts. reg may be nil.
func NewReloader(e *Engine, opts LoadOptions, reg prometheus.Registerer) (*Reloader, error) {
	r := &Reloader{engine: e, opts: opts, logger: opts.Logger,
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pipewarden_rules_reloads_total",
			Help: "Rule reloads by result (success or failure)."}, []string{"result"}),
		lastOK: prometheus.NewGauge(prometheus.GaugeOpts{Name: "pipewarden_rules_last_reload_successful",
			Help: "Whether the last rule reload succeeded (1) or kept the previous rules (0)."}),
		lastTime: prometheus.NewGauge(prometheus.GaugeOpts{Name: "pipewarden_rules_last_reload_timestamp_seconds",
			Help: "Time of the last rule reload attempt."}),
	}
	if r.logger == nil {
		r.logger = slog.New(slog.DiscardHandler)
	}
	r.lastOK.Set(1)
	r.seen = r.filesDigest()
	r.status = ReloadStatus{Time: e.Ruleset().loadedAt, OK: true, Digest: e.Ruleset().Digest()}
	if reg != nil {
		for _, c := range []prometheus.Collector{r.reloads, r.lastOK, r.lastTime} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return r, nil
}

// Reload loads the files again. On success the engine runs the new ruleset; on failure it keeps
// the old one and the error (Errors, each with file, line and item) is returned, logged and kept
// in Status.
func (r *Reloader) Reload(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	clock := r.opts.Clock
	if clock == nil {
		clock = time.Now
	}
	now := clock()
	r.lastTime.Set(float64(now.UnixNano()) / 1e9)
	r.seen = r.filesDigest()
	rs, err := Load(ctx, r.opts)
	st := ReloadStatus{Time: now}
	if err != nil {
		r.reloads.WithLabelValues("failure").Inc()
		r.lastOK.Set(0)
		st.Errors = AsErrors(err)
		st.Message = err.Error()
		st.Digest = r.engine.Ruleset().Digest()
		for _, e := range st.Errors {
			r.logger.Error("rules: reload failed; previous rules still running", "file", e.File, "line", e.Line, "item", e.Item, "err", e.Msg)
		}
	} else {
		r.engine.Swap(rs)
		r.reloads.WithLabelValues("success").Inc()
		r.lastOK.Set(1)
		st.OK, st.Digest = true, rs.Digest()
		r.logger.Info("rules: reloaded", "rules", rs.Len(), "files", len(rs.Files()), "digest", rs.Digest())
	}
	r.statusMu.Lock()
	r.status = st
	r.statusMu.Unlock()
	return err
}

// Status returns the outcome of the last reload.
func (r *Reloader) Status() ReloadStatus {
	r.statusMu.RLock()
	defer r.statusMu.RUnlock()
	return r.status
}

// Watch polls the rule files (globs re-expanded each time, so added and removed files count)
// every interval and reloads when their content changes. It returns when ctx ends.
func (r *Reloader) Watch(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		interval = 2 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		d := r.filesDigest()
		r.mu.Lock()
		changed := d != r.seen
		r.mu.Unlock()
		if !changed {
			continue
		}
		if err := r.Reload(ctx); err != nil && errors.Is(err, context.Canceled) {
			return err
		}
	}
}

// filesDigest hashes the names, sizes, modification times and contents of the rule files.
// Reading the content catches edits that keep size and mtime.
func (r *Reloader) filesDigest() string {
	h := sha256.New()
	paths, err := ExpandFiles(r.opts.Files)
	if err != nil {
		h.Write([]byte(err.Error()))
	}
	for _, p := range paths {
		h.Write([]byte(p))
		h.Write([]byte{0})
		if b, err := readLimited(p, r.opts.Limits.withDefaults().MaxFileBytes); err == nil {
			h.Write(b)
		} else {
			h.Write([]byte(err.Error()))
		}
		if fi, err := os.Stat(p); err == nil {
			h.Write([]byte(fi.ModTime().String()))
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}
