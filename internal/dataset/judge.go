package dataset

import (
	"fmt"
	"math"
	"sort"

	"github.com/pipewarden/pipewarden/internal/dataset/stattest"
	"github.com/pipewarden/pipewarden/internal/finding"
)

// Verdicts carried in every finding's evidence and labels.
const (
	VerdictInvalid      = "invalid"
	VerdictDrift        = "drift"
	VerdictManipulation = "suspected_manipulation"
)

// Effect-size bands (docs/data.md): severity comes from these, never from a p-value.
var (
	wassersteinBands = [3]float64{0.1, 0.2, 0.4}    // normed Wasserstein: low, medium, high
	jsBands          = [3]float64{0.1, 0.2, 0.3}    // Jensen-Shannon distance (base 2)
	psiBands         = [3]float64{0.1, 0.1, 0.25}   // PSI: 0.1 moderate (medium), 0.25 significant (high)
	excessBands      = [3]float64{0.0, 0.005, 0.01} // indicator rate above calibration
	heteroBands      = [3]float64{0.2, 0.3, 0.5}    // class-conditional shift, within-class sigmas
)

func band(x float64, b [3]float64) (finding.Severity, bool) {
	switch {
	case x >= b[2]:
		return finding.High, true
	case x >= b[1]:
		return finding.Medium, true
	case x >= b[0]:
		return finding.Low, true
	}
	return finding.Info, false
}

func (c *checker) newFinding(rule string, sev finding.Severity, verdict, title, column, segment string, ev map[string]any) finding.Finding {
	labels := map[string]string{"verdict": verdict}
	if column != "" {
		labels["column"] = column
	}
	if segment != "" {
		labels["segment"] = segment
		title = fmt.Sprintf("%s (segment %s=%s)", title, c.opts.Segment, segment)
	}
	ev["verdict"] = verdict
	f := finding.Finding{Rule: rule, Severity: sev, Title: title, Labels: labels, Evidence: ev,
		Subject: finding.Subject{Kind: "dataset", Name: c.opts.Subject}, Confidence: 0.9}
	if verdict == VerdictManipulation {
		f.ATLAS = []string{"AML.T0020"}
		f.OWASP = []string{"ML02:2023"}
	}
	return f
}

func (c *checker) schema() []finding.Finding {
	var fs []finding.Finding
	known := map[string]bool{}
	for _, r := range c.refs {
		known[r.col.Name] = true
		if r.batch < 0 {
			fs = append(fs, c.newFinding("data.schema.missing_column", finding.High, VerdictInvalid,
				fmt.Sprintf("column %q is missing", r.col.Name), r.col.Name, "",
				map[string]any{"baseline_type": r.col.Type}))
		}
	}
	for _, n := range c.batchCol {
		if !known[n] && n != c.opts.Segment {
			fs = append(fs, c.newFinding("data.schema.extra_column", finding.Medium, VerdictInvalid,
				fmt.Sprintf("column %q is not in the baseline", n), n, "", map[string]any{}))
		}
	}
	return fs
}

type driftTest struct {
	ref   int
	p     float64
	sev   finding.Severity
	ev    map[string]any
	title string
	rule  string
}

