package dataset

import (
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"

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

// points is a row-major matrix of standardised rows, kept flat so that the brute-force
// neighbour search streams through contiguous memory.
type points struct {
	dim int
	x   []float64
}

func newPoints(dim, capRows int) points {
	return points{dim: dim, x: make([]float64, 0, dim*capRows)}
}

func (p *points) add(row []float64) { p.x = append(p.x, row...) }

func (p points) len() int {
	if p.dim == 0 {
		return 0
	}
	return len(p.x) / p.dim
}

func (p points) row(i int) []float64 { return p.x[i*p.dim : (i+1)*p.dim : (i+1)*p.dim] }

// kNearest fills ds and ix with the len(ds) smallest distances from q to the rows of p
// (skipping row skip) and their indices, nearest first, and returns how many it found.
func (p points) kNearest(q []float64, skip int, ds []float64, ix []int) int {
	k, n, dim := len(ds), 0, p.dim
	if k == 0 || dim != len(q) {
		return 0
	}
	limit := math.Inf(1)
	x := p.x
rows:
	for i, off := 0, 0; off+dim <= len(x); i, off = i+1, off+dim {
		if i == skip {
			continue
		}
		r := x[off : off+dim]
		r = r[:len(q)]
		var s float64
		j := 0
		// Four dimensions at a time, giving up on a row as soon as it cannot be among the k
		// nearest: most rows are far, so most are dropped after the first few dimensions.
		for ; j+4 <= len(q); j += 4 {
			t0, t1, t2, t3 := q[j]-r[j], q[j+1]-r[j+1], q[j+2]-r[j+2], q[j+3]-r[j+3]
			s += t0*t0 + t1*t1 + t2*t2 + t3*t3
			if s >= limit {
				continue rows
			}
		}
		for ; j < len(q); j++ {
			t := q[j] - r[j]
			s += t * t
		}
		if s >= limit {
			continue
		}
		pos := k - 1
		if n < k {
			pos = n
			n++
		}
		for pos > 0 && ds[pos-1] > s {
			ds[pos], ix[pos] = ds[pos-1], ix[pos-1]
			pos--
		}
		ds[pos], ix[pos] = s, i
		if n == k {
			limit = ds[k-1]
		}
	}
	for i := range n {
		ds[i] = math.Sqrt(ds[i])
	}
	return n
}

// rowScores are the per-row neighbour measurements of a batch against a reference.
type rowScores struct {
	disagree  []bool    // label differs from the reference neighbours' majority
	nearDup   []bool    // much closer to one row (batch or reference) than is typical
	refK      []float64 // distance to the k-th nearest reference row (outlier score)
	clustered []bool    // set by cluster(): far from the reference yet dense within the batch
	inK       []float64 // distance to the k-th nearest other batch row
}

// within is each batch row's distance to its nearest and k-th nearest other batch row. A shift
// of the whole batch leaves it unchanged, so it is computed once per batch.
type within struct{ first, kth []float64 }

func withinBatch(batch points, k int) within {
	n := batch.len()
	w := within{first: make([]float64, n), kth: make([]float64, n)}
	k = min(k, n-1)
	if k <= 0 {
		return w
	}
	parallelRows(n, func(lo, hi int) {
		ds, ix := make([]float64, k), make([]int, k)
		for i := lo; i < hi; i++ {
			if m := batch.kNearest(batch.row(i), i, ds, ix); m > 0 {
				w.first[i], w.kth[i] = ds[0], ds[m-1]
			}
		}
	})
	return w
}

// parallelRows runs fn over [0, n) split into one contiguous range per CPU; each range writes
// only its own rows' results.
func parallelRows(n int, fn func(lo, hi int)) {
	parts := min(runtime.GOMAXPROCS(0), n/64)
	if parts <= 1 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	for p := range parts {
		wg.Go(func() { fn(p*n/parts, (p+1)*n/parts) })
	}
	wg.Wait()
}

func score(batch points, w within, blabels []string, ref points, rlabels []string, k int) rowScores {
	n := batch.len()
	s := rowScores{disagree: make([]bool, n), nearDup: make([]bool, n), refK: make([]float64, n),
		clustered: make([]bool, n), inK: w.kth}
	ref1 := make([]float64, n)
	kr := min(k, ref.len())
	parallelRows(n, func(lo, hi int) {
		ds, ix := make([]float64, kr), make([]int, kr)
		counts := map[string]int{}
		for i := lo; i < hi; i++ {
			m := ref.kNearest(batch.row(i), -1, ds, ix)
			if m == 0 {
				continue
			}
			ref1[i], s.refK[i] = ds[0], ds[m-1]
			if blabels != nil && rlabels != nil {
				clear(counts)
				best := 0
				for _, j := range ix[:m] {
					counts[rlabels[j]]++
					best = max(best, counts[rlabels[j]])
				}
				s.disagree[i] = counts[blabels[i]] < best
			}
		}
	})
	mRef, mIn := median(ref1), median(w.first)
	for i := range n {
		s.nearDup[i] = (n > 1 && w.first[i] < nearDupRatio*mIn) || ref1[i] < nearDupRatio*mRef
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
	dim := len(s.Features)
	for f := 0; f < calFolds; f++ {
		chunk, rest := newPoints(dim, n/calFolds+1), newPoints(dim, n)
		var cl, rl []string
		for pi, i := range perm {
			if pi%calFolds == f {
				chunk.add(pts[i])
				if hasLabels {
					cl = append(cl, s.Labels[i])
				}
			} else {
				rest.add(pts[i])
				if hasLabels {
					rl = append(rl, s.Labels[i])
				}
			}
		}
		sc := score(chunk, withinBatch(chunk, neighbourK), cl, rest, rl, neighbourK)
		disagree += count(sc.disagree)
		neardup += count(sc.nearDup)
		trials += int64(chunk.len())
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
