package detect

import (
	"errors"
	"math"
	"slices"
)

// ErrSample is a sample Shapiro-Wilk cannot test: fewer than 3 or more than 5000 values, or all
// equal.
var ErrSample = errors.New("shapiro-wilk needs 3 to 5000 values that are not all equal")

// ShapiroWilk tests x for normality with Royston's (1995) algorithm AS R94: the W statistic
// from polynomial approximations of the coefficients, and its p-value from a normalising
// transformation. Small W (and p) mean x is unlikely to be normal. x is not modified.
func ShapiroWilk(x []float64) (w, p float64, err error) {
	n := len(x)
	if n < 3 || n > 5000 {
		return 0, 0, ErrSample
	}
	s := slices.Clone(x)
	slices.Sort(s)
	if s[n-1]-s[0] < 1e-19*math.Max(1, math.Abs(s[0])) {
		return 0, 0, ErrSample
	}
	a := swCoefficients(n)
	mean := 0.0
	for _, v := range s {
		mean += v
	}
	mean /= float64(n)
	ssq, num := 0.0, 0.0
	for _, v := range s {
		ssq += (v - mean) * (v - mean)
	}
	for i := 0; i < n/2; i++ {
		num += a[i] * (s[n-1-i] - s[i])
	}
	w = num * num / ssq
	if w > 1 {
		w = 1
	}
	return w, swPValue(w, n), nil
}

// swCoefficients returns the first n/2 coefficients a_i (positive; the others are their
// negatives).
func swCoefficients(n int) []float64 {
	nn2 := n / 2
	a := make([]float64, nn2)
	if n == 3 {
		a[0] = math.Sqrt(0.5)
		return a
	}
	an := float64(n)
	m := make([]float64, nn2)
	summ2 := 0.0
	for i := range m {
		m[i] = normQuantile((float64(i+1) - 0.375) / (an + 0.25)) // negative: lower half
		summ2 += m[i] * m[i]
	}
	summ2 *= 2
	ssumm2 := math.Sqrt(summ2)
	rsn := 1 / math.Sqrt(an)
	a1 := poly([]float64{0, 0.221157, -0.147981, -2.071190, 4.434685, -2.706056}, rsn) - m[0]/ssumm2
	var i1 int
	var fac float64
	if n > 5 {
		i1 = 2
		a2 := -m[1]/ssumm2 + poly([]float64{0, 0.042981, -0.293762, -1.752461, 5.682633, -3.582633}, rsn)
		fac = math.Sqrt((summ2 - 2*m[0]*m[0] - 2*m[1]*m[1]) / (1 - 2*a1*a1 - 2*a2*a2))
		a[1] = a2
	} else {
		i1 = 1
		fac = math.Sqrt((summ2 - 2*m[0]*m[0]) / (1 - 2*a1*a1))
	}
	a[0] = a1
	for i := i1; i < nn2; i++ {
		a[i] = -m[i] / fac
	}
	return a
}

// swPValue is Royston's approximation of P(W' <= w) under normality.
func swPValue(w float64, n int) float64 {
	an := float64(n)
	if n == 3 {
		const pi6, stqr = 6 / math.Pi, math.Pi / 3
		return math.Max(0, pi6*(math.Asin(math.Sqrt(w))-stqr))
	}
	y := math.Log(1 - w)
	var m, s float64
	if n <= 11 {
		gamma := poly([]float64{-2.273, 0.459}, an)
		if y >= gamma {
			return 1e-99
		}
		y = -math.Log(gamma - y)
		m = poly([]float64{0.5440, -0.39978, 0.025054, -6.714e-4}, an)
		s = math.Exp(poly([]float64{1.3822, -0.77857, 0.062767, -0.0020322}, an))
	} else {
		xx := math.Log(an)
		m = poly([]float64{-1.5861, -0.31082, -0.083751, 0.0038915}, xx)
		s = math.Exp(poly([]float64{-0.4803, -0.082676, 0.0030302}, xx))
	}
	return 0.5 * math.Erfc((y-m)/s/math.Sqrt2)
}

func poly(c []float64, x float64) float64 {
	r := 0.0
	for i := len(c) - 1; i >= 0; i-- {
		r = r*x + c[i]
	}
	return r
}

// normQuantile is the standard normal quantile function.
func normQuantile(p float64) float64 { return -math.Sqrt2 * math.Erfcinv(2*p) }
