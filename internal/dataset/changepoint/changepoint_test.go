package changepoint_test

import (
	"math/rand/v2"
	"testing"

	"github.com/pipewarden/pipewarden/internal/dataset/changepoint"
)

type detector interface{ Add(float64) bool }

// firstAlarm feeds n in-control N(0,1) values then a shift and returns the index of the first
// alarm (-1 if none).
func firstAlarm(d detector, seed uint64, before, after int, shift float64) int {
	rng := rand.New(rand.NewPCG(seed, 1))
	for i := 0; i < before+after; i++ {
		x := rng.NormFloat64()
		if i >= before {
			x += shift
		}
		if d.Add(x) {
			return i
		}
	}
	return -1
}

func TestDetectors(t *testing.T) {
	cases := []struct {
		name string
		mk   func() detector
	}{
		{"cusum", func() detector { return changepoint.NewCUSUM(0, 1, 0.5, 12) }},
		{"page-hinkley", func() detector { return changepoint.NewPageHinkley(0.5, 50) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var falseAlarms, late int
			for s := uint64(1); s <= 50; s++ {
				i := firstAlarm(c.mk(), s, 2000, 500, 1.5)
				switch {
				case i >= 0 && i < 2000:
					falseAlarms++
				case i < 0 || i > 2100:
					late++
				}
			}
			if falseAlarms > 2 || late > 0 {
				t.Errorf("%d false alarms before the shift, %d shifts missed or late (of 50)", falseAlarms, late)
			}
		})
	}
}

func BenchmarkCUSUMAdd(b *testing.B) {
	d := changepoint.NewCUSUM(0, 1, 0.5, 5)
	xs := make([]float64, 4096)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range xs {
		xs[i] = rng.NormFloat64()
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d.Add(xs[i&4095])
	}
}

func BenchmarkPageHinkleyAdd(b *testing.B) {
	d := changepoint.NewPageHinkley(0.5, 50)
	xs := make([]float64, 4096)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range xs {
		xs[i] = rng.NormFloat64()
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d.Add(xs[i&4095])
	}
}
