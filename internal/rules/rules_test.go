package rules_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pipewarden/pipewarden/internal/event"
	"github.com/pipewarden/pipewarden/internal/finding"
	"github.com/pipewarden/pipewarden/internal/rules"
)

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

func ev(id, typ string, at time.Duration, data map[string]any) event.Event {
	raw, _ := json.Marshal(data)
	return event.Event{ID: id, Source: "urn:test", Type: "pipewarden." + typ, Time: t0.Add(at), Data: raw}
}

func load(t *testing.T, files ...string) (*rules.Ruleset, error) {
	t.Helper()
	var srcs []rules.Source
	for i, f := range files {
		srcs = append(srcs, rules.Source{Name: fmt.Sprintf("f%d.yaml", i+1), Data: []byte(f)})
	}
	return rules.Load(context.Background(), rules.LoadOptions{NoDefaults: true, Sources: srcs})
}

func engine(t *testing.T, files ...string) *rules.Engine {
	t.Helper()
	rs, err := load(t, files...)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	e, err := rules.NewEngine(rs, rules.EngineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func fired(fs []finding.Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Rule)
	}
	sort.Strings(out)
	return out
}

const baseRule = `
- list: trusted
  items: [svc-a, svc-b]
- macro: is_prod
  condition: data.resource.startsWith("prod-")
- rule: prod_change
  desc: A production resource changed.
  condition: is_prod && !(data.actor in trusted)
  match: pipewarden.infra.config
  output: '%data.actor changed %data.resource (%{data.before} -> %{data.after})'
  severity: high
  tags: [AML.T0012, ML09, custom]
  exceptions:
    - name: on_call
      fields: [data.actor, data.field]
      comps: [=, startswith]
      values:
        - [oncall, spec.]
`

func TestLanguage(t *testing.T) {
	e := engine(t, baseRule)
	cfg := func(actor, res, field string) map[string]any {
		return map[string]any{"resource": res, "field": field, "before": 1, "after": 2, "actor": actor}
	}
	tests := []struct {
		name string
		ev   event.Event
		want []string
	}{
		{"fires", ev("1", "infra.config", 0, cfg("mallory", "prod-api", "image")), []string{"prod_change"}},
		{"list excludes", ev("2", "infra.config", 0, cfg("svc-a", "prod-api", "image")), nil},
		{"macro excludes", ev("3", "infra.config", 0, cfg("mallory", "dev-api", "image")), nil},
		{"exception tuple matches", ev("4", "infra.config", 0, cfg("oncall", "prod-api", "spec.replicas")), nil},
		{"exception tuple half matches", ev("5", "infra.config", 0, cfg("oncall", "prod-api", "image")), []string{"prod_change"}},
		{"other type not evaluated", ev("6", "infra.network", 0, map[string]any{"resource": "prod-x", "actor": "m"}), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := fired(e.Evaluate(tc.ev)); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("fired %v, want %v", got, tc.want)
			}
		})
	}
}

func TestFindingFields(t *testing.T) {
	e := engine(t, baseRule)
	in := ev("ev-1", "infra.config", 0, map[string]any{"resource": "prod-api", "field": "image", "before": "v1", "after": "v2", "actor": "mallory"})
	in.Assets = []event.Asset{{Kind: "resource", Name: "prod-api"}}
	fs := e.Evaluate(in)
	if len(fs) != 1 {
		t.Fatalf("got %d findings", len(fs))
	}
	f := fs[0]
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	checks := map[string]bool{
		"title":    f.Title == "mallory changed prod-api (v1 -> v2)",
		"severity": f.Severity == finding.High,
		"atlas":    fmt.Sprint(f.ATLAS) == "[AML.T0012]",
		"owasp":    fmt.Sprint(f.OWASP) == "[ML09]",
		"events":   fmt.Sprint(f.EventIDs) == "[ev-1]",
		"subject":  f.Subject == finding.Subject{Kind: "resource", Name: "prod-api"},
		"labels":   f.Labels["rule"] == "prod_change" && f.Labels["stage"] == "infra",
		"evidence": f.Evidence["data"].(map[string]any)["actor"] == "mallory",
		"time":     f.Time.Equal(t0),
		"id":       strings.HasPrefix(f.ID, "rf-"),
	}
	for k, ok := range checks {
		if !ok {
			t.Errorf("%s wrong in %+v", k, f)
		}
	}
}

