package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/pipewarden/pipewarden/internal/event"
	"github.com/pipewarden/pipewarden/internal/finding"
)

// Reporter receives what the gateway observed: pipewarden.inference.request events aggregated
// per client, endpoint and interval (plus sampled single requests), and findings. The gateway
// calls it from one background goroutine, never from a request; an implementation that cannot
// keep up must drop and count rather than block for long.
type Reporter interface {
	Report(ctx context.Context, events []event.Event, findings []finding.Finding)
}

// ReporterFunc adapts a function to Reporter.
type ReporterFunc func(ctx context.Context, events []event.Event, findings []finding.Finding)

// Report calls f.
func (f ReporterFunc) Report(ctx context.Context, evs []event.Event, fs []finding.Finding) {
	f(ctx, evs, fs)
}

// EventType is the type of every event the gateway emits.
const EventType = "pipewarden.inference.request"

type aggregator struct {
	g        *Gateway
	mu       sync.Mutex
	findings []finding.Finding
	samples  []event.Event
	wake     chan struct{}
	last     time.Time
}

const maxPending = 10000 // findings and samples waiting for a report; beyond, dropped and counted

func newAggregator(g *Gateway) *aggregator {
	return &aggregator{g: g, wake: make(chan struct{}, 1), last: g.opts.Now()}
}

func (a *aggregator) addFinding(f finding.Finding) {
	a.mu.Lock()
	if len(a.findings) < maxPending {
		a.findings = append(a.findings, f)
	} else {
		a.g.dropped.Add(1)
	}
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

func (a *aggregator) addSample(s *sample) {
	feats := append([]float64(nil), s.req.Row(0)...)
	data := map[string]any{"endpoint": s.route.Name, "client": s.client, "status": s.status,
		"latency_ms": float64(s.latency.Microseconds()) / 1000, "features": feats, "rows": s.req.Rows, "sampled": true}
	ev := a.g.newEvent(s.client, s.time, data)
	a.mu.Lock()
	if len(a.samples) < maxPending {
		a.samples = append(a.samples, ev)
	}
	a.mu.Unlock()
}

// loop reports every interval, and soon after a finding (at most once a second).
func (a *aggregator) loop() {
	defer a.g.done.Done()
	t := time.NewTicker(a.g.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			a.flush()
		case <-a.wake:
			time.Sleep(min(time.Second, a.g.opts.Interval))
			a.flush()
		case <-a.g.stop:
			a.flush()
			return
		}
	}
}

// Flush reports what has been aggregated so far (the gateway also does it every interval).
func (g *Gateway) Flush() { g.agg.flush() }

func (a *aggregator) flush() {
	g := a.g
	now := g.opts.Now()
	windows := g.clients.drain()
	a.mu.Lock()
	fs, samples := a.findings, a.samples
	a.findings, a.samples = nil, nil
	start := a.last
	a.last = now
	a.mu.Unlock()
	if g.opts.Reporter == nil || len(windows)+len(fs)+len(samples) == 0 {
		return
	}
	// Findings about a client ride on that client's event, so a daemon that only takes events
	// still sees them.
	byKey := map[windowKey][]finding.Finding{}
	for _, f := range fs {
		k := windowKey{f.Labels["client"], f.Labels["endpoint"]}
		if f.Subject.Kind == "client" {
			k.client = f.Subject.Name
		}
		if k.client == "" || k.endpoint == "" {
			continue // block list changes: reported as findings only
		}
		byKey[k] = append(byKey[k], f)
		if _, ok := windows[k]; !ok {
			windows[k] = &routeWindow{statuses: map[int]int64{}}
		}
	}
	keys := make([]windowKey, 0, len(windows))
	for k := range windows {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].client != keys[j].client {
			return keys[i].client < keys[j].client
		}
		return keys[i].endpoint < keys[j].endpoint
	})
	evs := make([]event.Event, 0, len(keys)+len(samples))
	for _, k := range keys {
		w := windows[k]
		data := map[string]any{
			"endpoint": k.endpoint, "client": k.client, "status": modeStatus(w), "latency_ms": meanMs(w),
			"count": w.count, "errors": w.errors, "blocked": w.blocked, "limited": w.limited,
			"rejected": w.rejected, "shadow": w.shadow, "statuses": statusMap(w.statuses),
			"window_start": start, "window_end": now, "mode": string(g.opts.Mode), "aggregated": true,
		}
		if f := byKey[k]; len(f) > 0 {
			data["findings"] = f
		}
		evs = append(evs, g.newEvent(k.client, now, data))
	}
	evs = append(evs, samples...)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	g.opts.Reporter.Report(ctx, evs, fs)
}

// modeStatus is the most frequent status of the window (0 when nothing reached the upstream).
func modeStatus(w *routeWindow) int {
	best, n := 0, int64(-1)
	for s, c := range w.statuses {
		if c > n || (c == n && s < best) {
			best, n = s, c
		}
	}
	if best == 0 && w.blocked > 0 {
		return 403
	}
	return best
}

func meanMs(w *routeWindow) float64 {
	if w.count == 0 {
		return 0
	}
	return float64(w.latency.Microseconds()) / 1000 / float64(w.count)
}

func statusMap(m map[int]int64) map[string]int64 {
	out := make(map[string]int64, len(m))
	for s, c := range m {
		out[strconv.Itoa(s)] = c
	}
	return out
}

// newEvent builds a CloudEvent of EventType with its raw JSON.
func (g *Gateway) newEvent(client string, t time.Time, data map[string]any) event.Event {
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	ev := event.Event{
		ID: hex.EncodeToString(id), Source: "pipewarden/gateway/" + g.opts.Name, Type: EventType,
		Time: t.UTC(), Subject: client,
		Assets: []event.Asset{{Kind: "endpoint", Name: data["endpoint"].(string)}, {Kind: "client", Name: client}},
	}
	ev.Data, _ = json.Marshal(data)
	ev.Raw, _ = json.Marshal(struct {
		SpecVersion     string          `json:"specversion"`
		ID              string          `json:"id"`
		Source          string          `json:"source"`
		Type            string          `json:"type"`
		Time            time.Time       `json:"time"`
		Subject         string          `json:"subject"`
		DataContentType string          `json:"datacontenttype"`
		Data            json.RawMessage `json:"data"`
	}{event.SpecVersion, ev.ID, ev.Source, ev.Type, ev.Time, ev.Subject, "application/json", ev.Data})
	return ev
}
