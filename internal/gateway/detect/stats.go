package detect

import (
	"math"
	"slices"
)

func sortFloats(x []float64) { slices.Sort(x) }

// ring is a fixed-size window of the last values.
type ring struct {
	v    []float64
	next int
	full bool
}

func newRing(n int) ring { return ring{v: make([]float64, n)} }

func (r *ring) add(x float64) {
	r.v[r.next] = x
	r.next++
	if r.next == len(r.v) {
		r.next, r.full = 0, true
	}
}

func (r *ring) len() int {
	if r.full {
		return len(r.v)
	}
	return r.next
}

// values returns the window's contents (unordered).
func (r *ring) values() []float64 { return r.v[:r.len()] }

func (r *ring) sum() float64 {
	s := 0.0
	for _, v := range r.values() {
		s += v
	}
	return s
}

func dist(a, b []float64) float64 {
	d := 0.0
	for j, v := range a {
		t := v - b[j]
		d += t * t
	}
	return math.Sqrt(d)
}
