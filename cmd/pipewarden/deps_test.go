package main

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	depsTestdata = "../../internal/deps/testdata"
	osvFixtures  = "../../../shared/fixtures/osv"
)

func runDeps(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(append([]string{"deps", "check"}, args...), strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestDepsCheckExitCodes(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr string
	}{
		{"vulnerable poetry lock", []string{"--osv-db", osvFixtures, depsTestdata + "/poetry.lock"}, 1,
			[]string{"torch 1.13.0: PYSEC-2022-43015", "poetry.lock:15", "GHSA-37q5-v5qm-c9v8"}, ""},
		{"fail-on critical passes high findings", []string{"--osv-db", osvFixtures, "--fail-on", "critical", depsTestdata + "/poetry.lock"}, 0,
			[]string{"PYSEC-2022-43015"}, ""},
		{"malicious package is critical", []string{"--osv-db", osvFixtures, "--fail-on", "critical", depsTestdata + "/environment.yml"}, 1,
			[]string{"MAL-2023-2133", "pytorchh looks like a typosquat of pytorch"}, ""},
		{"zip database", []string{"--osv-db", "ZIP", depsTestdata + "/pdm.lock"}, 1, []string{"PYSEC-2023-138", "PYSEC-2024-45"}, ""},
		{"clean lockfile", []string{"--osv-db", osvFixtures, depsTestdata + "/Pipfile.lock", "--fail-on", "critical"}, 0, []string{"mlflow 2.9.1"}, ""},
		{"missing lockfile", []string{"--osv-db", osvFixtures, "missing-requirements.txt"}, 2, nil, "missing-requirements.txt"},
		{"unsupported lockfile", []string{"Cargo.lock"}, 2, nil, "unsupported lockfile"},
		{"missing database", []string{"--osv-db", "no-such-db", depsTestdata + "/uv.lock"}, 2, nil, "no-such-db"},
		{"no lockfile", nil, 2, nil, "requires at least 1 arg"},
		{"bad format", []string{"--format", "xml", depsTestdata + "/uv.lock"}, 2, nil, "--format"},
	}
	zip := writeFixtureZip(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for i, a := range tc.args {
				if a == "ZIP" {
					tc.args[i] = zip
				}
			}
			code, out, errs := runDeps(t, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out, errs)
			}
			for _, s := range tc.stdout {
				if !strings.Contains(out, s) {
					t.Errorf("stdout lacks %q:\n%s", s, out)
				}
			}
			if tc.stderr != "" && (!strings.Contains(errs, tc.stderr) || strings.Count(strings.TrimSpace(errs), "\n") != 0) {
				t.Errorf("stderr %q, want one line containing %q", errs, tc.stderr)
			}
		})
	}
}

// writeFixtureZip packs the shared advisories flat, like osv.dev's PyPI all.zip.
func writeFixtureZip(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "all.zip")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	err = filepath.WalkDir(osvFixtures, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		w, err := zw.Create(filepath.Base(p))
		if err != nil {
			return err
		}
		_, err = w.Write(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return path
}

func TestDepsCheckSARIFPointsAtLockfileLines(t *testing.T) {
	code, out, errs := runDeps(t, "--osv-db", osvFixtures, "--format", "sarif", depsTestdata+"/uv.lock")
	if code != 1 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var doc struct {
		Runs []struct {
			Results []struct {
				RuleID    string `json:"ruleId"`
				Locations []struct {
					PhysicalLocation struct {
						ArtifactLocation struct{ URI string }    `json:"artifactLocation"`
						Region           struct{ StartLine int } `json:"region"`
					} `json:"physicalLocation"`
				} `json:"locations"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	lines := map[int]bool{}
	for _, r := range doc.Runs[0].Results {
		if r.RuleID == "deps.vulnerability" {
			loc := r.Locations[0].PhysicalLocation
			if !strings.HasSuffix(loc.ArtifactLocation.URI, "uv.lock") {
				t.Errorf("uri %q", loc.ArtifactLocation.URI)
			}
			lines[loc.Region.StartLine] = true
		}
	}
	if !lines[6] || !lines[29] {
		t.Errorf("vulnerability lines %v, want llama-index at 6 and pillow at 29", lines)
	}
}

func TestDepsCheckBaselineJSON(t *testing.T) {
	dir := t.TempDir()
	approved := filepath.Join(dir, "approved.txt")
	current := filepath.Join(dir, "requirements.txt")
	os.WriteFile(approved, []byte("numpy==1.26.4\ntorch==2.1.0\nsix==1.16.0\n"), 0o600)
	os.WriteFile(current, []byte("numpy==1.26.3\ntorch==2.2.0\nrequests==2.32.3\n"), 0o600)
	code, out, errs := runDeps(t, "--format", "json", "--fail-on", "medium", "--baseline", approved, current)
	if code != 1 {
		t.Fatalf("exit %d (the downgrade is medium): %s", code, errs)
	}
	var doc struct {
		Findings []struct {
			Rule    string `json:"rule"`
			Subject struct{ Name string }
		} `json:"findings"`
		Summary struct {
			Extra struct {
				Changes struct {
					Added   []struct{ Name, Version string }
					Removed []struct{ Name string }
					Changed []struct{ Name, From, To, Kind string }
				}
			}
		} `json:"summary"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, f := range doc.Findings {
		got[f.Rule+" "+f.Subject.Name] = true
	}
	for _, want := range []string{"deps.added requests", "deps.removed six", "deps.downgraded numpy", "deps.upgraded torch"} {
		if !got[want] {
			t.Errorf("no %s finding in %v", want, got)
		}
	}
	ch := doc.Summary.Extra.Changes
	if len(ch.Added) != 1 || len(ch.Removed) != 1 || len(ch.Changed) != 2 {
		t.Errorf("changes %+v", ch)
	}
}
