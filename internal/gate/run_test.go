package gate_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pipewarden/pipewarden/internal/dataset"
	"github.com/pipewarden/pipewarden/internal/dataset/table"
	"github.com/pipewarden/pipewarden/internal/finding"
	"github.com/pipewarden/pipewarden/internal/gate"
)

// fixtures is the shared fixture directory, absolute so that policies written to temporary
// directories can name it.
func fixtures(t testing.TB) string {
	t.Helper()
	p, err := filepath.Abs("../../../shared/fixtures")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func depsTestdata(t testing.TB) string {
	t.Helper()
	p, err := filepath.Abs("../deps/testdata")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// loadPolicy writes a policy into a temporary directory and loads it.
func loadPolicy(t *testing.T, yaml string) *gate.Policy {
	t.Helper()
	path := filepath.Join(t.TempDir(), ".pipewarden.yml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := gate.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var fixedNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func run(t *testing.T, p *gate.Policy, opts gate.Options) *gate.Result {
	t.Helper()
	if opts.Now == nil {
		opts.Now = func() time.Time { return fixedNow }
	}
	return gate.Run(context.Background(), p, opts)
}

func rules(fs []finding.Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Rule)
	}
	return out
}

// copyDir copies the regular files of src (one level) into a new temporary directory.
func copyDir(t *testing.T, src string, names ...string) string {
	t.Helper()
	dst := t.TempDir()
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(src, n))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, n), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func TestRunModels(t *testing.T) {
	fx := fixtures(t)
	pickles := filepath.Join(fx, "models/picklescan")
	mt := filepath.Join(fx, "signing/model-transparency")
	tampered := copyDir(t, filepath.Join(mt, "v1.0.1-elliptic-key"), "model.sig", "signme-1", "signme-2")
	if err := os.WriteFile(filepath.Join(tampered, "signme-2"), []byte("swapped weights"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		model     string
		want      map[string]string // kind -> result
		wantRules []string
	}{
		{"malicious pickle fails the scan", `
models:
  - path: ` + copyDir(t, pickles, "malicious0.pkl") + `
`, map[string]string{gate.KindScan: gate.Fail}, []string{"modelscan.pickle.dangerous-import"}},
		{"benign pickle passes", `
models:
  - path: ` + copyDir(t, pickles, "benign0_v4.pkl") + `
`, map[string]string{gate.KindScan: gate.Pass}, nil},
		{"signed model verifies with its key", `
models:
  - path: ` + filepath.Join(mt, "v1.0.1-elliptic-key") + `
    scan: {skip: true}
    verify:
      signature: ` + filepath.Join(mt, "v1.0.1-elliptic-key/model.sig") + `
      key: ` + filepath.Join(mt, "keys/certificate/signing-key-pub.pem") + `
      ignore_paths: [` + filepath.Join(mt, "v1.0.1-elliptic-key/ignore-me") + `]
`, map[string]string{gate.KindVerify: gate.Pass}, nil},
		{"signed model verifies with its CA", `
models:
  - path: ` + filepath.Join(mt, "v1.0.1-certificate") + `
    scan: {skip: true}
    verify:
      signature: ` + filepath.Join(mt, "v1.0.1-certificate/model.sig") + `
      cert_chain: [` + filepath.Join(mt, "keys/certificate/ca-cert.pem") + `]
      ignore_paths: [` + filepath.Join(mt, "v1.0.1-certificate/ignore-me") + `]
`, map[string]string{gate.KindVerify: gate.Pass}, nil},
		{"changed file fails verification", `
models:
  - path: ` + tampered + `
    verify:
      signature: ` + filepath.Join(tampered, "model.sig") + `
      key: ` + filepath.Join(mt, "keys/certificate/signing-key-pub.pem") + `
`, map[string]string{gate.KindScan: gate.Pass, gate.KindVerify: gate.Fail}, nil},
		{"another key fails verification", `
models:
  - path: ` + filepath.Join(mt, "v1.0.1-elliptic-key") + `
    scan: {skip: true}
    verify:
      signature: ` + filepath.Join(mt, "v1.0.1-elliptic-key/model.sig") + `
      key: ` + otherKey(t) + `
      ignore_paths: [` + filepath.Join(mt, "v1.0.1-elliptic-key/ignore-me") + `]
`, map[string]string{gate.KindVerify: gate.Fail}, []string{"signing.signature-invalid"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := run(t, loadPolicy(t, tc.model), gate.Options{})
			got := map[string]string{}
			var fs []finding.Finding
			for _, c := range res.Checks {
				got[c.Kind] = c.Result
				fs = append(fs, c.Findings...)
				if c.Err != nil {
					t.Errorf("%s %s: %v", c.Kind, c.Target, c.Err)
				}
			}
			for k, want := range tc.want {
				if got[k] != want {
					t.Errorf("%s: %s, want %s (findings %q)", k, got[k], want, rules(fs))
				}
			}
			if len(got) != len(tc.want) {
				t.Errorf("checks %v, want %v", got, tc.want)
			}
			for _, r := range tc.wantRules {
				if !strings.Contains(strings.Join(rules(fs), " "), r) {
					t.Errorf("findings %q lack %s", rules(fs), r)
				}
			}
			if pass := tc.want[gate.KindScan] != gate.Fail && tc.want[gate.KindVerify] != gate.Fail; pass != (res.Verdict == gate.Pass) {
				t.Errorf("verdict %s", res.Verdict)
			}
		})
	}
}

// otherKey writes a fresh P-384 public key that signed nothing.
func otherKey(t *testing.T) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "other-pub.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRunVerifiedModelDigestMatchesModelDigest(t *testing.T) {
	mt := filepath.Join(fixtures(t), "signing/model-transparency")
	model := copyDir(t, filepath.Join(mt, "v1.0.1-elliptic-key"), "signme-1", "signme-2")
	p := loadPolicy(t, `
models:
  - path: `+model+`
    scan: {skip: true}
    verify:
      signature: `+filepath.Join(mt, "v1.0.1-elliptic-key/model.sig")+`
      key: `+filepath.Join(mt, "keys/certificate/signing-key-pub.pem")+`
`)
	res := run(t, p, gate.Options{})
	if res.Verdict != gate.Pass {
		t.Fatalf("verdict %s: %+v", res.Verdict, res.Checks)
	}
	d, err := gate.ModelDigest(context.Background(), model)
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Checks[0].Extra["model_digest"]; got != d || !strings.HasPrefix(d, "sha256:") || len(d) != 7+64 {
		t.Errorf("verified digest %v, ModelDigest %s", got, d)
	}
}