func TestLoadErrorsLocated(t *testing.T) {
	tests := []struct {
		name  string
		files []string
		want  string
	}{
		{"cel syntax", []string{"- rule: r1\n  desc: d\n  condition: data.x >\n  severity: low\n"}, "f1.yaml:3: rule r1: condition:"},
		{"not bool", []string{"- rule: r1\n  desc: d\n  condition: '1 + 2'\n  severity: low\n"}, "f1.yaml:3: rule r1: condition: must be bool"},
		{"unknown key", []string{"- rule: r1\n  desc: d\n  condition: 'true'\n  severity: low\n  priority: 3\n"}, `f1.yaml:5: rule r1: unknown key "priority"`},
		{"bad severity", []string{"- rule: r1\n  desc: d\n  condition: 'true'\n  severity: urgent\n"}, "f1.yaml:4: rule r1: unknown severity"},
		{"unknown type", []string{"- rule: r1\n  desc: d\n  condition: 'true'\n  severity: low\n  match: pipewarden.nope\n"}, `f1.yaml:5: rule r1: unknown event type "pipewarden.nope"`},
		{"duplicate without override", []string{"- rule: r1\n  desc: d\n  condition: 'true'\n  severity: low\n", "- rule: r1\n  desc: e\n  condition: 'false'\n  severity: low\n"}, "f2.yaml:1: rule r1: already defined at f1.yaml:1"},
		{"override of nothing", []string{"- rule: r1\n  override: append\n  condition: 'true'\n"}, "f1.yaml:2: rule r1: override of rule"},
		{"macro cycle", []string{"- macro: a\n  condition: b\n- macro: b\n  condition: a\n- rule: r1\n  desc: d\n  condition: a\n  severity: low\n"}, "rule r1: condition: macro a refers to itself"},
		{"unknown history", []string{"- rule: r1\n  desc: d\n  condition: history.count('h', 'k') > 0\n  severity: low\n"}, `unknown history "h"`},
		{"unknown policy", []string{"- rule: r1\n  desc: d\n  condition: data.x > policy.limit\n  severity: low\n"}, `unknown policy value "limit"`},
		{"corr outside output", []string{"- rule: r1\n  desc: d\n  condition: corr.count > 1\n  severity: low\n"}, "corr is only available in output"},
		{"not a list", []string{"rule: r1\n"}, "f1.yaml:1: a rule file is a YAML list"},
		{"yaml syntax", []string{"- rule: [\n"}, "f1.yaml:1: invalid YAML"},
		{"aliases unsupported in conditions", []string{"- rule: r1\n  desc: d\n  condition: 'true'\n  severity: low\n  correlation:\n    type: event_count\n    timespan: 1m\n"}, "threshold must be"},
		{"sequence needs group", []string{"- rule: s\n  desc: d\n  severity: low\n  correlation:\n    type: sequence\n    maxspan: 1m\n    steps:\n      - condition: 'true'\n      - condition: 'true'\n"}, "needs group_by"},
		{"step unknown rule", []string{"- rule: s\n  desc: d\n  severity: low\n  correlation:\n    type: sequence\n    group_by: data.x\n    maxspan: 1m\n    steps:\n      - rule: nope\n      - condition: 'true'\n"}, `unknown rule "nope"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.files...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v\nwant it to contain %q", err, tc.want)
			}
			for _, e := range rules.AsErrors(err) {
				if e.File == "" {
					t.Errorf("error without a file: %v", e)
				}
			}
		})
	}
}

func TestOverrides(t *testing.T) {
	user := `
- list: trusted
  override: append
  items: [carol]
- rule: prod_change
  override: append
  condition: data.field != "replicas"
  tags: [extra]
- rule: other
  desc: another
  condition: "true"
  match: pipewarden.infra.config
  severity: info
  tags: [ML09]
`
	cfg := func(actor, field string) event.Event {
		return ev("e", "infra.config", 0, map[string]any{"resource": "prod-a", "field": field, "before": 1, "after": 2, "actor": actor})
	}
	e := engine(t, baseRule, user)
	if got := fired(e.Evaluate(cfg("carol", "image"))); fmt.Sprint(got) != "[other]" {
		t.Errorf("appended list item: fired %v", got)
	}
	if got := fired(e.Evaluate(cfg("mallory", "replicas"))); fmt.Sprint(got) != "[other]" {
		t.Errorf("appended condition: fired %v", got)
	}
	if got := fired(e.Evaluate(cfg("mallory", "image"))); fmt.Sprint(got) != "[other prod_change]" {
		t.Errorf("fired %v", got)
	}
	replace := "- rule: prod_change\n  override: replace\n  severity: critical\n- rule: other\n  enabled: false\n"
	e = engine(t, baseRule, user, replace)
	fs := e.Evaluate(cfg("mallory", "image"))
	if len(fs) != 1 || fs[0].Severity != finding.Critical {
		t.Errorf("replace severity and disable: %+v", fs)
	}
	for _, s := range e.Stats() {
		if s.ID == "prod_change" && !strings.Contains(strings.Join(s.Tags, ","), "extra") {
			t.Errorf("appended tag missing: %v", s.Tags)
		}
	}
}

func TestPolicyFromConfig(t *testing.T) {
	rs, err := rules.Load(context.Background(), rules.LoadOptions{NoDefaults: true,
		Sources: []rules.Source{{Name: "p.yaml", Data: []byte(`
- list: allowed
  items: [a]
- policy: max_rows
  value: 10
- rule: r
  desc: d
  condition: '!(data.dataset in allowed) || data.rows > policy.max_rows'
  match: pipewarden.data.batch
  severity: low
  tags: [ML02]
`)}},
		Policy: map[string]any{"allowed": []string{"a", "b"}, "max_rows": 100}})
	if err != nil {
		t.Fatal(err)
	}
	e, _ := rules.NewEngine(rs, rules.EngineOptions{})
	batch := func(ds string, rows int) event.Event {
		return ev("x", "data.batch", 0, map[string]any{"dataset": ds, "rows": rows, "source": "s", "schema": []any{}, "digest": "d"})
	}
	if fs := e.Evaluate(batch("b", 50)); len(fs) != 0 {
		t.Errorf("config list and threshold not applied: %v", fired(fs))
	}
	if fs := e.Evaluate(batch("b", 500)); len(fs) != 1 {
		t.Errorf("threshold from config: fired %v", fired(fs))
	}
	_, err = rules.Load(context.Background(), rules.LoadOptions{NoDefaults: true, Policy: map[string]any{"nope": 1}})
	if err == nil || !strings.Contains(err.Error(), "policy nope") {
		t.Errorf("unknown policy key: %v", err)
	}
}

func TestErrorsCountedOthersRun(t *testing.T) {
	e := engine(t, `
- rule: broken
  desc: reads a field that is not there
  condition: data.missing > 1
  match: pipewarden.model.metric
  severity: low
  tags: [ML10]
- rule: costly
  desc: a comprehension over a big list, cut by its cost limit
  condition: data.xs.all(a, data.xs.all(b, a + b >= 0.0))
  match: pipewarden.model.metric
  cost_limit: 1000
  severity: low
  tags: [ML10]
- rule: works
  desc: d
  condition: data.value > 0.5
  match: pipewarden.model.metric
  severity: low
  tags: [ML10]
`)
	xs := make([]any, 300)
	for i := range xs {
		xs[i] = float64(i)
	}
	fs := e.Evaluate(ev("m", "model.metric", 0, map[string]any{"model": "m", "metric": "acc", "value": 0.9, "xs": xs}))
	if got := fired(fs); fmt.Sprint(got) != "[works]" {
		t.Errorf("fired %v", got)
	}
	for _, s := range e.Stats() {
		wantErr := uint64(0)
		if s.ID != "works" {
			wantErr = 1
		}
		if s.Errors != wantErr || s.Evaluations != 1 {
			t.Errorf("%s: %d errors, %d evaluations", s.ID, s.Errors, s.Evaluations)
		}
	}
}

const countRules = `
- rule: many_errors
  desc: d
  condition: data.status >= 500
  match: pipewarden.inference.request
  correlation:
    type: event_count
    group_by: [data.client]
    timespan: 10s
    threshold: 3
    max_keys: 2
  output: '%data.client %{corr.count} errors'
  severity: medium
  tags: [ML01]
- rule: many_ips
  desc: d
  condition: 'true'
  match: pipewarden.access.auth
  correlation:
    type: value_count
    group_by: data.principal
    field: data.source_ip
    timespan: 1m
    threshold: 3
  severity: medium
  tags: [AML.T0012]
- rule: fail_then_ok
  desc: d
  match: pipewarden.access.auth
  correlation:
    type: sequence
    group_by: data.principal
    maxspan: 1m
    steps:
      - condition: data.result == "failure"
        count: 2
      - condition: data.result == "success"
  severity: high
  tags: [AML.T0012]
`

func req(id, client string, at time.Duration, status int) event.Event {
	return ev(id, "inference.request", at, map[string]any{"endpoint": "e", "client": client, "status": status, "latency_ms": 1})
}

func auth(id, p, res, ip string, at time.Duration) event.Event {
	return ev(id, "access.auth", at, map[string]any{"principal": p, "result": res, "source_ip": ip})
}

func TestCorrelation(t *testing.T) {
	type step struct {
		ev   event.Event
		want string
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"event_count fires at threshold within timespan", []step{
			{req("1", "c", 0, 500), ""}, {req("2", "c", time.Second, 200), ""}, {req("3", "c", 2*time.Second, 503), ""},
			{req("4", "c", 3*time.Second, 500), "many_errors"}, {req("5", "c", 4*time.Second, 500), ""},
		}},
		{"event_count outside timespan", []step{
			{req("1", "c", 0, 500), ""}, {req("2", "c", 6*time.Second, 500), ""}, {req("3", "c", 12*time.Second, 500), ""},
			{req("4", "c", 13*time.Second, 500), "many_errors"},
		}},
		{"event_count groups apart", []step{
			{req("1", "a", 0, 500), ""}, {req("2", "b", 0, 500), ""}, {req("3", "a", 0, 500), ""}, {req("4", "b", 0, 500), ""},
		}},
		{"value_count distinct values", []step{
			{auth("1", "p", "success", "1.1.1.1", 0), ""}, {auth("2", "p", "success", "1.1.1.1", time.Second), ""},
			{auth("3", "p", "success", "2.2.2.2", 2*time.Second), ""}, {auth("4", "p", "success", "3.3.3.3", 3*time.Second), "many_ips"},
		}},
		{"sequence in order", []step{
			{auth("1", "q", "success", "ip", 0), ""}, {auth("2", "q", "failure", "ip", time.Second), ""},
			{auth("3", "q", "failure", "ip", 2*time.Second), ""}, {auth("4", "q", "success", "ip", 3*time.Second), "fail_then_ok"},
		}},
		{"sequence too slow", []step{
			{auth("1", "q", "failure", "ip", 0), ""}, {auth("2", "q", "failure", "ip", 50*time.Second), ""},
			{auth("3", "q", "success", "ip", 70*time.Second), ""},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := engine(t, countRules)
			for _, s := range tc.steps {
				got := strings.Join(fired(e.Evaluate(s.ev)), ",")
				if got != s.want {
					t.Fatalf("event %s fired %q, want %q", s.ev.ID, got, s.want)
				}
			}
		})
	}
}

func TestCorrelationFinding(t *testing.T) {
	e := engine(t, countRules)
	var fs []finding.Finding
	for i := 0; i < 3; i++ {
		fs = e.Evaluate(req(fmt.Sprint("r", i), "c9", time.Duration(i)*time.Second, 500))
	}
	if len(fs) != 1 {
		t.Fatalf("findings %v", fs)
	}
	f := fs[0]
	if f.Title != "c9 3 errors" || fmt.Sprint(f.EventIDs) != "[r0 r1 r2]" || f.Labels["group"] != "c9" {
		t.Errorf("finding %+v", f)
	}
	c := f.Evidence["correlation"].(map[string]any)
	if c["count"] != 3 || c["type"] != "event_count" {
		t.Errorf("evidence %v", c)
	}
}

func TestStateBoundedAndEvictionsCounted(t *testing.T) {
	e := engine(t, countRules)
	for i, c := range []string{"a", "b", "c", "d"} {
		e.Evaluate(req(fmt.Sprint(i), c, 0, 500))
	}
	for _, s := range e.Stats() {
		if s.ID == "many_errors" && (s.StateKeys != 2 || s.Evictions != 2) {
			t.Errorf("keys %d evictions %d, want 2 and 2", s.StateKeys, s.Evictions)
		}
	}
	reg := prometheus.NewPedanticRegistry()
	rs, _ := load(t, countRules)
	e2, err := rules.NewEngine(rs, rules.EngineOptions{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range []string{"a", "b", "c"} {
		e2.Evaluate(req(fmt.Sprint(i), c, 0, 500))
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP pipewarden_rule_state_evictions_total Groups dropped because a correlation rule or history hit its key cap.
# TYPE pipewarden_rule_state_evictions_total counter
pipewarden_rule_state_evictions_total{rule="fail_then_ok"} 0
pipewarden_rule_state_evictions_total{rule="many_errors"} 1
pipewarden_rule_state_evictions_total{rule="many_ips"} 0
`), "pipewarden_rule_state_evictions_total"); err != nil {
		t.Error(err)
	}
}

