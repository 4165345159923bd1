package stattest

import "math"

// The one-sample two-sided Kolmogorov distribution of D_n, computed the way scipy's kstwo.sf
// does (Simard & L'Ecuyer 2011): Ruben-Gambino closed forms at the extremes, the exact
// one-sided Smirnov sum doubled in the upper tail, the Durbin matrix (Marsaglia-Tsang-Wang) or
// Pomeranz recursion for small n, and the Pelz-Good expansion for large n. Following the same
// switch points keeps the p-values within 1e-6 relative of scipy.

const (
	e128     = 128
	minLog   = -708.0
	sqrt2Pi  = 2.5066282746310002 // sqrt(2*pi)
	log2Pi   = 1.8378770664093453
	piSq     = math.Pi * math.Pi
	piFour   = piSq * piSq
	piSix    = piFour * piSq
	sqrtThre = 1.7320508075688772
)

var ep128, em128 = math.Ldexp(1, e128), math.Ldexp(1, -e128)

// KolmogorovSF is P(D_n > x) for the two-sided one-sample statistic with sample size n.
func KolmogorovSF(n int, x float64) float64 {
	if n <= 0 || math.IsNaN(x) {
		return math.NaN()
	}
	if x >= 1 {
		return 0
	}
	if x <= 0 {
		return 1
	}
	fn := float64(n)
	t := fn * x
	if t <= 1 {
		if t <= 0.5 {
			return 1
		}
		var cdf float64
		if n <= 140 {
			cdf = 1
			for i := 1; i <= n; i++ {
				cdf *= float64(i) * (1 / fn) * (2*t - 1)
			}
		} else {
			cdf = math.Exp(logFactorialOverPow(fn) + fn*math.Log(2*t-1))
		}
		return clip01(1 - cdf)
	}
	if t >= fn-1 {
		return clip01(2 * math.Pow(1-x, fn))
	}
	if x >= 0.5 {
		return clip01(2 * SmirnovSF(n, x))
	}
	nx2 := t * x
	if n <= 140 {
		switch {
		case nx2 <= 0.754693:
			return clip01(1 - kolmogorovCDFDurbin(n, x))
		case nx2 <= 4:
			return clip01(1 - kolmogorovCDFPomeranz(n, x))
		}
		return clip01(2 * SmirnovSF(n, x))
	}
	if nx2 >= 370 {
		return 0
	}
	if nx2 >= 2.2 {
		return clip01(2 * SmirnovSF(n, x))
	}
	var cdf float64
	switch {
	case nx2 >= 18:
		cdf = 1
	case n <= 100000 && fn*math.Pow(x, 1.5) <= 1.4:
		cdf = kolmogorovCDFDurbin(n, x)
	default:
		cdf = kolmogorovCDFPelzGood(n, x)
	}
	return clip01(1 - cdf)
}

var stirling = [...]float64{-2.955065359477124183e-2, 6.4102564102564102564e-3,
	-1.9175269175269175269e-3, 8.4175084175084175084e-4,
	-5.952380952380952381e-4, 7.9365079365079365079e-4,
	-2.7777777777777777778e-3, 8.3333333333333333333e-2}

// logFactorialOverPow is log(n!/n^n) by Stirling's series with n*log(n) removed up front.
func logFactorialOverPow(n float64) float64 {
	rn := 1 / n
	y := rn / n
	poly := 0.0
	for _, c := range stirling {
		poly = poly*y + c
	}
	return math.Log(n)/2 - n + log2Pi/2 + rn*poly
}

// SmirnovSF is the exact one-sided P(D+_n >= d) by the Smirnov / Birnbaum-Tingey sum, in log
// space so it neither overflows nor underflows for large n.
func SmirnovSF(n int, d float64) float64 {
	if d <= 0 {
		return 1
	}
	if d >= 1 {
		return 0
	}
	fn := float64(n)
	last := int(math.Floor(fn * (1 - d)))
	logC := 0.0 // log C(n, v)
	sum := 0.0
	peak := math.Inf(-1)
	for v := 0; v <= last; v++ {
		if v > 0 {
			logC += math.Log(float64(n-v+1) / float64(v))
		}
		evn := d + float64(v)/fn
		lt := logC + float64(v-1)*math.Log(evn)
		if n-v > 0 {
			lt += float64(n-v) * math.Log1p(-evn)
		}
		if lt > peak {
			// Rescale what was summed so far to the new peak.
			sum = sum*math.Exp(peak-lt) + 1
			peak = lt
		} else {
			r := lt - peak
			if r < -745 {
				if v > 0 && float64(v)/fn > 1-d-1e-12 {
					break
				}
				continue
			}
			sum += math.Exp(r)
		}
	}
	return clip01(d * sum * math.Exp(peak))
}

