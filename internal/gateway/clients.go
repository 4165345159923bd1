package gateway

import (
	"math"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/pipewarden/pipewarden/internal/finding"
	"github.com/pipewarden/pipewarden/internal/gateway/lru"
)

// outcome is what the gateway did with a request, as bit flags.
type outcome int

const (
	outcomeNone      outcome = 0
	outcomeForwarded outcome = 1 << iota
	outcomeBlocked
	outcomeLimited
	outcomeRejected
	outcomeFault
	outcomeShadow // combined with blocked, limited or rejected: would have been, forwarded instead
)

// ClientStats are one client's counters and state, as GET /v1/gateway/clients shows them.
type ClientStats struct {
	Client        string           `json:"client"`
	State         string           `json:"state"` // normal, throttled, blocked
	Requests      int64            `json:"requests"`
	Forwarded     int64            `json:"forwarded"`
	Blocked       int64            `json:"blocked"`
	Limited       int64            `json:"limited"`
	Rejected      int64            `json:"rejected"`
	Errors        int64            `json:"errors"`
	Shadow        int64            `json:"shadow"` // would have been stopped (shadow mode)
	MeanLatencyMs float64          `json:"mean_latency_ms"`
	FirstSeen     time.Time        `json:"first_seen"`
	LastSeen      time.Time        `json:"last_seen"`
	ThrottledTill *time.Time       `json:"throttled_until,omitempty"`
	Endpoints     []string         `json:"endpoints"`
	LastFindings  []FindingSummary `json:"last_findings,omitempty"`
}

// FindingSummary is a finding as the client list shows it.
type FindingSummary struct {
	Rule     string           `json:"rule"`
	Severity finding.Severity `json:"severity"`
	Title    string           `json:"title"`
	Time     time.Time        `json:"time"`
}

type clientEntry struct {
	stats     ClientStats
	latency   time.Duration
	limiter   *rate.Limiter
	throttled time.Time
	routes    map[string]*routeWindow
}

// routeWindow counts one client's requests to one endpoint since the last report.
type routeWindow struct {
	count, errors, blocked, limited, rejected, shadow int64
	latency                                           time.Duration
	statuses                                          map[int]int64
}

type clientTable struct {
	mu     sync.Mutex
	lim    Limits
	esc    Escalation
	now    func() time.Time
	global *rate.Limiter
	cache  *lru.Cache[string, *clientEntry]
}

func newClientTable(l Limits, e Escalation, now func() time.Time) *clientTable {
	t := &clientTable{lim: l, esc: e, now: now, cache: lru.New[string, *clientEntry](l.MaxClients, nil)}
	if l.GlobalRate > 0 {
		t.global = rate.NewLimiter(rate.Limit(l.GlobalRate), l.GlobalBurst)
	}
	return t
}

func (t *clientTable) entry(client string, now time.Time) *clientEntry {
	return t.cache.GetOrAdd(client, func() *clientEntry {
		e := &clientEntry{stats: ClientStats{Client: client, FirstSeen: now}, routes: map[string]*routeWindow{}}
		if t.lim.ClientRate > 0 {
			e.limiter = rate.NewLimiter(rate.Limit(t.lim.ClientRate), t.lim.ClientBurst)
		}
		return e
	})
}

// allow takes a token from the client's bucket (its throttled bucket while throttled) and from
// the global one; when either is empty it says how long to wait.
func (t *clientTable) allow(client string, now time.Time) (bool, time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.entry(client, now)
	if !e.throttled.IsZero() && !now.Before(e.throttled) {
		e.throttled = time.Time{}
		e.limiter = nil
		if t.lim.ClientRate > 0 {
			e.limiter = rate.NewLimiter(rate.Limit(t.lim.ClientRate), t.lim.ClientBurst)
		}
	}
	if ok, d := take(e.limiter, now); !ok {
		return false, d
	}
	return take(t.global, now)
}

func take(l *rate.Limiter, now time.Time) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	r := l.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Second
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