func TestSnapshotRestore(t *testing.T) {
	e := engine(t, countRules, historyRules)
	e.Evaluate(req("1", "c", 0, 500))
	e.Evaluate(req("2", "c", time.Second, 500))
	e.Evaluate(batch("b1", "sales", "s3://a", 0))
	snap, err := e.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	restored := engine(t, countRules, historyRules)
	if err := restored.Restore(snap); err != nil {
		t.Fatal(err)
	}
	// The third error completes the window begun before the "restart", and the history
	// remembers the old source.
	if got := fired(restored.Evaluate(req("3", "c", 2*time.Second, 500))); fmt.Sprint(got) != "[many_errors]" {
		t.Errorf("after restore fired %v", got)
	}
	if got := fired(restored.Evaluate(batch("b2", "sales", "s3://b", time.Minute))); fmt.Sprint(got) != "[source_changed]" {
		t.Errorf("after restore fired %v", got)
	}
	fresh := engine(t, countRules, historyRules)
	if got := fired(fresh.Evaluate(req("3", "c", 2*time.Second, 500))); len(got) != 0 {
		t.Errorf("without restore fired %v", got)
	}
	if err := fresh.Restore([]byte(`{"version": 99}`)); err == nil {
		t.Error("wrong version accepted")
	}
	if err := fresh.Restore([]byte(`not json`)); err == nil {
		t.Error("garbage accepted")
	}
}