// kolmogorovCDFDurbin is P(D_n <= d) by the Durbin matrix method in the Marsaglia-Tsang-Wang
// form: the k-th diagonal element of H^n, scaled to avoid overflow.
func kolmogorovCDFDurbin(n int, d float64) float64 {
	if d >= 1 {
		return 1
	}
	nd := float64(n) * d
	if nd <= 0.5 {
		return 0
	}
	k := int(math.Ceil(nd))
	h := float64(k) - nd
	m := 2*k - 1
	H := newMat(m)
	v := make([]float64, m)
	w := make([]float64, m)
	fac := 1.0
	for j := 1; j <= m; j++ {
		v[j-1] = 1 - math.Pow(h, float64(j))
		w[j-1] = fac
		fac /= float64(j)
		v[j-1] *= fac
	}
	tt := math.Pow(max(2*h-1, 0), float64(m)) - 2*math.Pow(h, float64(m))
	v[m-1] = (1 + tt) * fac
	for i := 1; i < m; i++ {
		for r := i - 1; r < m; r++ {
			H.set(r, i, w[r-i+1])
		}
	}
	for r := 0; r < m; r++ {
		H.set(r, 0, v[r])
	}
	for c := 0; c < m; c++ {
		H.set(m-1, c, v[m-1-c])
	}
	P := identity(m)
	expnt, hexpnt := 0, 0
	tmp := newMat(m)
	for nn := n; nn > 0; nn /= 2 {
		if nn%2 == 1 {
			mul(tmp, P, H)
			P, tmp = tmp, P
			expnt += hexpnt
		}
		mul(tmp, H, H)
		H, tmp = tmp, H
		hexpnt *= 2
		if math.Abs(H.at(k-1, k-1)) > ep128 {
			for i := range H.a {
				H.a[i] /= ep128
			}
			hexpnt += e128
		}
	}
	p := P.at(k-1, k-1)
	fn := float64(n)
	for i := 1; i <= n; i++ {
		p = float64(i) * p / fn
		if math.Abs(p) < em128 {
			p *= ep128
			expnt -= e128
		}
	}
	if expnt != 0 {
		p = math.Ldexp(p, expnt)
	}
	return clip01(p)
}

type mat struct {
	n int
	a []float64
}

func newMat(n int) *mat                { return &mat{n: n, a: make([]float64, n*n)} }
func (m *mat) at(r, c int) float64     { return m.a[r*m.n+c] }
func (m *mat) set(r, c int, v float64) { m.a[r*m.n+c] = v }
func identity(n int) *mat {
	m := newMat(n)
	for i := 0; i < n; i++ {
		m.set(i, i, 1)
	}
	return m
}

// mul sets dst = x*y; dst must not alias x or y.
func mul(dst, x, y *mat) {
	n := x.n
	clear(dst.a)
	for i := 0; i < n; i++ {
		row := dst.a[i*n : (i+1)*n]
		for k := 0; k < n; k++ {
			xik := x.a[i*n+k]
			if xik == 0 {
				continue
			}
			yk := y.a[k*n : (k+1)*n]
			for j := range row {
				row[j] += xik * yk[j]
			}
		}
	}
}

func pomeranzJ1J2(i, n, ll, ceilf, roundf int) (int, int) {
	var j1, j2 int
	if i == 0 {
		j1, j2 = -ll-ceilf-1, ll+ceilf-1
	} else {
		ip1div2, ip1mod2 := (i+1)/2, (i+1)%2
		if ip1mod2 == 0 {
			if ip1div2 == n+1 {
				j1, j2 = n-ll-ceilf-1, n+ll+ceilf-1
			} else {
				j1, j2 = ip1div2-1-ll-roundf-1, ip1div2+ll-1+ceilf-1
			}
		} else {
			j1, j2 = ip1div2-1-ll-1, ip1div2+ll+roundf-1
		}
	}
	return max(j1+2, 0), min(j2, n)
}

