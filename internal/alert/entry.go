package alert

import (
	"maps"
	"math"
	"path"
	"slices"
	"time"

	"github.com/pipewarden/pipewarden/internal/finding"
	"github.com/pipewarden/pipewarden/internal/respond"
	"github.com/pipewarden/pipewarden/internal/store"
)

// Bounds on the context an alert keeps.
const (
	maxFindings = 5
	maxEventIDs = 100
	maxEvents   = 100
)

// entry is an open alert in memory.
type entry struct {
	a       store.AlertDetail
	routes  []*route
	groups  []*group
	fresh   int       // findings for it in the batch that opened it, until counted
	savedAt time.Time // last written to the store
	touched time.Time // when a finding last arrived (the clock's time, not the finding's)
}

func newEntry(f *finding.Finding, labels map[string]string, fp string, now time.Time) *entry {
	seen := f.Time
	if seen.IsZero() {
		seen = now
	}
	e := &entry{a: store.AlertDetail{
		Alert: store.Alert{ID: store.NewID(), Fingerprint: fp, Rule: f.Rule, Severity: f.Severity, Title: f.Title,
			Subject: f.Subject, Labels: labels, State: store.AlertFiring, FirstSeen: seen, LastSeen: seen},
		ATLAS: f.ATLAS, OWASP: f.OWASP,
		Events: []store.AlertEvent{{Time: now, Actor: "pipewarden", Action: "created"}},
	}}
	e.absorb(f, now)
	return e
}

// absorb counts one more finding into the alert.
func (e *entry) absorb(f *finding.Finding, now time.Time) {
	e.touched = now
	a := &e.a
	a.Count++
	t := f.Time
	if t.IsZero() {
		t = now
	}
	if t.After(a.LastSeen) {
		a.LastSeen = t
		a.Title = f.Title
	}
	if t.Before(a.FirstSeen) {
		a.FirstSeen = t
	}
	if f.Severity > a.Severity {
		a.Severity = f.Severity
		a.Labels["severity"] = f.Severity.String()
	}
	if f.Confidence > a.Confidence {
		a.Confidence = f.Confidence
	}
	// Keep the first finding and the latest ones.
	if len(a.Findings) < maxFindings {
		a.Findings = append(a.Findings, *f)
	} else {
		copy(a.Findings[1:], a.Findings[2:])
		a.Findings[maxFindings-1] = *f
	}
	for _, id := range f.EventIDs {
		if len(a.EventIDs) >= maxEventIDs {
			break
		}
		if !containsStr(a.EventIDs, id) {
			a.EventIDs = append(a.EventIDs, id)
		}
	}
}

func (e *entry) event(now time.Time, actor, action, comment string) {
	e.a.Events = appendEvent(e.a.Events, store.AlertEvent{Time: now, Actor: actor, Action: action, Comment: comment})
}

func appendEvent(evs []store.AlertEvent, ev store.AlertEvent) []store.AlertEvent {
	if len(evs) >= maxEvents {
		evs = append(evs[:1], evs[len(evs)-maxEvents+2:]...)
	}
	return append(evs, ev)
}

func containsStr(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

type criticality struct{ kind, name, level string }

// criticalityOf returns the configured criticality of a subject (the first match), else
// "normal".
func (p *Pipeline) criticalityOf(s finding.Subject) string {
	for _, c := range p.crit {
		if c.kind != "" && c.kind != s.Kind {
			continue
		}
		if ok, _ := path.Match(c.name, s.Name); ok {
			return c.level
		}
	}
	return "normal"
}

var severityWeight = [...]float64{finding.Info: 1, finding.Low: 2, finding.Medium: 4, finding.High: 7, finding.Critical: 10}

// priority scores an alert: severity (1..10) times asset criticality (0.5..2) times confidence
// (0.5..1) times recurrence (1..2, +0.2 per earlier alert with the fingerprint) times volume
// (1..2, +0.1 per doubling of the count).
func (p *Pipeline) priority(a *store.AlertDetail) float64 {
	sev := 1.0
	if a.Severity >= finding.Info && a.Severity <= finding.Critical {
		sev = severityWeight[a.Severity]
	}
	crit, ok := criticalityWeight[a.Criticality]
	if !ok {
		crit = 1
	}
	conf := 0.5 + 0.5*math.Min(math.Max(a.Confidence, 0), 1)
	rec := 1 + 0.2*math.Min(float64(a.Recurrence), 5)
	vol := 1 + math.Min(0.1*math.Log2(math.Max(float64(a.Count), 1)), 1)
	return math.Round(sev*crit*conf*rec*vol*100) / 100
}

func respondAlert(a *store.AlertDetail) respond.Alert {
	return respond.Alert{ID: a.ID, Fingerprint: a.Fingerprint, Rule: a.Rule, Severity: a.Severity.String(), Title: a.Title,
		SubjectKind: a.Subject.Kind, Subject: a.Subject.Name, Labels: maps.Clone(a.Labels), Priority: a.Priority}
}

// snapshot copies an alert deeply enough to be read outside the lock while the pipeline keeps
// updating the original.
func snapshot(a *store.AlertDetail) store.AlertDetail {
	c := *a
	c.Labels = maps.Clone(a.Labels)
	c.Findings = slices.Clone(a.Findings)
	c.EventIDs = slices.Clone(a.EventIDs)
	c.Events = slices.Clone(a.Events)
	c.Actions = slices.Clone(a.Actions)
	c.SilencedBy = slices.Clone(a.SilencedBy)
	c.InhibitedBy = slices.Clone(a.InhibitedBy)
	return c
}
