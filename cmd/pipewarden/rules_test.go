package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const rulesTestdata = "../../internal/rules/testdata/defaults"

func runRules(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func writeRuleFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRulesValidate(t *testing.T) {
	dir := t.TempDir()
	good := writeRuleFile(t, dir, "good.yaml", `
- list: vip_clients
  items: [c-1, c-2]
- rule: vip_errors
  desc: A VIP client gets a server error.
  condition: data.client in vip_clients && data.status >= 500
  match: pipewarden.inference.request
  output: "%data.client got %data.status"
  severity: low
  tags: [ML01]
- rule: deploy_without_approval
  enabled: false
`)
	broken := writeRuleFile(t, dir, "broken.yaml", `
- rule: fine
  desc: ok
  condition: data.rows > 10
  severity: low

- rule: typo_rule
  desc: broken condition
  condition: data.rows >
  severity: high
`)
	unknownKey := writeRuleFile(t, dir, "unknown.yaml", "- rule: r\n  desc: d\n  condition: 'true'\n  severity: low\n  sevrity: high\n")
	tests := []struct {
		name       string
		args       []string
		code       int
		out, inErr string
	}{
		{"valid file on defaults", []string{"rules", "validate", good}, 0, "ok: 27 rules", ""},
		{"valid file alone", []string{"rules", "validate", "--no-defaults", good}, 2, "", "deploy_without_approval"},
		{"syntax error has file line and rule", []string{"rules", "validate", broken}, 2, "", broken + ":9: rule typo_rule: condition:"},
		{"unknown key", []string{"rules", "validate", unknownKey}, 2, "", unknownKey + `:5: rule r: unknown key "sevrity"`},
		{"missing file", []string{"rules", "validate", filepath.Join(dir, "nope.yaml")}, 2, "", "nope.yaml: cannot read rule file"},
		{"no args", []string{"rules", "validate"}, 2, "", "requires at least 1 arg"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, stderr := runRules(t, tc.args...)
			if code != tc.code || !strings.Contains(out, tc.out) || !strings.Contains(stderr, tc.inErr) {
				t.Errorf("exit %d (want %d)\nstdout: %s\nstderr: %s", code, tc.code, out, stderr)
			}
		})
	}
}

// TestRulesTestDefaultRuleset runs every default rule's test through the CLI, as a user's CI would.
func TestRulesTestDefaultRuleset(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(rulesTestdata, "*.jsonl"))
	if len(files) < 20 {
		t.Fatalf("found %d default rule tests", len(files))
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".jsonl")
		t.Run(name, func(t *testing.T) {
			code, out, stderr := runRules(t, "rules", "test", "--events", f, "--expect", strings.TrimSuffix(f, ".jsonl")+".expect.yaml")
			if code != 0 || !strings.Contains(out, "ok: firings match") || !strings.Contains(out, "\t"+name+"\t") {
				t.Errorf("exit %d\nstdout: %s\nstderr: %s", code, out, stderr)
			}
		})
	}
}

func TestRulesTestExpectationMismatch(t *testing.T) {
	dir := t.TempDir()
	events := filepath.Join(rulesTestdata, "access_self_grant.jsonl")
	wrong := writeRuleFile(t, dir, "wrong.yaml", "fire-self-grant: [access_admin_escalation]\nmiss-granted-by-other: []\n")
	code, out, _ := runRules(t, "rules", "test", "--events", events, "--expect", wrong)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, out)
	}
	for _, want := range []string{
		"DIFF event fire-self-grant: expected access_admin_escalation to fire, it did not",
		"DIFF event fire-self-grant: access_self_grant fired, not expected",
		"FAIL: 2 differences",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestRulesTestUserRulesAndJSON(t *testing.T) {
	dir := t.TempDir()
	rulesFile := writeRuleFile(t, dir, "mine.yaml", `
- rule: access_self_grant
  override: append
  exceptions:
    - name: break_glass
      fields: data.actor
      values: [alice]
`)
	events := filepath.Join(rulesTestdata, "access_self_grant.jsonl")
	code, out, stderr := runRules(t, "rules", "test", "--rules", rulesFile, "--events", events, "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var res struct {
		Events  int `json:"events"`
		Firings []struct {
			Event, Rule string
		} `json:"firings"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if res.Events != 3 || len(res.Firings) != 0 {
		t.Errorf("the exception should silence the only firing: %+v", res)
	}
}

func TestRulesTestUnreadableInputs(t *testing.T) {
	dir := t.TempDir()
	badEvents := writeRuleFile(t, dir, "bad.jsonl", `{"specversion":"1.0","id":"x","source":"s","type":"pipewarden.nope","data":{}}`+"\n")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"missing events flag", []string{"rules", "test"}, "--events is required"},
		{"missing events file", []string{"rules", "test", "--events", filepath.Join(dir, "none.jsonl")}, "none.jsonl: no such file"},
		{"bad event", []string{"rules", "test", "--events", badEvents}, "bad.jsonl:1:"},
		{"bad format", []string{"rules", "test", "--events", badEvents, "--format", "xml"}, "--format"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runRules(t, tc.args...)
			if code != 2 || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, stderr, tc.want)
			}
		})
	}
}
