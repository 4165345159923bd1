package dataset

import (
	"math"
	"math/rand/v2"
	"slices"

	"gonum.org/v1/gonum/mathext"
)

// Neighbour-based indicators work in a standardised feature space: each numeric feature minus
// its baseline mean, over its baseline standard deviation; missing values sit at the mean.

const (
	neighbourK   = 5
	nearDupRatio = 0.1 // a row whose nearest neighbour is 10x closer than the median is a near duplicate
	calFolds     = 5
)

// Rate is a calibrated per-row event rate: Count events in Trials rows of held-out baseline
// chunks, and (for distance scores) the Threshold that defines the event.
type Rate struct {
	Count     int64   `json:"count"`
	Trials    int64   `json:"trials"`
	Rate      float64 `json:"rate"`
	Threshold float64 `json:"threshold,omitempty"`
}

// Calibration holds what the manipulation indicators look like on clean data: each rate was
// measured by scoring held-out chunks of the baseline sample against the rest of it.
type Calibration struct {
	Folds      int   `json:"folds"`
	K          int   `json:"k"`
	LabelNoise *Rate `json:"label_noise,omitempty"`
	NearDup    Rate  `json:"near_duplicates"`
	Outlier    Rate  `json:"outliers"`
	Cluster    Rate  `json:"off_baseline_cluster"`
}

type space struct {
	mean, scale []float64
}

func (b *Baseline) space() space {
	s := b.Sample
	sp := space{mean: make([]float64, len(s.Features)), scale: make([]float64, len(s.Features))}
	for j, f := range s.Features {
		c := b.column(f)
		sp.mean[j], sp.scale[j] = c.Numeric.Mean, c.Numeric.Std
		if !(sp.scale[j] > 0) {
			sp.scale[j] = math.Inf(1) // a constant feature carries no distance
		}
	}
	return sp
}

func (sp space) point(vals []float64, shift []float64) []float64 {
	p := make([]float64, len(vals))
	for j, v := range vals {
		if math.IsNaN(v) {
			continue
		}
		if shift != nil {
			v -= shift[j]
		}
		p[j] = (v - sp.mean[j]) / sp.scale[j]
	}
	return p
}

func sqDist(a, b []float64, limit float64) float64 {
	var s float64
	for i := range a {
		d := a[i] - b[i]
		s += d * d
		if s > limit {
			return s
		}
	}
	return s
}

// kNearest returns the k smallest distances from q to rows of ref (skipping index skip) and
// their indices, nearest first.
func kNearest(q []float64, ref [][]float64, k, skip int) ([]float64, []int) {
	ds := make([]float64, 0, k+1)
	ix := make([]int, 0, k+1)
	limit := math.Inf(1)
	for i, r := range ref {
		if i == skip {
			continue
		}
		d := sqDist(q, r, limit)
		if len(ds) == k && d >= limit {
			continue
		}
		pos := len(ds)
		for pos > 0 && ds[pos-1] > d {
			pos--
		}
		ds = slices.Insert(ds, pos, d)
		ix = slices.Insert(ix, pos, i)
		if len(ds) > k {
			ds, ix = ds[:k], ix[:k]
		}
		if len(ds) == k {
			limit = ds[k-1]
		}
	}
	for i := range ds {
		ds[i] = math.Sqrt(ds[i])
	}
	return ds, ix
}

// rowScores are the per-row neighbour measurements of a batch against a reference.
type rowScores struct {
	disagree  []bool    // label differs from the reference neighbours' majority
	nearDup   []bool    // much closer to one row (batch or reference) than is typical
	refK      []float64 // distance to the k-th nearest reference row (outlier score)
	clustered []bool    // set by cluster(): far from the reference yet dense within the batch
	inK       []float64 // distance to the k-th nearest other batch row
}

func score(batch [][]float64, blabels []string, ref [][]float64, rlabels []string, k int) rowScores {
	n := len(batch)
	s := rowScores{disagree: make([]bool, n), nearDup: make([]bool, n), refK: make([]float64, n),
		clustered: make([]bool, n), inK: make([]float64, n)}
	ref1, in1 := make([]float64, n), make([]float64, n)
	kr, ki := min(k, len(ref)), min(k, n-1)
	for i, q := range batch {
		d, ix := kNearest(q, ref, kr, -1)
		if len(d) > 0 {
			ref1[i], s.refK[i] = d[0], d[len(d)-1]
		}
		if blabels != nil && rlabels != nil {
			counts := map[string]int{}
			best := 0
			for _, j := range ix {
				counts[rlabels[j]]++
				best = max(best, counts[rlabels[j]])
			}
			s.disagree[i] = counts[blabels[i]] < best
		}
		if ki > 0 {
			d2, _ := kNearest(q, batch, ki, i)
			in1[i], s.inK[i] = d2[0], d2[len(d2)-1]
		}
	}
	mRef, mIn := median(ref1), median(in1)
	for i := range batch {
		s.nearDup[i] = (ki > 0 && in1[i] < nearDupRatio*mIn) || ref1[i] < nearDupRatio*mRef
	}
	return s
}

