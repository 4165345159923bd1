package stattest

import (
	"math"
	"slices"
)

// Wasserstein is the first Wasserstein (earth mover's) distance between two samples
// (scipy.stats.wasserstein_distance(a, b)).
func Wasserstein(a, b []float64) float64 {
	as, bs := slices.Clone(a), slices.Clone(b)
	SortFloats(as)
	SortFloats(bs)
	return WassersteinSorted(as, bs)
}

// WassersteinSorted is Wasserstein for sorted samples: the integral of |F_a - F_b|.
func WassersteinSorted(a, b []float64) float64 {
	n1, n2 := len(a), len(b)
	if n1 == 0 || n2 == 0 {
		return math.NaN()
	}
	var i, j int
	var sum float64
	prev := min(a[0], b[0])
	for i < n1 || j < n2 {
		var v float64
		switch {
		case i == n1:
			v = b[j]
		case j == n2:
			v = a[i]
		default:
			v = min(a[i], b[j])
		}
		sum += math.Abs(float64(i)/float64(n1)-float64(j)/float64(n2)) * (v - prev)
		prev = v
		for i < n1 && a[i] <= v {
			i++
		}
		for j < n2 && b[j] <= v {
			j++
		}
	}
	return sum
}

// JensenShannon is the Jensen-Shannon distance (the square root of the divergence) between two
// histograms over the same bins, each normalised to sum to 1, with logarithms in the given base
// (scipy.spatial.distance.jensenshannon(p, q, base)). Base 2 bounds it to [0, 1].
func JensenShannon(p, q []float64, base float64) float64 {
	var sp, sq float64
	for i := range p {
		sp += p[i]
		sq += q[i]
	}
	if sp == 0 || sq == 0 {
		return math.NaN()
	}
	var js float64
	for i := range p {
		pi, qi := p[i]/sp, q[i]/sq
		m := (pi + qi) / 2
		js += relEntr(pi, m) + relEntr(qi, m)
	}
	js /= 2
	if base > 0 {
		js /= math.Log(base)
	}
	return math.Sqrt(max(js, 0))
}

func relEntr(x, y float64) float64 {
	if x == 0 {
		return 0
	}
	return x * math.Log(x/y)
}

// psiFloor keeps empty bins from making PSI infinite, as the usual implementations do.
const psiFloor = 1e-4

// PSI is the population stability index sum((b-a)*ln(b/a)) of batch proportions b against
// baseline proportions a over the same bins; bins' proportions are floored at 1e-4. The usual
// reading: below 0.1 stable, 0.1-0.25 moderate shift, above 0.25 significant shift.
func PSI(base, batch []float64) float64 {
	var sa, sb float64
	for i := range base {
		sa += base[i]
		sb += batch[i]
	}
	if sa == 0 || sb == 0 {
		return math.NaN()
	}
	var psi float64
	for i := range base {
		a := max(base[i]/sa, psiFloor)
		b := max(batch[i]/sb, psiFloor)
		psi += (b - a) * math.Log(b/a)
	}
	return psi
}
