package rules_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pipewarden/pipewarden/internal/event"
	"github.com/pipewarden/pipewarden/internal/rules"
)

// benchFields are, per event type, a string field with its value space and a numeric field.
var benchFields = []struct {
	typ, str, num, high string // high: a threshold normal traffic stays under (mostly)
	vals                []string
}{
	{"pipewarden.inference.request", "client", "latency_ms", "54.5", clients(200)},
	{"pipewarden.access.auth", "principal", "", "", []string{"alice", "bob", "carol", "svc-train", "svc-serve"}},
	{"pipewarden.data.batch", "dataset", "rows", "1018", []string{"sales", "ads", "users", "clicks"}},
	{"pipewarden.infra.network", "destination", "bytes", "1040000", []string{"pypi.org", "10.0.0.5", "evil.example"}},
	{"pipewarden.model.metric", "model", "value", "0.9099", []string{"fraud", "churn", "rank"}},
	{"pipewarden.training.run", "actor", "", "", []string{"training-bot", "ci-pipeline", "mallory"}},
	{"pipewarden.model.artifact", "actor", "", "", []string{"ci-pipeline", "mallory"}},
	{"pipewarden.deploy.change", "endpoint", "", "", []string{"fraud-api", "churn-api"}},
	{"pipewarden.access.change", "actor", "", "", []string{"bob", "alice"}},
	{"pipewarden.feature.transform", "pipeline", "", "", []string{"fx", "fy"}},
	{"pipewarden.infra.config", "resource", "", "", []string{"inference-gateway", "web"}},
	{"pipewarden.deps.change", "project", "", "", []string{"fraud-training", "website"}},
}

func clients(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("client-%03d", i)
	}
	return out
}

// generatedRules writes n single-event rules spread over the event types, of the shapes users
// write: equality plus threshold, membership in a list, string functions, plain thresholds.
func generatedRules(n int, seed uint64) string {
	r := rand.New(rand.NewPCG(seed, 1))
	var b strings.Builder
	for i := 0; i < n; i++ {
		f := benchFields[i%len(benchFields)]
		v := f.vals[r.IntN(len(f.vals))]
		var cond string
		switch shape := r.IntN(5); {
		case shape == 4:
			// Needs CEL proper: a function on the value compared with a literal.
			cond = fmt.Sprintf(`data.%s.lowerAscii() == %q || size(data.%s) > 200`, f.str, v+"-admin", f.str)
		case shape == 0 && f.num != "":
			// A known value with an abnormal measurement: fires on a small share of events.
			cond = fmt.Sprintf(`data.%s == %q && data.%s > %s`, f.str, v, f.num, f.high)
		case shape == 1:
			// A deny-list.
			cond = fmt.Sprintf(`data.%s in ["blocked-%d", "blocked-%d", %q]`, f.str, i, i+1, v+"-suspicious")
		case shape == 2:
			// String functions, which no prefilter can answer.
			cond = fmt.Sprintf(`data.%s.startsWith(%q) && data.%s.endsWith("-evil-%d")`, f.str, v[:2], f.str, i)
		case f.num != "":
			cond = fmt.Sprintf(`data.%s > %d.0e9`, f.num, 1+r.IntN(9))
		default:
			cond = fmt.Sprintf(`data.%s == %q`, f.str, v+"-x")
		}
		fmt.Fprintf(&b, "- rule: gen_%03d\n  desc: generated\n  condition: %s\n  match: %s\n  output: 'gen %d on %%data.%s'\n  severity: low\n  tags: [ML01]\n",
			i, quoteYAML(cond), f.typ, i, f.str)
	}
	return b.String()
}

