package cvss_test

import (
	"testing"

	"github.com/pipewarden/pipewarden/internal/deps/cvss"
)

// Vectors and scores published by FIRST: the CVSS v4.0 examples document
// (https://www.first.org/cvss/v4.0/examples) and the specification's edge cases (no impact at all
// is 0.0; the most severe MacroVector with no distance is 10).
func TestV4PublishedVectors(t *testing.T) {
	tests := []struct {
		name, vector string
		want         float64
		rating       string
	}{
		{"maximum", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H", 10, "critical"},
		{"maximum with E:A", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H/E:A", 10, "critical"},
		{"no impact", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:N/SI:N/SA:N", 0, "none"},
		{"no impact after modification", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:N/VA:N/SC:N/SI:N/SA:N/MVC:N", 0, "none"},
		{"network rce vulnerable system", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", 9.3, "critical"},
		{"local attack requirements", "CVSS:4.0/AV:L/AC:L/AT:P/PR:L/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", 7.3, "high"},
		{"passive user interaction", "CVSS:4.0/AV:N/AC:L/AT:P/PR:N/UI:P/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", 7.7, "high"},
		{"unreported exploit maturity", "CVSS:4.0/AV:N/AC:L/AT:P/PR:N/UI:P/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/E:U", 5.2, "medium"},
		{"mixed vulnerable impacts", "CVSS:4.0/AV:N/AC:L/AT:P/PR:N/UI:N/VC:H/VI:L/VA:L/SC:N/SI:N/SA:N", 8.3, "high"},
		{"environmental overrides", "CVSS:4.0/AV:N/AC:L/AT:P/PR:N/UI:N/VC:H/VI:L/VA:L/SC:N/SI:N/SA:N/CR:H/IR:L/AR:L/MAV:N/MAC:H/MVC:H/MVI:L/MVA:L", 8.1, "high"},
		{"local active interaction low", "CVSS:4.0/AV:L/AC:L/AT:N/PR:N/UI:A/VC:L/VI:N/VA:N/SC:N/SI:N/SA:N", 4.6, "medium"},
		{"subsequent system only", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:A/VC:N/VI:N/VA:N/SC:L/SI:L/SA:N", 5.1, "medium"},
		{"subsequent low no interaction", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:L/SI:L/SA:N", 6.9, "medium"},
		{"high privileges subsequent confidentiality", "CVSS:4.0/AV:L/AC:L/AT:N/PR:H/UI:N/VC:N/VI:N/VA:N/SC:H/SI:N/SA:N", 5.9, "medium"},
		{"local everything high", "CVSS:4.0/AV:L/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H", 9.4, "critical"},
		{"physical with supplemental", "CVSS:4.0/AV:P/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:H/SA:N/S:P/V:D", 8.3, "high"},
		{"confidentiality only", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:N/VA:N/SC:N/SI:N/SA:N/E:A", 8.7, "high"},
		{"adjacent integrity and subsequent", "CVSS:4.0/AV:A/AC:L/AT:N/PR:N/UI:N/VC:N/VI:L/VA:N/SC:H/SI:N/SA:H", 6.4, "medium"},
		{"local high privileges recovery", "CVSS:4.0/AV:L/AC:L/AT:N/PR:H/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H/R:I", 9.3, "critical"},
		{"physical everything high", "CVSS:4.0/AV:P/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H", 8.6, "high"},
		{"low privileges confidentiality", "CVSS:4.0/AV:N/AC:L/AT:N/PR:L/UI:N/VC:H/VI:N/VA:N/SC:N/SI:N/SA:N", 7.1, "high"},
		{"availability and subsequent low", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:H/SC:N/SI:N/SA:L/E:U", 6.6, "medium"},
		{"physical attack requirements", "CVSS:4.0/AV:P/AC:L/AT:P/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", 5.4, "medium"},
		{"high privileges confidentiality", "CVSS:4.0/AV:N/AC:L/AT:N/PR:H/UI:N/VC:H/VI:N/VA:N/SC:N/SI:N/SA:N", 6.9, "medium"},
		{"proof of concept with safety", "CVSS:4.0/AV:N/AC:L/AT:N/PR:L/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H/E:P/CR:L/IR:H/AR:L/MAV:L/MAC:H/MAT:N/MPR:N/MUI:N/MVC:N/MVI:H/MVA:L/MSC:N/MSI:S/MSA:L", 7.0, "high"},
		{"modified safety both", "CVSS:4.0/AV:N/AC:L/AT:N/PR:L/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H/MAV:A/MAC:H/MAT:N/MPR:L/MUI:N/MVC:L/MVI:H/MVA:H/MSC:L/MSI:S/MSA:S/CR:L/IR:H/AR:H/E:P", 7.4, "high"},
		{"modified safety integrity", "CVSS:4.0/AV:A/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:N/SC:N/SI:N/SA:N/MSI:S/S:P", 9.7, "critical"},
		{"all supplemental metrics", "CVSS:4.0/AV:N/AC:L/AT:N/PR:L/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H/S:P/AU:Y/V:C/RE:L/U:Red", 9.4, "critical"},
		{"order does not matter", "CVSS:4.0/SA:N/SI:N/SC:N/VA:H/VI:H/VC:H/UI:N/PR:N/AT:N/AC:L/AV:N", 9.3, "critical"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := cvss.BaseScore(tc.vector)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("BaseScore(%s) = %v, want %v", tc.vector, got, tc.want)
			}
			if r := cvss.Rating(got); r != tc.rating {
				t.Errorf("Rating(%v) = %s, want %s", got, r, tc.rating)
			}
		})
	}
}

func TestV4Rejects(t *testing.T) {
	for name, vector := range map[string]string{
		"missing base metric": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N",
		"v3 metric in v4":     "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/S:U/RL:O",
		"safety as base":      "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:S/SA:N",
		"bad word value":      "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/U:Blue",
		"empty value":         "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:",
		"repeated":            "CVSS:4.0/AV:N/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
		"unknown version":     "CVSS:4.1/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
	} {
		t.Run(name, func(t *testing.T) {
			if s, err := cvss.BaseScore(vector); err == nil {
				t.Errorf("BaseScore(%q) = %v, want an error", vector, s)
			}
		})
	}
	if s, err := cvss.V4("CVSS:3.1/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"); err == nil {
		t.Errorf("V4 of a 3.1 prefix = %v, want an error", s)
	}
}

// Lowering any base metric by one step never raises the score: the interpolation keeps the
// ordering the MacroVector table gives.
func TestV4Monotonic(t *testing.T) {
	worse := map[string][]string{
		"AV": {"N", "A", "L", "P"}, "AC": {"L", "H"}, "AT": {"N", "P"}, "PR": {"N", "L", "H"},
		"UI": {"N", "P", "A"}, "VC": {"H", "L", "N"}, "VI": {"H", "L", "N"}, "VA": {"H", "L", "N"},
		"SC": {"H", "L", "N"}, "SI": {"H", "L", "N"}, "SA": {"H", "L", "N"},
	}
	order := []string{"AV", "AC", "AT", "PR", "UI", "VC", "VI", "VA", "SC", "SI", "SA"}
	vec := func(m map[string]string) string {
		s := "CVSS:4.0"
		for _, k := range order {
			s += "/" + k + ":" + m[k]
		}
		return s
	}
	// Walk the vectors reachable from the maximum by lowering one metric at a time, breadth
	// first, the first 3,000 of them.
	start := map[string]string{}
	for k, vs := range worse {
		start[k] = vs[0]
	}
	seen := map[string]bool{}
	queue := []map[string]string{start}
	for len(queue) > 0 && len(seen) < 3000 {
		m := queue[0]
		queue = queue[1:]
		v := vec(m)
		if seen[v] {
			continue
		}
		seen[v] = true
		s, err := cvss.V4(v)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range order {
			vs := worse[k]
			for i := 0; i+1 < len(vs); i++ {
				if vs[i] != m[k] {
					continue
				}
				n := map[string]string{}
				for kk, vv := range m {
					n[kk] = vv
				}
				n[k] = vs[i+1]
				ns, err := cvss.V4(vec(n))
				if err != nil {
					t.Fatal(err)
				}
				if ns > s+0.05 {
					t.Errorf("%s = %v but lowering %s gives %s = %v", v, s, k, vec(n), ns)
				}
				queue = append(queue, n)
			}
		}
	}
}

func BenchmarkV4(b *testing.B) {
	const v = "CVSS:4.0/AV:N/AC:L/AT:P/PR:N/UI:P/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/E:U"
	for b.Loop() {
		if _, err := cvss.V4(v); err != nil {
			b.Fatal(err)
		}
	}
}