// kolmogorovCDFPomeranz is P(D_n <= x) by Pomeranz's recursion: each row is the convolution of
// the previous one with a Poisson-like kernel; only a window of each row is non-zero.
func kolmogorovCDFPomeranz(n int, x float64) float64 {
	fn := float64(n)
	t := fn * x
	ll := int(math.Floor(t))
	f := t - float64(ll)
	g := min(f, 1-f)
	ceilf, roundf := 0, 0
	if f > 0 {
		ceilf = 1
	}
	if f > 0.5 {
		roundf = 1
	}
	npwrs := 2 * (ll + 1)
	gpow := make([]float64, npwrs)
	twog := make([]float64, npwrs)
	onem2g := make([]float64, npwrs)
	gpow[0], twog[0], onem2g[0] = 1, 1, 1
	expnt := 0
	gn, g2n, o2n := g/fn, 2*g/fn, (1-2*g)/fn
	for m := 1; m < npwrs; m++ {
		fm := float64(m)
		gpow[m] = gpow[m-1] * gn / fm
		twog[m] = twog[m-1] * g2n / fm
		onem2g[m] = onem2g[m-1] * o2n / fm
	}
	v0 := make([]float64, npwrs)
	v1 := make([]float64, npwrs)
	v1[0] = 1
	v0s, v1s := 0, 0
	j1, j2 := pomeranzJ1J2(0, n, ll, ceilf, roundf)
	conv := make([]float64, 2*npwrs)
	for i := 1; i < 2*n+2; i++ {
		k1 := j1
		v0, v1 = v1, v0
		v0s, v1s = v1s, v0s
		clear(v1)
		j1, j2 = pomeranzJ1J2(i, n, ll, ceilf, roundf)
		var pw []float64
		switch {
		case i == 1 || i == 2*n+1:
			pw = gpow
		case i%2 == 1:
			pw = twog
		default:
			pw = onem2g
		}
		ln2 := j2 - k1 + 1
		if ln2 > 0 {
			src := v0[k1-v0s : k1-v0s+ln2]
			ker := pw[:ln2]
			cl := len(src) + len(ker) - 1
			c := conv[:cl]
			clear(c)
			for a, sa := range src {
				if sa == 0 {
					continue
				}
				for b, kb := range ker {
					c[a+b] += sa * kb
				}
			}
			start := j1 - k1
			length := j2 - j1 + 1
			copy(v1[:length], c[start:start+length])
			mx := 0.0
			for _, e := range v1 {
				mx = max(mx, e)
			}
			if mx > 0 && mx < em128 {
				for q := range v1 {
					v1[q] *= ep128
				}
				expnt -= e128
			}
			v1s = v0s + j1 - k1
		}
	}
	ans := v1[n-v1s]
	for m := 1; m <= n; m++ {
		if math.Abs(ans) > ep128 {
			ans *= em128
			expnt += e128
		}
		ans *= float64(m)
	}
	if expnt != 0 {
		ans = math.Ldexp(ans, expnt)
	}
	return clip01(ans)
}

// kolmogorovCDFPelzGood is the Pelz-Good asymptotic expansion of P(D_n <= x), good for large n.
func kolmogorovCDFPelzGood(n int, x float64) float64 {
	if x <= 0 {
		return 0
	}
	if x >= 1 {
		return 1
	}
	fn := float64(n)
	z := math.Sqrt(fn) * x
	z2, z3, z4, z6 := z*z, z*z*z, z*z*z*z, math.Pow(z, 6)
	qlog := -piSq / 8 / z2
	if qlog < minLog {
		return 0
	}
	q := math.Exp(qlog)
	k1a, k1b := -z2, piSq/4
	k2a := 6*z6 + 2*z4
	k2b := (2*z4 - 5*z2) * piSq / 4
	k2c := piFour * (1 - 2*z2) / 16
	k3d := piSix * (5 - 30*z2) / 64
	k3c := piFour * (-60*z2 + 212*z4) / 16
	k3b := piSq * (135*z4 - 96*z6) / 4
	k3a := -30*z6 - 90*math.Pow(z, 8)
	var K [4]float64
	maxk := int(math.Ceil(16 * z / math.Pi))
	for k := maxk; k > 0; k-- {
		m := float64(2*k - 1)
		m2, m4, m6 := m*m, m*m*m*m, math.Pow(m, 6)
		qp := math.Pow(q, float64(8*k))
		c := [4]float64{1, k1a + k1b*m2, k2a + k2b*m2 + k2c*m4, k3a + k3b*m2 + k3c*m4 + k3d*m6}
		for i := range K {
			K[i] = K[i]*qp + c[i]
		}
	}
	div := [4]float64{z, 6 * z4, 72 * math.Pow(z, 7), 6480 * math.Pow(z, 10)}
	for i := range K {
		K[i] = K[i] * q * sqrt2Pi / div[i]
	}
	q = math.Exp(-piSq / 2 / z2)
	var k2extra, k3extra float64
	sqrt3z := sqrtThre * z
	for k := maxk; k > 0; k-- {
		fk := float64(k)
		ks := fk * fk
		qp := math.Pow(q, ks)
		k2extra += ks * qp
		kspi := math.Pi * fk
		k3extra += (sqrt3z + kspi) * (sqrt3z - kspi) * ks * qp
	}
	K[2] += k2extra * piSq * sqrt2Pi / (-36 * z3)
	K[3] += k3extra * piSq * sqrt2Pi / (216 * z6)
	sum := 0.0
	for i := range K {
		sum += K[i] / math.Pow(fn, float64(i)/2)
	}
	return sum
}