func quoteYAML(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// eventMix is a realistic stream: mostly inference traffic, then auth, data, network and the
// rarer pipeline events.
func eventMix(n int, seed uint64) []event.Event {
	r := rand.New(rand.NewPCG(seed, 2))
	base := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	out := make([]event.Event, n)
	for i := range out {
		t := base.Add(time.Duration(i) * time.Millisecond)
		var typ string
		var data any
		switch p := r.IntN(100); {
		case p < 70:
			typ = "pipewarden.inference.request"
			st := 200
			if r.IntN(50) == 0 {
				st = 500
			}
			data = map[string]any{"endpoint": "fraud-api", "client": fmt.Sprintf("client-%03d", r.IntN(200)), "status": st, "latency_ms": 5 + r.Float64()*50}
		case p < 80:
			typ = "pipewarden.access.auth"
			res := "success"
			if r.IntN(10) == 0 {
				res = "failure"
			}
			data = map[string]any{"principal": []string{"alice", "bob", "carol"}[r.IntN(3)], "result": res, "source_ip": "203.0.113.7"}
		case p < 86:
			typ = "pipewarden.data.batch"
			data = map[string]any{"dataset": []string{"sales", "ads", "users"}[r.IntN(3)], "source": "s3://lake/a", "rows": 1000 + r.IntN(20),
				"schema": []any{map[string]any{"name": "id", "type": "int64"}}, "digest": fmt.Sprintf("sha256:%d", i)}
		case p < 91:
			typ = "pipewarden.infra.network"
			data = map[string]any{"source": "train-job-1", "destination": "pypi.org", "port": 443, "bytes": r.IntN(1 << 20)}
		case p < 95:
			typ = "pipewarden.model.metric"
			data = map[string]any{"model": "fraud", "metric": "accuracy", "value": 0.9 + r.Float64()/100, "dataset": "sales"}
		case p < 97:
			typ = "pipewarden.training.run"
			data = map[string]any{"run_id": fmt.Sprint(i), "phase": "started", "actor": "training-bot", "project": "fraud"}
		case p < 98:
			typ = "pipewarden.model.artifact"
			data = map[string]any{"model": "fraud", "version": "1", "digest": "sha256:m", "action": "registered", "actor": "ci-pipeline", "signed": true}
		default:
			typ = "pipewarden.access.change"
			data = map[string]any{"actor": "bob", "principal": "alice", "resource": "r", "role_before": "viewer", "role_after": "viewer"}
		}
		raw, _ := json.Marshal(data)
		out[i] = event.Event{ID: fmt.Sprintf("ev-%d", i), Source: "urn:bench", Type: typ, Time: t, Data: raw}
	}
	return out
}

// onlySingle switches off the default correlation rules, to measure single-event rules alone.
const onlySingle = `
- rule: inference_error_spike
  enabled: false
- rule: inference_volume_spike
  enabled: false
- rule: access_bruteforce_then_success
  enabled: false
- rule: data_change_then_metric_drop
  enabled: false
`

func benchEngine(b *testing.B, extra ...rules.Source) *rules.Engine {
	b.Helper()
	src := append([]rules.Source{{Name: "generated.yaml", Data: []byte(generatedRules(200, 7))}}, extra...)
	rs, err := rules.Load(context.Background(), rules.LoadOptions{Sources: src})
	if err != nil {
		b.Fatal(err)
	}
	e, err := rules.NewEngine(rs, rules.EngineOptions{})
	if err != nil {
		b.Fatal(err)
	}
	return e
}

// runBench reports events/s of wall time and events per CPU-second of the process: on a shared
// machine the second is the figure for one dedicated core (run with -cpu 1).
func runBench(b *testing.B, e *rules.Engine) {
	evs := eventMix(1<<14, 11)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		e.Evaluate(evs[i&(len(evs)-1)])
	}
	cpu := cpuTime() - cpu0
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	if cpu > 0 {
		b.ReportMetric(float64(b.N)/cpu.Seconds(), "events/cpu-s")
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkEvaluateSingleEvent: default single-event rules + 200 generated rules (index,
// prefilters, CEL, histories). Run with -cpu 1 for the one-core figure.
func BenchmarkEvaluateSingleEvent(b *testing.B) {
	runBench(b, benchEngine(b, rules.Source{Name: "only-single.yaml", Data: []byte(onlySingle)}))
}

// BenchmarkEvaluateWithCorrelation: the whole default ruleset (with its correlation rules) +
// 200 generated rules; the difference with BenchmarkEvaluateSingleEvent is the cost of
// correlation per event.
func BenchmarkEvaluateWithCorrelation(b *testing.B) {
	runBench(b, benchEngine(b))
}

// BenchmarkEvaluateDefaultsOnly: the default ruleset alone.
func BenchmarkEvaluateDefaultsOnly(b *testing.B) {
	rs, err := rules.Load(context.Background(), rules.LoadOptions{})
	if err != nil {
		b.Fatal(err)
	}
	e, _ := rules.NewEngine(rs, rules.EngineOptions{})
	runBench(b, e)
}

// BenchmarkCorrelationRules: one rule of each correlation kind alone, on the same mix, to give
// the cost of correlation per event (compare BenchmarkNoRules).
func BenchmarkCorrelationRules(b *testing.B) {
	rs, err := rules.Load(context.Background(), rules.LoadOptions{NoDefaults: true,
		Sources: []rules.Source{{Name: "corr.yaml", Data: []byte(`
- rule: errors_per_client
  desc: d
  condition: data.status >= 500
  match: pipewarden.inference.request
  correlation: {type: event_count, group_by: [data.endpoint, data.client], timespan: 1m, threshold: 50}
  severity: low
- rule: volume_per_client
  desc: d
  condition: "true"
  match: pipewarden.inference.request
  correlation: {type: event_count, group_by: [data.endpoint, data.client], timespan: 1m, threshold: 1000}
  severity: low
- rule: ips_per_principal
  desc: d
  condition: "true"
  match: pipewarden.access.auth
  correlation: {type: value_count, group_by: data.principal, field: data.source_ip, timespan: 10m, threshold: 5}
  severity: low
- rule: failures_then_success
  desc: d
  match: pipewarden.access.auth
  correlation:
    type: sequence
    group_by: data.principal
    maxspan: 10m
    steps:
      - {condition: data.result == "failure", count: 5}
      - {condition: data.result == "success"}
  severity: low
`)}}})
	if err != nil {
		b.Fatal(err)
	}
	e, _ := rules.NewEngine(rs, rules.EngineOptions{})
	runBench(b, e)
}

// BenchmarkNoRules: the fixed cost per event (index lookup, data decoding) with one trivial
// rule per type, the baseline for the figures above.
func BenchmarkNoRules(b *testing.B) {
	var src strings.Builder
	for _, f := range benchFields {
		fmt.Fprintf(&src, "- rule: never_%s\n  desc: d\n  condition: data.%s == \"none\"\n  match: %s\n  severity: low\n", strings.ReplaceAll(f.typ, ".", "_"), f.str, f.typ)
	}
	rs, err := rules.Load(context.Background(), rules.LoadOptions{NoDefaults: true, Sources: []rules.Source{{Name: "n.yaml", Data: []byte(src.String())}}})
	if err != nil {
		b.Fatal(err)
	}
	e, _ := rules.NewEngine(rs, rules.EngineOptions{})
	runBench(b, e)
}
