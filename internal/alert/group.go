package alert

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pipewarden/pipewarden/internal/notify"
	"github.com/pipewarden/pipewarden/internal/store"
)

// group is an aggregation group: the alerts one route groups together under the same values
// of its group_by labels.
type group struct {
	st       store.GroupState
	route    *route
	alerts   map[string]*entry            // by fingerprint, open alerts only
	resolved map[string]store.AlertDetail // closed since the last notification, which named them
	changed  bool                         // state to save
}

// routeEntry puts an alert into the groups of the routes that take it. saved holds restored
// group states (at start); nil otherwise.
func (p *Pipeline) routeEntry(e *entry, saved map[string]store.GroupState) {
	e.routes = p.root.match(e.a.Labels)
	e.groups = e.groups[:0]
	for _, r := range e.routes {
		labels, key := r.groupLabels(e.a.Labels)
		g := p.groups[key]
		if g == nil {
			g = &group{route: r, alerts: map[string]*entry{}, resolved: map[string]store.AlertDetail{}, changed: true,
				st: store.GroupState{Key: key, Route: r.id, Labels: labels}}
			if s, ok := saved[key]; ok {
				g.st, g.changed = s, false
			} else {
				// A new group waits group_wait from its first alert, so a burst is sent as one.
				start := e.a.FirstSeen
				if saved == nil || start.IsZero() {
					start = p.now()
				}
				g.st.NextFlush = start.Add(r.groupWait)
			}
			p.groups[key] = g
		}
		g.alerts[e.a.Fingerprint] = e
		e.groups = append(e.groups, g)
	}
}

// unroute takes a closed alert out of its groups; a group that named it in its last
// notification will send it as resolved.
func (p *Pipeline) unroute(e *entry) {
	for _, g := range e.groups {
		delete(g.alerts, e.a.Fingerprint)
		if containsStr(g.st.Notified, e.a.Fingerprint) {
			g.resolved[e.a.Fingerprint] = e.a
		}
	}
	e.groups = nil
}

// flush does the time-driven work under the lock and records the result in one transaction.
func (p *Pipeline) flush(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	p.expireSilences(now)
	p.autoResolve(now)
	var states []store.GroupState
	var ns []store.Notification
	keys := make([]string, 0, len(p.groups))
	for k, g := range p.groups {
		if !g.st.NextFlush.After(now) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		g := p.groups[k]
		out, err := p.flushGroup(g, now)
		if err != nil {
			return err
		}
		ns = append(ns, out...)
		g.changed = true
	}
	for k, g := range p.groups {
		if !g.changed {
			continue
		}
		st := g.st
		if len(g.alerts) == 0 && len(g.resolved) == 0 {
			st.Deleted = true
			delete(p.groups, k)
		}
		states = append(states, st)
	}
	// Alerts first: a notification must never name an alert the store does not have.
	if err := p.saveDue(ctx, now); err != nil {
		return err
	}
	if len(states) == 0 && len(ns) == 0 {
		return nil
	}
	if err := p.st.RecordFlush(ctx, states, ns); err != nil {
		return fmt.Errorf("record notifications: %w", err)
	}
	for _, g := range p.groups {
		g.changed = false
	}
	p.stats.Notifications += int64(len(ns))
	return nil
}

