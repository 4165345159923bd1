package dataset

import (
	"fmt"
	"math"
	"slices"

	"github.com/pipewarden/pipewarden/internal/dataset/stattest"
	"github.com/pipewarden/pipewarden/internal/finding"
)

// classConditional tests, per feature, whether the batch-vs-baseline mean shift differs between
// classes (Cochran's Q over per-class shifts). A shift shared by all classes is covariate drift
// and leaves Q small; a shift confined to one class is what targeted poisoning looks like. The
// effect size is the largest gap between one class's shift and the inverse-variance weighted
// shift of the other classes, in that class's sigmas.
func (c *checker) classConditional(a *acc, seg string) []finding.Finding {
	b := c.b
	if len(b.Classes) < 2 || len(a.classes) < 2 {
		return nil
	}
	var fs []finding.Finding
	var tested int
	type res struct {
		name      string
		p, effect float64
		worst     string
		shifts    map[string]float64
	}
	var rs []res
	for i, r := range c.refs {
		if !r.numeric || r.col.Categorical || r.col.Name == b.ID || r.batch < 0 {
			continue
		}
		var ws, wd float64
		type cs struct {
			label       string
			d, w, sigma float64
		}
		var xs []cs
		for _, cl := range b.Classes {
			bm, ok := cl.Moments[r.col.Name]
			m := a.classes[cl.Label]
			if !ok || m == nil || m[i].n < 5 || bm.N < 5 || !(bm.Std > 0) {
				continue
			}
			bt := m[i]
			v := bt.std()*bt.std()/float64(bt.n) + bm.Std*bm.Std/float64(bm.N)
			if !(v > 0) {
				continue
			}
			d := bt.mean - bm.Mean
			xs = append(xs, cs{cl.Label, d, 1 / v, bm.Std})
			ws += 1 / v
			wd += d / v
		}
		if len(xs) < 2 {
			continue
		}
		tested++
		mean := wd / ws
		var q, effect float64
		worst := ""
		shifts := map[string]float64{}
		for _, x := range xs {
			q += x.w * (x.d - mean) * (x.d - mean)
			// The effect compares each class with the common shift of the other classes: the
			// pooled mean would lean towards a shifted class with a small variance and blame
			// the others.
			e := math.Abs(x.d-(wd-x.w*x.d)/(ws-x.w)) / x.sigma
			shifts[x.label] = x.d / x.sigma
			if e > effect {
				effect, worst = e, x.label
			}
		}
		rs = append(rs, res{r.col.Name, stattest.ChiSquareSF(q, len(xs)-1), effect, worst, shifts})
	}
	for _, r := range rs {
		p := min(r.p*float64(tested), 1) // Bonferroni over features
		sev, ok := band(r.effect, heteroBands)
		if !ok || p >= c.opts.IndicatorP {
			continue
		}
		f := c.newFinding("data.poison.class_conditional_shift", sev, VerdictManipulation,
			fmt.Sprintf("%q shifted within class %s only (%.2f within-class sigma)", r.name, r.worst, r.effect), r.name, seg,
			map[string]any{"test": "cochran_q", "p_value": p, "effect_size": r.effect, "class": r.worst,
				"shift_by_class_sigma": r.shifts, "threshold": map[string]float64{"low": heteroBands[0], "medium": heteroBands[1], "high": heteroBands[2]},
				"reasoning": "the mean shift differs between classes; covariate drift moves all classes alike"})
		f.Confidence = 1 - p
		fs = append(fs, f)
	}
	return fs
}

