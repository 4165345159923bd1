package rules_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pipewarden/pipewarden/internal/event"
	"github.com/pipewarden/pipewarden/internal/rules"
)

// edgeRules exercise every form the literal index and the native decisions answer, next to
// forms they must leave to CEL, and rules that fail on some events.
const edgeRules = `
- list: edge_list
  items: [a, 1, true, null, 2.5]
- rule: edge_num_eq
  desc: d
  condition: data.status == 500 && data.latency_ms >= 10
  match: pipewarden.inference.request
  severity: low
  tags: [ML01]
- rule: edge_mixed_in
  desc: d
  condition: data.client in edge_list || data.endpoint in ["x", 3, false]
  match: pipewarden.inference.request
  severity: low
  tags: [ML01]
- rule: edge_in_index
  desc: d
  condition: data.client in ["client-001", "a", 2.5, null, true] && !(data.endpoint in ["x"])
  match: pipewarden.inference.request
  severity: low
  tags: [ML01]
- rule: edge_bool
  desc: d
  condition: data.signed == true && data.action != "registered"
  match: pipewarden.model.artifact
  severity: low
  tags: [ML01]
- rule: edge_null
  desc: d
  condition: data.actor == null || data.approved == false
  match: pipewarden.deploy.change
  severity: low
  tags: [ML01]
- rule: edge_truthy
  desc: d
  condition: '!data.approved || data.signed'
  match: [pipewarden.deploy.change, pipewarden.model.artifact]
  severity: low
  tags: [ML01]
- rule: edge_nested
  desc: d
  condition: data.resources.gpu_hours > 10.0 && has(data.resources.gpu_hours) && !has(data.config.lr)
  match: pipewarden.training.run
  severity: low
  tags: [ML01]
- rule: edge_has_any_type
  desc: d
  condition: has(data.x) && !has(data.y.z) || has(data.client) && data.x == 1
  severity: low
  tags: [ML01]
- rule: edge_case
  desc: d
  condition: data.principal.lowerAscii() == "alice" && data.principal.upperAscii().startsWith("AL") && size(data.principal) < 6
  match: pipewarden.access.auth
  severity: low
  tags: [ML01]
- rule: edge_size
  desc: d
  condition: data.principal.size() >= 5 || size(data.source_ip) == 11 || data.principal.lowerAscii() in ["root", "admin"]
  match: pipewarden.access.auth
  severity: low
  tags: [ML01]
- rule: edge_paths
  desc: d
  condition: data.actor == data.principal || data.role_after != data.role_before
  match: pipewarden.access.change
  severity: low
  tags: [ML01]
- rule: edge_strings
  desc: d
  condition: data.source.matches("^s3://") && !data.source.contains("ads") || data.dataset.endsWith("s")
  match: pipewarden.data.batch
  severity: low
  tags: [ML01]
- rule: edge_hist
  desc: d
  condition: >
    history.count("dataset_rows", data.dataset) >= 3 &&
    history.seen("dataset_source", data.dataset, data.source) &&
    history.last("dataset_schema", data.dataset) == data.schema
  match: pipewarden.data.batch
  severity: low
  tags: [ML01]
- rule: edge_hist_last
  desc: d
  condition: history.last("dataset_rows", data.dataset) != data.rows && 2 < history.count("dataset_rows", data.dataset)
  match: pipewarden.data.batch
  severity: low
  tags: [ML01]
- rule: edge_hist_literal
  desc: d
  condition: history.count("ingested_digests", "all") > 2 && !history.seen("ingested_digests", "all", data.digest)
  match: pipewarden.data.batch
  severity: low
  tags: [ML01]
- rule: edge_errors
  desc: a missing field errs unless another operand decides
  condition: data.missing == "x" || data.status > 3
  match: pipewarden.inference.request
  severity: low
  tags: [ML01]
- rule: edge_type_error
  desc: d
  condition: data.client > 3 || data.client.startsWith("client-00")
  match: pipewarden.inference.request
  severity: low
  tags: [ML01]
- rule: edge_costly
  desc: a run-time cost limit, only the leading literal conjuncts are answered natively
  condition: 'data.endpoint == "fraud-api" && data.client.startsWith("client-01") && data.client.split("-").all(p, p.size() > 0)'
  match: pipewarden.inference.request
  cost_limit: 40
  severity: low
  tags: [ML01]
- rule: edge_ternary
  desc: d
  condition: '(data.status > 400 ? data.client : data.endpoint) == "fraud-api" && data.latency_ms < 30'
  match: pipewarden.inference.request
  severity: low
  tags: [ML01]
- rule: edge_literal_first
  desc: d
  condition: '"client-001" == data.client || 500 <= data.status'
  match: pipewarden.inference.request
  severity: low
  tags: [ML01]
- rule: edge_any_type
  desc: d
  condition: data.actor == "mallory" || data.principal == "root"
  severity: low
  tags: [ML01]
- rule: edge_whole_data
  desc: d
  condition: size(data) > 3 && "client" in data && data.exists(k, k == "x")
  match: pipewarden.inference.request
  severity: low
  tags: [ML01]
- rule: edge_exception
  desc: d
  condition: data.endpoint == "fraud-api"
  match: pipewarden.inference.request
  exceptions:
    - name: known
      fields: [data.client, data.status]
      comps: [startswith, "="]
      values:
        - [client-0, 200]
  severity: low
  tags: [ML01]
- rule: edge_numeric
  desc: d
  condition: >
    math.abs(history.zscore("dataset_rows", data.dataset, data.rows)) > double(2) ||
    history.mean("dataset_rows", data.dataset) * 2.0 < data.rows ||
    (history.count("dataset_rows", data.dataset) * 2 > 4 && data.rows / 0.0 > 1.0)
  match: pipewarden.data.batch
  severity: low
  tags: [ML01]
- rule: edge_int_errors
  desc: d
  condition: >
    history.count("dataset_rows", data.dataset) + 9223372036854775807 > 0 ||
    data.rows * 2 > 3.0 ||
    history.count("ingested_digests", "all") / history.count("dataset_rows", "none") > 1 ||
    -9223372036854775807 - history.count("dataset_rows", data.dataset) - 2 < 0
  match: pipewarden.data.batch
  severity: low
  tags: [ML01]
- rule: edge_ternary_bool
  desc: d
  condition: 'data.status >= 500 ? data.latency_ms > 20 : data.client == "client-001"'
  match: pipewarden.inference.request
  severity: low
  tags: [ML01]
- rule: edge_concat
  desc: d
  condition: >
    history.count("model_metric", data.model + "/" + data.metric) > 1 &&
    history.seen("model_metric", data.model + "/" + data.metric, data.value) ||
    history.stddev("model_metric", data.model + "/" + data.metric) / history.mean("model_metric", data.model + "/" + data.metric) > 0.001 ||
    data.value >= history.mean("model_metric", "x/" + data.metric) + 1.0
  match: pipewarden.model.metric
  severity: low
  tags: [ML01]
- rule: edge_range_gt
  desc: d
  condition: data.latency_ms > 10 && data.client != "x"
  match: pipewarden.inference.request
  severity: low
  tags: [ML01]
- rule: edge_range_ge
  desc: d
  condition: data.latency_ms >= 10
  match: pipewarden.inference.request
  severity: low
  tags: [ML01]
- rule: edge_range_le
  desc: d
  condition: 10 >= data.status
  match: pipewarden.inference.request
  severity: low
  tags: [ML01]
- rule: edge_range_lt
  desc: d
  condition: data.status < 10.5 || data.x == 1
  match: pipewarden.inference.request
  severity: low
  tags: [ML01]
- rule: edge_range_neg
  desc: d
  condition: data.latency_ms < -0.5 && data.latency_ms > -3
  match: pipewarden.inference.request
  severity: low
  tags: [ML01]
- rule: edge_count
  desc: d
  condition: data.status >= 400
  match: pipewarden.inference.request
  correlation: {type: event_count, group_by: [data.endpoint, data.client], timespan: 1m, threshold: 3}
  severity: low
  tags: [ML01]
`

