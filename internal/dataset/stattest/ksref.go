package stattest

import (
	"math"
	"sort"
)

// KSRef is a sorted reference sample prepared for streaming KS tests: a batch is counted into
// slots between the reference's distinct values as it streams by, so the exact two-sample D
// (ties included) needs O(reference) memory and no batch values are kept.
type KSRef struct {
	vals  []float64 // distinct reference values, ascending
	cum   []int     // number of reference values <= vals[i]
	n     int
	guide []int32 // guide[c]: first index with vals[i] >= lo + c*width
	lo    float64
	width float64
}

// NewKSRef builds a reference from a sorted sample (NaNs removed).
func NewKSRef(sorted []float64) *KSRef {
	r := &KSRef{n: len(sorted)}
	for i, v := range sorted {
		if i > 0 && v == sorted[i-1] {
			r.cum[len(r.cum)-1]++
			continue
		}
		r.vals = append(r.vals, v)
		prev := 0
		if len(r.cum) > 0 {
			prev = r.cum[len(r.cum)-1]
		}
		r.cum = append(r.cum, prev+1)
	}
	k := len(r.vals)
	if k < 2 {
		return r
	}
	cells := min(16384, 4*k)
	r.lo = r.vals[0]
	r.width = (r.vals[k-1] - r.lo) / float64(cells)
	if !(r.width > 0) || math.IsInf(r.width, 0) {
		return r
	}
	r.guide = make([]int32, cells+2)
	i := 0
	for c := range r.guide {
		edge := r.lo + float64(c)*r.width
		for i < k && r.vals[i] < edge {
			i++
		}
		r.guide[c] = int32(i)
	}
	return r
}

// N is the reference sample size.
func (r *KSRef) N() int { return r.n }

// upper returns how many distinct reference values are <= v.
func (r *KSRef) upper(v float64) int {
	k := len(r.vals)
	a, b := 0, k
	if r.guide != nil {
		if v < r.lo {
			return 0
		}
		c := int((v - r.lo) / r.width)
		if c >= len(r.guide)-1 {
			return sort.SearchFloat64s(r.vals, math.Nextafter(v, math.Inf(1)))
		}
		a, b = int(r.guide[c]), int(r.guide[c+1])
		for a > 0 && r.vals[a-1] > v {
			a--
		}
		for b < k && r.vals[b] <= v {
			b++
		}
	}
	for a < b {
		m := int(uint(a+b) >> 1)
		if r.vals[m] <= v {
			a = m + 1
		} else {
			b = m
		}
	}
	return a
}

// KSCounter accumulates one batch against a KSRef. Slot 2i+1 counts batch values equal to
// vals[i]; slot 2i counts values strictly between vals[i-1] and vals[i] (slot 0: below all,
// slot 2k: above all). Each slot also sums its values for the Wasserstein estimate; count and
// sum share a cache line, so a value costs one miss there, not two.
type KSCounter struct {
	ref   *KSRef
	slots []slot
	n     int64
}

type slot struct {
	n   int64
	sum float64
}

// NewCounter returns an empty counter for r.
func (r *KSRef) NewCounter() *KSCounter {
	return &KSCounter{ref: r, slots: make([]slot, 2*len(r.vals)+1)}
}

// Add counts one batch value (NaN is ignored).
func (c *KSCounter) Add(v float64) {
	if v != v {
		return
	}
	u := c.ref.upper(v)
	s := 2 * u
	if u > 0 && c.ref.vals[u-1] == v {
		s--
	}
	c.slots[s].n++
	c.slots[s].sum += v
	c.n++
}

// N is the number of values counted.
func (c *KSCounter) N() int { return int(c.n) }

// Result is the two-sample KS test of the reference against the counted batch, identical to
// KS2 on the two full samples.
func (c *KSCounter) Result() KSResult {
	r := c.ref
	if c.n == 0 || r.n == 0 {
		return KSResult{D: math.NaN(), P: math.NaN()}
	}
	fr, fb := float64(r.n), float64(c.n)
	var dmax, dmin float64
	var b int64
	note := func(refCum int) {
		d := float64(refCum)/fr - float64(b)/fb
		dmax = max(dmax, d)
		dmin = min(dmin, d)
	}
	b += c.slots[0].n
	if c.slots[0].n > 0 {
		note(0)
	}
	for i := range r.vals {
		b += c.slots[2*i+1].n
		note(r.cum[i])
		if g := c.slots[2*i+2].n; g > 0 {
			b += g
			note(r.cum[i])
		}
	}
	return KSPValue(max(dmax, -dmin), r.n, int(c.n))
}

// Wasserstein estimates W1 between the reference and the batch. It is exact except inside a
// gap between two reference values where the batch CDF crosses the reference CDF.
func (c *KSCounter) Wasserstein() float64 {
	r := c.ref
	k := len(r.vals)
	if c.n == 0 || r.n == 0 {
		return math.NaN()
	}
	fr, fb := float64(r.n), float64(c.n)
	var w float64
	// Below the first reference value: F_ref = 0.
	w += (float64(c.slots[0].n)*r.vals[0] - c.slots[0].sum) / fb
	b := c.slots[0].n
	for i := 0; i < k; i++ {
		b += c.slots[2*i+1].n
		g, s := c.slots[2*i+2].n, c.slots[2*i+2].sum
		fref := float64(r.cum[i]) / fr
		if i == k-1 {
			w += (s - float64(g)*r.vals[i]) / fb // above the last: F_ref = 1
			break
		}
		lo, hi := r.vals[i], r.vals[i+1]
		// Integral of F_batch - F_ref over [lo, hi).
		in := (float64(b)/fb-fref)*(hi-lo) + (float64(g)*hi-s)/fb
		w += math.Abs(in)
		b += g
	}
	return w
}
