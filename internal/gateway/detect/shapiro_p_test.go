package detect

import (
	"encoding/json"
	"math"
	"os"
	"testing"
)

// TestShapiroPValueOfSciPyW: SciPy's W is single precision, which moves p near W = 1 for large
// n; from SciPy's own W our p-value transformation must agree closely (SciPy still evaluates
// log(1-W) in single precision, worth about 1e-4 at n = 5000).
func TestShapiroPValueOfSciPyW(t *testing.T) {
	raw, err := os.ReadFile("testdata/shapiro_golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var golden struct {
		Shapiro []struct {
			N    int
			W, P float64
		}
	}
	if err := json.Unmarshal(raw, &golden); err != nil {
		t.Fatal(err)
	}
	for _, c := range golden.Shapiro {
		if p := swPValue(c.W, c.N); math.Abs(p-c.P) > 2e-4+1e-4*c.P {
			t.Errorf("n=%d W=%v: p = %.9g, scipy %.9g", c.N, c.W, p, c.P)
		}
	}
}
