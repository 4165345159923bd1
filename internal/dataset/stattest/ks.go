package stattest

import (
	"math"
	"slices"
)

// KSResult is a two-sample Kolmogorov-Smirnov test outcome.
type KSResult struct {
	D      float64 // sup |F1 - F2|
	P      float64 // two-sided p-value
	Method string  // "exact" or "asymp"
}

// maxExactN is scipy's MAX_AUTO_N: both samples at most this size get the exact p-value.
const maxExactN = 10000

// KS2 runs the two-sided two-sample KS test on a and b (NaNs must be removed by the caller).
// It does not modify its arguments.
func KS2(a, b []float64) KSResult {
	as, bs := slices.Clone(a), slices.Clone(b)
	SortFloats(as)
	SortFloats(bs)
	return KS2Sorted(as, bs)
}

// KS2Sorted is KS2 for samples already sorted ascending.
func KS2Sorted(a, b []float64) KSResult {
	n1, n2 := len(a), len(b)
	if n1 == 0 || n2 == 0 {
		return KSResult{D: math.NaN(), P: math.NaN()}
	}
	var i, j int
	var dmax, dmin float64
	fn1, fn2 := float64(n1), float64(n2)
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
		for i < n1 && a[i] <= v {
			i++
		}
		for j < n2 && b[j] <= v {
			j++
		}
		d := float64(i)/fn1 - float64(j)/fn2
		dmax = max(dmax, d)
		dmin = min(dmin, d)
	}
	return KSPValue(max(dmax, -dmin), n1, n2)
}

// KSPValue turns a two-sided statistic d of samples of sizes n1 and n2 into the result
// scipy.stats.ks_2samp(method="auto") reports: the exact distribution when both sizes are at
// most 10,000, else the one-sample Kolmogorov distribution at n = round(n1*n2/(n1+n2)).
func KSPValue(d float64, n1, n2 int) KSResult {
	if max(n1, n2) <= maxExactN {
		g := gcd(n1, n2)
		lcm := float64(n1/g) * float64(n2)
		h := int(math.RoundToEven(d * lcm))
		de := float64(h) / lcm
		if h == 0 {
			return KSResult{D: de, P: 1, Method: "exact"}
		}
		var p float64
		if n1 == n2 {
			p = probOutsideSquare(n1, h)
		} else {
			p = outerProbInside(n1, n2, g, h)
		}
		if p >= 0 && p <= 1 {
			return KSResult{D: de, P: p, Method: "exact"}
		}
		d = de
	}
	m, n := float64(max(n1, n2)), float64(min(n1, n2))
	en := math.RoundToEven(m * n / (m + n))
	return KSResult{D: d, P: clip01(KolmogorovSF(int(en), d)), Method: "asymp"}
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func clip01(p float64) float64 { return min(max(p, 0), 1) }

// probOutsideSquare is P(D_{n,n} >= h/n), by a Horner-like alternating sum that avoids
// subtractive cancellation.
func probOutsideSquare(n, h int) float64 {
	p := 0.0
	for k := n / h; k >= 0; k-- {
		p1 := 1.0
		for j := 0; j < h; j++ {
			p1 = float64(n-k*h-j) * p1 / float64(n+k*h+j+1)
		}
		p = p1 * (1 - p)
	}
	return 2 * p
}

// outerProbInside is the proportion of lattice paths from (0,0) to (m,n) that leave the band
// |x/m - y/n| < h/lcm(m,n), computed directly as 1-p (Hodges' inside method, in the form of
// Viehmann 2021, which stays accurate for tiny p-values).
func outerProbInside(m, n, g, h int) float64 {
	if m < n {
		m, n = n, m
	}
	mg, ng := m/g, n/g
	minj, maxj := 0, min(ceilDiv(h, mg), n+1)
	curlen := maxj - minj
	lenA := min(2*maxj+2, n+1)
	a := make([]float64, lenA)
	for i := range a {
		a[i] = 1
	}
	for i := minj; i < maxj; i++ {
		a[i] = 0
	}
	for i := 1; i <= m; i++ {
		lastminj, lastlen := minj, curlen
		minj = max(floorDiv(ng*i-h, mg)+1, 0)
		minj = min(minj, n)
		maxj = min(ceilDiv(ng*i+h, mg), n+1)
		if maxj <= minj {
			return 1
		}
		val := 1.0
		if minj == 0 {
			val = 0
		}
		fi := float64(i)
		for jj := 0; jj < maxj-minj; jj++ {
			j := jj + minj
			val = (a[jj+minj-lastminj]*fi + val*float64(j)) / (fi + float64(j))
			a[jj] = val
		}
		curlen = maxj - minj
		if lastlen > curlen {
			for k := maxj - minj; k < maxj-minj+(lastlen-curlen) && k < len(a); k++ {
				a[k] = 1
			}
		}
	}
	return a[maxj-minj-1]
}

func floorDiv(a, b int) int {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func ceilDiv(a, b int) int { return -floorDiv(-a, b) }
