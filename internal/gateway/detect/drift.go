package detect

import (
	"fmt"
	"math"

	"github.com/pipewarden/pipewarden/internal/finding"
)

// driftState measures how far a client's inputs are from the endpoint's training data. With a
// baseline row sample, a query is out of distribution when its squared Mahalanobis distance
// exceeds twice the sample's own 99th percentile, or its nearest sample row is further than
// 1.5 times the sample's 99th-percentile leave-one-out nearest-neighbour distance; without a
// sample, when a feature is more than 4 standard deviations from the mean or outside the
// training range widened by 10%.
type driftState struct {
	ood     ring
	total   int
	oodSeen int
	sum     []float64
}

func (d *driftState) observe(cfg *DriftConfig, b *Baseline, x, z []float64) *alarm {
	if d.ood.v == nil {
		d.ood = newRing(cfg.Window)
		d.sum = make([]float64, len(x))
	}
	out := 0.0
	if b.nnLimit > 0 || b.chol != nil {
		if b.chol != nil && b.mahalanobis2(z) > b.mahaLimit || b.nnLimit > 0 && nearest(z, b.sampleStd, -1) > b.nnLimit {
			out = 1
		}
	} else {
		for j, v := range z {
			r := b.Max[j] - b.Min[j]
			if math.Abs(v) > 4 || x[j] < b.Min[j]-0.1*r || x[j] > b.Max[j]+0.1*r {
				out = 1
				break
			}
		}
	}
	for j, v := range z {
		d.sum[j] += v
	}
	d.total++
	d.oodSeen += int(out)
	d.ood.add(out)
	if d.total < cfg.MinQueries {
		return nil
	}
	rate := d.ood.sum() / float64(d.ood.len())
	if rate < cfg.OODRate {
		return nil
	}
	worst, shift := 0, 0.0
	for j, s := range d.sum {
		if m := math.Abs(s / float64(d.total)); m > shift {
			worst, shift = j, m
		}
	}
	return &alarm{
		rule: RuleOOD, detector: Drift, severity: finding.High,
		title:     fmt.Sprintf("%.0f%% of the client's recent inputs are out of the training distribution", 100*rate),
		statistic: rate, threshold: cfg.OODRate,
		extra: map[string]any{"window": d.ood.len(), "out_of_distribution": d.oodSeen,
			"most_shifted_feature": b.name(worst), "mean_shift_sd": round(shift),
			"nn_limit": round(b.nnLimit), "mahalanobis2_limit": round(b.mahaLimit)},
		atlas: []string{"AML.T0024", "AML.T0043"}, owasp: []string{"ML01", "ML05"}, conf: 0.7,
	}
}
