package stattest

import (
	"math"
	"sort"

	"gonum.org/v1/gonum/mathext"
)

// ChiResult is a chi-square test outcome.
type ChiResult struct {
	Stat float64
	DoF  int
	P    float64
}

// ChiSquareSF is P(X > x) for X ~ chi-square with k degrees of freedom.
func ChiSquareSF(x float64, k int) float64 {
	if k <= 0 || math.IsNaN(x) {
		return math.NaN()
	}
	if x <= 0 {
		return 1
	}
	return mathext.GammaIncRegComp(float64(k)/2, x/2)
}

// ChiSquareGOF is Pearson's goodness-of-fit test of observed counts against expected counts
// (scipy.stats.chisquare(obs, exp)); exp is rescaled to the total of obs.
func ChiSquareGOF(obs, exp []float64) ChiResult {
	var so, se float64
	for i := range obs {
		so += obs[i]
		se += exp[i]
	}
	var stat float64
	for i := range obs {
		e := exp[i] * so / se
		if e == 0 {
			continue
		}
		d := obs[i] - e
		stat += d * d / e
	}
	k := len(obs) - 1
	return ChiResult{Stat: stat, DoF: k, P: ChiSquareSF(stat, k)}
}

// ChiSquareHomogeneity tests whether two count vectors over the same categories come from the
// same distribution: the 2xK contingency test without continuity correction
// (scipy.stats.chi2_contingency([a, b], correction=False)). Categories empty in both are
// dropped.
func ChiSquareHomogeneity(a, b []float64) ChiResult {
	var ta, tb float64
	for i := range a {
		ta += a[i]
		tb += b[i]
	}
	n := ta + tb
	var stat float64
	k := 0
	for i := range a {
		col := a[i] + b[i]
		if col == 0 {
			continue
		}
		k++
		ea, eb := ta*col/n, tb*col/n
		da, db := a[i]-ea, b[i]-eb
		stat += da*da/ea + db*db/eb
	}
	dof := k - 1
	if dof <= 0 || ta == 0 || tb == 0 {
		return ChiResult{Stat: 0, DoF: max(dof, 0), P: 1}
	}
	return ChiResult{Stat: stat, DoF: dof, P: ChiSquareSF(stat, dof)}
}

// BenjaminiHochberg returns the BH-adjusted p-values (q-values) in the input order: the
// smallest false discovery rate at which each hypothesis would be rejected.
func BenjaminiHochberg(p []float64) []float64 {
	n := len(p)
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return p[idx[a]] < p[idx[b]] })
	q := make([]float64, n)
	prev := 1.0
	for r := n - 1; r >= 0; r-- {
		i := idx[r]
		v := p[i] * float64(n) / float64(r+1)
		prev = min(prev, v)
		q[i] = min(prev, 1)
	}
	return q
}