// differential loads the same rules into the engine and the reference engine.
func differential(t testing.TB, extra ...rules.Source) (got, want *rules.Engine) {
	t.Helper()
	src := append([]rules.Source{{Name: "generated.yaml", Data: []byte(generatedRules(200, 7))},
		{Name: "edge.yaml", Data: []byte(edgeRules)}}, extra...)
	load := func() *rules.Ruleset {
		rs, err := rules.Load(context.Background(), rules.LoadOptions{Sources: src})
		if err != nil {
			t.Fatalf("load: %v", err)
		}
		return rs
	}
	got, err := rules.NewEngine(load(), rules.EngineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return got, rules.NewReferenceEngine(load())
}

// compareOne evaluates ev on both engines and reports any difference in findings.
func compareOne(t testing.TB, got, want *rules.Engine, ev event.Event) {
	t.Helper()
	g, w := got.Evaluate(ev), want.Evaluate(ev)
	if !reflect.DeepEqual(g, w) {
		gj, _ := json.Marshal(g)
		wj, _ := json.Marshal(w)
		t.Fatalf("event %s %s %s:\nengine:    %s\nreference: %s", ev.ID, ev.Type, ev.Data, gj, wj)
	}
}

// compareState checks match and error counts of every rule, and the state of correlations
// and histories, which must be the same whatever was skipped.
func compareState(t testing.TB, got, want *rules.Engine) {
	t.Helper()
	ws := map[string]rules.RuleStats{}
	for _, s := range want.Stats() {
		ws[s.ID] = s
	}
	var evG, evW uint64
	for _, s := range got.Stats() {
		w := ws[s.ID]
		if s.Matches != w.Matches || s.Errors != w.Errors {
			t.Errorf("rule %s: %d matches %d errors, reference %d matches %d errors", s.ID, s.Matches, s.Errors, w.Matches, w.Errors)
		}
		evG += s.Evaluations
		evW += w.Evaluations
	}
	gs, err1 := got.Snapshot()
	wsn, err2 := want.Snapshot()
	if err1 != nil || err2 != nil || string(gs) != string(wsn) {
		t.Errorf("state differs (%v, %v)", err1, err2)
	}
	t.Logf("evaluations: %d with the index, %d without", evG, evW)
}

// randomEvent makes data of the fields and values rules name, and of the wrong types, nested,
// escaped, duplicated and missing.
func randomEvent(r *rand.Rand, i int) event.Event {
	types := event.Types()
	keys := []string{"endpoint", "client", "status", "latency_ms", "actor", "principal", "missing", "x", "y", "resources",
		"config", "signed", "approved", "action", "role_after", "role_before", "source", "dataset", "digest", "schema",
		"rows", "result", "source_ip", "destination", "bytes", "phase", "project", "model", "metric", "value"}
	strs := []string{"a", "alice", "Alice", "ALICE", "al", "client-001", "client-010", "client-0", "fraud-api", "churn-api", "mallory",
		"root", "s3://lake/ads", "s3://lake/sales", "sales", "ads", "users", "x", "", "é", "\u2028", `x"y`, "registered",
		"deployed", "viewer", "admin", "203.0.113.7", "pypi.org", "evil.example", "train-job-1", "started", "fraud", "client-999",
		"CLIENT-001", "svc-train", "sha256:m"}
	var value func(depth int) any
	value = func(depth int) any {
		switch p := r.IntN(20); {
		case p < 9:
			return strs[r.IntN(len(strs))]
		case p < 14:
			return []any{0.0, 1.0, 2.5, 3.0, 10.0, 11.0, 200.0, 500.0, 1e300, 0.1, -1.0, 5e7, 1000.0, 10.5, 9.99, -0.5, -2.75, 10.000000000000002}[r.IntN(18)]
		case p == 14:
			return r.IntN(2) == 0
		case p == 15:
			return nil
		case p == 16 && depth < 2:
			return []any{value(depth + 1), value(depth + 1)}
		case depth < 2:
			m := map[string]any{}
			for _, k := range []string{"z", "gpu_hours", "lr", "name", "type"} {
				if r.IntN(2) == 0 {
					m[k] = value(depth + 1)
				}
			}
			return m
		}
		return "deep"
	}
	var b strings.Builder
	b.WriteString("{")
	n := r.IntN(8)
	for j := 0; j < n; j++ {
		if j > 0 {
			b.WriteString(",")
		}
		k := keys[r.IntN(len(keys))]
		v, _ := json.Marshal(value(0))
		b.WriteString(escapeSome(r, k) + ":" + string(v))
		if r.IntN(10) == 0 {
			b.WriteString(" ")
		}
	}
	b.WriteString("}")
	data := b.String()
	if r.IntN(8) == 0 {
		// A string value written with escapes.
		data = strings.Replace(data, `:"a`, `:"\u0061`, 1)
	}
	return event.Event{ID: fmt.Sprint("r-", i), Source: "urn:diff", Type: types[r.IntN(len(types))],
		Time: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second), Data: []byte(data)}
}

