package alert

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pipewarden/pipewarden/internal/store"
)

// Errors callers branch on (the HTTP handlers map them to status codes).
var (
	ErrNotFound   = store.ErrNotFound
	ErrInvalid    = errors.New("invalid request")
	ErrTransition = errors.New("invalid state transition")
)

type silence struct {
	s       store.Silence
	ms      Matchers
	started bool // alerts were re-evaluated since it became active
}

func compileSilence(s store.Silence) (*silence, error) {
	c := &silence{s: s}
	for _, m := range s.Matchers {
		cm, err := CompileMatcher(m)
		if err != nil {
			return nil, err
		}
		c.ms = append(c.ms, cm)
	}
	return c, nil
}

func (s *silence) active(now time.Time) bool {
	return !now.Before(s.s.StartsAt) && now.Before(s.s.EndsAt)
}

// SilenceState is pending, active or expired.
func SilenceState(s store.Silence, now time.Time) string {
	switch {
	case now.Before(s.StartsAt):
		return "pending"
	case now.Before(s.EndsAt):
		return "active"
	}
	return "expired"
}

// SilenceRequest is the body of POST /v1/silences. Matchers are strings in the matcher syntax;
// EndsAt or Duration (Go duration, e.g. "2h") bounds it, else silences.default_duration.
type SilenceRequest struct {
	ID       string    `json:"id,omitempty"` // set to update an existing silence
	Matchers []string  `json:"matchers"`
	StartsAt time.Time `json:"starts_at,omitzero"`
	EndsAt   time.Time `json:"ends_at,omitzero"`
	Duration string    `json:"duration,omitempty"`
	Comment  string    `json:"comment"`
}

