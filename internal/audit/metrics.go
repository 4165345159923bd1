package audit

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	records       prometheus.Counter
	size          prometheus.Gauge
	checkpoints   prometheus.Counter
	appendSeconds prometheus.Histogram
	witnessErrors *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		records: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pipewarden_audit_records_total", Help: "Audit records appended.",
		}),
		size: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pipewarden_audit_tree_size", Help: "Records in the audit log.",
		}),
		checkpoints: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pipewarden_audit_checkpoints_total", Help: "Audit checkpoints signed.",
		}),
		appendSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "pipewarden_audit_append_seconds", Help: "Time to append one batch durably.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 8),
		}),
		witnessErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pipewarden_audit_witness_errors_total", Help: "Checkpoints a witness did not receive.",
		}, []string{"witness"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.records, m.size, m.checkpoints, m.appendSeconds, m.witnessErrors} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
