// Package alert turns findings into few, precise, prioritized alerts: deduplication by
// fingerprint, grouping and a routing tree with Alertmanager's meanings, silences, inhibition,
// a priority score, the firing → acknowledged → resolved lifecycle with false-positive
// feedback, delivery through the store's outbox, and automated responses. Nothing is dropped
// silently: every suppressed finding is counted by reason.
package alert

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pipewarden/pipewarden/internal/finding"
	"github.com/pipewarden/pipewarden/internal/notify"
	"github.com/pipewarden/pipewarden/internal/notify/alertmanager"
	"github.com/pipewarden/pipewarden/internal/notify/file"
	"github.com/pipewarden/pipewarden/internal/notify/slack"
	"github.com/pipewarden/pipewarden/internal/notify/webhook"
	"github.com/pipewarden/pipewarden/internal/respond"
	"github.com/pipewarden/pipewarden/internal/store"
)

// Store is what the pipeline keeps durably.
type Store interface {
	store.AlertStore
	ListAlerts(ctx context.Context, q store.AlertQuery) (store.Page[store.Alert], error)
	PutState(ctx context.Context, key string, value []byte) error
	GetState(ctx context.Context, key string) ([]byte, error)
}

// AuditRecord and AuditFunc are the audit hook's types, shared with the respond package.
type (
	AuditRecord = respond.AuditRecord
	AuditFunc   = respond.AuditFunc
)

// Options wire a Pipeline.
type Options struct {
	Config Config
	Store  Store
	// Now is the clock (default time.Now); tests pass a fake one and call Tick.
	Now        func() time.Time
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Audit receives every alert change, silence change and action.
	Audit AuditFunc
	// Blocker and Models are the gateway and the model watcher, for responses.
	Blocker respond.Blocker
	Models  respond.ModelRestorer
	// HTTPClient sends notifications and webhook responses (default: a new client).
	HTTPClient *http.Client
	// Notifiers replaces the receivers built from the configuration, by name (tests).
	Notifiers map[string]notify.Notifier
	// TickInterval is how often Run looks at groups, auto-resolution and the outbox (default 1s).
	TickInterval time.Duration
	// PersistInterval bounds how long more findings for an open alert (its count, last_seen
	// and latest findings) stay in memory only (default 5s). New alerts and every state change
	// are written at once; a crash loses at most this much of the count.
	PersistInterval time.Duration
}

// Pipeline is the alerting pipeline. Its methods are safe for concurrent use.
type Pipeline struct {
	o    Options
	cfg  Config
	st   Store
	now  func() time.Time
	log  *slog.Logger
	root *route
	inh  []*inhibitRule
	crit []criticality
	resp *respond.Runner
	disp *notify.Dispatcher
	// responses selected by matchers rather than by a route.
	respMatch    []respMatcher
	sendResolved map[string]bool

	mu       sync.Mutex
	open     map[string]*entry // by fingerprint
	byID     map[string]*entry
	groups   map[string]*group
	silences []*silence
	dirty    map[*entry]bool // changed since saved; true: save at the next tick
	limiter  map[string]*window
	stats    Stats
	m        metrics
}

type respMatcher struct {
	name string
	ms   Matchers
}

type window struct {
	start time.Time
	n     int
}

