package gateway

import (
	"math/rand/v2"
	"time"

	"github.com/pipewarden/pipewarden/internal/finding"
	"github.com/pipewarden/pipewarden/internal/gateway/detect"
	"github.com/pipewarden/pipewarden/internal/gateway/protocol"
)

// sample is one forwarded request on its way to the detectors.
type sample struct {
	client  string
	route   *route
	time    time.Time
	status  int
	latency time.Duration
	req     *protocol.Request
	resp    []byte
}

// enqueue hands a sample to the detectors without ever waiting: when the queue is full the
// sample is dropped and counted.
func (g *Gateway) enqueue(s *sample) {
	if g.opts.Synchronous {
		g.process(s)
		return
	}
	select {
	case g.queue <- s:
	default:
		g.dropped.Add(1)
	}
}

// detectLoop feeds the detectors. It keeps to a CPU budget (Options.DetectorCPU, a share of
// one core) by resting in proportion to the work done, so that under load the detectors give
// the proxy its CPU back: the queue then fills and samples are dropped and counted.
//
// While requests keep coming it looks at the queue every pollInterval instead of waiting on it:
// a goroutine waiting on a channel is woken by every send, and each wake-up is a thread wake-up
// on the request path (futex, and a spinning thread on the other core). After a second with
// nothing to do it waits on the queue again, so an idle gateway does not poll.
func (g *Gateway) detectLoop() {
	defer g.done.Done()
	share := g.opts.DetectorCPU
	var debt time.Duration
	var lastWork time.Time
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	rest := func(d time.Duration) bool {
		timer.Reset(d)
		select {
		case <-timer.C:
			return true
		case <-g.stop:
			timer.Stop()
			return false
		}
	}
	for {
		var s *sample
		select {
		case s = <-g.queue:
		case <-g.stop:
			g.drain()
			return
		default:
			if time.Since(lastWork) < time.Second {
				if !rest(pollInterval) {
					g.drain()
					return
				}
				continue
			}
			select {
			case s = <-g.queue:
			case <-g.stop:
				g.drain()
				return
			}
		}
		t0 := time.Now()
		g.process(s)
		lastWork = time.Now()
		if share >= 1 {
			continue
		}
		debt += time.Duration(float64(lastWork.Sub(t0)) * (1 - share) / share)
		if debt < time.Millisecond {
			continue
		}
		if !rest(debt) {
			g.drain()
			return
		}
		debt = 0
	}
}

// pollInterval is how often the detectors look at the queue while requests flow.
const pollInterval = 2 * time.Millisecond

// drain processes what is queued, at Close.
func (g *Gateway) drain() {
	for {
		select {
		case s := <-g.queue:
			g.process(s)
		default:
			return
		}
	}
}

// process runs the detectors on each row of a sample (up to MaxRows) and acts on the findings.
func (g *Gateway) process(s *sample) {
	g.engMu.Lock()
	defer g.engMu.Unlock()
	t0 := time.Now()
	var classes []int
	if len(s.resp) > 0 {
		var scratch protocol.Request
		classes, _ = s.route.parser.Classes(s.resp, &scratch, nil)
	}
	rows := min(s.req.Rows, g.opts.MaxRows)
	var found []finding.Finding
	for i := range rows {
		c := -1
		if len(classes) == s.req.Rows {
			c = classes[i]
		}
		q := detect.Query{Client: s.client, Endpoint: s.route.Name, Time: s.time, X: s.req.Row(i), Class: c, Status: s.status}
		found = append(found, g.engine.Observe(q)...)
	}
	g.detectNs.Add(int64(time.Since(t0)))
	g.processed.Add(int64(rows))
	if g.opts.SampleRate > 0 && rand.Float64() < g.opts.SampleRate {
		g.agg.addSample(s)
	}
	for _, f := range found {
		g.handleFinding(f)
	}
}

// handleFinding records a finding, reports it, and escalates its client.
func (g *Gateway) handleFinding(f finding.Finding) {
	g.clients.noteFinding(f)
	g.agg.addFinding(f)
	g.opts.Logger.Info("finding", "rule", f.Rule, "severity", f.Severity.String(), "subject", f.Subject.Name, "title", f.Title)
	if g.opts.Escalation.Off || f.Subject.Kind != "client" || f.Severity < g.opts.Escalation.At {
		return
	}
	action, err := g.clients.escalate(f.Subject.Name, f, g.blocks)
	if err != nil {
		g.opts.Logger.Error("store block", "client", f.Subject.Name, "err", err)
	}
	g.opts.Logger.Warn("client restricted", "client", f.Subject.Name, "action", action, "rule", f.Rule, "mode", string(g.opts.Mode))
	if action == "throttle" {
		ttl := g.opts.Escalation.ThrottleTTL
		g.agg.addFinding(responseFinding(f, "throttled", ttl, g.opts.Mode, g.opts.Now()))
	}
}

// responseFinding records an automatic restriction, for the audit trail.
func responseFinding(cause finding.Finding, action string, ttl time.Duration, mode Mode, now time.Time) finding.Finding {
	return finding.Finding{
		Rule: "gateway.response." + action, Severity: finding.Info,
		Title:   "Client " + action + " for " + ttl.String() + " after " + cause.Rule,
		Subject: cause.Subject, Labels: map[string]string{"client": cause.Subject.Name, "endpoint": cause.Labels["endpoint"], "action": action, "mode": string(mode)},
		Evidence: map[string]any{"cause_rule": cause.Rule, "cause_title": cause.Title, "ttl_seconds": ttl.Seconds()},
		ATLAS:    cause.ATLAS, Confidence: 1, Time: now,
	}
}
