package gate_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pipewarden/pipewarden/internal/finding"
	"github.com/pipewarden/pipewarden/internal/gate"
)

func TestLoadFileResolvesPathsAgainstPolicy(t *testing.T) {
	p, err := gate.LoadFile("testdata/policy.yml")
	if err != nil {
		t.Fatal(err)
	}
	fixtures := filepath.Join("testdata", "../../../../shared/fixtures")
	mt := filepath.Join(fixtures, "signing/model-transparency")
	if p.Path != "testdata/policy.yml" || p.Dir != "testdata" {
		t.Errorf("Path, Dir = %q, %q", p.Path, p.Dir)
	}
	if p.FailOn != finding.High {
		t.Errorf("FailOn = %v", p.FailOn)
	}
	if len(p.OSVDB) != 1 || p.OSVDB[0] != filepath.Join(fixtures, "osv") {
		t.Errorf("OSVDB = %q", p.OSVDB)
	}
	if len(p.Models) != 2 {
		t.Fatalf("%d models", len(p.Models))
	}
	m := p.Models[0]
	if m.Path != filepath.Join(mt, "v1.0.1-elliptic-key") || !m.Scan || m.FailOn == nil || *m.FailOn != finding.Medium {
		t.Errorf("model 0 = %+v", m)
	}
	if len(m.Allow) != 1 || m.Allow[0] != "collections.OrderedDict" {
		t.Errorf("scan allow = %q", m.Allow)
	}
	if m.Verify == nil || m.Verify.Key != filepath.Join(mt, "keys/certificate/signing-key-pub.pem") ||
		m.Verify.Signature != filepath.Join(mt, "v1.0.1-elliptic-key/model.sig") ||
		len(m.Verify.IgnorePaths) != 1 || m.Verify.IgnorePaths[0] != filepath.Join(mt, "v1.0.1-elliptic-key/ignore-me") {
		t.Errorf("verify 0 = %+v", m.Verify)
	}
	if m.Line != 7 {
		t.Errorf("model 0 line = %d, want 7", m.Line)
	}
	m = p.Models[1]
	if m.Scan || m.Verify == nil || len(m.Verify.CertChain) != 1 || !m.Verify.IgnoreUnsignedFiles || m.FailOn != nil {
		t.Errorf("model 1 = %+v verify %+v", m, m.Verify)
	}
	if d := p.Datasets[0]; d.Baseline != filepath.Join("testdata", "iris.baseline.json") || d.Label != "label" {
		t.Errorf("dataset = %+v", d)
	}
	if l := p.Lockfiles[0]; l.Path != filepath.Join("testdata", "../../deps/testdata/poetry.lock") || !l.Typosquats || *l.FailOn != finding.Critical {
		t.Errorf("lockfile 0 = %+v", l)
	}
	if l := p.Lockfiles[1]; l.Typosquats || l.Baseline == "" || l.FailOn != nil {
		t.Errorf("lockfile 1 = %+v", l)
	}
	a := p.Allow[0]
	if a.ID != "PYSEC-2022-43015" || a.Rule != "deps.vulnerability" || !a.Expires.Equal(time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("allow 0 = %+v (an entry holds through its expiry day)", a)
	}
	if a := p.Allow[1]; a.Target != filepath.Join(fixtures, "models/picklescan") || a.Subject != "*/legacy/*.pkl" || !a.Expires.IsZero() {
		t.Errorf("allow 1 = %+v", a)
	}
	if p.Deploy.Endpoint != "fraud-scoring" || p.Deploy.Model != p.Models[0].Path {
		t.Errorf("deploy = %+v", p.Deploy)
	}
}

func TestLoadAbsolutePathsStay(t *testing.T) {
	p, err := gate.Load([]byte("lockfiles: [{path: /srv/app/requirements.txt}]\n"), "/elsewhere")
	if err != nil {
		t.Fatal(err)
	}
	if p.Lockfiles[0].Path != "/srv/app/requirements.txt" || p.FailOn != finding.High {
		t.Errorf("policy = %+v", p)
	}
}

