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
	errors     ring
	errSeen    int
	minute     time.Time
	inMinute   int
	prev       []float64
	sweeps     ring
	novel      ring
	pairs      int
	recent     [][]float64 // the client's last queries, for sign steps
	nextRec    int
	steps      ring
	stepSeen   map[uint64]int
	recentKeys map[uint64]int // exact hashes of the last exactRecent queries
	exactRing  []uint64
	exactNext  int
	stepRing   []uint64
	stepNext   int
	keyBuf     []uint64
}

// signStepRecent is how many of the client's last queries a new one is compared with.
const signStepRecent = 32

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
	if out == nil {
		out = p.signSteps(cfg, x)
	}
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

// signSteps detects sign-gradient steps (FGSM, Papernot's Jacobian augmentation): x + λ·sign(∇)
// moves every feature by the same absolute amount λ·a_j whatever the signs, with a_j the
// attacker's own per-feature scale, unknown to us but fixed. So the vector of absolute
// differences between a query and an earlier one recurs exactly across the attacker's queries;
// natural variation never repeats it. Differences with a zero component (exact repeats, sweeps)
// are left to the other detectors.
func (p *patternState) signSteps(cfg *PatternConfig, x []float64) *alarm {
	if len(x) < 3 {
		return nil
	}
	if p.steps.v == nil {
		p.steps = newRing(cfg.Window)
		p.stepSeen = map[uint64]int{}
	}
	step := 0.0
	keys := p.keyBuf[:0]
	// An exact repeat of a recent query (a record scored again) repeats its differences to
	// every other repeated record: that is re-scoring, not stepping.
	hx := exactKey(x)
	repeat := p.recentKeys[hx] > 0
	for _, r := range p.recent {
		if repeat {
			break
		}
		k, ok := stepKey(x, r)
		if !ok {
			continue
		}
		if p.stepSeen[k] > 0 {
			step = 1
		}
		keys = append(keys, k)
	}
	for _, k := range keys {
		if len(p.stepRing) == stepKeys {
			old := p.stepRing[p.stepNext]
			if p.stepSeen[old]--; p.stepSeen[old] <= 0 {
				delete(p.stepSeen, old)
			}
			p.stepRing[p.stepNext] = k
			p.stepNext = (p.stepNext + 1) % stepKeys
		} else {
			p.stepRing = append(p.stepRing, k)
		}
		p.stepSeen[k]++
	}
	p.keyBuf = keys
	q := append([]float64(nil), x...)
	if len(p.recent) < signStepRecent {
		p.recent = append(p.recent, q)
	} else {
		p.recent[p.nextRec] = q
		p.nextRec = (p.nextRec + 1) % signStepRecent
	}
	// Exact hashes are remembered far longer than step keys (about signStepRecent queries),
	// so a re-scored pair of records cannot pass for a repeated step.
	if p.recentKeys == nil {
		p.recentKeys = map[uint64]int{}
	}
	if len(p.exactRing) == exactRecent {
		old := p.exactRing[p.exactNext]
		if p.recentKeys[old]--; p.recentKeys[old] <= 0 {
			delete(p.recentKeys, old)
		}
		p.exactRing[p.exactNext] = hx
		p.exactNext = (p.exactNext + 1) % exactRecent
	} else {
		p.exactRing = append(p.exactRing, hx)
	}
	p.recentKeys[hx]++
	if repeat {
		return nil // no information about stepping: not counted either way
	}
	p.steps.add(step)
	if p.steps.len() < cfg.MinQueries {
		return nil
	}
	rate := p.steps.sum() / float64(p.steps.len())
	if rate < cfg.SignStepRate {
		return nil
	}
	return &alarm{
		rule: RuleSignSteps, detector: Pattern, severity: finding.High,
		title:     fmt.Sprintf("%.0f%% of recent queries repeat an earlier query's per-feature step sizes: sign-gradient steps (adversarial crafting or Jacobian-based extraction)", 100*rate),
		statistic: rate, threshold: cfg.SignStepRate,
		extra: map[string]any{"window": p.steps.len()},
		atlas: []string{"AML.T0043", "AML.T0024"}, owasp: []string{"ML01", "ML05"}, conf: 0.8,
	}
}

const (
	stepKeys    = 1024 // step-size keys remembered per client
	exactRecent = 512  // exact query hashes remembered per client
)

// stepKey hashes |x-r| with each component rounded to about six significant digits (so that
// (p+λa)-p and λa, which differ in the last bits, agree); ok is false if a component is zero.
func stepKey(x, r []float64) (uint64, bool) {
	h := uint64(14695981039346656037)
	for j := range x {
		d := math.Abs(x[j] - r[j])
		if d == 0 || math.IsNaN(d) || math.IsInf(d, 0) {
			return 0, false
		}
		b := (math.Float64bits(d) + 1<<31) >> 32
		h = (h ^ b) * 1099511628211
	}
	return h, true
}

// exactKey hashes a query's exact values.
func exactKey(x []float64) uint64 {
	h := uint64(14695981039346656037)
	for _, v := range x {
		h = (h ^ math.Float64bits(v)) * 1099511628211
	}
	return h
}
