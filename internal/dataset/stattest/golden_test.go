package stattest_test

import (
	"encoding/json"
	"math"
	"os"
	"testing"

	"github.com/pipewarden/pipewarden/internal/dataset/stattest"
)

// golden is written by ../testdata/reference.py from SciPy; see that script for how to refresh it.
type golden struct {
	SciPy string `json:"scipy"`
	KS    []struct {
		N1, N2, Grid   int
		Seed1, Seed2   uint64
		Scale2, Shift2 float64
		D, P           float64
	} `json:"ks"`
	Wasserstein []struct {
		N1, N2, Grid   int
		Seed1, Seed2   uint64
		Scale2, Shift2 float64
		W              float64
	} `json:"wasserstein"`
	ChiGOF []struct {
		Obs, Exp []float64
		Stat, P  float64
	} `json:"chi2_gof"`
	ChiHom []struct {
		A, B    []float64
		Stat, P float64
		DoF     int
	} `json:"chi2_homogeneity"`
	JS []struct {
		P, Q []float64
		JS   float64
	} `json:"jensenshannon"`
}

func loadGolden(t *testing.T) golden {
	t.Helper()
	b, err := os.ReadFile("../testdata/scipy_golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.KS) == 0 {
		t.Fatal("golden file has no KS cases")
	}
	return g
}

// sample mirrors reference.py: splitmix64 uniforms, optionally on a grid (ties), scaled and
// shifted. Explicit float64 conversions keep the compiler from fusing multiply-adds.
func sample(seed uint64, n, grid int, scale, shift float64) []float64 {
	out := make([]float64, n)
	s := seed
	for i := range out {
		s += 0x9E3779B97F4A7C15
		z := s
		z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
		z = (z ^ (z >> 27)) * 0x94D049BB133111EB
		z ^= z >> 31
		u := float64(z>>11) * (1.0 / 9007199254740992.0)
		if grid > 0 {
			u = math.Floor(float64(u*float64(grid))) / float64(grid)
		}
		out[i] = float64(u*scale) + shift
	}
	return out
}

const (
	statTol = 1e-9
	pRelTol = 1e-6
)

func closeP(got, want float64) bool {
	if want == 0 {
		return got < 1e-300
	}
	return math.Abs(got-want) <= pRelTol*math.Abs(want)
}

func TestKS2MatchesSciPy(t *testing.T) {
	g := loadGolden(t)
	for _, c := range g.KS {
		a := sample(c.Seed1, c.N1, c.Grid, 1, 0)
		b := sample(c.Seed2, c.N2, c.Grid, c.Scale2, c.Shift2)
		r := stattest.KS2(a, b)
		if math.Abs(r.D-c.D) > statTol || !closeP(r.P, c.P) {
			t.Errorf("n=%d,%d grid=%d shift=%g: got D=%.17g p=%.17g (%s), scipy D=%.17g p=%.17g",
				c.N1, c.N2, c.Grid, c.Shift2, r.D, r.P, r.Method, c.D, c.P)
		}
	}
}

func TestWassersteinMatchesSciPy(t *testing.T) {
	g := loadGolden(t)
	for _, c := range g.Wasserstein {
		a := sample(c.Seed1, c.N1, c.Grid, 1, 0)
		b := sample(c.Seed2, c.N2, c.Grid, c.Scale2, c.Shift2)
		if w := stattest.Wasserstein(a, b); math.Abs(w-c.W) > statTol {
			t.Errorf("n=%d,%d: got %.17g, scipy %.17g", c.N1, c.N2, w, c.W)
		}
	}
}

func TestChiSquareMatchesSciPy(t *testing.T) {
	g := loadGolden(t)
	for _, c := range g.ChiGOF {
		r := stattest.ChiSquareGOF(c.Obs, c.Exp)
		if math.Abs(r.Stat-c.Stat) > statTol*max(1, c.Stat) || !closeP(r.P, c.P) {
			t.Errorf("gof %v: got %v %v, scipy %v %v", c.Obs, r.Stat, r.P, c.Stat, c.P)
		}
	}
	for _, c := range g.ChiHom {
		r := stattest.ChiSquareHomogeneity(c.A, c.B)
		if math.Abs(r.Stat-c.Stat) > statTol*max(1, c.Stat) || !closeP(r.P, c.P) || r.DoF != c.DoF {
			t.Errorf("homogeneity %v %v: got %v %v %d, scipy %v %v %d", c.A, c.B, r.Stat, r.P, r.DoF, c.Stat, c.P, c.DoF)
		}
	}
}

func TestJensenShannonMatchesSciPy(t *testing.T) {
	g := loadGolden(t)
	for _, c := range g.JS {
		if js := stattest.JensenShannon(c.P, c.Q, 2); math.Abs(js-c.JS) > statTol {
			t.Errorf("%v %v: got %.17g, scipy %.17g", c.P, c.Q, js, c.JS)
		}
	}
}