// profileIris writes the baseline of the iris fixture and returns its path.
func profileIris(t *testing.T) string {
	t.Helper()
	f, err := table.Open(filepath.Join(fixtures(t), "datasets/iris.csv"), table.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := dataset.Profile(f, dataset.ProfileOptions{Label: "label", Source: "iris.csv"})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "iris.baseline.json")
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Encode(out); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRunDatasets(t *testing.T) {
	baseline := profileIris(t)
	iris := filepath.Join(fixtures(t), "datasets/iris.csv")
	raw, err := os.ReadFile(iris)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	dir := t.TempDir()
	// Scaled: every petal length times ten, a unit change an ingestion bug or an attacker makes.
	var scaled strings.Builder
	scaled.WriteString(lines[0] + "\n")
	for _, l := range lines[1:] {
		f := strings.Split(l, ",")
		v, err := strconv.ParseFloat(f[2], 64)
		if err != nil {
			t.Fatal(err)
		}
		f[2] = strconv.FormatFloat(v*10, 'f', -1, 64)
		scaled.WriteString(strings.Join(f, ",") + "\n")
	}
	scaledPath := filepath.Join(dir, "scaled.csv")
	// Ragged: a row with a missing field part-way through the file.
	raggedPath := filepath.Join(dir, "ragged.csv")
	for path, body := range map[string]string{
		scaledPath: scaled.String(),
		raggedPath: strings.Join(lines[:60], "\n") + "\n1.0,2.0\n" + strings.Join(lines[60:], "\n") + "\n",
	} {
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name, path string
		want       string
		wantRule   string
	}{
		{"the baseline's own data passes", iris, gate.Pass, ""},
		{"a rescaled column fails", scaledPath, gate.Fail, ""},
		{"a file that stops parsing is not clean", raggedPath, gate.Fail, gate.RuleDataUnread},
		{"a missing file cannot be checked", filepath.Join(dir, "absent.csv"), gate.Error, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := run(t, loadPolicy(t, "datasets:\n  - path: "+tc.path+"\n    baseline: "+baseline+"\n    label: label\n"), gate.Options{})
			c := res.Checks[0]
			if c.Kind != gate.KindData || c.Result != tc.want {
				t.Fatalf("%s: %s (err %v), want %s; findings %q", c.Kind, c.Result, c.Err, tc.want, rules(c.Findings))
			}
			if tc.wantRule != "" && !strings.Contains(strings.Join(rules(c.Findings), " "), tc.wantRule) {
				t.Errorf("findings %q lack %s", rules(c.Findings), tc.wantRule)
			}
			if tc.want == gate.Error && (c.Err == nil || !strings.Contains(c.Err.Error(), "absent.csv")) {
				t.Errorf("error %v should name the file", c.Err)
			}
		})
	}
}