// New builds the pipeline and restores its state from the store: open alerts, notification
// groups and silences, so a restart loses nothing queued.
func New(ctx context.Context, o Options) (*Pipeline, error) {
	if err := o.Config.Validate(); err != nil {
		return nil, err
	}
	if o.Store == nil {
		return nil, fmt.Errorf("alert: a store is required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{}
	}
	if o.TickInterval <= 0 {
		o.TickInterval = time.Second
	}
	if o.PersistInterval <= 0 {
		o.PersistInterval = 5 * time.Second
	}
	cfg := o.Config
	p := &Pipeline{o: o, cfg: cfg, st: o.Store, now: o.Now, log: o.Logger,
		open: map[string]*entry{}, byID: map[string]*entry{}, groups: map[string]*group{},
		dirty: map[*entry]bool{}, limiter: map[string]*window{}, sendResolved: map[string]bool{}}
	p.stats.Suppressed = map[string]int64{}
	p.root = compileRoute(&cfg.Route, nil, "0")
	for _, ir := range cfg.InhibitRules {
		p.inh = append(p.inh, newInhibitRule(ir))
	}
	for _, c := range cfg.Criticality {
		p.crit = append(p.crit, criticality{kind: c.Kind, name: c.Name, level: c.Level})
	}
	for _, rc := range cfg.Responses {
		if len(rc.Matchers) > 0 {
			ms, _ := ParseMatchers(rc.Matchers)
			p.respMatch = append(p.respMatch, respMatcher{name: rc.Name, ms: ms})
		}
	}
	p.resp = respond.New(respond.Options{Responses: append([]respond.Config(nil), cfg.Responses...), Store: o.Store, State: o.Store,
		Blocker: o.Blocker, Models: o.Models, HTTP: o.HTTPClient, Audit: o.Audit, Now: o.Now, Logger: o.Logger})
	receivers := o.Notifiers
	if receivers == nil {
		receivers = map[string]notify.Notifier{}
		for _, r := range cfg.Receivers {
			receivers[r.Name] = buildNotifier(r, o.HTTPClient, o.Now)
		}
	}
	for _, r := range cfg.Receivers {
		p.sendResolved[r.Name] = r.SendResolved == nil || *r.SendResolved
	}
	p.disp = notify.NewDispatcher(o.Store, receivers, notify.Options{MaxAttempts: cfg.Delivery.MaxAttempts,
		MinBackoff: cfg.Delivery.MinBackoff, MaxBackoff: cfg.Delivery.MaxBackoff, Now: o.Now, Logger: o.Logger, Registerer: o.Registerer,
		OnResult: func(ctx context.Context, n store.Notification, outcome string, err error) {
			if outcome == "retry" {
				return
			}
			detail := map[string]any{"receiver": n.Receiver, "group": n.GroupKey, "key": n.Key, "attempts": n.Attempts, "status": outcome}
			if err != nil {
				detail["error"] = err.Error()
			}
			action := "sent"
			if outcome != "delivered" {
				action = "failed"
			}
			p.audit(ctx, "pipewarden", "notification."+action, n.GroupKey, detail)
		}})
	p.m = newMetrics(o.Registerer, p)
	if err := p.restore(ctx); err != nil {
		return nil, err
	}
	acts, err := p.resp.Resume(ctx, o.Store)
	if err != nil {
		return nil, err
	}
	for _, a := range acts {
		p.recordActions(ctx, a.AlertID, []store.Action{a})
	}
	return p, nil
}

func buildNotifier(r Receiver, hc *http.Client, now func() time.Time) notify.Notifier {
	switch {
	case r.Webhook != nil:
		return webhook.New(*r.Webhook, hc, now)
	case r.Slack != nil:
		return slack.New(*r.Slack, hc)
	case r.Alertmanager != nil:
		return alertmanager.New(*r.Alertmanager, hc, now)
	default:
		return file.New(*r.File)
	}
}

// restore loads open alerts, groups and silences.
func (p *Pipeline) restore(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	sls, err := p.st.ListSilences(ctx, now)
	if err != nil {
		return fmt.Errorf("restore silences: %w", err)
	}
	for _, s := range sls {
		if c, err := compileSilence(s); err == nil {
			p.silences = append(p.silences, c)
		}
	}
	stored, err := p.st.ListGroups(ctx)
	if err != nil {
		return fmt.Errorf("restore notification groups: %w", err)
	}
	saved := map[string]store.GroupState{}
	for _, g := range stored {
		saved[g.Key] = g
	}
	as, err := p.st.OpenAlerts(ctx)
	if err != nil {
		return fmt.Errorf("restore open alerts: %w", err)
	}
	for i := range as {
		e := &entry{a: as[i]}
		p.open[e.a.Fingerprint] = e
		p.byID[e.a.ID] = e
		p.indexInhibit(e, true)
	}
	for _, e := range p.open {
		p.routeEntry(e, saved)
	}
	var gone []store.GroupState
	for k := range saved {
		if _, ok := p.groups[k]; !ok {
			gone = append(gone, store.GroupState{Key: k, Deleted: true})
		}
	}
	if len(gone) > 0 {
		return p.st.RecordFlush(ctx, gone, nil)
	}
	return nil
}

// Handle takes findings (the findings bus calls it with each batch): deduplicates them into
// alerts, routes new alerts into notification groups and runs their responses. Findings that
// open no alert are counted by reason. Errors are logged and retried with the next batch.
func (p *Pipeline) Handle(ctx context.Context, fs []finding.Finding) {
	if err := p.handle(ctx, fs); err != nil {
		p.log.Error("alerting: handle findings", "findings", len(fs), "err", err)
	}
}

func (p *Pipeline) handle(ctx context.Context, fs []finding.Finding) error {
	p.mu.Lock()
	now := p.now()
	var created []*entry
	for i := range fs {
		f := &fs[i]
		p.stats.Findings++
		if err := f.Validate(); err != nil {
			p.suppress(reasonInvalid, 1)
			continue
		}
		fp := fingerprintOf(f)
		if e := p.open[fp]; e != nil {
			e.absorb(f, now)
			if _, ok := p.dirty[e]; !ok {
				p.dirty[e] = false
			}
			if e.fresh > 0 {
				// Opened in this batch: counted once its status is known, below.
				e.fresh++
				continue
			}
			switch {
			case len(e.a.SilencedBy) > 0:
				p.suppress(reasonSilenced, 1)
			case len(e.a.InhibitedBy) > 0:
				p.suppress(reasonInhibited, 1)
			default:
				p.suppress(reasonDeduplicated, 1)
			}
			continue
		}
		if !p.allowNew(f.Rule, now) {
			p.suppress(reasonRateLimited, 1)
			continue
		}
		e := newEntry(f, labelsOf(f), fp, now)
		e.fresh = 1
		e.a.Runbook = p.cfg.Runbooks[f.Rule]
		e.a.Criticality = p.criticalityOf(f.Subject)
		p.open[fp] = e
		p.byID[e.a.ID] = e
		p.dirty[e] = true
		created = append(created, e)
	}
	p.m.findings.Add(float64(len(fs)))
	p.m.created.Add(float64(len(created)))
	if len(created) > 0 {
		fps := make([]string, len(created))
		for i, e := range created {
			fps[i] = e.a.Fingerprint
		}
		if rec, err := p.st.ClosedCounts(ctx, fps); err == nil {
			for _, e := range created {
				e.a.Recurrence = rec[e.a.Fingerprint]
			}
		} else {
			p.log.Warn("alerting: read recurrence", "err", err)
		}
		for _, e := range created {
			p.stats.Alerts++
			p.indexInhibit(e, true)
			p.routeEntry(e, nil)
		}
		for _, e := range created {
			p.evaluate(e, now)
			// Every finding of this batch for a new alert is suppressed when the alert
			// is; otherwise all but the one that opened it were deduplicated.
			switch n := int64(e.fresh); {
			case len(e.a.SilencedBy) > 0:
				p.suppress(reasonSilenced, n)
			case len(e.a.InhibitedBy) > 0:
				p.suppress(reasonInhibited, n)
			case n > 1:
				p.suppress(reasonDeduplicated, n-1)
			}
			e.fresh = 0
		}
	}
	// New alerts are written at once; count and last_seen updates of open alerts are written
	// behind, at the next tick, so a burst of repeats costs memory updates only.
	err := p.saveEntries(ctx, created)
	for _, e := range created {
		p.audit(ctx, "pipewarden", "alert."+e.a.State, e.a.ID, map[string]any{"rule": e.a.Rule, "severity": e.a.Severity.String(),
			"fingerprint": e.a.Fingerprint, "subject": e.a.Subject.Kind + "/" + e.a.Subject.Name, "count": e.a.Count,
			"silenced_by": e.a.SilencedBy, "inhibited_by": e.a.InhibitedBy})
	}
	type trig struct {
		e     *entry
		info  respond.Alert
		names []string
	}
	var trigs []trig
	for _, e := range created {
		if len(e.a.SilencedBy) > 0 || len(e.a.InhibitedBy) > 0 || !e.a.Open() {
			continue
		}
		if names := p.responsesFor(e); len(names) > 0 {
			trigs = append(trigs, trig{e, respondAlert(&e.a), names})
		}
	}
	p.mu.Unlock()
	if err != nil {
		return err
	}
	for _, t := range trigs {
		acts := p.resp.Trigger(ctx, t.info, t.names)
		p.recordActions(ctx, t.info.ID, acts)
	}
	return nil
}

// saveDirty writes every changed alert; on failure they stay dirty for the next attempt.
func (p *Pipeline) saveDirty(ctx context.Context) error { return p.saveDue(ctx, time.Time{}) }

// saveDue writes the changed alerts that are due: those with a state, silence or inhibition
// change, and those whose only change is more findings (count, last_seen) once
// PersistInterval has passed since they were saved. A zero now writes all.
func (p *Pipeline) saveDue(ctx context.Context, now time.Time) error {
	if len(p.dirty) == 0 {
		return nil
	}
	stamp := p.now()
	var es []*entry
	for e, urgent := range p.dirty {
		if now.IsZero() || urgent || !e.a.Open() || now.Sub(e.savedAt) >= p.o.PersistInterval {
			es = append(es, e)
		}
	}
	if len(es) == 0 {
		return nil
	}
	// Closed alerts first, so an alert reopened under the same fingerprint never collides
	// with the one it replaces.
	sort.Slice(es, func(i, j int) bool { return !es[i].a.Open() && es[j].a.Open() })
	as := make([]store.AlertDetail, len(es))
	for i, e := range es {
		e.a.Priority = p.priority(&e.a)
		e.a.UpdatedAt = stamp
		as[i] = e.a
	}
	if err := p.st.SaveAlerts(ctx, as); err != nil {
		return fmt.Errorf("save %d alerts: %w", len(as), err)
	}
	for _, e := range es {
		e.savedAt = stamp
		delete(p.dirty, e)
	}
	return nil
}

// saveEntries writes some alerts now (new ones); they stop being dirty.
func (p *Pipeline) saveEntries(ctx context.Context, es []*entry) error {
	if len(es) == 0 {
		return nil
	}
	now := p.now()
	as := make([]store.AlertDetail, len(es))
	for i, e := range es {
		e.a.Priority = p.priority(&e.a)
		e.a.UpdatedAt = now
		as[i] = e.a
	}
	if err := p.st.SaveAlerts(ctx, as); err != nil {
		return fmt.Errorf("save %d new alerts: %w", len(as), err)
	}
	for _, e := range es {
		e.savedAt = now
		delete(p.dirty, e)
	}
	return nil
}

func (p *Pipeline) allowNew(rule string, now time.Time) bool {
	rl := p.cfg.RateLimit
	if rl.NewAlertsPerRule < 0 {
		return true
	}
	limit, per := rl.NewAlertsPerRule, rl.Per
	if limit == 0 {
		limit = 1000
	}
	if per <= 0 {
		per = time.Minute
	}
	w := p.limiter[rule]
	if w == nil || now.Sub(w.start) >= per {
		w = &window{start: now}
		p.limiter[rule] = w
	}
	if w.n >= limit {
		return false
	}
	w.n++
	return true
}

// labelsOf returns the alert labels of a finding: its own labels plus rule, subject and
// severity.
func labelsOf(f *finding.Finding) map[string]string {
	l := make(map[string]string, len(f.Labels)+4)
	for k, v := range f.Labels {
		l[k] = v
	}
	l["rule"] = f.Rule
	l["subject_kind"] = f.Subject.Kind
	l["subject"] = f.Subject.Name
	l["severity"] = f.Severity.String()
	return l
}

// fingerprintOf hashes the sorted identifying labels of a finding's alert (labelsOf without
// severity, so an alert keeps its identity if a rule's severity changes) without building the
// label map: the hot path of deduplication.
func fingerprintOf(f *finding.Finding) string {
	var buf [16]kv
	kvs := buf[:0]
	for k, v := range f.Labels {
		switch k {
		case "rule", "subject_kind", "subject", "severity":
			continue
		}
		kvs = append(kvs, kv{k, v})
	}
	kvs = append(kvs, kv{"rule", f.Rule}, kv{"subject_kind", f.Subject.Kind}, kv{"subject", f.Subject.Name})
	// Insertion sort: a finding has a handful of labels.
	for i := 1; i < len(kvs); i++ {
		for j := i; j > 0 && kvs[j].k < kvs[j-1].k; j-- {
			kvs[j], kvs[j-1] = kvs[j-1], kvs[j]
		}
	}
	h := sha256.New()
	var sep = []byte{0}
	for _, x := range kvs {
		h.Write([]byte(x.k))
		h.Write(sep)
		h.Write([]byte(x.v))
		h.Write(sep)
	}
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:16])
}

type kv struct{ k, v string }

// Run ticks until ctx ends.
func (p *Pipeline) Run(ctx context.Context) {
	t := time.NewTicker(p.o.TickInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := p.Tick(ctx); err != nil {
				p.log.Error("alerting: tick", "err", err)
			}
		}
	}
}

// Tick does the time-driven work at the clock's now: auto-resolution, silence expiry,
// notification groups that are due, and one delivery pass over the outbox.
func (p *Pipeline) Tick(ctx context.Context) error {
	if err := p.flush(ctx); err != nil {
		return err
	}
	_, err := p.disp.Deliver(ctx)
	return err
}

// Deliver makes one delivery pass over the outbox and returns how many were delivered.
func (p *Pipeline) Deliver(ctx context.Context) (int, error) { return p.disp.Deliver(ctx) }
