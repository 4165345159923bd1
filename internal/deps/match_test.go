package deps_test

import (
	"slices"
	"testing"

	"github.com/pipewarden/pipewarden/internal/deps"
	"github.com/pipewarden/pipewarden/internal/finding"
)

// TestFixtureAdvisories checks every shared advisory with versions inside and outside its
// ranges, including pre- and dev-release bounds, last_affected, the withdrawn record and the
// records whose GIT range comes before the ECOSYSTEM one.
func TestFixtureAdvisories(t *testing.T) {
	db := loadDB(t, fixtures)
	tests := []struct {
		name, pkg, version string
		want               []string
	}{
		{"withdrawn record is ignored", "aiohttp", "3.8.1", nil},
		{"langchain-core below fix", "langchain-core", "0.1.10", []string{"PYSEC-2024-45"}},
		{"langchain-core release candidate", "langchain-core", "0.0.13rc1", []string{"PYSEC-2024-45"}},
		{"langchain-core fixed", "langchain-core", "0.1.11", nil},
		{"langchain below fix", "langchain", "0.0.235", []string{"PYSEC-2023-138"}},
		{"langchain pre-release of affected", "langchain", "0.0.101rc0", []string{"PYSEC-2023-138"}},
		{"langchain fixed", "langchain", "0.0.236", nil},
		{"llama-index affected", "llama-index", "0.9.34", []string{"PYSEC-2024-12"}},
		{"llama_index normalizes to llama-index", "llama_index", "0.9.34", []string{"PYSEC-2024-12"}},
		{"Llama.Index normalizes too", "Llama.Index", "0.9.34", []string{"PYSEC-2024-12"}},
		{"llama-index fixed", "llama_index", "0.9.35", nil},
		{"mlflow git range then ecosystem", "mlflow", "2.9.1", []string{"PYSEC-2023-252", "PYSEC-2024-51"}},
		{"mlflow old release", "mlflow", "2.0.0", []string{"PYSEC-2023-252", "PYSEC-2023-70", "PYSEC-2024-51"}},
		{"mlflow dev release", "mlflow", "1.1.1.dev0", []string{"PYSEC-2023-252", "PYSEC-2023-70", "PYSEC-2024-51"}},
		{"mlflow between fixes", "mlflow", "2.10.0", []string{"PYSEC-2024-51"}},
		{"mlflow fixed", "mlflow", "2.10.1", nil},
		{"numpy below fix", "numpy", "1.13.1", []string{"PYSEC-2017-1"}},
		{"numpy 1.9 series in both", "numpy", "1.9.2", []string{"PYSEC-2017-1", "PYSEC-2021-854"}},
		{"numpy introduced bound", "numpy", "1.9.0", []string{"PYSEC-2017-1", "PYSEC-2021-854"}},
		{"numpy fixed bound of the 1.9 record", "numpy", "1.10.0", []string{"PYSEC-2017-1"}},
		{"numpy release candidate", "numpy", "1.0rc1", []string{"PYSEC-2017-1"}},
		{"numpy fixed", "numpy", "1.13.3", nil},
		{"numpy 1.0 equals 1.0.0", "numpy", "1.13.1.0", []string{"PYSEC-2017-1"}},
		{"onnx git range first", "onnx", "1.12.0", []string{"PYSEC-2023-38"}},
		{"onnx fixed", "onnx", "1.13.0", nil},
		{"pillow in both", "pillow", "9.2.0", []string{"PYSEC-2022-42980", "PYSEC-2023-175"}},
		{"pillow before introduced", "Pillow", "9.1.0", []string{"PYSEC-2023-175"}},
		{"pillow first fix", "pillow", "9.3.0", []string{"PYSEC-2023-175"}},
		{"pillow fixed", "pillow", "10.0.1", nil},
		{"py last_affected is affected", "py", "1.11.0", []string{"PYSEC-2022-42969"}},
		{"py after last_affected", "py", "1.11.1", nil},
		{"py legacy pre-release spelling", "py", "0.8.0-alpha2", []string{"PYSEC-2022-42969"}},
		{"scikit-learn before dev bound", "scikit-learn", "0.23.2", []string{"PYSEC-2020-108"}},
		{"scikit-learn post of pre-release", "scikit-learn", "0.22rc2.post1", []string{"PYSEC-2020-108"}},
		{"scikit-learn dev bound is fixed", "scikit-learn", "0.24.dev0", nil},
		{"scikit-learn rc after dev bound", "scikit-learn", "0.24.0rc1", nil},
		{"scikit-learn later dev", "scikit-learn", "0.24.dev1", nil},
		{"tensorflow 2.6.0", "tensorflow", "2.6.0", []string{"PYSEC-2021-420", "PYSEC-2021-843"}},
		{"tensorflow rc introduced bound", "tensorflow", "2.7.0rc0", []string{"PYSEC-2021-420"}},
		{"tensorflow before rc bound", "tensorflow", "2.7.0.dev0", nil},
		{"tensorflow 2.7.0 fixed", "tensorflow", "2.7.0", nil},
		{"tensorflow all three", "tensorflow", "2.3.0", []string{"PYSEC-2020-125", "PYSEC-2021-420", "PYSEC-2021-843"}},
		{"tensorflow backport fixed", "tensorflow", "2.3.1", []string{"PYSEC-2021-420", "PYSEC-2021-843"}},
		{"tensorflow 1.15.4 backport", "tensorflow", "1.15.4", []string{"PYSEC-2021-420", "PYSEC-2021-843"}},
		{"tensorflow fixed branch", "tensorflow", "2.6.1", nil},
		{"torch affected", "torch", "1.13.0", []string{"PYSEC-2022-43015"}},
		{"torch local build", "torch", "1.13.0+cu117", []string{"PYSEC-2022-43015"}},
		{"torch fixed", "torch", "1.13.1", nil},
		{"torch fixed local build", "torch", "1.13.1+cpu", nil},
		{"transformers github advisory", "transformers", "4.37.2", []string{"GHSA-37q5-v5qm-c9v8"}},
		{"transformers fixed", "transformers", "4.38.0", nil},
		{"malicious tensorfllow", "tensorfllow", "2.0.0", []string{"MAL-2023-2300"}},
		{"malicious pytorchh", "pytorchh", "0.0.1", []string{"MAL-2023-2133"}},
		{"unknown package", "left-pad", "1.0.0", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lf := &deps.Lockfile{Path: "requirements.txt", Packages: []deps.Package{pkg(tc.pkg, tc.version)}}
			got := advisoryIDs(deps.Check(lf, deps.Options{DB: db}))
			if !slices.Equal(got, tc.want) {
				t.Errorf("%s %s: advisories %q, want %q", tc.pkg, tc.version, got, tc.want)
			}
		})
	}
}

