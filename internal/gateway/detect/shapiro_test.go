package detect_test

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"testing"

	"github.com/pipewarden/pipewarden/internal/gateway/detect"
)

// splitmix64 and sample mirror testdata/shapiro_reference.py.
func splitmix64(state uint64) (uint64, uint64) {
	state += 0x9E3779B97F4A7C15
	z := state
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return state, z ^ (z >> 31)
}

func sample(seed uint64, n int, kind string) []float64 {
	u := make([]float64, 2*n)
	state := seed
	for i := range u {
		var z uint64
		state, z = splitmix64(state)
		u[i] = float64(z>>11) / float64(uint64(1)<<53)
	}
	xs := make([]float64, n)
	for i := range xs {
		u1, u2 := u[2*i], u[2*i+1]
		g := math.Sqrt(-2*math.Log(1-u1)) * math.Cos(2*math.Pi*u2)
		switch kind {
		case "uniform":
			xs[i] = u1
		case "normal":
			xs[i] = g
		case "exponential":
			xs[i] = -math.Log(1 - u1)
		case "mixture":
			xs[i] = g
			if i%3 == 0 {
				xs[i] += 4
			}
		}
	}
	return xs
}

// TestShapiroWilkMatchesSciPy compares W and p with scipy.stats.shapiro (SciPy computes in
// single precision, hence the tolerances).
func TestShapiroWilkMatchesSciPy(t *testing.T) {
	raw, err := os.ReadFile("testdata/shapiro_golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var golden struct {
		Shapiro []struct {
			N    int
			Kind string
			Seed uint64
			W, P float64
		}
	}
	if err := json.Unmarshal(raw, &golden); err != nil {
		t.Fatal(err)
	}
	if len(golden.Shapiro) < 50 {
		t.Fatalf("only %d golden cases", len(golden.Shapiro))
	}
	for _, c := range golden.Shapiro {
		w, p, err := detect.ShapiroWilk(sample(c.Seed, c.N, c.Kind))
		if err != nil {
			t.Errorf("n=%d %s: %v", c.N, c.Kind, err)
			continue
		}
		if math.Abs(w-c.W) > 2e-6 {
			t.Errorf("n=%d %s: W = %.9f, scipy %.9f", c.N, c.Kind, w, c.W)
		}
		tol := 1e-5 + 1e-4*c.P
		if c.N >= 1000 {
			// Near W = 1 single-precision W moves p by up to a few 1e-3; the p-value
			// transformation itself is checked from SciPy's W in shapiro_p_test.go.
			tol = 5e-3
		}
		if math.Abs(p-c.P) > tol {
			t.Errorf("n=%d %s: p = %.9g, scipy %.9g", c.N, c.Kind, p, c.P)
		}
	}
}

func TestShapiroWilkRejects(t *testing.T) {
	for name, x := range map[string][]float64{"too few": {1, 2}, "constant": {3, 3, 3, 3}, "too many": make([]float64, 5001)} {
		if _, _, err := detect.ShapiroWilk(x); !errors.Is(err, detect.ErrSample) {
			t.Errorf("%s: err = %v, want ErrSample", name, err)
		}
	}
}
