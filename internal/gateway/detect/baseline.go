package detect

import "math"

// Baseline is what the detectors know of an endpoint's training data: per-feature moments and
// range, optionally decile histograms and a sample of rows (from a `pipewarden data profile`
// baseline), in the order of the model's features.
type Baseline struct {
	Names              []string
	Mean, Std          []float64
	Min, Max           []float64
	Sample             [][]float64 // optional rows, for nearest-neighbour distances
	nnLimit            float64     // standardised distance above which a query is out of distribution
	cells              map[uint64]struct{}
	sampleStd          [][]float64
	standardisedSample bool
	novelRate          float64     // share of sample rows alone in their orthant: the natural novelty
	chol               [][]float64 // Cholesky factor of the sample's (ridged) correlation matrix
	mahaLimit          float64     // squared Mahalanobis distance above which a query is out of distribution
}

// Dim is the number of features.
func (b *Baseline) Dim() int { return len(b.Mean) }

// prepare standardises the sample and derives the nearest-neighbour limit: the 99th percentile
// of the sample's own leave-one-out nearest-neighbour distances, times 1.5.
func (b *Baseline) prepare(maxSample int) {
	if b.standardisedSample {
		return
	}
	b.standardisedSample = true
	for j := range b.Std {
		if !(b.Std[j] > 0) || math.IsNaN(b.Std[j]) {
			b.Std[j] = 1
		}
	}
	rows := b.Sample
	if len(rows) > maxSample {
		rows = rows[:maxSample]
	}
	for _, r := range rows {
		if len(r) != b.Dim() {
			continue
		}
		z := make([]float64, len(r))
		b.standardise(r, z)
		b.sampleStd = append(b.sampleStd, z)
	}
	b.cells = map[uint64]struct{}{}
	count := map[uint64]int{}
	for _, z := range b.sampleStd {
		c := cellOf(z)
		b.cells[c] = struct{}{}
		count[c]++
	}
	if len(b.sampleStd) > 0 {
		alone := 0
		for _, n := range count {
			if n == 1 {
				alone++
			}
		}
		b.novelRate = float64(alone) / float64(len(b.sampleStd))
	}
	b.prepareMahalanobis()
	if len(b.sampleStd) >= 20 {
		d := make([]float64, len(b.sampleStd))
		for i, z := range b.sampleStd {
			d[i] = nearest(z, b.sampleStd, i)
		}
		b.nnLimit = 1.5 * quantile(d, 0.99)
	}
}

func (b *Baseline) standardise(x, z []float64) {
	for j := range z {
		z[j] = (x[j] - b.Mean[j]) / b.Std[j]
	}
}

// cellOf names the orthant of a standardised row (which side of the mean each feature is on):
// a coarse cell of the input space for coverage.
func cellOf(z []float64) uint64 {
	h := uint64(14695981039346656037)
	for _, v := range z {
		bit := uint64(0)
		if v > 0 {
			bit = 1
		}
		h = (h ^ bit) * 1099511628211
	}
	return h
}

// nearest is the smallest Euclidean distance from z to rows other than skip.
func nearest(z []float64, rows [][]float64, skip int) float64 {
	best := math.Inf(1)
	for i, r := range rows {
		if i == skip {
			continue
		}
		d := 0.0
		for j, v := range r {
			t := v - z[j]
			d += t * t
			if d >= best {
				break
			}
		}
		if d < best {
			best = d
		}
	}
	return math.Sqrt(best)
}

func quantile(x []float64, q float64) float64 {
	s := append([]float64(nil), x...)
	sortFloats(s)
	i := int(q * float64(len(s)-1))
	return s[i]
}

// prepareMahalanobis factors the sample's correlation matrix (with a ridge, for small samples
// and collinear features) and sets the out-of-distribution limit at twice the sample's own 99th
// percentile of squared Mahalanobis distance. Natural inputs keep the features' correlations;
// uniform or synthetic queries break them, which per-feature ranges cannot see.
func (b *Baseline) prepareMahalanobis() {
	d, n := b.Dim(), len(b.sampleStd)
	if n < 2*d+10 || d > 200 {
		return
	}
	c := make([][]float64, d)
	for i := range c {
		c[i] = make([]float64, d)
	}
	for _, z := range b.sampleStd {
		for i := range d {
			for j := 0; j <= i; j++ {
				c[i][j] += z[i] * z[j]
			}
		}
	}
	for i := range d {
		for j := 0; j <= i; j++ {
			c[i][j] /= float64(n - 1)
			c[j][i] = c[i][j]
		}
		c[i][i] += 0.05
	}
	l, ok := cholesky(c)
	if !ok {
		return
	}
	b.chol = l
	m := make([]float64, n)
	for i, z := range b.sampleStd {
		m[i] = b.mahalanobis2(z)
	}
	b.mahaLimit = 2 * quantile(m, 0.99)
}

// mahalanobis2 is the squared Mahalanobis distance of a standardised row.
func (b *Baseline) mahalanobis2(z []float64) float64 {
	d := len(z)
	y := make([]float64, d)
	s := 0.0
	for i := range d {
		v := z[i]
		for k := range i {
			v -= b.chol[i][k] * y[k]
		}
		y[i] = v / b.chol[i][i]
		s += y[i] * y[i]
	}
	return s
}

// cholesky returns the lower-triangular L with L Lᵀ = a, or false if a is not positive definite.
func cholesky(a [][]float64) ([][]float64, bool) {
	d := len(a)
	l := make([][]float64, d)
	for i := range l {
		l[i] = make([]float64, d)
	}
	for i := range d {
		for j := 0; j <= i; j++ {
			s := a[i][j]
			for k := range j {
				s -= l[i][k] * l[j][k]
			}
			if i == j {
				if s <= 0 {
					return nil, false
				}
				l[i][i] = math.Sqrt(s)
			} else {
				l[i][j] = s / l[j][j]
			}
		}
	}
	return l, true
}
