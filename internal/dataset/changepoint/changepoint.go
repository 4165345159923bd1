// Package changepoint holds streaming change detectors for one feature stream (for example a
// gateway's inference inputs): Page-Hinkley and two-sided CUSUM. Each Add costs a few
// floating-point operations and no allocation.
package changepoint

// CUSUM is the two-sided tabular CUSUM on standardised values: with z = (x-Mean)/Sigma it keeps
// S+ = max(0, S+ + z - K) and S- = max(0, S- - z - K) and alarms when either exceeds H. K is the
// allowance (half the shift to detect, in sigmas; 0.5 is usual) and H the decision interval in
// sigmas (4 to 5 gives an in-control average run length of several hundred to a few thousand).
type CUSUM struct {
	Mean, Sigma, K, H float64
	pos, neg          float64
	inv               float64
}

// NewCUSUM returns a detector for a stream with the given in-control mean and sigma.
func NewCUSUM(mean, sigma, k, h float64) *CUSUM {
	return &CUSUM{Mean: mean, Sigma: sigma, K: k, H: h, inv: 1 / sigma}
}

// Add feeds one value and reports whether the detector alarms; it restarts after an alarm.
func (c *CUSUM) Add(x float64) bool {
	z := (x - c.Mean) * c.inv
	c.pos = max(0, c.pos+z-c.K)
	c.neg = max(0, c.neg-z-c.K)
	if c.pos > c.H || c.neg > c.H {
		c.pos, c.neg = 0, 0
		return true
	}
	return false
}

// PageHinkley detects a change in the mean of a stream without knowing it in advance: it tracks
// the cumulative deviation from the running mean, less a tolerance Delta, and alarms when it
// rises more than Lambda above its minimum (an increase) or falls more than Lambda below its
// maximum (a decrease). Both are in the stream's units; set them in sigmas times sigma.
type PageHinkley struct {
	Delta, Lambda float64
	n             float64
	mean          float64
	up, upMin     float64
	down, downMax float64
}

// NewPageHinkley returns a detector with tolerance delta and threshold lambda.
func NewPageHinkley(delta, lambda float64) *PageHinkley {
	return &PageHinkley{Delta: delta, Lambda: lambda}
}

// Add feeds one value and reports whether a change was detected; it restarts after an alarm.
func (p *PageHinkley) Add(x float64) bool {
	p.n++
	p.mean += (x - p.mean) / p.n
	p.up += x - p.mean - p.Delta
	p.upMin = min(p.upMin, p.up)
	p.down += x - p.mean + p.Delta
	p.downMax = max(p.downMax, p.down)
	if p.up-p.upMin > p.Lambda || p.downMax-p.down > p.Lambda {
		*p = PageHinkley{Delta: p.Delta, Lambda: p.Lambda}
		return true
	}
	return false
}