func escapeSome(r *rand.Rand, k string) string {
	q, _ := json.Marshal(k)
	if r.IntN(6) == 0 {
		return `"\u00` + fmt.Sprintf("%02x", k[0]) + k[1:] + `"`
	}
	return string(q)
}

// TestIndexChangesNothing holds the engine (literal index, native decisions, lazy data) to
// the reference evaluation of every rule in CEL, on the default rule tests, the benchmark mix
// and random events, with the default ruleset, 200 generated rules and edge-case rules.
func TestIndexChangesNothing(t *testing.T) {
	got, want := differential(t)
	var evs []event.Event
	files, _ := filepath.Glob("testdata/defaults/*.jsonl")
	for _, f := range files {
		evs = append(evs, readEvents(t, f)...)
	}
	evs = append(evs, eventMix(3000, 5)...)
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 20000; i++ {
		evs = append(evs, randomEvent(r, i))
	}
	for i, ev := range evs {
		if i%7 == 0 { // the same data, written by hand: duplicates and spacing
			ev.Data = append([]byte(" "), ev.Data...)
		}
		compareOne(t, got, want, ev)
	}
	compareState(t, got, want)
}

// FuzzIndexChangesNothing: arbitrary data, any event type, against the reference.
func FuzzIndexChangesNothing(f *testing.F) {
	got, want := differential(f)
	f.Add(uint8(0), []byte(`{"client":"client-001","status":500,"latency_ms":12,"endpoint":"fraud-api"}`))
	f.Add(uint8(1), []byte(`{"principal":"Alice","result":"failure","source_ip":"203.0.113.7"}`))
	f.Add(uint8(2), []byte(`{"dataset":"sales","source":"s3://lake/sales","rows":1000,"schema":[{"name":"id","type":"int64"}],"digest":"d"}`))
	f.Add(uint8(3), []byte(`{"actor":null,"approved":false,"x":{"z":1},"client":"\u0063lient-001","client":1}`))
	f.Add(uint8(4), []byte(`{"resources":{"gpu_hours":20},"config":{"lr":0.1},"phase":"started","actor":"mallory"}`))
	f.Add(uint8(5), []byte(`{"a":1e400}`))
	types := event.Types()
	n := 0
	f.Fuzz(func(t *testing.T, typ uint8, data []byte) {
		if len(data) > 4096 {
			return
		}
		n++
		ev := event.Event{ID: fmt.Sprint("f-", n), Source: "urn:fuzz", Type: types[int(typ)%len(types)],
			Time: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC).Add(time.Duration(n) * time.Second), Data: data}
		compareOne(t, got, want, ev)
	})
}