const historyRules = `
- history: src
  match: pipewarden.data.batch
  key: data.dataset
  value: data.source
  size: 3
  max_keys: 100
- rule: source_changed
  desc: d
  condition: history.count("src", data.dataset) > 0 && history.last("src", data.dataset) != data.source
  match: pipewarden.data.batch
  output: '%data.dataset from %{history.last("src", data.dataset)} to %data.source'
  severity: medium
  tags: [ML02]
`

func batch(id, ds, src string, at time.Duration) event.Event {
	return ev(id, "data.batch", at, map[string]any{"dataset": ds, "source": src, "rows": 1, "schema": []any{}, "digest": id})
}

func TestSwapKeepsState(t *testing.T) {
	e := engine(t, countRules, historyRules)
	e.Evaluate(req("1", "c", 0, 500))
	e.Evaluate(req("2", "c", time.Second, 500))
	e.Evaluate(batch("b1", "sales", "s3://a", 0))
	// Same definitions plus a new rule: state carries over.
	rs, err := load(t, countRules, historyRules, "- rule: extra\n  desc: d\n  condition: 'false'\n  severity: low\n")
	if err != nil {
		t.Fatal(err)
	}
	e.Swap(rs)
	got := fired(append(e.Evaluate(req("3", "c", 2*time.Second, 500)), e.Evaluate(batch("b2", "sales", "s3://b", time.Minute))...))
	if fmt.Sprint(got) != "[many_errors source_changed]" {
		t.Errorf("after swap fired %v", got)
	}
	for _, s := range e.Stats() {
		if s.ID == "many_errors" && s.Evaluations != 3 {
			t.Errorf("statistics did not carry over: %d evaluations", s.Evaluations)
		}
	}
}

