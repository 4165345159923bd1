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
		if v, err := strconv.ParseFloat(string(b), 64); err == nil && !math.IsInf(v, 0) && !math.IsNaN(v) {
			if bytes.ContainsAny(b, ".eE") {
				return kFloat, v
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
