package deps_test

import (
	"os"
	"strings"
	"testing"

	"github.com/pipewarden/pipewarden/internal/deps"
)

func TestTyposquatMutations(t *testing.T) {
	ts := deps.DefaultTyposquats()
	tests := []struct {
		name, target, technique string
		strong                  bool
	}{
		{"tensorfllow", "tensorflow", "repeated letter", true},
		{"pytorchh", "pytorch", "repeated letter", true},
		{"nummpy", "numpy", "repeated letter", true},
		{"tensorlfow", "tensorflow", "transposed letters", true},
		{"reqeusts", "requests", "transposed letters", true},
		{"scikitlearn", "scikit-learn", "separator", true},
		{"hugging_face_hub", "huggingface-hub", "separator", true},
		{"tran5formers", "transformers", "homoglyph", true},
		{"requ1rements-parser", "", "", false}, // nothing popular it imitates: not a squat
		{"nurnpy", "numpy", "homoglyph", true},
		{"djangoo", "django", "repeated letter", true},
		{"transformerz", "transformers", "one-letter edit", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, ok := ts.Match(tc.name)
			if tc.target == "" {
				if ok {
					t.Fatalf("flagged as a squat of %s", s.Target)
				}
				return
			}
			if !ok {
				t.Fatal("not flagged")
			}
			if s.Target != tc.target || s.Technique != tc.technique || s.Strong != tc.strong {
				t.Errorf("got %+v, want %s by %s (strong %v)", s, tc.target, tc.technique, tc.strong)
			}
		})
	}
}

// TestPopularNamesAreNotFlagged: no name of the shipped target list, nor any of the 15,000 most
// downloaded names, is reported.
func TestPopularNamesAreNotFlagged(t *testing.T) {
	popular := deps.PopularNames()
	if len(popular) < 200 {
		t.Fatalf("only %d popular names shipped", len(popular))
	}
	ts := deps.DefaultTyposquats()
	for _, n := range popular {
		if s, ok := ts.Match(n); ok {
			t.Errorf("popular %s flagged as a squat of %s", n, s.Target)
		}
	}
	data, err := os.ReadFile("names/top.txt")
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for _, l := range strings.Split(string(data), "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		n++
		if s, ok := ts.Match(l); ok {
			t.Errorf("real package %s flagged as a squat of %s", l, s.Target)
		}
	}
	if n < 14000 {
		t.Errorf("only %d known names", n)
	}
}

// TestTyposquatPrecisionWithoutAllowlist measures the detector itself: with only the targets as
// known names, real packages ranked 1,001 to 15,000 must rarely be flagged by a strong mutation.
func TestTyposquatPrecisionWithoutAllowlist(t *testing.T) {
	popular := deps.PopularNames()
	ts := deps.NewTyposquats(popular, nil)
	data, err := os.ReadFile("names/top.txt")
	if err != nil {
		t.Fatal(err)
	}
	var real, strong, weak int
	for i, l := range strings.Split(string(data), "\n") {
		if l == "" || strings.HasPrefix(l, "#") || i < 1003 {
			continue
		}
		real++
		if s, ok := ts.Match(l); ok {
			if s.Strong {
				strong++
			} else {
				weak++
			}
		}
	}
	t.Logf("%d real names: %d strong, %d one-letter-edit matches without the allowlist", real, strong, weak)
	if float64(strong) > 0.01*float64(real) {
		t.Errorf("%d of %d real names flagged by a strong mutation (more than 1%%)", strong, real)
	}
}

func TestTyposquatFindings(t *testing.T) {
	lf, err := deps.ParseLockfile("testdata/environment.yml")
	if err != nil {
		t.Fatal(err)
	}
	// Without the MAL- advisories, the typosquat check still reports pytorchh.
	fs := byRule(deps.Check(lf, deps.Options{DB: loadDB(t, fixtures+"/pypa", fixtures+"/github"), Typosquats: deps.DefaultTyposquats()}), deps.RuleTyposquat)
	if len(fs) != 1 || fs[0].Subject.Name != "pytorchh" || fs[0].Labels["imitates"] != "pytorch" || fs[0].Location.Line != 16 {
		t.Fatalf("typosquat findings %+v", fs)
	}
	// Conda package names are not PyPI names and are not judged: cudatoolkit stays quiet.
	lf2, err := deps.ParseLockfile("testdata/requirements-dev.txt")
	if err != nil {
		t.Fatal(err)
	}
	both := deps.Check(lf2, deps.Options{DB: loadDB(t, fixtures), Typosquats: deps.DefaultTyposquats()})
	if got := byRule(both, deps.RuleMalicious); len(got) != 1 || got[0].Subject.Name != "tensorfllow" {
		t.Errorf("malicious findings %+v", got)
	}
	if got := byRule(both, deps.RuleTyposquat); len(got) != 1 || got[0].Subject.Name != "tensorfllow" {
		t.Errorf("typosquat findings %+v", got)
	}
}
