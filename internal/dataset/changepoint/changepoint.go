// Package changepoint holds streaming change detectors for one feature stream (for example a
// gateway's inference inputs): Page-Hinkley and two-sided CUSUM. Each Add costs a few
// floating-point operations and no allocation.
package changepoint

import "math"

// CUSUM is the two-sided tabular CUSUM on standardised values: with z = (x-Mean)/Sigma it keeps
// S+ = max(0, S+ + z - K) and S- = max(0, S- - z - K) and alarms when either exceeds H. K is the
// allowance (half the shift to detect, in sigmas; 0.5 is usual) and H the decision interval in
// sigmas (4 to 5 gives an in-control average run length of several hundred; CUSUMThreshold
// gives H for a chosen run length).
type CUSUM struct {
	Mean, Sigma, K, H float64
	pos, neg          float64
	inv               float64
}

// NewCUSUM returns a detector for a stream with the given in-control mean and sigma.
func NewCUSUM(mean, sigma, k, h float64) *CUSUM {
	return &CUSUM{Mean: mean, Sigma: sigma, K: k, H: h, inv: 1 / sigma}
}

// Add feeds one value and reports whether the detector alarms; it restarts after an alarm. NaN
// is ignored.
func (c *CUSUM) Add(x float64) bool {
	z := (x - c.Mean) * c.inv
	p := c.pos + z - c.K
	n := c.neg - z - c.K
	// Plain comparisons rather than the max builtin, whose NaN and signed-zero handling
	// costs several instructions on this hot path; NaN input fails both and is dropped below.
	if p < 0 {
		p = 0
	}
	if n < 0 {
		n = 0
	}
	if p > c.H || n > c.H {
		c.pos, c.neg = 0, 0
		return true
	}
	if p == p && n == n {
		c.pos, c.neg = p, n
	}
	return false
}

// Stat returns the larger of the two cumulative sums, in sigmas.
func (c *CUSUM) Stat() float64 { return max(c.pos, c.neg) }

// CUSUMThreshold returns the decision interval H (in sigmas) that gives a two-sided CUSUM with
// allowance k an in-control average run length of about arl values, by Siegmund's
// approximation ARL+ = (exp(2kb) - 2kb - 1) / (2k^2) with b = H + 1.166 for each side.
func CUSUMThreshold(k, arl float64) float64 {
	if !(k > 0) || !(arl > 1) {
		return math.NaN()
	}
	twoSided := func(h float64) float64 {
		b := 2 * k * (h + 1.166)
		return (math.Exp(b) - b - 1) / (2 * k * k) / 2
	}
	lo, hi := 0.0, 1.0
	for twoSided(hi) < arl {
		hi *= 2
		if hi > 1e6 {
			return math.Inf(1)
		}
	}
	for range 100 {
		m := (lo + hi) / 2
		if twoSided(m) < arl {
			lo = m
		} else {
			hi = m
		}
	}
	return hi
}

// PageHinkley detects a change in the mean of a stream without knowing it in advance: it tracks
// the cumulative deviation from the running mean, less a tolerance Delta, and alarms when it
// rises more than Lambda above its minimum (an increase) or falls more than Lambda below its
// maximum (a decrease). Both are in the stream's units; set them in sigmas times sigma.
type PageHinkley struct {
	Delta, Lambda float64
	n, sum        float64
	up, upMin     float64
	down, downMax float64
}

// NewPageHinkley returns a detector with tolerance delta and threshold lambda.
func NewPageHinkley(delta, lambda float64) *PageHinkley {
	return &PageHinkley{Delta: delta, Lambda: lambda}
}

// Add feeds one value and reports whether a change was detected; it restarts after an alarm.
// NaN is ignored.
func (p *PageHinkley) Add(x float64) bool {
	if x != x {
		return false
	}
	// The running mean is sum/n rather than an incremental update, so the division is off the
	// loop-carried dependency chain and successive calls overlap.
	p.n++
	p.sum += x
	d := x - p.sum/p.n
	p.up += d - p.Delta
	p.down += d + p.Delta
	if p.up < p.upMin {
		p.upMin = p.up
	}
	if p.down > p.downMax {
		p.downMax = p.down
	}
	if p.up-p.upMin > p.Lambda || p.downMax-p.down > p.Lambda {
		*p = PageHinkley{Delta: p.Delta, Lambda: p.Lambda}
		return true
	}
	return false
}

// Stat returns the larger of the two Page-Hinkley statistics, in the stream's units.
func (p *PageHinkley) Stat() float64 { return max(p.up-p.upMin, p.downMax-p.down) }
