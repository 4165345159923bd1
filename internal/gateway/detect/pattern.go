package detect

import (
	"fmt"
	"math"
	"time"

	"github.com/pipewarden/pipewarden/internal/finding"
)

// patternState holds the volume and pattern signals of one client: error rate, request rate,
// one-feature-at-a-time sweeps, and coverage of input-space orthants the baseline never visits.
type patternState struct {
	errors   ring
	errSeen  int
	minute   time.Time
	inMinute int
	prev     []float64
	sweeps   ring
	novel    ring
	pairs    int
}

func (p *patternState) status(cfg *PatternConfig, q Query) *alarm {
	if p.errors.v == nil {
		p.errors = newRing(2 * cfg.Window)
	}
	e := 0.0
	if q.Status >= 400 {
		e = 1
		p.errSeen++
	}
	p.errors.add(e)
	if cfg.PerMinute > 0 {
		m := q.Time.Truncate(time.Minute)
		if !m.Equal(p.minute) {
			p.minute, p.inMinute = m, 0
		}
		p.inMinute++
		if p.inMinute == cfg.PerMinute+1 {
			return &alarm{
				rule: RuleRate, detector: Pattern, severity: finding.Medium,
				title:     fmt.Sprintf("More than %d requests in one minute", cfg.PerMinute),
				statistic: float64(p.inMinute), threshold: float64(cfg.PerMinute),
				atlas: []string{"AML.T0029", "AML.T0024"}, conf: 0.6,
			}
		}
	}
	errs := p.errors.sum()
	if int(errs) >= cfg.MinErrors && errs/float64(p.errors.len()) >= cfg.ErrorRate {
		return &alarm{
			rule: RuleErrors, detector: Pattern, severity: finding.Medium,
			title:     fmt.Sprintf("%d of the client's last %d requests failed: probing for input validation", int(errs), p.errors.len()),
			statistic: errs / float64(p.errors.len()), threshold: cfg.ErrorRate,
			extra: map[string]any{"errors": p.errSeen},
			atlas: []string{"AML.T0043", "AML.T0029"}, conf: 0.5,
		}
	}
	return nil
}

func (p *patternState) shape(cfg *PatternConfig, b *Baseline, x, z []float64, evaluate bool) *alarm {
	if p.sweeps.v == nil {
		p.sweeps = newRing(cfg.Window)
		p.novel = newRing(cfg.Window)
	}
	var out *alarm
	if len(p.prev) == len(x) {
		changed := 0
		for j, v := range x {
			if v != p.prev[j] && !(math.IsNaN(v) && math.IsNaN(p.prev[j])) {
				changed++
			}
		}
		s := 0.0
		if changed == 1 {
			s = 1
		}
		p.sweeps.add(s)
		p.pairs++
		if p.pairs >= cfg.MinQueries && p.sweeps.len() > 0 {
			rate := p.sweeps.sum() / float64(p.sweeps.len())
			if rate >= cfg.SweepRate {
				out = &alarm{
					rule: RuleSweep, detector: Pattern, severity: finding.High,
					title:     fmt.Sprintf("%.0f%% of consecutive queries change exactly one feature: systematic sweep", 100*rate),
					statistic: rate, threshold: cfg.SweepRate,
					extra: map[string]any{"window": p.sweeps.len()},
					atlas: []string{"AML.T0024"}, owasp: []string{"ML05"}, conf: 0.8,
				}
			}
		}
	}
	p.prev = append(p.prev[:0], x...)
	if out != nil || b == nil || len(b.cells) == 0 {
		return out
	}
	n := 0.0
	if _, ok := b.cells[cellOf(z)]; !ok {
		n = 1
	}
	p.novel.add(n)
	if !evaluate || !p.novel.full {
		return nil
	}
	rate := p.novel.sum() / float64(p.novel.len())
	limit := math.Max(cfg.CoverageRate, b.novelRate+cfg.CoverageRate)
	if rate < limit {
		return nil
	}
	return &alarm{
		rule: RuleCoverage, detector: Pattern, severity: finding.Medium,
		title:     fmt.Sprintf("%.0f%% of recent queries fall in regions of the input space the training data never covers", 100*rate),
		statistic: rate, threshold: limit,
		extra: map[string]any{"window": p.novel.len(), "baseline_novel_rate": round(b.novelRate)},
		atlas: []string{"AML.T0024"}, owasp: []string{"ML05"}, conf: 0.5,
	}
}