// TestDefaultRulesDecidedNatively pins which default rules never need CEL on the hot path
// (their whole condition is answered by the decider): a change in the language or the
// defaults that sends one back to CEL shows here, not only as a slower benchmark.
func TestDefaultRulesDecidedNatively(t *testing.T) {
	e := newEngine(t, rules.LoadOptions{})
	for _, id := range []string{"data_source_changed", "data_source_never_seen", "data_schema_changed",
		"data_row_count_anomaly", "feature_code_changed_unapproved", "feature_actor_not_allowed",
		"model_unsigned_change", "model_deployed_unapproved_digest", "model_changed_outside_training",
		"model_metric_drop", "deploy_unregistered_digest", "deploy_without_approval", "access_admin_escalation",
		"access_self_grant", "infra_serving_change_unexpected_actor", "inference_error_spike"} {
		if s := rules.DeciderShape(e, id); s == "" || strings.Contains(s, "cel") {
			t.Errorf("%s: %q, want a decider without CEL parts", id, s)
		}
	}
	// Conditions with parts only CEL evaluates keep those parts.
	if s := rules.DeciderShape(e, "infra_training_egress_not_allowed"); s != "and(leaf,not(cel))" {
		t.Errorf("infra_training_egress_not_allowed: %q", s)
	}
}