// flushGroup decides, Alertmanager's way, whether a due group notifies: when its firing
// alerts are not all in the last notification, when alerts it named have resolved, or when
// repeat_interval has passed since the last one.
func (p *Pipeline) flushGroup(g *group, now time.Time) ([]store.Notification, error) {
	g.st.NextFlush = now.Add(g.route.groupInterval)
	var firing []*entry
	for _, e := range g.alerts {
		p.evaluate(e, now)
		if e.a.State == store.AlertFiring && len(e.a.SilencedBy) == 0 && len(e.a.InhibitedBy) == 0 {
			firing = append(firing, e)
		}
	}
	sort.Slice(firing, func(i, j int) bool { return firing[i].a.Fingerprint < firing[j].a.Fingerprint })
	fps := make([]string, len(firing))
	for i, e := range firing {
		fps[i] = e.a.Fingerprint
	}
	newFiring := false
	for _, fp := range fps {
		if !containsStr(g.st.Notified, fp) {
			newFiring = true
			break
		}
	}
	repeat := len(firing) > 0 && !g.st.LastNotify.IsZero() && now.Sub(g.st.LastNotify) >= g.route.repeatInterval
	resolved := len(g.resolved) > 0
	if !newFiring && !resolved && !repeat {
		if len(firing) == 0 {
			g.st.Notified = nil
		}
		return nil, nil
	}
	var res []store.AlertDetail
	for _, a := range g.resolved {
		res = append(res, a)
	}
	sort.Slice(res, func(i, j int) bool { return res[i].Fingerprint < res[j].Fingerprint })
	clear(g.resolved)
	g.st.Seq++
	g.st.LastNotify = now
	g.st.Notified = fps
	if g.route.receiver == "" {
		return nil, nil
	}
	if len(firing) == 0 && !p.sendResolved[g.route.receiver] {
		return nil, nil
	}
	msg := p.message(g, firing, res, now)
	body, err := json.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("encode notification for %s: %w", g.st.Key, err)
	}
	return []store.Notification{{Key: notificationKey(g.st.Key, g.route.receiver, g.st.Seq), Receiver: g.route.receiver,
		GroupKey: g.st.Key, Payload: body, NextAt: now, CreatedAt: now, State: store.NotificationPending}}, nil
}

// notificationKey is deterministic, so a flush repeated after a crash yields the same key and
// the outbox keeps one copy.
func notificationKey(groupKey, receiver string, seq int64) string {
	h := sha256.Sum256([]byte(groupKey + "\x00" + receiver + "\x00" + strconv.FormatInt(seq, 10)))
	return hex.EncodeToString(h[:16])
}

// message builds the Alertmanager-format notification.
func (p *Pipeline) message(g *group, firing []*entry, resolved []store.AlertDetail, now time.Time) *notify.Message {
	m := &notify.Message{Version: notify.Version, GroupKey: g.st.Key, Status: "firing", Receiver: g.route.receiver,
		GroupLabels: g.st.Labels, ExternalURL: p.cfg.ExternalURL}
	if len(firing) == 0 {
		m.Status = "resolved"
	}
	for _, e := range firing {
		m.Alerts = append(m.Alerts, p.notifyAlert(&e.a, "firing"))
	}
	for i := range resolved {
		m.Alerts = append(m.Alerts, p.notifyAlert(&resolved[i], "resolved"))
	}
	m.CommonLabels = common(m.Alerts, func(a notify.Alert) map[string]string { return a.Labels })
	m.CommonAnnotations = common(m.Alerts, func(a notify.Alert) map[string]string { return a.Annotations })
	return m
}

func (p *Pipeline) notifyAlert(a *store.AlertDetail, status string) notify.Alert {
	ann := map[string]string{
		notify.AnnotationSummary:  a.Title,
		notify.AnnotationAlertID:  a.ID,
		notify.AnnotationPriority: strconv.FormatFloat(a.Priority, 'f', 2, 64),
		notify.AnnotationCount:    strconv.Itoa(a.Count),
		notify.AnnotationState:    a.State,
	}
	if a.Runbook != "" {
		ann[notify.AnnotationRunbook] = a.Runbook
	}
	if tags := append(append([]string(nil), a.ATLAS...), a.OWASP...); len(tags) > 0 {
		ann[notify.AnnotationTags] = strings.Join(tags, ",")
	}
	na := notify.Alert{Status: status, Labels: a.Labels, Annotations: ann, StartsAt: a.FirstSeen, Fingerprint: a.Fingerprint}
	if status == "resolved" {
		na.EndsAt = a.EndedAt
	}
	if p.cfg.ExternalURL != "" {
		na.GeneratorURL = strings.TrimSuffix(p.cfg.ExternalURL, "/") + "/alerts/" + a.ID
	}
	return na
}

func common(as []notify.Alert, get func(notify.Alert) map[string]string) map[string]string {
	out := map[string]string{}
	if len(as) == 0 {
		return out
	}
	for k, v := range get(as[0]) {
		out[k] = v
	}
	for _, a := range as[1:] {
		m := get(a)
		for k, v := range out {
			if m[k] != v {
				delete(out, k)
			}
		}
	}
	return out
}
