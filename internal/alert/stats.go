package alert

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
)

// Reasons a finding opened no new alert.
const (
	reasonDeduplicated = "deduplicated" // counted into an open alert
	reasonSilenced     = "silenced"
	reasonInhibited    = "inhibited"
	reasonRateLimited  = "rate_limited"
	reasonInvalid      = "invalid"
)

// Stats are the pipeline's counters since start, served by the API.
type Stats struct {
	Findings      int64            `json:"findings"`
	Alerts        int64            `json:"alerts_created"`
	Open          int              `json:"alerts_open"`
	AutoResolved  int64            `json:"auto_resolved"`
	Notifications int64            `json:"notifications_enqueued"`
	Suppressed    map[string]int64 `json:"suppressed"` // findings by reason
	Outbox        map[string]int   `json:"outbox,omitempty"`
	Groups        int              `json:"groups"`
	Silences      int              `json:"silences_active"`
}

type metrics struct {
	findings   prometheus.Counter
	suppressed *prometheus.CounterVec
	created    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, p *Pipeline) metrics {
	m := metrics{
		findings: prometheus.NewCounter(prometheus.CounterOpts{Name: "pipewarden_alert_findings_total", Help: "Findings taken by the alerting pipeline."}),
		suppressed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pipewarden_alert_findings_suppressed_total",
			Help: "Findings that raised no new notification, by reason (deduplicated, silenced, inhibited, rate_limited, invalid)."}, []string{"reason"}),
		created: prometheus.NewCounter(prometheus.CounterOpts{Name: "pipewarden_alerts_created_total", Help: "Alerts opened."}),
	}
	for _, r := range []string{reasonDeduplicated, reasonSilenced, reasonInhibited, reasonRateLimited, reasonInvalid} {
		m.suppressed.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.findings, m.suppressed, m.created,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "pipewarden_alerts_open", Help: "Alerts firing or acknowledged."},
				func() float64 { p.mu.Lock(); defer p.mu.Unlock(); return float64(len(p.open)) }))
	}
	return m
}

func (p *Pipeline) suppress(reason string, n int64) {
	p.stats.Suppressed[reason] += n
	p.m.suppressed.WithLabelValues(reason).Add(float64(n))
}

// Stats returns the counters, with the outbox's state from the store.
func (p *Pipeline) Stats(ctx context.Context) (Stats, error) {
	p.mu.Lock()
	s := p.stats
	s.Suppressed = make(map[string]int64, len(p.stats.Suppressed))
	for _, r := range []string{reasonDeduplicated, reasonSilenced, reasonInhibited, reasonRateLimited, reasonInvalid} {
		s.Suppressed[r] = p.stats.Suppressed[r]
	}
	s.Open, s.Groups = len(p.open), len(p.groups)
	now := p.now()
	for _, sl := range p.silences {
		if sl.active(now) {
			s.Silences++
		}
	}
	p.mu.Unlock()
	ob, err := p.st.NotificationStats(ctx)
	s.Outbox = ob
	return s, err
}
