package dataset

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/pipewarden/pipewarden/internal/dataset/table"
)

// The fast decimal path must agree bit for bit with strconv.ParseFloat, and with the slow
// path's int/float classification.
func TestClassifyMatchesStrconv(t *testing.T) {
	cases := []string{"0", "-0", "+0", "0.0", "-0.0", "1", "12.5", "-3.25", ".5", "5.", "-.5",
		"007", "0.000123", "123456789012345", "1234567890123456", "0.1", "0.3", "9007199254740993",
		"1e5", "1E-3", "-", "+", ".", "-.", "1.2.3", "1-2", "12a", "0x1p3", "Inf", "NaN", "1_000",
		"0.0000000000000000000001", "0.00000000000000000000001", "123.456789012345678"}
	rng := rand.New(rand.NewPCG(1, 1))
	for range 20000 {
		v := rng.NormFloat64() * math.Pow(10, float64(rng.IntN(12)-4))
		cases = append(cases, strconv.FormatFloat(v, 'f', rng.IntN(10), 64), strconv.FormatFloat(v, 'g', -1, 64))
	}
	for _, c := range cases {
		k, v := classify(table.Field{B: []byte(c)})
		want, err := strconv.ParseFloat(c, 64)
		numeric := err == nil && !math.IsInf(want, 0) && !math.IsNaN(want) && (c[0] == '-' || c[0] == '+' || c[0] == '.' || (c[0] >= '0' && c[0] <= '9'))
		switch {
		case numeric && k != kInt && k != kFloat:
			t.Errorf("%q: kind %d, want a number", c, k)
		case !numeric && (k == kInt || k == kFloat):
			t.Errorf("%q: parsed as %v, strconv says %v", c, v, err)
		case numeric && math.Float64bits(v) != math.Float64bits(want):
			t.Errorf("%q: %v (%x), strconv %v (%x)", c, v, math.Float64bits(v), want, math.Float64bits(want))
		}
	}
}
