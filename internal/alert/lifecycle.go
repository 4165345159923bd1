package alert

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/pipewarden/pipewarden/internal/store"
)

// Lifecycle actions of the API.
const (
	ActionAck           = "ack"
	ActionResolve       = "resolve"
	ActionFalsePositive = "false-positive"
)

// Transition applies a person's lifecycle action to an alert: ack (firing → acknowledged),
// resolve (firing or acknowledged → resolved) or false-positive (any but false_positive →
// false_positive, a comment required). It returns the alert as stored.
func (p *Pipeline) Transition(ctx context.Context, id, action, actor, comment string) (store.AlertDetail, error) {
	if action == ActionFalsePositive && strings.TrimSpace(comment) == "" {
		return store.AlertDetail{}, fmt.Errorf("%w: marking a false positive needs a comment saying why", ErrInvalid)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	e := p.byID[id]
	if e == nil {
		// A closed alert: only false-positive applies.
		a, err := p.st.GetAlert(ctx, id)
		if err != nil {
			return a, err
		}
		if action != ActionFalsePositive || a.State != store.AlertResolved {
			return a, fmt.Errorf("%w: alert %s is %s; cannot %s", ErrTransition, id, a.State, action)
		}
		a.State, a.Comment, a.UpdatedAt = store.AlertFalsePositive, comment, now
		a.Events = appendEvent(a.Events, store.AlertEvent{Time: now, Actor: actor, Action: store.AlertFalsePositive, Comment: comment})
		if err := p.st.SaveAlerts(ctx, []store.AlertDetail{a}); err != nil {
			return a, err
		}
		p.audit(ctx, actor, "alert."+store.AlertFalsePositive, id, map[string]any{"comment": comment, "rule": a.Rule})
		return a, nil
	}
	var to string
	switch action {
	case ActionAck:
		if e.a.State != store.AlertFiring {
			return snapshot(&e.a), fmt.Errorf("%w: alert %s is %s; only a firing alert can be acknowledged", ErrTransition, id, e.a.State)
		}
		to = store.AlertAcknowledged
	case ActionResolve:
		to = store.AlertResolved
	case ActionFalsePositive:
		to = store.AlertFalsePositive
	default:
		return snapshot(&e.a), fmt.Errorf("%w: unknown action %q", ErrInvalid, action)
	}
	p.setState(e, to, now, actor, comment)
	if err := p.saveDirty(ctx); err != nil {
		return snapshot(&e.a), err
	}
	p.audit(ctx, actor, "alert."+to, id, map[string]any{"comment": comment, "rule": e.a.Rule})
	return snapshot(&e.a), nil
}

// setState changes an open alert's state; closing takes it out of memory and its groups.
func (p *Pipeline) setState(e *entry, to string, now time.Time, actor, comment string) {
	e.a.State = to
	if comment != "" {
		e.a.Comment = comment
	}
	e.event(now, actor, to, comment)
	p.dirty[e] = true
	if e.a.Open() {
		return
	}
	e.a.EndedAt = now
	delete(p.open, e.a.Fingerprint)
	delete(p.byID, e.a.ID)
	p.indexInhibit(e, false)
	p.unroute(e)
}

// autoResolve resolves open alerts quiet for their rule's period.
func (p *Pipeline) autoResolve(now time.Time) {
	def := p.cfg.AutoResolve.After
	if def == 0 {
		def = 24 * time.Hour
	}
	for _, e := range p.open {
		after, ok := p.cfg.AutoResolve.Rules[e.a.Rule]
		if !ok {
			after = def
		}
		quiet := e.a.LastSeen
		if e.touched.After(quiet) {
			quiet = e.touched // a replayed old finding does not make its alert old
		}
		if after <= 0 || now.Sub(quiet) < after {
			continue
		}
		p.setState(e, store.AlertResolved, now, "pipewarden", fmt.Sprintf("no finding for %s", after))
		p.stats.AutoResolved++
	}
}

// Alert returns an alert by id, from memory when open.
func (p *Pipeline) Alert(ctx context.Context, id string) (store.AlertDetail, error) {
	p.mu.Lock()
	if e := p.byID[id]; e != nil {
		a := snapshot(&e.a)
		a.Priority = p.priority(&a)
		p.mu.Unlock()
		return a, nil
	}
	p.mu.Unlock()
	return p.st.GetAlert(ctx, id)
}

// responsesFor names the responses for an alert: those of the routes that took it and those
// whose matchers match it.
func (p *Pipeline) responsesFor(e *entry) []string {
	var out []string
	for _, r := range e.routes {
		for _, n := range r.responses {
			if !containsStr(out, n) {
				out = append(out, n)
			}
		}
	}
	for _, rm := range p.respMatch {
		if rm.ms.Matches(e.a.Labels) && !containsStr(out, rm.name) {
			out = append(out, rm.name)
		}
	}
	return out
}

// recordActions writes action outcomes onto their alert.
func (p *Pipeline) recordActions(ctx context.Context, alertID string, acts []store.Action) {
	if len(acts) == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	apply := func(a *store.AlertDetail) {
		for _, act := range acts {
			r := store.ActionResult{ID: act.ID, Type: act.Type, Status: act.Status, Result: act.Result}
			if act.Error != "" {
				r.Result = act.Error
			}
			replaced := false
			for i := range a.Actions {
				if a.Actions[i].ID == act.ID {
					a.Actions[i], replaced = r, true
				}
			}
			if !replaced {
				a.Actions = append(a.Actions, r)
			}
			a.Events = appendEvent(a.Events, store.AlertEvent{Time: now, Actor: "pipewarden", Action: "action",
				Comment: act.Type + " " + act.Status + ": " + r.Result})
		}
	}
	if e := p.byID[alertID]; e != nil {
		apply(&e.a)
		p.dirty[e] = true
		if err := p.saveDirty(ctx); err != nil {
			p.log.Error("alerting: record actions", "alert", alertID, "err", err)
		}
		return
	}
	a, err := p.st.GetAlert(ctx, alertID)
	if err != nil {
		p.log.Error("alerting: record actions", "alert", alertID, "err", err)
		return
	}
	apply(&a)
	if err := p.st.SaveAlerts(ctx, []store.AlertDetail{a}); err != nil {
		p.log.Error("alerting: record actions", "alert", alertID, "err", err)
	}
}

// ApproveAction runs an action that waits for approval and records the result on its alert.
func (p *Pipeline) ApproveAction(ctx context.Context, id, actor string) (store.Action, error) {
	act, err := p.resp.Approve(ctx, id, actor)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return act, fmt.Errorf("action %s: %w", id, ErrNotFound)
		}
		return act, fmt.Errorf("%w: %v", ErrTransition, err)
	}
	p.recordActions(ctx, act.AlertID, []store.Action{act})
	return act, nil
}

func (p *Pipeline) audit(ctx context.Context, actor, kind, object string, detail map[string]any) {
	if p.o.Audit != nil {
		p.o.Audit(ctx, AuditRecord{Time: p.now(), Actor: actor, Kind: kind, Object: object, Detail: detail})
	}
}

func sortStrings(s []string) { sort.Strings(s) }
