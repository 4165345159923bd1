package detect

import (
	"fmt"
	"math"

	"github.com/pipewarden/pipewarden/internal/finding"
)

// pradaState follows PRADA (Juuti et al., 2019): for each predicted class a growing set of the
// client's queries; each new query's minimum distance to its class's set joins the distance
// window, and the query joins the set when that distance exceeds the class's mean minus one
// standard deviation. Natural queries give roughly normal minimum distances; synthetic
// extraction queries (perturbations of seeds, Jacobian steps) do not, which Shapiro-Wilk sees.
type pradaState struct {
	classes map[int]*pradaClass
	dists   ring
	seen    int
	low     int // consecutive evaluations below Delta
}

type pradaClass struct {
	points [][]float64
	next   int
	n      float64 // distance moments of this class
	mean   float64
	m2     float64
}

const pradaWarmup = 10 // growing-set points a class needs before its distances count

func (p *pradaState) observe(cfg *PRADAConfig, z []float64, class int, evaluate bool) *alarm {
	if p.classes == nil {
		p.classes = map[int]*pradaClass{}
		p.dists = newRing(cfg.Window)
	}
	for _, v := range z {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil
		}
	}
	c, ok := p.classes[class]
	if !ok {
		if len(p.classes) >= 1000 {
			return nil // a model with more classes than this is not tabular: skip
		}
		c = &pradaClass{}
		p.classes[class] = c
		c.add(z, cfg.MaxPoints)
		return nil
	}
	d := math.Inf(1)
	for _, pt := range c.points {
		if t := dist(pt, z); t < d {
			d = t
		}
	}
	if d <= cfg.Duplicate*math.Sqrt(float64(len(z))) {
		// A near-repeat of an earlier query (the same record scored again) says nothing about
		// extraction; runs of them are Blacklight's business.
		return nil
	}
	c.n++
	delta := d - c.mean
	c.mean += delta / c.n
	c.m2 += delta * (d - c.mean)
	sd := 0.0
	if c.n > 1 {
		sd = math.Sqrt(c.m2 / (c.n - 1))
	}
	warm := len(c.points) >= pradaWarmup
	if d > math.Max(0, c.mean-sd) {
		c.add(z, cfg.MaxPoints)
	}
	if !warm {
		// A class's first queries are far from its nearly empty growing set whatever the
		// client does: leaving them out keeps the tail of natural traffic short.
		return nil
	}
	p.dists.add(d)
	p.seen++
	if !evaluate || p.seen < cfg.MinQueries {
		return nil
	}
	w, _, err := ShapiroWilk(p.dists.values())
	if err != nil {
		w = 0 // all distances equal: as far from normal as it gets
	}
	if w >= cfg.Delta {
		p.low = 0
		return nil
	}
	if p.low++; p.low < cfg.Persist {
		return nil
	}
	return &alarm{
		rule: RuleExtraction, detector: PRADA, severity: finding.High,
		title:     fmt.Sprintf("Query distances look synthetic (Shapiro-Wilk W = %.3f < %.2f): likely model extraction", w, cfg.Delta),
		statistic: w, threshold: cfg.Delta,
		extra: map[string]any{"test": "shapiro-wilk on minimum L2 distances (PRADA)", "distances": p.dists.len(),
			"classes": len(p.classes), "consecutive_evaluations": p.low},
		atlas: []string{"AML.T0024"}, owasp: []string{"ML05"}, conf: 0.8,
	}
}

func (c *pradaClass) add(z []float64, max int) {
	pt := append([]float64(nil), z...)
	if len(c.points) < max {
		c.points = append(c.points, pt)
		return
	}
	c.points[c.next] = pt
	c.next = (c.next + 1) % max
}