// FuzzDeciderMatchesCEL: an arbitrary condition over arbitrary data gives the same findings
// and error counts whether the engine answers it natively or the reference runs it in CEL.
func FuzzDeciderMatchesCEL(f *testing.F) {
	for _, c := range []string{
		`data.a == "x" && data.n > 2`, `data.a in ["x", 1, null] || !(data.b < 3)`, `has(data.o.k) && data.o.k == true`,
		`data.a.lowerAscii().startsWith("x") || size(data.a) >= 2`, `data.a == data.b ? data.n >= 1.5 : data.b != null`,
		`history.count("h", data.a) > 1 && history.last("h", data.a) != data.n`, `history.seen("h", data.a + "-" + data.b, data.n)`,
		`math.abs(history.zscore("h", data.a, data.n)) > double(1) || history.mean("h", "k") * 2.0 < data.n`,
		`data.n * 2 > 3.0 || history.count("h", data.a) - 1 >= 0`, `data.a.matches("^x+$") && data.n <= -1`,
	} {
		f.Add(c, []byte(`{"a":"x","b":"y","n":3,"o":{"k":true}}`))
	}
	f.Fuzz(func(t *testing.T, cond string, data []byte) {
		if len(cond) > 300 || len(data) > 1024 || strings.ContainsAny(cond, "\n\r'") {
			return
		}
		file := `
- history: h
  match: pipewarden.inference.request
  key: 'has(data.a) ? string(data.a) : "none"'
  value: 'has(data.n) ? data.n : 0'
- rule: fuzzed
  desc: d
  condition: '` + cond + `'
  match: pipewarden.inference.request
  severity: low
  tags: [ML01]
`
		load := func() *rules.Ruleset {
			rs, err := rules.Load(context.Background(), rules.LoadOptions{NoDefaults: true,
				Sources: []rules.Source{{Name: "f.yaml", Data: []byte(file)}}})
			if err != nil {
				return nil
			}
			return rs
		}
		rsG := load()
		if rsG == nil {
			return
		}
		got, _ := rules.NewEngine(rsG, rules.EngineOptions{})
		want := rules.NewReferenceEngine(load())
		for i, d := range [][]byte{data, []byte(`{"a":"x","b":"y","n":3}`), data, []byte(`{"a":"x","n":4.5}`), data} {
			ev := event.Event{ID: fmt.Sprint("e", i), Source: "urn:fuzz", Type: "pipewarden.inference.request",
				Time: time.Date(2026, 3, 2, 10, 0, i, 0, time.UTC), Data: d}
			compareOne(t, got, want, ev)
		}
		compareState(t, got, want)
	})
}
