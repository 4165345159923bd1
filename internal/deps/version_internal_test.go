package deps

import (
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// TestCompareAgreesWithLibrary checks the fast order against go-pep440-version's Compare on
// every version listed in the shared advisories plus hand-picked edge cases.
func TestCompareAgreesWithLibrary(t *testing.T) {
	seen := map[string]bool{}
	var vs []version
	add := func(s string) {
		if v, ok := parseVersion(s); ok && !seen[v.raw] {
			seen[v.raw] = true
			vs = append(vs, v)
		}
	}
	for _, s := range []string{"1!0.1", "0.8.0-alpha2", "1.0.dev0", "1.0a1.dev1", "1.0a1", "1.0a1.post1", "1.0a1.post1.dev2",
		"1.0b1", "1.0c1", "1.0rc2", "1.0", "1.0.0", "1.0+abc", "1.0+abc.1", "1.0+1", "1.0+a-b", "1.0.post1.dev1", "1.0.post1",
		"1.0-2", "1.0.1", "1.0.10", "1.1", "2.0", "2024.8.30", "1!0.0", "v1.0", "1.0.dev", "1.0a", "1.0rev3", "0.24.dev0",
		"0.22rc2.post1", "1.0.0.0.1", "1.0+01", "1.0+zz.9"} {
		add(s)
	}
	files, _ := filepath.Glob("../../../shared/fixtures/osv/pypa/*/*.yaml")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		r, err := decodeRecord(f, data)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range r.Affected {
			for _, v := range a.Versions {
				add(v)
			}
		}
	}
	if len(vs) < 500 {
		t.Fatalf("only %d versions", len(vs))
	}
	sort.Slice(vs, func(i, j int) bool { return vs[i].raw < vs[j].raw })
	step := max(1, len(vs)/150) // about 150 partners for each version

	n := 0
	for i := range vs {
		for j := i % step; j < len(vs); j += step {
			got, want := vs[i].compare(vs[j]), libCompare(vs[i].raw, vs[j].raw)
			if got != want {
				t.Errorf("compare(%s, %s) = %d, library says %d", vs[i].raw, vs[j].raw, got, want)
			}
			n++
		}
	}
	t.Logf("%d versions, %d pairs agree", len(vs), n)
}

func TestLocalSeparatorsNormalized(t *testing.T) {
	a, _ := parseVersion("1.0+ubuntu-1_2")
	b, _ := parseVersion("1.0+ubuntu.1.2")
	if a.compare(b) != 0 {
		t.Errorf("1.0+ubuntu-1_2 and 1.0+ubuntu.1.2 differ")
	}
}
