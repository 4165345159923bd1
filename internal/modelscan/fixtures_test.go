package modelscan_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pipewarden/pipewarden/internal/finding"
	"github.com/pipewarden/pipewarden/internal/modelscan"
)

const sharedModels = "../../../shared/fixtures/models"

func newScanner(t testing.TB, allow ...string) *modelscan.Scanner {
	t.Helper()
	s, err := modelscan.New(modelscan.Options{Allow: allow})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func scanOne(t testing.TB, s *modelscan.Scanner, path string) modelscan.FileResult {
	t.Helper()
	rs, err := s.ScanPath(context.Background(), path)
	if err != nil {
		t.Fatalf("scan %s: %v", path, err)
	}
	if len(rs) != 1 {
		t.Fatalf("scan %s: %d results", path, len(rs))
	}
	return rs[0]
}

func has(r modelscan.FileResult, rule string, sev finding.Severity, titlePart string) bool {
	for _, f := range r.Findings {
		if f.Rule == rule && f.Severity == sev && strings.Contains(f.Title, titlePart) {
			return true
		}
	}
	return false
}

func dump(r modelscan.FileResult) string {
	var b strings.Builder
	b.WriteString(string(r.Outcome) + " " + r.Format)
	for _, f := range r.Findings {
		b.WriteString("\n  " + f.Severity.String() + " " + f.Title + " [" + f.Rule + "]")
	}
	return b.String()
}

// TestPicklescanFixtures runs every file of picklescan's test corpus.
func TestPicklescanFixtures(t *testing.T) {
	dir := filepath.Join(sharedModels, "picklescan")
	type want struct {
		outcome modelscan.Outcome
		rule    string
		sev     finding.Severity
		title   string
	}
	crit := func(name string) want {
		return want{modelscan.Findings, modelscan.RuleDangerousImport, finding.Critical, "dangerous import " + name}
	}
	cases := map[string]want{
		"benign0_v0.pkl":                   {outcome: modelscan.Clean},
		"benign0_v3.pkl":                   {outcome: modelscan.Clean},
		"benign0_v4.pkl":                   {outcome: modelscan.Clean},
		"new_pytorch_model.bin":            {outcome: modelscan.Clean},
		"pytorch_model.bin":                {outcome: modelscan.Clean},
		"malicious-invalid-bytes.pkl":      crit("os.system"),
		"malicious0.pkl":                   crit("builtins.eval"),
		"malicious1.7z":                    crit("builtins.eval"),
		"malicious1.zip":                   crit("builtins.eval"),
		"malicious10.pkl":                  crit("builtins.exec"),
		"malicious11.pkl":                  crit("os.system"),
		"malicious12.pkl":                  crit("os.system"),
		"malicious13a.pkl":                 crit("pickle.loads"),
		"malicious13b.pkl":                 crit("_pickle.loads"),
		"malicious14.pkl":                  crit("runpy._run_code"),
		"malicious15a.pkl":                 crit("bdb.Bdb"),
		"malicious15b.pkl":                 crit("bdb.Bdb.run"),
		"malicious16.pkl":                  crit("pip.main"),
		"malicious17.pkl":                  crit("torch._inductor.codecache.compile_file"),
		"malicious18.pkl":                  crit("pydoc.pipepager"),
		"malicious19.pkl":                  crit("torch.serialization.load"),
		"malicious1_0x1.zip":               crit("builtins.eval"),
		"malicious1_0x20.zip":              crit("builtins.eval"),
		"malicious1_0x40.zip":              crit("builtins.eval"),
		"malicious1_central_directory.zip": crit("builtins.eval"),
		"malicious1_v0.pkl":                crit("builtins.eval"),
		"malicious1_v3.pkl":                crit("builtins.eval"),
		"malicious1_v4.pkl":                crit("builtins.eval"),
		"malicious1_wrong_ext.zip":         crit("builtins.eval"),
		"malicious20.pkl":                  crit("venv.create"),
		"malicious2_v0.pkl":                crit("posix.system"),
		"malicious2_v3.pkl":                crit("posix.system"),
		"malicious2_v4.pkl":                crit("posix.system"),
		"malicious3.pkl":                   crit("http.client.HTTPSConnection"),
		"malicious4.pickle":                crit("requests.api.get"),
		"malicious5.pickle":                crit("aiohttp.client.ClientSession"),
		"malicious6.pkl":                   crit("requests.api.get"),
		"malicious7.pkl":                   crit("socket.create_connection"),
		"malicious8.pkl":                   crit("subprocess.run"),
		"malicious9.pkl":                   crit("sys.exit"),
		"pytorch_magic_bypass.pt":          crit("posix.system"),
		"sys_module_override_sploit.pkl":   {modelscan.Findings, modelscan.RuleGlobalMutation, finding.Critical, "state set on an imported module"},
		"broken_model.pkl":                 crit("builtins.exec"),
		"bad_pytorch.pt":                   {outcome: modelscan.Inconclusive, rule: modelscan.RuleInconclusive, sev: finding.High},
		"not_a_pickle.bin":                 {outcome: modelscan.Findings, rule: modelscan.RuleInconclusive, sev: finding.High},
		"benign_password_protected.zip":    {outcome: modelscan.Findings, rule: modelscan.RuleZipFlags, sev: finding.High, title: "encrypted"},
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := newScanner(t)
	for _, e := range entries {
		if e.Name() == "LICENSE" {
			continue
		}
		w, ok := cases[e.Name()]
		if !ok {
			t.Errorf("fixture %s has no expectation", e.Name())
			continue
		}
		t.Run(e.Name(), func(t *testing.T) {
			r := scanOne(t, s, filepath.Join(dir, e.Name()))
			if r.Outcome != w.outcome {
				t.Errorf("outcome %s, want %s\n%s", r.Outcome, w.outcome, dump(r))
			}
			if w.rule != "" && !has(r, w.rule, w.sev, w.title) {
				t.Errorf("want %s %s %q\n%s", w.sev, w.rule, w.title, dump(r))
			}
		})
	}
}

// TestZipDifferentialsNamed checks that each ZIP evasion is reported for what it is, besides
// the payload.
func TestZipDifferentialsNamed(t *testing.T) {
	s := newScanner(t)
	cases := []struct{ file, rule, title string }{
		{"malicious1_0x1.zip", modelscan.RuleZipFlags, "encrypted"},
		{"malicious1_0x20.zip", modelscan.RuleZipFlags, "patched"},
		{"malicious1_0x40.zip", modelscan.RuleZipFlags, "strongly encrypted"},
		{"malicious1_central_directory.zip", modelscan.RuleZipHeaderMismatch, "disagree"},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			r := scanOne(t, s, filepath.Join(sharedModels, "picklescan", c.file))
			if !has(r, c.rule, finding.High, c.title) {
				t.Errorf("want %s %q\n%s", c.rule, c.title, dump(r))
			}
		})
	}
}