// cluster marks rows that are off the reference (k-th reference distance above threshold) yet
// have a batch neighbourhood denser than the batch's median: a group placed away from the data.
func (s *rowScores) cluster(threshold float64) int64 {
	mIn := median(s.inK)
	var c int64
	for i := range s.refK {
		s.clustered[i] = s.refK[i] > threshold && s.inK[i] < mIn
		if s.clustered[i] {
			c++
		}
	}
	return c
}

func median(x []float64) float64 {
	if len(x) == 0 {
		return math.NaN()
	}
	y := slices.Clone(x)
	slices.Sort(y)
	return y[len(y)/2]
}

func quantile(x []float64, q float64) float64 {
	y := slices.Clone(x)
	slices.Sort(y)
	return y[min(len(y)-1, int(q*float64(len(y))))]
}

func count(b []bool) int64 {
	var c int64
	for _, x := range b {
		if x {
			c++
		}
	}
	return c
}

// calibrate scores held-out chunks of the baseline sample against the rest of it.
func calibrate(b *Baseline, seed uint64) *Calibration {
	s := b.Sample
	n := len(s.Rows)
	if n < 4*calFolds {
		return nil
	}
	sp := b.space()
	pts := make([][]float64, n)
	for i, r := range s.Rows {
		pts[i] = sp.point(numsToFloats(r), nil)
	}
	perm := rand.New(rand.NewPCG(seed, 0x63616c)).Perm(n)
	cal := &Calibration{Folds: calFolds, K: neighbourK}
	hasLabels := len(s.Labels) == n
	var disagree, neardup, trials int64
	var all []rowScores
	var refKs []float64
	for f := 0; f < calFolds; f++ {
		var chunk, rest [][]float64
		var cl, rl []string
		for pi, i := range perm {
			if pi%calFolds == f {
				chunk = append(chunk, pts[i])
				if hasLabels {
					cl = append(cl, s.Labels[i])
				}
			} else {
				rest = append(rest, pts[i])
				if hasLabels {
					rl = append(rl, s.Labels[i])
				}
			}
		}
		sc := score(chunk, cl, rest, rl, neighbourK)
		disagree += count(sc.disagree)
		neardup += count(sc.nearDup)
		trials += int64(len(chunk))
		refKs = append(refKs, sc.refK...)
		all = append(all, sc)
	}
	q99 := quantile(refKs, 0.99)
	outT := 3 * q99
	var out, clu int64
	for i := range all {
		for _, d := range all[i].refK {
			if d > outT {
				out++
			}
		}
		clu += all[i].cluster(q99)
	}
	mk := func(c int64, t float64) Rate {
		return Rate{Count: c, Trials: trials, Rate: float64(c) / float64(trials), Threshold: t}
	}
	if hasLabels {
		r := mk(disagree, 0)
		cal.LabelNoise = &r
	}
	cal.NearDup = mk(neardup, 0)
	cal.Outlier = mk(out, outT)
	cal.Cluster = mk(clu, q99)
	return cal
}

func numsToFloats(r []Num) []float64 {
	out := make([]float64, len(r))
	for i, v := range r {
		out[i] = float64(v)
	}
	return out
}

// upperRate is the one-sided 95% Wilson upper bound of a calibrated rate: the batch is tested
// against the worst rate the calibration is compatible with, so a lucky calibration does not
// make clean batches look poisoned.
func (r Rate) upperRate() float64 {
	const z = 1.645
	n := float64(max(r.Trials, 1))
	p := float64(r.Count) / n
	c := p + z*z/(2*n)
	w := z * math.Sqrt(p*(1-p)/n+z*z/(4*n*n))
	return min((c+w)/(1+z*z/n), 1)
}

// binomSF is P(X >= k) for X ~ Binomial(n, p).
func binomSF(k, n int64, p float64) float64 {
	if k <= 0 {
		return 1
	}
	if k > n {
		return 0
	}
	if p <= 0 {
		return 0
	}
	if p >= 1 {
		return 1
	}
	return mathext.RegIncBeta(float64(k), float64(n-k+1), p)
}
