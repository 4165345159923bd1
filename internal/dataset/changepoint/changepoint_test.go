package changepoint_test

import (
	"math"
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

func TestCUSUMThreshold(t *testing.T) {
	cases := []struct {
		name   string
		k, arl float64
		want   float64 // published two-sided ARL tables (Montgomery, k = 0.5): h = 4 -> 168, h = 5 -> 465
		tol    float64
	}{
		{"k0.5 arl168", 0.5, 168, 4, 0.1},
		{"k0.5 arl465", 0.5, 465, 5, 0.1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if h := changepoint.CUSUMThreshold(c.k, c.arl); math.Abs(h-c.want) > c.tol {
				t.Errorf("CUSUMThreshold(%v, %v) = %.3f, want %.1f +- %.1f", c.k, c.arl, h, c.want, c.tol)
			}
		})
	}
	// Simulated in-control run length of the threshold for 1,000 is in the right range.
	h := changepoint.CUSUMThreshold(0.5, 1000)
	var total int
	const runs = 200
	for s := uint64(1); s <= runs; s++ {
		d := changepoint.NewCUSUM(0, 1, 0.5, h)
		rng := rand.New(rand.NewPCG(s, 9))
		n := 1
		for !d.Add(rng.NormFloat64()) {
			n++
		}
		total += n
	}
	if mean := float64(total) / runs; mean < 700 || mean > 1400 {
		t.Errorf("mean in-control run length %.0f at h=%.2f, want about 1000", mean, h)
	}
	if !math.IsNaN(changepoint.CUSUMThreshold(0, 100)) || !math.IsNaN(changepoint.CUSUMThreshold(0.5, 1)) {
		t.Error("invalid arguments must give NaN")
	}
}

func TestNaNIgnored(t *testing.T) {
	c := changepoint.NewCUSUM(0, 1, 0.5, 4)
	p := changepoint.NewPageHinkley(0.5, 10)
	for range 10 {
		c.Add(math.NaN())
		p.Add(math.NaN())
	}
	if math.IsNaN(c.Stat()) || math.IsNaN(p.Stat()) || c.Stat() != 0 || p.Stat() != 0 {
		t.Errorf("NaN leaked into the state: cusum %v, page-hinkley %v", c.Stat(), p.Stat())
	}
	for range 20 {
		c.Add(5)
	}
	if c.Stat() == 0 && !c.Add(5) {
		t.Error("cusum stopped responding after NaN input")
	}
}
