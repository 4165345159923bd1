package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const irisFixture = "../../../shared/fixtures/datasets/iris.csv"

func runData(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestDataProfileAndCheck(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "iris.baseline.json")
	if code, _, stderr := runData("data", "profile", irisFixture, "--out", base, "--label", "label"); code != 0 {
		t.Fatalf("profile exit %d: %s", code, stderr)
	}
	// The same data is clean against its own baseline.
	code, out, stderr := runData("data", "check", irisFixture, "--baseline", base, "--format", "json")
	if code != 0 {
		t.Fatalf("self-check exit %d: %s %s", code, stderr, out)
	}
	var rep struct {
		Findings []map[string]any `json:"findings"`
		Summary  struct {
			Extra map[string]any `json:"extra"`
		} `json:"summary"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Summary.Extra["verdict"] != "clean" {
		t.Errorf("self-check verdict %v", rep.Summary.Extra["verdict"])
	}
	// A batch with a missing column and a non-numeric value fails the gate with exit 1.
	raw, _ := os.ReadFile(irisFixture)
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	var b strings.Builder
	for i, l := range lines {
		f := strings.Split(l, ",")
		if i == 5 {
			f[0] = "oops"
		}
		b.WriteString(strings.Join(append(f[:1], f[2:]...), ","))
		b.WriteByte('\n')
	}
	bad := filepath.Join(dir, "bad.csv")
	os.WriteFile(bad, []byte(b.String()), 0o600)
	code, out, _ = runData("data", "check", bad, "--baseline", base)
	if code != 1 || !strings.Contains(out, "data.schema.missing_column") || !strings.Contains(out, "data.schema.type_change") {
		t.Fatalf("bad batch exit %d:\n%s", code, out)
	}
	// --fail-on critical lets the same findings through.
	if code, _, _ = runData("data", "check", bad, "--baseline", base, "--fail-on", "critical"); code != 0 {
		t.Errorf("--fail-on critical exit %d", code)
	}
	code, out, _ = runData("data", "check", bad, "--baseline", base, "--format", "sarif")
	if code != 1 || !strings.Contains(out, `"version": "2.1.0"`) {
		t.Errorf("sarif exit %d: %.200s", code, out)
	}
}

func TestDataUsageErrors(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "b.json")
	if code, _, stderr := runData("data", "profile", irisFixture, "--out", base); code != 0 {
		t.Fatal(stderr)
	}
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o600)
		return p
	}
	raw, _ := os.ReadFile(base)
	corrupt := write("corrupt.json", strings.Replace(string(raw), `"rows": 150`, `"rows": 151`, 1))
	v2 := write("v2.json", strings.Replace(string(raw), `"version": 1`, `"version": 2`, 1))
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"missing out", []string{"data", "profile", irisFixture}, "--out is required"},
		{"empty file", []string{"data", "profile", write("empty.csv", ""), "--out", filepath.Join(dir, "x.json")}, "empty file"},
		{"ragged csv", []string{"data", "profile", write("ragged.csv", "a,b\n1,2\n3\n"), "--out", filepath.Join(dir, "x.json")}, "line 3: wrong number of fields"},
		{"huge line", []string{"data", "profile", write("huge.csv", "a\n"+strings.Repeat("1", 3000)+"\n"), "--out", filepath.Join(dir, "x.json"), "--max-line-bytes", "1024"}, "record longer than the line limit"},
		{"unknown label", []string{"data", "profile", irisFixture, "--out", filepath.Join(dir, "x.json"), "--label", "nope"}, `label column "nope" not found`},
		{"missing file", []string{"data", "check", filepath.Join(dir, "nope.csv"), "--baseline", base}, "nope.csv"},
		{"corrupted baseline", []string{"data", "check", irisFixture, "--baseline", corrupt}, "corrupted baseline: checksum mismatch"},
		{"other version", []string{"data", "check", irisFixture, "--baseline", v2}, "unsupported baseline version 2"},
		{"not json baseline", []string{"data", "check", irisFixture, "--baseline", irisFixture}, "corrupted baseline: not valid JSON"},
		{"bad format flag", []string{"data", "check", irisFixture, "--baseline", base, "--format", "xml"}, "--format"},
		{"alpha out of range", []string{"data", "check", irisFixture, "--baseline", base, "--alpha", "1.5"}, "--alpha and --indicator-p"},
		{"indicator p zero", []string{"data", "check", irisFixture, "--baseline", base, "--indicator-p", "0"}, "--alpha and --indicator-p"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := runData(c.args...)
			if code != 2 || !strings.Contains(stderr, c.want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
				t.Errorf("exit %d, stderr %q; want exit 2 and one line containing %q", code, stderr, c.want)
			}
		})
	}
}

// TestDataCheckAlpha: a shifted feature is reported at the default FDR and not when --alpha
// is made tiny, so the flag reaches the drift tests.
func TestDataCheckAlpha(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "b.json")
	if code, _, stderr := runData("data", "profile", irisFixture, "--out", base, "--label", "label"); code != 0 {
		t.Fatal(stderr)
	}
	raw, _ := os.ReadFile(irisFixture)
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	var b strings.Builder
	b.WriteString(lines[0] + "\n")
	for _, l := range lines[1:] {
		f := strings.Split(l, ",")
		v, _ := strconv.ParseFloat(f[0], 64)
		f[0] = strconv.FormatFloat(v+0.5, 'f', 1, 64) // about 0.6 sigma of sepal length
		b.WriteString(strings.Join(f, ",") + "\n")
	}
	shifted := filepath.Join(dir, "shifted.csv")
	os.WriteFile(shifted, []byte(b.String()), 0o600)
	_, out, _ := runData("data", "check", shifted, "--baseline", base, "--format", "json")
	if !strings.Contains(out, `"data.drift.numeric"`) {
		t.Fatalf("default alpha: no drift finding:\n%s", out)
	}
	_, out, _ = runData("data", "check", shifted, "--baseline", base, "--format", "json", "--alpha", "1e-300")
	if strings.Contains(out, `"data.drift.numeric"`) {
		t.Errorf("--alpha 1e-300 still reports drift:\n%s", out)
	}
}