// Every mistake is an error naming the line and the field, so a user can fix the file.
func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown top-level key", "lockfiles: [{path: requirements.txt}]\nfailon: high\n", []string{"line 2", "failon"}},
		{"unknown nested key", "models:\n  - path: m\n    verify:\n      signature: s\n      key: k\n      keys: k2\n", []string{"line 6", "keys"}},
		{"wrong type", "models: models/x\n", []string{"line 1"}},
		{"missing model path", "models:\n  - fail_on: high\n", []string{"line 2", "models[0]", "path"}},
		{"key and cert chain", "models:\n  - path: m\n    verify:\n      signature: m.sig\n      key: k.pem\n      cert_chain: [ca.pem]\n", []string{"line 3", "models[0].verify", "exactly one"}},
		{"verify without trust", "models:\n  - path: m\n    verify: {signature: m.sig}\n", []string{"line 3", "exactly one"}},
		{"verify without signature", "models:\n  - path: m\n    verify: {key: k.pem}\n", []string{"line 3", "signature"}},
		{"scan skipped nothing else", "models:\n  - path: m\n    scan: {skip: true}\n", []string{"line 2", "nothing to do"}},
		{"bad fail_on", "fail_on: severe\nlockfiles: [{path: requirements.txt}]\n", []string{"line 1", "fail_on", "severe"}},
		{"bad check fail_on", "lockfiles:\n  - path: requirements.txt\n    fail_on: urgent\n", []string{"line 3", "lockfiles[0].fail_on"}},
		{"dataset without baseline", "datasets:\n  - path: d.csv\n", []string{"line 2", "datasets[0].baseline", "required"}},
		{"unsupported lockfile", "lockfiles:\n  - path: package-lock.json\n", []string{"line 2", "package-lock.json", "unsupported"}},
		{"allow without reason", "lockfiles: [{path: requirements.txt}]\nallow:\n  - rule: deps.typosquat\n", []string{"line 3", "allow[0].reason"}},
		{"allow everything", "lockfiles: [{path: requirements.txt}]\nallow:\n  - reason: trust me\n", []string{"line 3", "rule or an id"}},
		{"bad expiry", "lockfiles: [{path: requirements.txt}]\nallow:\n  - {rule: r, reason: x, expires: next week}\n", []string{"line 3", "expires", "YYYY-MM-DD"}},
		{"bad subject pattern", "lockfiles: [{path: requirements.txt}]\nallow:\n  - {rule: r, reason: x, subject: \"[\"}\n", []string{"line 3", "subject"}},
		{"deploy model unknown", "models: [{path: a}]\ndeploy:\n  model: b\n", []string{"line 3", "deploy.model", "not one of the models"}},
		{"deploy model and digest", "models: [{path: a}]\ndeploy: {model: a, model_digest: \"sha256:00\"}\n", []string{"line 2", "not both"}},
		{"nothing to check", "fail_on: high\n", []string{"nothing to check"}},
		{"empty", "", []string{"empty policy"}},
		{"version 2", "version: 2\nlockfiles: [{path: requirements.txt}]\n", []string{"line 1", "version 2"}},
		{"two documents", "lockfiles: [{path: requirements.txt}]\n---\nlockfiles: [{path: other.txt}]\n", []string{"one YAML document"}},
		{"syntax error", "lockfiles: [{path: requirements.txt}\n", []string{"line"}},
		{"too large", "lockfiles: [{path: requirements.txt}]\n#" + strings.Repeat("x", gate.MaxPolicyBytes), []string{"larger than"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := gate.Load([]byte(tc.yaml), ".")
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadFileNamesTheFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pw.yml")
	if err := os.WriteFile(path, []byte("models:\n  - path: m\n    bogus: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := gate.LoadFile(path)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("error %v, want it to name %s and line 3", err, path)
	}
	if _, err := gate.LoadFile(filepath.Join(dir, "missing.yml")); !os.IsNotExist(err) {
		t.Errorf("missing file: %v, want a not-exist error", err)
	}
}