func (t *clientTable) record(client, endpoint string, status int, start, end time.Time, out outcome) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.entry(client, start)
	s := &e.stats
	s.Requests++
	s.LastSeen = end
	lat := end.Sub(start)
	w := e.routes[endpoint]
	if w == nil {
		w = &routeWindow{statuses: map[int]int64{}}
		e.routes[endpoint] = w
		if !slices.Contains(s.Endpoints, endpoint) && len(s.Endpoints) < 16 {
			s.Endpoints = append(s.Endpoints, endpoint)
		}
	}
	w.count++
	w.latency += lat
	if status != 0 {
		w.statuses[status]++
	}
	if status >= 400 || status == 0 {
		w.errors++
	}
	switch {
	case out&outcomeShadow != 0:
		s.Shadow++
		s.Forwarded++
		w.shadow++
		e.latency += lat
	case out&outcomeForwarded != 0:
		s.Forwarded++
		e.latency += lat
	case out&outcomeBlocked != 0:
		s.Blocked++
		w.blocked++
	case out&outcomeLimited != 0:
		s.Limited++
		w.limited++
	case out&outcomeRejected != 0:
		s.Rejected++
		w.rejected++
	}
	if out&(outcomeForwarded|outcomeShadow) != 0 && (status >= 400 || status == 0) {
		s.Errors++
	}
}

// escalate throttles a client, or blocks it if it is already throttled or the finding is
// severe enough. It returns "throttle" or "block".
func (t *clientTable) escalate(client string, f finding.Finding, blocks *Blocks) (string, error) {
	now := t.now()
	t.mu.Lock()
	e := t.entry(client, now)
	throttled := !e.throttled.IsZero() && now.Before(e.throttled)
	if f.Severity < t.esc.BlockAt && !throttled {
		e.throttled = now.Add(t.esc.ThrottleTTL)
		r := t.esc.ThrottleRate
		if t.lim.ClientRate > 0 {
			r = t.lim.ClientRate * t.esc.ThrottleFactor
		}
		e.limiter = rate.NewLimiter(rate.Limit(r), max(1, int(math.Ceil(r))))
		t.mu.Unlock()
		return "throttle", nil
	}
	t.mu.Unlock()
	_, err := blocks.Add(Block{Client: client, Reason: f.Title, Source: "auto", Rule: f.Rule, Until: now.Add(t.esc.BlockTTL)})
	return "block", err
}

func (t *clientTable) noteFinding(f finding.Finding) {
	if f.Subject.Kind != "client" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.entry(f.Subject.Name, f.Time)
	s := FindingSummary{Rule: f.Rule, Severity: f.Severity, Title: f.Title, Time: f.Time}
	e.stats.LastFindings = append(e.stats.LastFindings, s)
	if n := len(e.stats.LastFindings); n > 5 {
		e.stats.LastFindings = slices.Delete(e.stats.LastFindings, 0, n-5)
	}
}

// list returns every client's stats, most recently seen first.
func (t *clientTable) list(blocks *Blocks) []ClientStats {
	now := t.now()
	t.mu.Lock()
	var out []ClientStats
	t.cache.All(func(_ string, e *clientEntry) bool {
		s := e.stats
		s.Endpoints = slices.Clone(s.Endpoints)
		s.LastFindings = slices.Clone(s.LastFindings)
		if n := s.Forwarded; n > 0 {
			s.MeanLatencyMs = float64(e.latency.Microseconds()) / 1000 / float64(n)
		}
		s.State = "normal"
		if !e.throttled.IsZero() && now.Before(e.throttled) {
			s.State = "throttled"
			until := e.throttled
			s.ThrottledTill = &until
		}
		out = append(out, s)
		return true
	})
	t.mu.Unlock()
	for i := range out {
		if _, ok := blocks.Active(out[i].Client); ok {
			out[i].State = "blocked"
		}
	}
	slices.SortStableFunc(out, func(a, b ClientStats) int { return b.LastSeen.Compare(a.LastSeen) })
	return out
}

// windowKey names one client's traffic to one endpoint.
type windowKey struct{ client, endpoint string }

// drain returns and resets every client's per-endpoint counters since the last call.
func (t *clientTable) drain() map[windowKey]*routeWindow {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[windowKey]*routeWindow{}
	t.cache.All(func(c string, e *clientEntry) bool {
		for ep, w := range e.routes {
			if w.count > 0 {
				out[windowKey{c, ep}] = w
				e.routes[ep] = &routeWindow{statuses: map[int]int64{}}
			}
		}
		return true
	})
	return out
}
