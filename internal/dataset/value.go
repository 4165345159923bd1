package dataset

import (
	"bytes"
	"math"
	"strconv"

	"github.com/pipewarden/pipewarden/internal/dataset/table"
)

// kind is what one cell holds.
type kind uint8

const (
	kNull kind = iota
	kInt
	kFloat
	kBool
	kString
)

var nullWords = [][]byte{[]byte("NA"), []byte("N/A"), []byte("NaN"), []byte("nan"), []byte("null"), []byte("NULL"), []byte("None")}

// classify parses a cell. Numbers come back in v (NaN otherwise).
func classify(f table.Field) (kind, float64) {
	if f.Null || len(f.B) == 0 {
		return kNull, math.NaN()
	}
	b := f.B
	if c := b[0]; (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' {
		if v, isFloat, ok := parseDecimal(b); ok {
			if isFloat {
				return kFloat, v
			}
			return kInt, v
		}
		if v, err := strconv.ParseFloat(string(b), 64); err == nil && !math.IsInf(v, 0) && !math.IsNaN(v) {
			for _, c := range b {
				if c == '.' || c == 'e' || c == 'E' {
					return kFloat, v
				}
			}
			return kInt, v
		}
	}
	for _, w := range nullWords {
		if bytes.Equal(b, w) {
			return kNull, math.NaN()
		}
	}
	if bytes.EqualFold(b, []byte("true")) || bytes.EqualFold(b, []byte("false")) {
		return kBool, math.NaN()
	}
	return kString, math.NaN()
}

// pow10 are the powers of ten float64 represents exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12,
	1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// parseDecimal is the fast path for the plain decimals that make up most numeric data
// ([+-]digits[.digits], at most 15 significant digits): the mantissa and the power of ten are
// both exact in float64, so one division is correctly rounded and the result is bit for bit
// what strconv.ParseFloat returns (Clinger's fast path). ok is false for anything else, which
// the caller hands to strconv.
func parseDecimal(b []byte) (v float64, isFloat, ok bool) {
	i, neg := 0, false
	switch b[0] {
	case '-':
		neg, i = true, 1
	case '+':
		i = 1
	}
	var mant uint64
	digits, frac, dot := 0, 0, false
	for ; i < len(b); i++ {
		c := b[i]
		switch {
		case c >= '0' && c <= '9':
			if mant == 0 && c == '0' {
				if dot {
					frac++
				}
				continue // leading zeros are not significant
			}
			digits++
			if digits > 15 {
				return 0, false, false
			}
			mant = mant*10 + uint64(c-'0')
			if dot {
				frac++
			}
		case c == '.' && !dot:
			dot = true
		default:
			return 0, false, false
		}
	}
	if digits == 0 && !hasDigit(b) {
		return 0, false, false
	}
	v = float64(mant)
	if frac > 0 {
		if frac >= len(pow10) {
			return 0, false, false
		}
		v /= pow10[frac]
	}
	if neg {
		v = -v
	}
	return v, dot, true
}

func hasDigit(b []byte) bool {
	for _, c := range b {
		if c >= '0' && c <= '9' {
			return true
		}
	}
	return false
}

// moments accumulates count, mean and variance (Welford).
type moments struct {
	n    int64
	mean float64
	m2   float64
}

func (m *moments) add(x float64) {
	m.n++
	d := x - m.mean
	m.mean += d / float64(m.n)
	m.m2 += d * (x - m.mean)
}

func (m *moments) std() float64 {
	if m.n < 2 {
		return 0
	}
	return math.Sqrt(m.m2 / float64(m.n-1))
}

func (m *moments) out() Moments { return Moments{N: m.n, Mean: m.mean, Std: m.std()} }
