package app

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/pipewarden/pipewarden/internal/audit"
	"github.com/pipewarden/pipewarden/internal/bus"
	"github.com/pipewarden/pipewarden/internal/event"
	"github.com/pipewarden/pipewarden/internal/finding"
	"github.com/pipewarden/pipewarden/internal/httpapi"
	"github.com/pipewarden/pipewarden/internal/store"
)

// The audit log records every state change. Events are not appended on the ingestion path:
// a tailer follows the store in arrival order and keeps its position in the store, so an event
// acknowledged just before a crash is audited after the restart and ingestion never waits for
// the audit log's fsync.

const auditCursorKey = "audit.events.cursor"

func (a *App) setupAudit() ([]httpapi.Mount, error) {
	c := a.cfg.Audit
	l, err := audit.Open(filepath.Join(a.cfg.DataDir, "audit"), audit.Options{
		Logger: a.log, Registerer: a.reg, Now: a.now,
		CheckpointEvery: c.CheckpointEvery, CheckpointInterval: c.CheckpointInterval,
		WitnessFile: c.WitnessFile, WitnessURL: c.WitnessURL,
	})
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	a.auditLog = l
	a.events.Subscribe("audit", a.auditEvents, bus.Gather(eventAuditEvery))
	a.findings.Subscribe("audit", a.auditFindings)
	h := audit.Handler(l)
	var mounts []httpapi.Mount
	for _, p := range []string{"GET /v1/audit/checkpoint", "GET /v1/audit/entries", "GET /v1/audit/proof/inclusion", "GET /v1/audit/proof/consistency"} {
		mounts = append(mounts, httpapi.Mount{Pattern: p, Roles: httpapi.ReadRoles, Handler: h})
	}
	return mounts, nil
}

// audit appends one record. Records from several goroutines are serialised here.
func (a *App) audit(ctx context.Context, kind, action string, record any) error {
	return a.auditRecords(ctx, audit.Record{Kind: audit.Kind(kind), Actor: "system", Action: action, Data: toMap(record)})
}

func (a *App) auditRecords(ctx context.Context, recs ...audit.Record) error {
	if a.auditLog == nil || len(recs) == 0 {
		return nil
	}
	now := a.now().UTC()
	for i := range recs {
		if recs[i].Time.IsZero() {
			recs[i].Time = now
		}
		if recs[i].Actor == "" {
			recs[i].Actor = "system"
		}
	}
	a.auditMu.Lock()
	defer a.auditMu.Unlock()
	err := a.auditLog.Append(context.WithoutCancel(ctx), recs...)
	if err != nil {
		a.log.Error("audit append failed", "records", len(recs), "err", err)
	}
	return err
}

// toMap turns a record payload into the map the audit log stores (via JSON, so struct tags
// decide the field names).
func toMap(v any) map[string]any {
	switch m := v.(type) {
	case nil:
		return nil
	case map[string]any:
		return m
	}
	b, err := json.Marshal(v)
	if err != nil {
		return map[string]any{"unencodable": fmt.Sprint(v)}
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return map[string]any{"value": json.RawMessage(b)}
	}
	return m
}

// auditEvents appends an "ingested" record for every newly stored event handed over by the bus,
// and moves the saved position past them. Retries of stored events (Seq 0) were audited the
// first time.
func (a *App) auditEvents(ctx context.Context, evs []event.Event) {
	a.tailMu.Lock()
	defer a.tailMu.Unlock()
	recs := make([]audit.Record, 0, len(evs))
	var last int64
	for i := range evs {
		e := &evs[i]
		if e.Seq == 0 || e.Seq <= a.audited {
			continue
		}
		recs = append(recs, audit.Record{Kind: audit.KindEvent, Actor: "ingest", Action: "ingested", Subject: e.Subject, Time: e.Time,
			Event: &audit.EventData{ID: e.ID, Type: e.Type, Source: e.Source, Sum: sha256.Sum256(e.Raw), Stage: e.Stage(), Seq: e.Seq}})
		last = max(last, e.Seq)
	}
	if len(recs) == 0 {
		return
	}
	if err := a.auditRecords(ctx, recs...); err != nil {
		return
	}
	// The position is saved to the store about once a second (saveAuditCursor), not per batch:
	// a write per batch would compete with ingestion for the store's one writer. The records
	// carry their seq, so the position is also recoverable from the log itself.
	a.audited = last
}

