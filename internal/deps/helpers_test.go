package deps_test

import (
	"slices"
	"sort"
	"testing"

	"github.com/pipewarden/pipewarden/internal/deps"
	"github.com/pipewarden/pipewarden/internal/finding"
)

// fixtures is the shared OSV fixture directory, relative to this package.
const fixtures = "../../../shared/fixtures/osv"

func loadDB(t testing.TB, paths ...string) *deps.DB {
	t.Helper()
	db, err := deps.LoadOSV(paths...)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func pkg(name, version string) deps.Package {
	return deps.Package{Name: name, Key: deps.Normalize(name), Version: version, Ecosystem: deps.PyPI}
}

// advisoryIDs returns the ids of the vulnerability and malicious findings, sorted.
func advisoryIDs(fs []finding.Finding) []string {
	var out []string
	for _, f := range fs {
		if f.Rule == deps.RuleVulnerability || f.Rule == deps.RuleMalicious {
			out = append(out, f.Evidence["ids"].([]string)...)
		}
	}
	sort.Strings(out)
	return out
}

func byRule(fs []finding.Finding, rule string) []finding.Finding {
	var out []finding.Finding
	for _, f := range fs {
		if f.Rule == rule {
			out = append(out, f)
		}
	}
	return out
}

func names(ps []deps.Package) map[string]string {
	out := map[string]string{}
	for _, p := range ps {
		out[p.Key] = p.Version
	}
	return out
}

func mustContain(t *testing.T, what string, list []string, want string) {
	t.Helper()
	if !slices.Contains(list, want) {
		t.Errorf("%s: %q not in %q", what, want, list)
	}
}