// TestBenignTorch: 100 benign PyTorch files, every dtype, protocols 1-5, legacy and zip.
func TestBenignTorch(t *testing.T) {
	dir := filepath.Join(sharedModels, "benign-torch")
	rs, err := newScanner(t).ScanPath(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range rs {
		if filepath.Base(r.Path) == "LICENSE" {
			if r.Outcome != modelscan.Skipped {
				t.Errorf("LICENSE: %s", dump(r))
			}
			continue
		}
		n++
		if r.Outcome != modelscan.Clean {
			t.Errorf("%s: %s", r.Path, dump(r))
		}
		wantFormat := "pickle"
		if strings.HasSuffix(r.Path, "_zip.pt") {
			wantFormat = "zip/pytorch"
		}
		if r.Format != wantFormat {
			t.Errorf("%s: format %s, want %s", r.Path, r.Format, wantFormat)
		}
	}
	if n != 100 {
		t.Errorf("scanned %d model files, want 100", n)
	}
}

func TestModelscanFixtures(t *testing.T) {
	s := newScanner(t)
	r := scanOne(t, s, filepath.Join(sharedModels, "modelscan", "unsafe_zip_pytorch.pt"))
	if r.Outcome != modelscan.Findings || !has(r, modelscan.RuleDangerousImport, finding.Critical, "posix.system") {
		t.Errorf("unsafe_zip_pytorch.pt: %s", dump(r))
	}
	r = scanOne(t, s, filepath.Join(sharedModels, "modelscan", "password_protected.zip"))
	if r.Outcome == modelscan.Clean || !has(r, modelscan.RuleInconclusive, finding.High, "") {
		t.Errorf("password_protected.zip: %s", dump(r))
	}
}