// AddSilence creates (or, with an id, replaces) a silence and applies it to open alerts at once.
func (p *Pipeline) AddSilence(ctx context.Context, req SilenceRequest, actor string) (store.Silence, error) {
	now := p.now()
	var zero store.Silence
	ms, err := ParseMatchers(req.Matchers)
	if err != nil {
		return zero, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if len(ms) == 0 {
		return zero, fmt.Errorf("%w: a silence needs at least one matcher", ErrInvalid)
	}
	if ms.Matches(map[string]string{}) {
		return zero, fmt.Errorf("%w: matchers %s would match every alert; name at least one label value", ErrInvalid, joinMatchers(ms))
	}
	if strings.TrimSpace(req.Comment) == "" {
		return zero, fmt.Errorf("%w: a silence needs a comment saying why", ErrInvalid)
	}
	start := req.StartsAt
	if start.IsZero() || start.Before(now) {
		start = now
	}
	end := req.EndsAt
	if req.Duration != "" {
		d, err := time.ParseDuration(req.Duration)
		if err != nil || d <= 0 {
			return zero, fmt.Errorf("%w: duration %q: want a positive Go duration such as 2h", ErrInvalid, req.Duration)
		}
		end = start.Add(d)
	}
	if end.IsZero() {
		d := p.cfg.Silences.DefaultDuration
		if d <= 0 {
			d = 2 * time.Hour
		}
		end = start.Add(d)
	}
	if !end.After(start) {
		return zero, fmt.Errorf("%w: a silence must end after it starts", ErrInvalid)
	}
	if max := p.cfg.Silences.MaxDuration; max > 0 && end.Sub(start) > max {
		return zero, fmt.Errorf("%w: a silence may last at most %s", ErrInvalid, max)
	}
	s := store.Silence{ID: req.ID, Matchers: ms.Stored(), StartsAt: start, EndsAt: end, CreatedBy: actor,
		Comment: req.Comment, CreatedAt: now, UpdatedAt: now}
	p.mu.Lock()
	defer p.mu.Unlock()
	if s.ID != "" {
		i := p.silenceIndex(s.ID)
		if i < 0 {
			return zero, fmt.Errorf("silence %s: %w", s.ID, ErrNotFound)
		}
		s.CreatedAt = p.silences[i].s.CreatedAt
		p.silences = append(p.silences[:i], p.silences[i+1:]...)
	} else {
		s.ID = store.NewID()
	}
	if err := p.st.PutSilence(ctx, s); err != nil {
		return zero, err
	}
	c, _ := compileSilence(s)
	p.silences = append(p.silences, c)
	p.reevaluate(now)
	p.audit(ctx, actor, "silence.created", s.ID, map[string]any{"matchers": joinMatchers(ms), "starts_at": start, "ends_at": end, "comment": s.Comment})
	return s, p.saveDirty(ctx)
}

// ExpireSilence ends a silence now.
func (p *Pipeline) ExpireSilence(ctx context.Context, id, actor string) (store.Silence, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	i := p.silenceIndex(id)
	if i < 0 {
		return store.Silence{}, fmt.Errorf("silence %s: %w", id, ErrNotFound)
	}
	s := p.silences[i].s
	if s.EndsAt.After(now) {
		s.EndsAt = now
	}
	if s.StartsAt.After(now) {
		s.StartsAt = now
	}
	s.UpdatedAt = now
	if err := p.st.PutSilence(ctx, s); err != nil {
		return s, err
	}
	p.silences = append(p.silences[:i], p.silences[i+1:]...)
	p.reevaluate(now)
	p.audit(ctx, actor, "silence.expired", id, nil)
	return s, p.saveDirty(ctx)
}

// Silences lists the silences that have not ended or ended in the last 30 days, by creation
// time; state filters (pending, active, expired, "" for all).
func (p *Pipeline) Silences(ctx context.Context, state string) ([]SilenceView, error) {
	now := p.now()
	// Silences that expired more than 30 days ago are history: the audit log keeps them.
	all, err := p.st.ListSilences(ctx, now.Add(-30*24*time.Hour))
	if err != nil {
		return nil, err
	}
	out := []SilenceView{}
	for _, s := range all {
		st := SilenceState(s, now)
		if state == "" || state == st {
			out = append(out, SilenceView{Silence: s, State: st})
		}
	}
	return out, nil
}

// SilenceView is a silence with its state.
type SilenceView struct {
	store.Silence
	State string `json:"state"`
}

func (p *Pipeline) silenceIndex(id string) int {
	for i, s := range p.silences {
		if s.s.ID == id {
			return i
		}
	}
	return -1
}

// expireSilences drops silences that have ended and re-evaluates when any did or when a
// pending one started.
func (p *Pipeline) expireSilences(now time.Time) {
	changed := false
	kept := p.silences[:0]
	for _, s := range p.silences {
		if !now.Before(s.s.EndsAt) {
			changed = true
			continue
		}
		if !s.started && s.active(now) {
			s.started, changed = true, true
		}
		kept = append(kept, s)
	}
	p.silences = kept
	if changed {
		p.reevaluate(now)
	}
}

// reevaluate recomputes silence and inhibition for every open alert.
func (p *Pipeline) reevaluate(now time.Time) {
	for _, e := range p.open {
		p.evaluate(e, now)
	}
}

// evaluate sets an alert's silenced_by and inhibited_by; a change is recorded in its history.
func (p *Pipeline) evaluate(e *entry, now time.Time) {
	var sil []string
	for _, s := range p.silences {
		if s.active(now) && s.ms.Matches(e.a.Labels) {
			sil = append(sil, s.s.ID)
		}
	}
	inh := p.inhibitedBy(e)
	if !equalStrs(sil, e.a.SilencedBy) {
		if len(sil) > 0 {
			e.event(now, "pipewarden", "silenced", "by "+strings.Join(sil, ","))
		} else {
			e.event(now, "pipewarden", "unsilenced", "")
		}
		e.a.SilencedBy = sil
		p.dirty[e] = true
	}
	if !equalStrs(inh, e.a.InhibitedBy) {
		if len(inh) > 0 {
			e.event(now, "pipewarden", "inhibited", "by "+strings.Join(inh, ","))
		} else {
			e.event(now, "pipewarden", "uninhibited", "")
		}
		e.a.InhibitedBy = inh
		p.dirty[e] = true
	}
}

func equalStrs(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func joinMatchers(ms Matchers) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.String()
	}
	return "{" + strings.Join(parts, ",") + "}"
}