func (c *checker) judge(a *acc, seg string) []finding.Finding {
	var fs []finding.Finding
	b := c.b
	n := float64(a.rows)
	if r := n / float64(b.Rows); (r < 0.01 || r > 100) && seg == "" {
		fs = append(fs, c.newFinding("data.rows.count_anomaly", finding.Low, VerdictInvalid,
			fmt.Sprintf("batch has %d rows, baseline %d", a.rows, b.Rows), "", seg,
			map[string]any{"rows": a.rows, "baseline_rows": b.Rows, "ratio": r}))
	}
	if a.dupIDs > 0 {
		fs = append(fs, c.newFinding("data.id.duplicate", finding.High, VerdictInvalid,
			fmt.Sprintf("%d duplicate values in id column %q", a.dupIDs, b.ID), b.ID, seg,
			map[string]any{"duplicates": a.dupIDs, "rows": a.rows}))
	}
	var tests []driftTest
	for i, r := range c.refs {
		if r.batch < 0 {
			continue
		}
		ca := &a.cols[i]
		col := r.col
		// Null-rate jump: significant against the baseline rate and at least 5 points.
		p0 := col.NullRate
		p1 := float64(ca.nulls) / n
		if p1-p0 >= 0.05 {
			pv := binomSF(ca.nulls, a.rows, Rate{Count: col.Nulls, Trials: col.Count}.upperRate())
			if pv < c.opts.IndicatorP {
				sev := finding.Medium
				if p1-p0 >= 0.2 {
					sev = finding.High
				}
				fs = append(fs, c.newFinding("data.nulls.rate_jump", sev, VerdictInvalid,
					fmt.Sprintf("null rate of %q rose from %.3f to %.3f", col.Name, p0, p1), col.Name, seg,
					map[string]any{"test": "binomial", "baseline_rate": p0, "batch_rate": p1, "p_value": pv, "threshold": 0.05}))
			}
		}
		if r.numeric && ca.nonNumeric > 0 {
			frac := float64(ca.nonNumeric) / n
			sev := finding.Medium
			if frac >= 0.01 {
				sev = finding.High
			}
			fs = append(fs, c.newFinding("data.schema.type_change", sev, VerdictInvalid,
				fmt.Sprintf("%d non-numeric values in %s column %q", ca.nonNumeric, col.Type, col.Name), col.Name, seg,
				map[string]any{"baseline_type": col.Type, "non_numeric": ca.nonNumeric, "fraction": frac}))
		}
		if r.numeric && ca.outRange > 0 {
			frac := float64(ca.outRange) / n
			sev := finding.Low
			if frac >= 0.01 {
				sev = finding.Medium
			}
			fs = append(fs, c.newFinding("data.range.out_of_bounds", sev, VerdictInvalid,
				fmt.Sprintf("%d values of %q outside the baseline range", ca.outRange, col.Name), col.Name, seg,
				map[string]any{"count": ca.outRange, "fraction": frac, "allowed_min": r.lo, "allowed_max": r.hi,
					"baseline_min": col.Numeric.Min, "baseline_max": col.Numeric.Max}))
		}
		if col.Categorical && col.Frequent != nil && col.Frequent.Exact() {
			var newVals []string
			var newCount int64
			for v, k := range ca.cats {
				if _, ok := col.Frequent.Counts[v]; !ok {
					newVals = append(newVals, v)
					newCount += k
				}
			}
			if len(newVals) > 0 {
				sort.Strings(newVals)
				frac := float64(newCount) / n
				sev := finding.Low
				switch {
				case col.Name == c.opts.Label || frac >= 0.05:
					sev = finding.High
				case frac >= 0.01:
					sev = finding.Medium
				}
				fs = append(fs, c.newFinding("data.category.new_values", sev, VerdictInvalid,
					fmt.Sprintf("%d new values in %q", len(newVals), col.Name), col.Name, seg,
					map[string]any{"new_values": newVals[:min(len(newVals), 20)], "rows": newCount, "fraction": frac}))
			}
		}
		if col.Name == b.ID {
			continue
		}
		switch {
		case r.numeric && !col.Categorical && ca.ks.N() > 0:
			tests = append(tests, c.numericDrift(i, ca))
		case col.Categorical && len(ca.cats) > 0 && col.Frequent != nil:
			tests = append(tests, c.categoricalDrift(i, ca))
		}
	}
	ps := make([]float64, len(tests))
	for i, t := range tests {
		ps[i] = t.p
	}
	qs := stattest.BenjaminiHochberg(ps)
	drifted := map[string]bool{}
	for i, t := range tests {
		t.ev["p_adjusted"] = qs[i]
		t.ev["alpha"] = c.opts.Alpha
		if qs[i] >= c.opts.Alpha || t.sev == finding.Info {
			continue
		}
		name := c.refs[t.ref].col.Name
		drifted[name] = true
		f := c.newFinding(t.rule, t.sev, VerdictDrift, t.title, name, seg, t.ev)
		f.Confidence = 1 - qs[i]
		fs = append(fs, f)
	}
	fs = append(fs, c.classConditional(a, seg)...)
	fs = append(fs, c.neighbourIndicators(a, seg, drifted)...)
	return fs
}

