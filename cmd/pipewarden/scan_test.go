package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const scanFixtures = "../../../shared/fixtures/models"
const scanGenerated = "../../internal/modelscan/testdata/gen"

func runScan(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(append([]string{"scan"}, args...), strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestScanExitCodes(t *testing.T) {
	cases := []struct {
		name string
		args []string
		code int
	}{
		{"clean pickle", []string{filepath.Join(scanFixtures, "picklescan", "benign0_v4.pkl")}, 0},
		{"clean torch dir", []string{filepath.Join(scanFixtures, "benign-torch")}, 0},
		{"malicious pickle", []string{filepath.Join(scanFixtures, "picklescan", "malicious1_v4.pkl")}, 1},
		{"malicious torch zip", []string{filepath.Join(scanFixtures, "modelscan", "unsafe_zip_pytorch.pt")}, 1},
		{"clean and malicious", []string{filepath.Join(scanFixtures, "picklescan", "benign0_v4.pkl"),
			filepath.Join(scanFixtures, "picklescan", "malicious2_v0.pkl")}, 1},
		{"inconclusive is not clean", []string{filepath.Join(scanFixtures, "picklescan", "bad_pytorch.pt")}, 1},
		{"high below --fail-on critical", []string{"--fail-on", "critical", filepath.Join(scanGenerated, "unverified.pkl")}, 0},
		{"high at --fail-on high", []string{filepath.Join(scanGenerated, "unverified.pkl")}, 1},
		{"--allow passes an unverified import", []string{"--allow", "mylib.models.Net", filepath.Join(scanGenerated, "unverified.pkl")}, 0},
		{"critical stays with --fail-on critical", []string{"--fail-on", "critical", filepath.Join(scanFixtures, "picklescan", "malicious14.pkl")}, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := runScan(t, c.args...)
			if code != c.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, c.code, out, errOut)
			}
		})
	}
}

func TestScanUsageErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.pt")
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"missing input", []string{missing}, "nope.pt"},
		{"no input", []string{}, "arg"},
		{"bad format", []string{"--format", "xml", missing}, "--format"},
		{"bad fail-on", []string{"--fail-on", "urgent", missing}, "--fail-on"},
		{"dangerous allow", []string{"--allow", "os.system", filepath.Join(scanGenerated, "unverified.pkl")}, "os.system"},
		{"missing policy file", []string{"--policy", missing, filepath.Join(scanGenerated, "unverified.pkl")}, "nope.pt"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := runScan(t, c.args...)
			if code != 2 {
				t.Fatalf("exit %d, want 2\nstdout: %s\nstderr: %s", code, out, errOut)
			}
			if lines := strings.Count(strings.TrimSpace(errOut), "\n"); lines != 0 || !strings.Contains(errOut, c.want) {
				t.Fatalf("stderr should be one line naming %q: %q", c.want, errOut)
			}
		})
	}
}

func TestScanPolicyFile(t *testing.T) {
	pol := filepath.Join(t.TempDir(), "allow.txt")
	if err := os.WriteFile(pol, []byte("# reviewed 2025-01\nmylib.* # our own package\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runScan(t, "--policy", pol, filepath.Join(scanGenerated, "unverified.pkl")); code != 0 {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
}

func TestScanJSON(t *testing.T) {
	code, out, _ := runScan(t, "--format", "json", filepath.Join(scanFixtures, "picklescan", "malicious1_0x1.zip"),
		filepath.Join(scanFixtures, "picklescan", "benign0_v3.pkl"))
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	var r struct {
		Findings []struct {
			Rule     string         `json:"rule"`
			Severity string         `json:"severity"`
			Evidence map[string]any `json:"evidence"`
		} `json:"findings"`
		Summary struct {
			Max   string         `json:"max_severity"`
			Extra map[string]any `json:"extra"`
		} `json:"summary"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if r.Summary.Max != "critical" || r.Findings[0].Rule != "modelscan.pickle.dangerous-import" ||
		r.Findings[0].Evidence["import"] != "builtins.eval" || r.Findings[0].Evidence["member"] != "model/config.pkl" {
		t.Fatalf("unexpected report: %+v", r)
	}
	outcomes, _ := r.Summary.Extra["outcomes"].(map[string]any)
	if outcomes["clean"] != 1.0 || outcomes["findings"] != 1.0 {
		t.Fatalf("per-file outcomes: %v", r.Summary.Extra)
	}
}

func TestScanSARIF(t *testing.T) {
	code, out, _ := runScan(t, "--format", "sarif", filepath.Join(scanFixtures, "picklescan", "malicious2_v4.pkl"))
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	var log struct {
		Version string `json:"version"`
		Runs    []struct {
			Tool struct {
				Driver struct {
					Rules []struct {
						ID              string `json:"id"`
						FullDescription *struct {
							Text string `json:"text"`
						} `json:"fullDescription"`
					} `json:"rules"`
				} `json:"driver"`
			} `json:"tool"`
			Results []struct {
				RuleID    string `json:"ruleId"`
				Level     string `json:"level"`
				Locations []struct {
					PhysicalLocation struct {
						ArtifactLocation struct {
							URI string `json:"uri"`
						} `json:"artifactLocation"`
					} `json:"physicalLocation"`
				} `json:"locations"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal([]byte(out), &log); err != nil {
		t.Fatal(err)
	}
	if log.Version != "2.1.0" || len(log.Runs) != 1 || len(log.Runs[0].Results) == 0 {
		t.Fatalf("not a SARIF 2.1.0 log with results: %s", out)
	}
	res := log.Runs[0].Results[0]
	if res.RuleID != "modelscan.pickle.dangerous-import" || res.Level != "error" || len(res.Locations) != 1 ||
		!strings.HasSuffix(res.Locations[0].PhysicalLocation.ArtifactLocation.URI, "picklescan/malicious2_v4.pkl") {
		t.Fatalf("result: %+v", res)
	}
	if r := log.Runs[0].Tool.Driver.Rules; len(r) == 0 || r[0].FullDescription == nil || r[0].FullDescription.Text == "" {
		t.Fatalf("rules lack descriptions: %+v", r)
	}
}

func TestScanText(t *testing.T) {
	_, out, _ := runScan(t, filepath.Join(scanFixtures, "picklescan", "malicious15b.pkl"))
	if !strings.Contains(out, "CRITICAL") || !strings.Contains(out, "bdb.Bdb.run") {
		t.Fatalf("text report: %s", out)
	}
}
