package modelscan_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/pipewarden/pipewarden/internal/finding"
	"github.com/pipewarden/pipewarden/internal/modelscan"
)

// genCase is one entry of testdata/cases.json, written by testdata/gen.py beside the files.
type genCase struct {
	File     string `json:"file"`
	Family   string `json:"family"`
	Outcome  string `json:"outcome"`
	Rule     string `json:"rule"`
	Severity string `json:"severity"`
	Title    string `json:"title"`
}

// TestGeneratedCases runs our own cases: each bypass family, every pickle protocol, tar legacy,
// builtins-only chains, nested loaders, memo tricks, npy object arrays, Keras Lambda, and the
// malformed-header cases of every format.
func TestGeneratedCases(t *testing.T) {
	b, err := os.ReadFile("testdata/cases.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []genCase
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) < 50 {
		t.Fatalf("only %d generated cases", len(cases))
	}
	s := newScanner(t)
	for _, c := range cases {
		t.Run(c.File, func(t *testing.T) {
			r := scanOne(t, s, filepath.Join("testdata", "gen", c.File))
			if string(r.Outcome) != c.Outcome {
				t.Errorf("%s: outcome %s, want %s\n%s", c.Family, r.Outcome, c.Outcome, dump(r))
			}
			if c.Rule == "" {
				return
			}
			sev, err := finding.ParseSeverity(c.Severity)
			if err != nil {
				t.Fatal(err)
			}
			if !has(r, c.Rule, sev, c.Title) {
				t.Errorf("%s: want %s %s %q\n%s", c.Family, c.Severity, c.Rule, c.Title, dump(r))
			}
		})
	}
}

// TestAllowlistExtends: an unverified import passes once allowed, a dangerous one cannot be.
func TestAllowlistExtends(t *testing.T) {
	path := filepath.Join("testdata", "gen", "unverified.pkl")
	if r := scanOne(t, newScanner(t), path); r.Outcome != modelscan.Findings {
		t.Fatalf("without allow: %s", dump(r))
	}
	for _, allow := range []string{"mylib.models.Net", "mylib.*"} {
		if r := scanOne(t, newScanner(t, allow), path); r.Outcome != modelscan.Clean {
			t.Errorf("allow %s: %s", allow, dump(r))
		}
	}
	for _, bad := range []string{"os.system", "builtins.eval", "subprocess.*", "not a name"} {
		if _, err := modelscan.New(modelscan.Options{Allow: []string{bad}}); err == nil {
			t.Errorf("allow %q accepted", bad)
		}
	}
}