// neighbourIndicators scores the batch sample against the baseline sample and compares each
// indicator's count with its calibrated rate by a one-sided binomial test, Bonferroni-corrected
// over every indicator test of the check.
//
// Features with a drift finding are scored twice: as they are, and re-centred by the difference
// of batch and baseline means. Each indicator keeps the lower of the two counts, the explanation
// most favourable to natural drift: a covariate shift reads clean once re-centred, and a spurious
// drift finding on a clean batch (1 % FDR) cannot make the re-centring itself raise an alarm.
func (c *checker) neighbourIndicators(a *acc, seg string, drifted map[string]bool) []finding.Finding {
	b := c.b
	cal := b.Calibration
	if b.Sample == nil || cal == nil || len(a.res.Items) < 20 || len(b.Sample.Features) == 0 || cal.K < 1 {
		return nil
	}
	sp := b.space()
	var shift []float64
	for j, f := range b.Sample.Features {
		if !drifted[f] {
			continue
		}
		if m := &a.cols[c.feats[j]].mom; m.n > 0 {
			if shift == nil {
				shift = make([]float64, len(b.Sample.Features))
			}
			shift[j] = m.mean - b.Columns[c.feats[j]].Numeric.Mean
		}
	}
	dim := len(b.Sample.Features)
	ref := newPoints(dim, len(b.Sample.Rows))
	for _, r := range b.Sample.Rows {
		ref.add(sp.point(numsToFloats(r), nil))
	}
	useLabels := cal.LabelNoise != nil && c.labelIdx >= 0 && len(b.Sample.Labels) == len(b.Sample.Rows)
	var labels, rl []string
	if useLabels {
		rl = b.Sample.Labels
		for _, it := range a.res.Items {
			labels = append(labels, it.label)
		}
	}
	var w *within
	counts := func(shift []float64) [4]int64 {
		batch := newPoints(dim, len(a.res.Items))
		for _, it := range a.res.Items {
			batch.add(sp.point(it.vals, shift))
		}
		if w == nil {
			x := withinBatch(batch, cal.K)
			w = &x
		}
		sc := score(batch, *w, labels, ref, rl, cal.K)
		var out int64
		for _, d := range sc.refK {
			if d > cal.Outlier.Threshold {
				out++
			}
		}
		return [4]int64{count(sc.disagree), count(sc.nearDup), out, sc.cluster(cal.Cluster.Threshold)}
	}
	k := counts(nil)
	if shift != nil {
		k2 := counts(shift)
		for i := range k {
			k[i] = min(k[i], k2[i])
		}
	}
	nb := int64(len(a.res.Items))
	type ind struct {
		rule, what string
		k          int64
		r          Rate
	}
	inds := []ind{
		{"data.poison.near_duplicates", "rows nearly identical to another row", k[1], cal.NearDup},
		{"data.poison.outliers", "rows far from every baseline neighbour", k[2], cal.Outlier},
		{"data.poison.off_baseline_cluster", "rows grouped together away from the baseline", k[3], cal.Cluster},
	}
	if useLabels {
		inds = append([]ind{{"data.poison.label_noise", "labels that disagree with their nearest baseline neighbours", k[0], *cal.LabelNoise}}, inds...)
	}
	tests := len(inds) * c.family
	var fs []finding.Finding
	for _, x := range inds {
		up := x.r.upperRate()
		p := binomSF(x.k, nb, up)
		pAdj := min(1, p*float64(tests))
		rate := float64(x.k) / float64(nb)
		excess := rate - x.r.Rate
		sev, ok := band(excess, excessBands)
		if !ok || pAdj >= c.opts.IndicatorP || excess <= 0 {
			continue
		}
		f := c.newFinding(x.rule, sev, VerdictManipulation,
			fmt.Sprintf("%.1f%% %s (calibrated %.1f%%)", 100*rate, x.what, 100*x.r.Rate), "", seg,
			map[string]any{"test": "binomial", "statistic": rate, "count": x.k, "rows_scored": nb,
				"calibrated_rate": x.r.Rate, "calibrated_upper": up, "p_value": p, "p_adjusted": pAdj,
				"tests": tests, "alpha": c.opts.IndicatorP, "effect_size": excess,
				"threshold": map[string]float64{"low": excessBands[0], "medium": excessBands[1], "high": excessBands[2]},
				"k":         cal.K, "distance_threshold": x.r.Threshold,
				"recentred": keys(drifted),
				"reasoning": "rate above what held-out chunks of the baseline show, even after re-centring drifted features"})
		f.Confidence = 1 - pAdj
		fs = append(fs, f)
	}
	return fs
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
