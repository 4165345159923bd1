package stattest_test

import (
	"math"
	"slices"
	"testing"

	"github.com/pipewarden/pipewarden/internal/dataset/stattest"
)

func TestKSCounterEqualsKS2(t *testing.T) {
	cases := []struct {
		name       string
		n1, n2     int
		grid       int
		scale, sft float64
	}{
		{"continuous", 500, 20000, 0, 1, 0.02},
		{"ties", 3000, 40000, 20, 1, 0},
		{"heavy ties", 100, 5000, 3, 1, 0},
		{"batch beyond reference", 200, 2000, 0, 2, 0.5},
		{"small", 5, 7, 0, 1, 0.3},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ref := sample(uint64(10+i), c.n1, c.grid, 1, 0)
			batch := sample(uint64(90+i), c.n2, c.grid, c.scale, c.sft)
			want := stattest.KS2(ref, batch)
			sorted := slices.Clone(ref)
			stattest.SortFloats(sorted)
			r := stattest.NewKSRef(sorted)
			cnt := r.NewCounter()
			for _, v := range batch {
				cnt.Add(v)
			}
			got := cnt.Result()
			if math.Abs(got.D-want.D) > 1e-12 || math.Abs(got.P-want.P) > 1e-12*max(want.P, 1e-300) {
				t.Errorf("counter %+v, KS2 %+v", got, want)
			}
			ww := stattest.Wasserstein(ref, batch)
			if gw := cnt.Wasserstein(); math.Abs(gw-ww) > 0.02*ww+1e-9 {
				t.Errorf("wasserstein estimate %v, exact %v", gw, ww)
			}
		})
	}
}

func TestSortFloats(t *testing.T) {
	x := sample(3, 100000, 0, 10, -5)
	x[7], x[8], x[9] = math.Inf(1), math.Inf(-1), 0
	want := slices.Clone(x)
	slices.Sort(want)
	stattest.SortFloats(x)
	if !slices.Equal(x, want) {
		t.Fatal("radix sort disagrees with slices.Sort")
	}
}

func TestBenjaminiHochberg(t *testing.T) {
	// Worked by hand: sorted p = .01 .02 .03 .04 .5, n = 5 -> p*n/rank = .05 .05 .05 .05 .5.
	got := stattest.BenjaminiHochberg([]float64{0.04, 0.5, 0.01, 0.03, 0.02})
	want := []float64{0.05, 0.5, 0.05, 0.05, 0.05}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-12 {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}

func TestPSIBands(t *testing.T) {
	base := []float64{10, 10, 10, 10}
	if p := stattest.PSI(base, base); p != 0 {
		t.Errorf("identical PSI %v", p)
	}
	// Moving a quarter of the mass gives a significant shift.
	if p := stattest.PSI(base, []float64{20, 10, 10, 0}); p < 0.25 {
		t.Errorf("large shift PSI %v < 0.25", p)
	}
}

func BenchmarkKS1Mvs1M(b *testing.B) {
	ref := sample(1, 1_000_000, 0, 1, 0)
	batch := sample(2, 1_000_000, 0, 1, 0.001)
	stattest.SortFloats(ref) // the baseline side is precomputed
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		x := slices.Clone(batch)
		stattest.SortFloats(x)
		_ = stattest.KS2Sorted(ref, x)
	}
}

func BenchmarkKSCounter1Mvs5k(b *testing.B) {
	ref := sample(1, 5000, 0, 1, 0)
	stattest.SortFloats(ref)
	r := stattest.NewKSRef(ref)
	batch := sample(2, 1_000_000, 0, 1, 0.001)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c := r.NewCounter()
		for _, v := range batch {
			c.Add(v)
		}
		_ = c.Result()
	}
}