// eventAuditEvery is the least time between two appends of event records while the audit
// subscriber keeps up. Every append ends with an fsync, and on one disk those fsyncs queue with
// the store's commit fsyncs, which the clients wait for; event records need no fsync of their
// own to be safe (events are durable in the store, and catch-up audits whatever a crash left
// out), so they are gathered by the bus: events that arrive meanwhile wait in the queue and go
// in the next append. When the subscriber is behind it appends without waiting.
const eventAuditEvery = 50 * time.Millisecond

// saveAuditCursor stores the audited position when it moved.
func (a *App) saveAuditCursor(ctx context.Context) {
	a.tailMu.Lock()
	cur, saved := a.audited, a.auditSaved
	a.tailMu.Unlock()
	if cur <= saved {
		return
	}
	if err := a.store.PutState(context.WithoutCancel(ctx), auditCursorKey, []byte(store.EncodeCursor(cur))); err != nil {
		a.log.Error("audit: save cursor", "err", err)
		return
	}
	a.tailMu.Lock()
	a.auditSaved = max(a.auditSaved, cur)
	a.tailMu.Unlock()
}

// lastAuditedSeq finds the newest event record in the audit log (looking back at most 100,000
// records) and returns the store sequence number it carries.
func (a *App) lastAuditedSeq() int64 {
	if a.auditLog == nil {
		return 0
	}
	end := a.auditLog.Size()
	for end > 0 && a.auditLog.Size()-end < 100000 {
		from := max(0, end-1000)
		es, err := a.auditLog.Entries(from, end)
		if err != nil {
			return 0
		}
		for i := len(es) - 1; i >= 0; i-- {
			r, err := es[i].Record()
			if err != nil || r.Kind != audit.KindEvent {
				continue
			}
			if v, ok := r.Data["seq"].(float64); ok {
				return int64(v)
			}
			if v, ok := r.Data["seq"].(json.Number); ok {
				n, _ := v.Int64()
				return n
			}
		}
		end = from
	}
	return 0
}

// auditTail catches up at start: every event stored after the saved position (acknowledged
// before a crash, say) is audited from the store, in arrival order. Afterwards auditEvents
// follows the bus.
func (a *App) auditTail(ctx context.Context) {
	tokens := time.NewTicker(5 * time.Second)
	defer tokens.Stop()
	cursor := time.NewTicker(time.Second)
	defer cursor.Stop()
	a.auditTokens(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-cursor.C:
			a.saveAuditCursor(ctx)
		case <-tokens.C:
			a.auditTokens(ctx)
		}
	}
}