func TestReloaderKeepsRulesOnError(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "r.yaml")
	good := "- rule: r\n  desc: d\n  condition: data.rows > 5\n  match: pipewarden.data.batch\n  severity: low\n  tags: [ML02]\n"
	if err := os.WriteFile(path, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := rules.LoadOptions{NoDefaults: true, Files: []string{filepath.Join(dir, "*.yaml")}}
	rs, err := rules.Load(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := rules.NewEngine(rs, rules.EngineOptions{})
	reg := prometheus.NewPedanticRegistry()
	rl, err := rules.NewReloader(e, opts, reg)
	if err != nil {
		t.Fatal(err)
	}
	big := ev("x", "data.batch", 0, map[string]any{"dataset": "d", "rows": 10, "source": "s", "schema": []any{}, "digest": "x"})
	if err := os.WriteFile(path, []byte(strings.Replace(good, "data.rows > 5", "data.rows >", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	err = rl.Reload(context.Background())
	es := rules.AsErrors(err)
	if len(es) != 1 || es[0].File != path || es[0].Line != 3 || es[0].Item != "rule r" {
		t.Fatalf("reload error %v", err)
	}
	if st := rl.Status(); st.OK || st.Message == "" {
		t.Errorf("status %+v", st)
	}
	if len(e.Evaluate(big)) != 1 {
		t.Error("the previous rules stopped running after a failed reload")
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP pipewarden_rules_last_reload_successful Whether the last rule reload succeeded (1) or kept the previous rules (0).
# TYPE pipewarden_rules_last_reload_successful gauge
pipewarden_rules_last_reload_successful 0
`), "pipewarden_rules_last_reload_successful"); err != nil {
		t.Error(err)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(good, "data.rows > 5", "data.rows > 50", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := rl.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(e.Evaluate(big)) != 0 || !rl.Status().OK {
		t.Error("the new rules are not running after a good reload")
	}
}

func TestWatchReloadsOnChange(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "r.yaml")
	rule := func(n int) string {
		return fmt.Sprintf("- rule: r\n  desc: d\n  condition: data.rows > %d\n  match: pipewarden.data.batch\n  severity: low\n", n)
	}
	os.WriteFile(path, []byte(rule(5)), 0o644)
	opts := rules.LoadOptions{NoDefaults: true, Files: []string{path}}
	rs, err := rules.Load(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := rules.NewEngine(rs, rules.EngineOptions{})
	rl, _ := rules.NewReloader(e, opts, nil)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); rl.Watch(ctx, 10*time.Millisecond) }()
	defer func() { cancel(); wg.Wait() }()
	first := e.Ruleset()
	os.WriteFile(path, []byte(rule(50)), 0o644)
	deadline := time.Now().Add(10 * time.Second)
	for e.Ruleset() == first && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if e.Ruleset() == first {
		t.Fatal("the watcher did not reload the changed file")
	}
}

func TestConcurrentEvaluate(t *testing.T) {
	e := engine(t, countRules, historyRules, baseRule)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				e.Evaluate(req(fmt.Sprint(g, i), fmt.Sprint("c", i%7), time.Duration(i)*time.Millisecond, 500))
				e.Evaluate(batch(fmt.Sprint("b", g, i), "sales", fmt.Sprint("s3://", i%3), time.Duration(i)*time.Millisecond))
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 5; i++ {
			rs, _ := load(t, countRules, historyRules, baseRule)
			e.Swap(rs)
			e.Snapshot()
			e.Stats()
		}
	}()
	wg.Wait()
	var evals uint64
	for _, s := range e.Stats() {
		if s.ID == "many_errors" {
			evals = s.Evaluations
		}
	}
	if evals != 800 {
		t.Errorf("many_errors evaluated %d times, want 800", evals)
	}
}

// TestCostLimitStaysWithItsRule: a rule cut by its run-time cost limit must not charge its
// cost, or its limit, to the rules evaluated after it on the same event.
func TestCostLimitStaysWithItsRule(t *testing.T) {
	e := engine(t, `
- rule: costly
  desc: cut by its cost limit
  condition: data.xs.all(a, data.xs.all(b, a + b >= 0.0))
  match: pipewarden.model.metric
  cost_limit: 1000
  severity: low
  tags: [ML10]
- rule: bounded
  desc: a comprehension with a limit it stays under
  condition: data.xs.exists(x, x > 250.0)
  match: pipewarden.model.metric
  cost_limit: 5000
  severity: low
  tags: [ML10]
- rule: after
  desc: a comprehension without a run-time limit
  condition: '[1.0, 2.0].exists(x, x == data.value)'
  match: pipewarden.model.metric
  severity: low
  tags: [ML10]
`)
	xs := make([]any, 300)
	for i := range xs {
		xs[i] = float64(i)
	}
	for i := 0; i < 3; i++ {
		fs := e.Evaluate(ev(fmt.Sprint("m", i), "model.metric", 0, map[string]any{"model": "m", "metric": "acc", "value": 2.0, "xs": xs}))
		if got := fired(fs); fmt.Sprint(got) != "[after bounded]" {
			t.Fatalf("event %d fired %v, want [after bounded]", i, got)
		}
	}
	for _, s := range e.Stats() {
		if want := map[string]uint64{"costly": 3}[s.ID]; s.Errors != want {
			t.Errorf("%s: %d errors, want %d", s.ID, s.Errors, want)
		}
	}
}