func TestSeverity(t *testing.T) {
	db := loadDB(t, fixtures)
	tests := []struct {
		name, pkg, version string
		rule               string
		want               finding.Severity
		source             string
	}{
		{"cvss 3.1 vector 9.8", "langchain", "0.0.235", deps.RuleVulnerability, finding.Critical, "CVSS_V3 CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H = 9.8"},
		{"cvss 3.1 vector 7.5", "mlflow", "2.9.1", deps.RuleVulnerability, finding.High, "CVSS_V3 CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N = 7.5"},
		{"github database severity", "transformers", "4.37.2", deps.RuleVulnerability, finding.Low, "database_specific.severity LOW"},
		{"no severity assumed high", "torch", "1.13.0", deps.RuleVulnerability, finding.High, "no severity in the advisory (assumed high)"},
		{"malicious is critical", "tensorfllow", "1.0", deps.RuleMalicious, finding.Critical, "malicious package"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := pkg(tc.pkg, tc.version)
			p.Location = finding.Location{Path: "poetry.lock", Line: 42}
			fs := byRule(deps.Check(&deps.Lockfile{Path: "poetry.lock", Packages: []deps.Package{p}}, deps.Options{DB: db}), tc.rule)
			if len(fs) == 0 {
				t.Fatalf("no %s finding", tc.rule)
			}
			var f finding.Finding
			for _, g := range fs {
				if g.Evidence["severity_source"] == tc.source {
					f = g
				}
			}
			if f.Rule == "" {
				t.Fatalf("no finding with severity source %q in %+v", tc.source, fs)
			}
			if f.Severity != tc.want {
				t.Errorf("severity %s, want %s", f.Severity, tc.want)
			}
			if f.Location == nil || f.Location.Line != 42 || f.Location.Path != "poetry.lock" {
				t.Errorf("location %+v, want poetry.lock:42", f.Location)
			}
			if err := f.Validate(); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestAliasesAreReported(t *testing.T) {
	db := loadDB(t, fixtures)
	fs := deps.Check(&deps.Lockfile{Packages: []deps.Package{pkg("numpy", "1.9.3")}}, deps.Options{DB: db})
	for _, f := range byRule(fs, deps.RuleVulnerability) {
		if f.Evidence["ids"].([]string)[0] == "PYSEC-2021-854" {
			aliases := f.Evidence["aliases"].([]string)
			mustContain(t, "aliases", aliases, "CVE-2021-33430")
			mustContain(t, "aliases", aliases, "GHSA-6p56-wp2h-9hxr")
			return
		}
	}
	t.Fatalf("PYSEC-2021-854 not reported: %+v", fs)
}

func TestLoadStats(t *testing.T) {
	st := loadDB(t, fixtures).Stats()
	if st.Files != 21 || st.Withdrawn != 1 || st.Records != 20 || st.Bad != 0 {
		t.Errorf("stats %+v, want 21 files, 20 records, 1 withdrawn, 0 bad", st)
	}
}