func TestRunLockfilesAndAllowlist(t *testing.T) {
	osv := filepath.Join(fixtures(t), "osv")
	req := filepath.Join(depsTestdata(t), "requirements.txt")
	base := `osv_db: [` + osv + `]
lockfiles:
  - path: ` + req + `
    typosquats: false
`
	tests := []struct {
		name        string
		allow       string
		opts        gate.Options
		want        string
		wantAllowed int
		wantExpired bool
	}{
		{"known vulnerability fails", "", gate.Options{}, gate.Fail, 0, false},
		{"allowed by advisory id", `
allow:
  - rule: deps.vulnerability
    id: PYSEC-2022-43015
    reason: not reachable
    expires: 2025-06-01
`, gate.Options{}, gate.Pass, 1, false},
		{"allowed by alias and subject", `
allow:
  - id: CVE-2022-45907
    subject: tor*
    reason: not reachable
`, gate.Options{}, gate.Pass, 1, false},
		{"allow for another target does not apply", `
allow:
  - id: PYSEC-2022-43015
    target: other/requirements.txt
    reason: elsewhere
`, gate.Options{}, gate.Fail, 0, false},
		{"expired allow counts again and is reported", `
allow:
  - id: PYSEC-2022-43015
    reason: was not reachable
    expires: 2025-05-31
`, gate.Options{}, gate.Fail, 0, true},
		{"command line fail-on raises the default", "", gate.Options{FailOn: ptr(finding.Critical)}, gate.Pass, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := run(t, loadPolicy(t, base+tc.allow), tc.opts)
			c := res.Checks[0]
			if c.Err != nil {
				t.Fatal(c.Err)
			}
			if c.Result != tc.want || res.Verdict != tc.want {
				t.Errorf("check %s, verdict %s, want %s; findings %q", c.Result, res.Verdict, tc.want, rules(c.Findings))
			}
			if len(c.Allowed) != tc.wantAllowed {
				t.Errorf("%d allowed, want %d", len(c.Allowed), tc.wantAllowed)
			}
			for _, a := range c.Allowed {
				if a.Reason == "" || a.Line == 0 || a.Finding.Rule != "deps.vulnerability" {
					t.Errorf("allowed %+v", a)
				}
			}
			expired := false
			for _, pc := range res.Checks {
				if pc.Kind == gate.KindPolicy {
					expired = len(pc.Findings) == 1 && pc.Findings[0].Rule == gate.RuleAllowExpired && pc.Findings[0].Location.Line > 0
				}
			}
			if expired != tc.wantExpired {
				t.Errorf("expired-allow finding %v, want %v", expired, tc.wantExpired)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestRunPerCheckFailOnWins(t *testing.T) {
	osv := filepath.Join(fixtures(t), "osv")
	req := filepath.Join(depsTestdata(t), "requirements.txt")
	p := loadPolicy(t, `fail_on: critical
osv_db: [`+osv+`]
lockfiles:
  - path: `+req+`
    typosquats: false
    fail_on: high
  - path: `+req+`
    typosquats: false
`)
	res := run(t, p, gate.Options{FailOn: ptr(finding.Critical)})
	if res.Checks[0].Result != gate.Fail || res.Checks[0].FailOn != finding.High {
		t.Errorf("own fail_on high: %s at %s", res.Checks[0].Result, res.Checks[0].FailOn)
	}
	if res.Checks[1].Result != gate.Pass || res.Checks[1].FailOn != finding.Critical {
		t.Errorf("default fail_on critical: %s at %s", res.Checks[1].Result, res.Checks[1].FailOn)
	}
}

// A check that cannot run makes the verdict an error, but the other checks still run and report.
func TestRunUnreadableInputIsAnErrorNotAPass(t *testing.T) {
	dir := t.TempDir()
	req := filepath.Join(depsTestdata(t), "requirements.txt")
	p := loadPolicy(t, `models:
  - path: `+filepath.Join(dir, "no-such-model")+`
lockfiles:
  - path: `+filepath.Join(dir, "requirements.txt")+`
  - path: `+req+`
    typosquats: false
`)
	res := run(t, p, gate.Options{})
	if res.Verdict != gate.Error {
		t.Errorf("verdict %s, want error", res.Verdict)
	}
	want := []string{gate.Error, gate.Error, gate.Pass}
	for i, c := range res.Checks {
		if c.Result != want[i] {
			t.Errorf("check %d %s %s: %s (err %v), want %s", i, c.Kind, c.Target, c.Result, c.Err, want[i])
		}
		if c.Result == gate.Error && !strings.Contains(c.Err.Error(), dir) {
			t.Errorf("error %q should name the input", c.Err)
		}
	}
	if len(res.Checks) != 3 {
		t.Fatalf("%d checks", len(res.Checks))
	}
	// Without an OSV database the lockfile passes, but says it was not checked against advisories.
	if rs := rules(res.Checks[2].Findings); len(rs) == 0 || rs[0] != gate.RuleNoOSVDatabase {
		t.Errorf("findings %q, want %s first", rs, gate.RuleNoOSVDatabase)
	}
}

// With a baseline, a downgrade (which can bring back fixed vulnerabilities) fails a check at
// medium, an added package is low.
func TestRunLockfileBaseline(t *testing.T) {
	dir := t.TempDir()
	approved := filepath.Join(dir, "approved", "requirements.txt")
	current := filepath.Join(dir, "requirements.txt")
	for path, body := range map[string]string{
		approved: "numpy==1.26.4\nrequests==2.32.3\n",
		current:  "numpy==1.26.0\nrequests==2.32.3\nrich==13.9.4\n",
	} {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		failOn, want string
	}{{"medium", gate.Fail}, {"high", gate.Pass}} {
		p := loadPolicy(t, `lockfiles:
  - path: `+current+`
    baseline: `+approved+`
    typosquats: false
    fail_on: `+tc.failOn+`
`)
		c := run(t, p, gate.Options{}).Checks[0]
		if c.Err != nil {
			t.Fatal(c.Err)
		}
		if c.Result != tc.want {
			t.Errorf("fail_on %s: %s, want %s", tc.failOn, c.Result, tc.want)
		}
		got := strings.Join(rules(c.Findings), " ")
		for _, r := range []string{"deps.downgraded", "deps.added"} {
			if !strings.Contains(got, r) {
				t.Errorf("findings %q lack %s", got, r)
			}
		}
	}
}