func (c *checker) numericDrift(i int, ca *colAcc) driftTest {
	r := c.refs[i]
	col := r.col
	ks := ca.ks.Result()
	std := col.Numeric.Std
	w := ca.ks.Wasserstein()
	nw := w / std
	if !(std > 0) {
		nw = 0
		if w > 0 {
			nw = math.Inf(1)
		}
	}
	batchHist := make([]float64, len(ca.hist))
	for j, h := range ca.hist {
		batchHist[j] = float64(h)
	}
	psi := stattest.PSI(col.Numeric.Hist, batchHist)
	js := stattest.JensenShannon(col.Numeric.Hist, batchHist, 2)
	sev, _ := band(nw, wassersteinBands)
	metric, value, thr := "normed_wasserstein", nw, wassersteinBands
	if s, ok := band(psi, psiBands); ok && s > sev {
		sev, metric, value, thr = s, "psi", psi, psiBands
	}
	ev := map[string]any{
		"test": "ks", "statistic": ks.D, "p_value": ks.P, "method": ks.Method,
		"effect_size":   map[string]any{"normed_wasserstein": nw, "psi": psi, "jensen_shannon": js},
		"effect_metric": metric, "effect_value": value,
		"threshold":  map[string]float64{"low": thr[0], "medium": thr[1], "high": thr[2]},
		"n_baseline": ca.ks.N(), "n_reference": r.ks.N(),
		"batch_mean": ca.mom.mean, "baseline_mean": col.Numeric.Mean, "baseline_std": std,
		"histogram": histogram(col.Numeric.Edges, col.Numeric.Hist, batchHist),
	}
	ev["n_baseline"] = r.ks.N()
	ev["n_batch"] = ca.ks.N()
	return driftTest{ref: i, p: ks.P, sev: sev, ev: ev, rule: "data.drift.numeric",
		title: fmt.Sprintf("%q drifted (KS D=%.3f, normed Wasserstein %.3f, PSI %.3f)", col.Name, ks.D, nw, psi)}
}

func histogram(edges, base, batch []float64) map[string]any {
	var sb, st float64
	for i := range base {
		sb += base[i]
		st += batch[i]
	}
	bp, tp := make([]float64, len(base)), make([]float64, len(batch))
	for i := range base {
		bp[i] = base[i] / sb
		tp[i] = batch[i] / max(st, 1)
	}
	return map[string]any{"edges": edges, "baseline": bp, "batch": tp}
}

func (c *checker) categoricalDrift(i int, ca *colAcc) driftTest {
	col := c.refs[i].col
	top := col.Frequent.Top()
	var names []string
	var base, batch []float64
	known := map[string]bool{}
	for _, it := range top {
		names = append(names, it.Value)
		base = append(base, float64(it.Count))
		batch = append(batch, float64(ca.cats[it.Value]))
		known[it.Value] = true
	}
	var other float64
	for v, k := range ca.cats {
		if !known[v] {
			other += float64(k)
		}
	}
	baseOther := float64(col.Frequent.N-col.Nulls) - sum(base)
	if other > 0 || baseOther > 0 {
		names = append(names, "(other)")
		base = append(base, max(baseOther, 0))
		batch = append(batch, other)
	}
	chi := stattest.ChiSquareHomogeneity(base, batch)
	js := stattest.JensenShannon(base, batch, 2)
	psi := stattest.PSI(base, batch)
	sev, _ := band(js, jsBands)
	metric, value, thr := "jensen_shannon", js, jsBands
	if s, ok := band(psi, psiBands); ok && s > sev {
		sev, metric, value, thr = s, "psi", psi, psiBands
	}
	rule, title := "data.drift.categorical", fmt.Sprintf("%q category mix changed (JS %.3f, PSI %.3f)", col.Name, js, psi)
	if col.Name == c.opts.Label {
		rule, title = "data.drift.label", fmt.Sprintf("label distribution of %q shifted (JS %.3f, PSI %.3f)", col.Name, js, psi)
	}
	bp, tp := normalise(base), normalise(batch)
	ev := map[string]any{
		"test": "chi2", "statistic": chi.Stat, "dof": chi.DoF, "p_value": chi.P,
		"effect_size":   map[string]any{"jensen_shannon": js, "psi": psi},
		"effect_metric": metric, "effect_value": value,
		"threshold": map[string]float64{"low": thr[0], "medium": thr[1], "high": thr[2]},
		"histogram": map[string]any{"categories": names, "baseline": bp, "batch": tp},
	}
	return driftTest{ref: i, p: chi.P, sev: sev, ev: ev, rule: rule, title: title}
}

func sum(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v
	}
	return s
}

func normalise(x []float64) []float64 {
	s := sum(x)
	out := make([]float64, len(x))
	for i, v := range x {
		if s > 0 {
			out[i] = v / s
		}
	}
	return out
}
