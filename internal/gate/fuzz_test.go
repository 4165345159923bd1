package gate_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/pipewarden/pipewarden/internal/finding"
	"github.com/pipewarden/pipewarden/internal/gate"
)

// FuzzLoad feeds the policy parser arbitrary bytes: a policy comes from the repository under
// test, so it is untrusted. Load must never panic, and whatever it accepts must be a policy the
// runner can use: something to check, every path resolved, one trust source per verification.
func FuzzLoad(f *testing.F) {
	seed, err := os.ReadFile("testdata/policy.yml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	for _, s := range []string{
		"lockfiles: [{path: requirements.txt}]\n",
		"models:\n  - path: m\n    verify: {signature: s, key: k}\n",
		"models:\n  - path: m\n    verify: {signature: s, cert_chain: [a, b]}\n    scan: {skip: true}\n",
		"datasets: [{path: d.csv, baseline: b.json, fail_on: low}]\nallow: [{rule: r, reason: x, expires: 2030-01-01}]\n",
		"a: &a [*a, *a]\n",
		"models: [{path: m}]\ndeploy: {model: m, endpoint: e}\n",
		"lockfiles: [{path: requirements.txt}]\n---\n",
		"{",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 64<<10 {
			t.Skip()
		}
		p, err := gate.Load(b, "/base")
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if len(p.Models)+len(p.Datasets)+len(p.Lockfiles) == 0 {
			t.Fatal("accepted a policy with nothing to check")
		}
		valid := func(s *finding.Severity) {
			if s != nil && (*s < finding.Info || *s > finding.Critical) {
				t.Fatalf("severity %d", *s)
			}
		}
		resolved := func(p string) {
			if p != "" && !filepath.IsAbs(p) {
				t.Fatalf("path %q not resolved against the policy directory", p)
			}
		}
		for _, m := range p.Models {
			if m.Path == "" {
				t.Fatal("model without path")
			}
			resolved(m.Path)
			valid(m.FailOn)
			if !m.Scan && m.Verify == nil {
				t.Fatal("model with nothing to do")
			}
			if v := m.Verify; v != nil {
				if v.Signature == "" || (v.Key == "") == (len(v.CertChain) == 0) {
					t.Fatalf("verify %+v", v)
				}
				resolved(v.Signature)
				resolved(v.Key)
			}
		}
		for _, d := range p.Datasets {
			if d.Path == "" || d.Baseline == "" {
				t.Fatalf("dataset %+v", d)
			}
			resolved(d.Path)
			valid(d.FailOn)
		}
		for _, l := range p.Lockfiles {
			resolved(l.Path)
			valid(l.FailOn)
		}
		for _, a := range p.Allow {
			if a.Reason == "" || (a.Rule == "" && a.ID == "") {
				t.Fatalf("allow %+v", a)
			}
		}
	})
}