// auditEventsOnce audits every event stored after the saved cursor.
func (a *App) auditEventsOnce(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	a.tailMu.Lock()
	defer a.tailMu.Unlock()
	cursor := ""
	if b, err := a.store.GetState(ctx, auditCursorKey); err == nil {
		cursor = string(b)
		if seq, err := store.DecodeCursor(cursor); err == nil {
			a.audited = max(a.audited, seq)
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		a.log.Error("audit: read cursor", "err", err)
		return
	}
	// The saved position may lag the log by up to a second: the log itself knows better.
	if seq := a.lastAuditedSeq(); seq > a.audited {
		a.audited = seq
	}
	if seq, _ := store.DecodeCursor(cursor); a.audited > seq {
		cursor = store.EncodeCursor(a.audited)
	}
	for {
		p, err := a.store.ListEvents(ctx, store.EventQuery{Limit: 1000, Cursor: cursor})
		if err != nil {
			a.log.Error("audit: read events", "err", err)
			return
		}
		if len(p.Items) == 0 {
			return
		}
		recs := make([]audit.Record, len(p.Items))
		for i, e := range p.Items {
			var src struct {
				Source string `json:"source"`
			}
			_ = json.Unmarshal(e.Event, &src)
			recs[i] = audit.Record{Kind: audit.KindEvent, Actor: "ingest", Action: "ingested", Subject: e.Subject, Time: e.ReceivedAt,
				Event: &audit.EventData{ID: e.ID, Type: e.Type, Source: src.Source, Sum: sha256.Sum256(e.Event), Stage: event.StageOf(e.Type), Seq: e.Seq}}
		}
		if err := a.auditRecords(ctx, recs...); err != nil {
			return
		}
		next := p.Next
		if next == "" {
			next = store.EncodeCursor(p.Items[len(p.Items)-1].Seq)
		}
		if err := a.store.PutState(ctx, auditCursorKey, []byte(next)); err != nil {
			a.log.Error("audit: save cursor", "err", err)
			return
		}
		a.audited = p.Items[len(p.Items)-1].Seq
		a.auditSaved = a.audited
		cursor = next
		if p.Next == "" {
			return
		}
	}
}

func (a *App) auditFindings(ctx context.Context, fs []finding.Finding) {
	recs := make([]audit.Record, len(fs))
	for i, f := range fs {
		recs[i] = audit.Record{Kind: "finding", Actor: "detector", Action: "raised", Subject: f.Subject.Kind + "/" + f.Subject.Name, Time: f.Time,
			Data: map[string]any{"id": f.ID, "rule": f.Rule, "severity": f.Severity.String(), "stage": f.Labels["stage"], "title": f.Title,
				"event_ids": f.EventIDs, "atlas": f.ATLAS, "owasp": f.OWASP}}
	}
	a.auditRecords(ctx, recs...)
}

// auditAPI records a state-changing API call: who, what, when, outcome.
func (a *App) auditAPI(ctx context.Context, p httpapi.Principal, pattern, path string, status int, remote string) {
	a.auditRecords(ctx, audit.Record{Kind: "api", Actor: p.Name + " (" + p.Role + ")", Action: pattern, Subject: path,
		Data: map[string]any{"status": status, "remote": remote}})
}

type auditState struct {
	mu     sync.Mutex
	digest string
}

// auditRulesDigest records a rules reload whenever the running ruleset's digest changes.
func (a *App) auditRulesDigest(ctx context.Context) {
	if a.reloader == nil {
		return
	}
	st := a.reloader.Status()
	a.rulesDigest.mu.Lock()
	prev := a.rulesDigest.digest
	changed := st.Digest != "" && st.Digest != prev
	if changed {
		a.rulesDigest.digest = st.Digest
	}
	a.rulesDigest.mu.Unlock()
	if changed {
		a.auditRecords(ctx, audit.Record{Kind: "config", Action: "reloaded", Subject: "rules",
			Data: map[string]any{"digest": st.Digest, "previous_digest": prev, "ok": st.OK}})
	}
}

const auditTokensKey = "audit.tokens"

// auditTokens records tokens created outside the daemon ('pipewarden token create' writes the
// store directly) the first time the daemon sees them. The record names the token and its role,
// never the token or its hash.
func (a *App) auditTokens(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	ts, err := a.store.ListTokens(ctx)
	if err != nil {
		a.log.Error("audit: list tokens", "err", err)
		return
	}
	seen := map[string]bool{}
	if b, err := a.store.GetState(ctx, auditTokensKey); err == nil {
		var hs []string
		_ = json.Unmarshal(b, &hs)
		for _, h := range hs {
			seen[h] = true
		}
	}
	var recs []audit.Record
	var all []string
	for _, t := range ts {
		all = append(all, t.Hash)
		if seen[t.Hash] {
			continue
		}
		recs = append(recs, audit.Record{Kind: "token", Actor: "cli", Action: "created", Subject: t.Name, Time: t.CreatedAt,
			Data: map[string]any{"role": t.Role}})
	}
	if len(recs) == 0 {
		return
	}
	if a.auditRecords(ctx, recs...) != nil {
		return
	}
	b, _ := json.Marshal(all)
	if err := a.store.PutState(ctx, auditTokensKey, b); err != nil {
		a.log.Error("audit: save token state", "err", err)
	}
}
