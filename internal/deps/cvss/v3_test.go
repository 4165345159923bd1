package cvss_test

import (
	"testing"

	"github.com/pipewarden/pipewarden/internal/deps/cvss"
)

// Scores published by NVD / the FIRST calculator for these vectors.
func TestV3KnownVectors(t *testing.T) {
	tests := []struct {
		name, vector string
		want         float64
		rating       string
	}{
		{"network rce", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8, "critical"},
		{"mlflow path traversal", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", 7.5, "high"},
		{"aiohttp local dos", "CVSS:3.1/AV:L/AC:L/PR:N/UI:R/S:U/C:N/I:N/A:H", 5.5, "medium"},
		{"scope changed max", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0, "critical"},
		{"reflected xss", "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1, "medium"},
		{"high complexity", "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H", 8.1, "high"},
		{"local privesc", "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8, "high"},
		{"low privileges", "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 8.8, "high"},
		{"high privileges", "CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H", 7.2, "high"},
		{"adjacent", "CVSS:3.1/AV:A/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 8.8, "high"},
		{"physical minimal", "CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N", 1.6, "low"},
		{"no impact", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0, "none"},
		{"scope changed low privileges", "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:L/I:L/A:N", 6.4, "medium"},
		{"local scope changed", "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:C/C:H/I:H/A:H", 8.8, "high"},
		{"info leak", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:N", 5.3, "medium"},
		{"v3.0 prefix", "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8, "critical"},
		{"temporal metrics ignored", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:P/RL:O/RC:C", 9.8, "critical"},
		{"order does not matter", "CVSS:3.1/C:H/I:H/A:H/AV:N/AC:L/PR:N/UI:N/S:U", 9.8, "critical"},
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

func TestV3Rejects(t *testing.T) {
	for name, vector := range map[string]string{
		"missing metric":  "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H",
		"bad value":       "CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
		"unknown metric":  "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/ZZ:1",
		"repeated metric": "CVSS:3.1/AV:N/AV:L/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
		"v2 vector":       "AV:N/AC:L/Au:N/C:P/I:P/A:P",
		"malformed":       "CVSS:3.1/AVN",
	} {
		t.Run(name, func(t *testing.T) {
			if s, err := cvss.BaseScore(vector); err == nil {
				t.Errorf("BaseScore(%q) = %v, want an error", vector, s)
			}
		})
	}
}

func FuzzBaseScore(f *testing.F) {
	f.Add("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H")
	f.Add("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N")
	f.Fuzz(func(t *testing.T, v string) {
		s, err := cvss.BaseScore(v)
		if err == nil && (s < 0 || s > 10) {
			t.Fatalf("BaseScore(%q) = %v outside 0..10", v, s)
		}
	})
}
