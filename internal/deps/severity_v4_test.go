package deps_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/pipewarden/pipewarden/internal/deps"
	"github.com/pipewarden/pipewarden/internal/finding"
)

// Records that carry only a CVSS v4.0 vector are rated by its computed score, ahead of the
// database's own label, and the highest of several vectors counts.
func TestSeverityCVSSv4(t *testing.T) {
	const record = `{"id": %q, "modified": "2024-06-01T00:00:00Z",
  "affected": [{"package": {"ecosystem": "PyPI", "name": %q},
    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.0"}]}]}],
  "severity": %s,
  "database_specific": {"severity": "LOW"}}`
	tests := []struct {
		name     string
		severity string
		want     finding.Severity
		source   string
	}{
		{"v4 only critical", `[{"type": "CVSS_V4", "score": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"}]`,
			finding.Critical, "CVSS_V4 CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N = 9.3"},
		{"v4 only medium", `[{"type": "CVSS_V4", "score": "CVSS:4.0/AV:L/AC:L/AT:N/PR:N/UI:A/VC:L/VI:N/VA:N/SC:N/SI:N/SA:N"}]`,
			finding.Medium, "CVSS_V4 CVSS:4.0/AV:L/AC:L/AT:N/PR:N/UI:A/VC:L/VI:N/VA:N/SC:N/SI:N/SA:N = 4.6"},
		{"v4 no impact", `[{"type": "CVSS_V4", "score": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:N/SI:N/SA:N"}]`,
			finding.Info, "CVSS_V4 CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:N/SI:N/SA:N = 0.0"},
		{"highest of v3 and v4", `[{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:N"},
			{"type": "CVSS_V4", "score": "CVSS:4.0/AV:N/AC:L/AT:N/PR:L/UI:N/VC:H/VI:N/VA:N/SC:N/SI:N/SA:N"}]`,
			finding.High, "CVSS_V4 CVSS:4.0/AV:N/AC:L/AT:N/PR:L/UI:N/VC:H/VI:N/VA:N/SC:N/SI:N/SA:N = 7.1"},
		{"bad v4 vector falls back", `[{"type": "CVSS_V4", "score": "CVSS:4.0/AV:N"}]`,
			finding.Low, "database_specific.severity LOW"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			name := "v4pkg"
			id := "GHSA-test-v4" + string(rune('a'+i))
			body := []byte(fmt.Sprintf(record, id, name, tc.severity))
			if err := os.WriteFile(filepath.Join(dir, id+".json"), body, 0o644); err != nil {
				t.Fatal(err)
			}
			db := loadDB(t, dir)
			if st := db.Stats(); st.Bad != 0 {
				t.Fatalf("record did not load: %v", st.Errors)
			}
			fs := byRule(deps.Check(&deps.Lockfile{Path: "requirements.txt", Packages: []deps.Package{pkg(name, "1.0")}}, deps.Options{DB: db}), deps.RuleVulnerability)
			if len(fs) != 1 {
				t.Fatalf("%d vulnerability findings, want 1", len(fs))
			}
			if got := fs[0].Evidence["severity_source"]; got != tc.source {
				t.Errorf("severity source %q, want %q", got, tc.source)
			}
			if fs[0].Severity != tc.want {
				t.Errorf("severity %s, want %s", fs[0].Severity, tc.want)
			}
		})
	}
}
