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

// The benchmark workload: a realistic event mix (benchTypes, eventMix) and 200 generated rules
// over the same fields (generatedRules), on top of the default ruleset. docs/benchmarks/rules.md
// describes both.

// strField is a string field of an event type: the values traffic carries and values a rule
// writer names because they are suspicious (never or rarely seen).
type strField struct {
	name       string
	seen, rare []string
}

// numField is a numeric field: traffic stays under high (mostly) and over low.
type numField struct {
	name      string
	low, high float64
}

type benchType struct {
	typ  string
	strs []strField
	nums []numField
}

var benchTypes = []benchType{
	{"pipewarden.inference.request",
		[]strField{
			{"endpoint", []string{"fraud-api", "churn-api", "rank-api"}, []string{"debug-api", "shadow-api"}},
			{"client", clients(200), []string{"client-999", "scraper-01", "tor-exit-7", "pentest"}},
		},
		[]numField{{"latency_ms", 1, 2000}, {"status", 100, 499}}},
	{"pipewarden.access.auth",
		[]strField{
			{"principal", []string{"alice", "bob", "carol", "dave", "svc-train", "svc-serve"}, []string{"root", "admin", "guest", "mallory"}},
			{"result", []string{"success", "failure"}, nil},
			{"source_ip", []string{"203.0.113.7", "198.51.100.4", "10.1.2.3"}, []string{"192.0.2.66", "185.220.101.1"}},
		}, nil},
	{"pipewarden.data.batch",
		[]strField{
			{"dataset", []string{"sales", "ads", "users"}, []string{"pii-raw", "payments"}},
			{"source", []string{"s3://lake/sales", "s3://lake/ads", "s3://lake/users"}, []string{"http://upload.example", "file:///tmp/x"}},
		},
		[]numField{{"rows", 100, 5000}}},
	{"pipewarden.infra.network",
		[]strField{
			{"source", []string{"train-job-1", "train-job-2", "serve-fraud"}, []string{"notebook-7"}},
			{"destination", []string{"pypi.org", "files.pythonhosted.org", "10.0.0.5", "huggingface.co"}, []string{"evil.example", "paste.example", "203.0.113.99"}},
		},
		[]numField{{"bytes", 0, 50 << 20}, {"port", 1, 1024}}},
	{"pipewarden.model.metric",
		[]strField{
			{"model", []string{"fraud", "churn", "rank"}, []string{"legacy"}},
			{"metric", []string{"accuracy", "auc"}, []string{"loss"}},
		},
		[]numField{{"value", 0.85, 1}}},
	{"pipewarden.training.run",
		[]strField{
			{"phase", []string{"started", "completed"}, []string{"failed"}},
			{"actor", []string{"training-bot", "ci-pipeline"}, []string{"mallory", "intern"}},
			{"project", []string{"fraud-training", "churn-training"}, []string{"sandbox"}},
		}, nil},
	{"pipewarden.model.artifact",
		[]strField{
			{"action", []string{"registered", "promoted"}, []string{"deployed", "changed"}},
			{"actor", []string{"ci-pipeline", "training-bot"}, []string{"mallory"}},
			{"model", []string{"fraud", "churn", "rank"}, []string{"legacy"}},
		}, nil},
	{"pipewarden.access.change",
		[]strField{
			{"actor", []string{"alice", "iam-bot"}, []string{"mallory"}},
			{"role_after", []string{"viewer", "editor"}, []string{"admin", "owner"}},
			{"resource", []string{"project/fraud", "project/churn"}, []string{"billing"}},
		}, nil},
	{"pipewarden.deploy.change",
		[]strField{
			{"endpoint", []string{"fraud-api", "churn-api"}, []string{"debug-api"}},
			{"actor", []string{"deploy-bot", "argocd"}, []string{"mallory"}},
		}, nil},
	{"pipewarden.infra.config",
		[]strField{
			{"resource", []string{"inference-gateway", "web-frontend"}, []string{"prod-db"}},
			{"field", []string{"replicas", "image"}, []string{"service_account", "network_policy"}},
			{"actor", []string{"argocd", "terraform"}, []string{"mallory"}},
		}, nil},
	{"pipewarden.feature.transform",
		[]strField{
			{"pipeline", []string{"fx-daily", "fx-hourly"}, []string{"fx-adhoc"}},
			{"actor", []string{"feature-bot", "ci-pipeline"}, []string{"mallory"}},
		}, nil},
	{"pipewarden.deps.change",
		[]strField{
			{"project", []string{"website", "docs"}, []string{"fraud-serving"}},
			{"lockfile", []string{"package-lock.json", "go.sum"}, []string{"requirements.txt"}},
		}, nil},
}

func clients(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("client-%03d", i)
	}
	return out
}

// ruleShapes is how many of the 200 generated rules take each shape.
var ruleShapes = []struct {
	shape string
	n     int
}{
	{"eq_threshold", 60}, // data.S == "v" && data.N > T   (or two equalities on types without numbers)
	{"two_eq", 30},       // data.S1 == "v1" && data.S2 == "v2"
	{"in_list", 30},      // data.S in [...] (inline, or a named list item) && data.S2 != "v"
	{"eq_not_in", 20},    // data.S1 == "v" && !(data.S2 in [...allow-list])
	{"eq_string_fn", 20}, // data.S1 == "v" && data.S2.startsWith("x")
	{"threshold", 25},    // data.N > T   (no literal equality)
	{"no_literal", 15},   // string functions CEL must run: lowerAscii, size, matches
}

// generatedRules writes n single-event rules of the shapes in ruleShapes (scaled to n), spread
// round-robin over the event types (threshold shapes over the types with numeric fields), with
// literals drawn from the values traffic carries (so
// that equalities match a share of events) and from suspicious values it rarely or never
// carries.
func generatedRules(n int, seed uint64) string {
	r := rand.New(rand.NewPCG(seed, 1))
	var shapes []string
	for _, s := range ruleShapes {
		for i := 0; i < s.n*n/200; i++ {
			shapes = append(shapes, s.shape)
		}
	}
	for len(shapes) < n {
		shapes = append(shapes, "eq_threshold")
	}
	r.Shuffle(len(shapes), func(i, j int) { shapes[i], shapes[j] = shapes[j], shapes[i] })
	pick := func(l []string) string { return l[r.IntN(len(l))] }
	// value: a traffic value two times in three, else a suspicious one.
	value := func(f strField) string {
		if len(f.rare) == 0 || r.IntN(3) < 2 {
			return pick(f.seen)
		}
		return pick(f.rare)
	}
	rare := func(f strField) string {
		if len(f.rare) == 0 {
			return "unknown-" + f.name
		}
		return pick(f.rare)
	}
	var numeric []benchType // the types with numeric fields
	for _, bt := range benchTypes {
		if len(bt.nums) > 0 {
			numeric = append(numeric, bt)
		}
	}
	var b strings.Builder
	next := 0
	for i := 0; i < n; i++ {
		shape := shapes[i]
		bt := benchTypes[i%len(benchTypes)]
		if len(bt.nums) == 0 && (shape == "eq_threshold" || shape == "threshold") {
			// A threshold needs a numeric field: take the next type that has one.
			bt = numeric[next%len(numeric)]
			next++
		}
		s1 := bt.strs[r.IntN(len(bt.strs))]
		s2 := bt.strs[(indexOf(bt.strs, s1.name)+1)%len(bt.strs)]
		var cond string
		switch shape {
		case "eq_threshold":
			nf := bt.nums[r.IntN(len(bt.nums))]
			cond = fmt.Sprintf(`data.%s == %q && data.%s > %s`, s1.name, value(s1), nf.name, num(nf.high*(1+r.Float64())))
		case "two_eq":
			cond = fmt.Sprintf(`data.%s == %q && data.%s == %q`, s1.name, value(s1), s2.name, rare(s2))
		case "in_list":
			// A deny-list of suspicious values.
			vals := []string{rare(s1), fmt.Sprintf("%s-blocked-%d", s1.name, i), fmt.Sprintf("%s-blocked-%d", s1.name, i+1)}
			q := make([]string, len(vals))
			for j, v := range vals {
				q[j] = fmt.Sprintf("%q", v)
			}
			list := "[" + strings.Join(q, ", ") + "]"
			if i%2 == 0 {
				// A named list, as users keep deny-lists.
				fmt.Fprintf(&b, "- list: gen_list_%03d\n  items: %s\n", i, list)
				list = fmt.Sprintf("gen_list_%03d", i)
			}
			cond = fmt.Sprintf(`data.%s in %s && data.%s != %q`, s1.name, list, s2.name, rare(s2))
		case "eq_not_in":
			// An allow-list of every value traffic carries (a short one: of endpoints, not of
			// the 200 clients).
			if len(s2.seen) > 8 {
				s1, s2 = s2, s1
			}
			q := make([]string, len(s2.seen))
			for j, v := range s2.seen {
				q[j] = fmt.Sprintf("%q", v)
			}
			cond = fmt.Sprintf(`data.%s == %q && !(data.%s in [%s])`, s1.name, value(s1), s2.name, strings.Join(q, ", "))
		case "eq_string_fn":
			v2 := value(s2)
			cond = fmt.Sprintf(`data.%s == %q && data.%s.startsWith(%q)`, s1.name, value(s1), s2.name, v2[:min(3, len(v2))]+"x")
		case "threshold":
			nf := bt.nums[r.IntN(len(bt.nums))]
			if r.IntN(4) == 0 {
				cond = fmt.Sprintf(`data.%s < %s`, nf.name, num(nf.low*r.Float64()))
			} else {
				cond = fmt.Sprintf(`data.%s > %s`, nf.name, num(nf.high*(1+r.Float64())))
			}
		case "no_literal":
			switch r.IntN(3) {
			case 0:
				cond = fmt.Sprintf(`data.%s.lowerAscii().contains("admin") || size(data.%s) > 64`, s1.name, s1.name)
			case 1:
				cond = fmt.Sprintf(`data.%s.matches("^(?i)(root|administrator)$")`, s1.name)
			default:
				cond = fmt.Sprintf(`data.%s.lowerAscii() == %q || data.%s.endsWith("$")`, s1.name, value(s1)+"-admin", s1.name)
			}
		}
		fmt.Fprintf(&b, "- rule: gen_%03d\n  desc: generated %s\n  condition: %s\n  match: %s\n  output: 'gen %d on %%data.%s'\n  severity: low\n  tags: [ML01]\n",
			i, shape, quoteYAML(cond), bt.typ, i, s1.name)
	}
	return b.String()
}

func indexOf(fs []strField, name string) int {
	for i, f := range fs {
		if f.name == name {
			return i
		}
	}
	return -1
}

// num writes a threshold as a CEL double literal with a few significant digits.
func num(f float64) string {
	s := fmt.Sprintf("%.4g", f)
	if !strings.ContainsAny(s, ".e") {
		s += ".0"
	}
	return s
}

func quoteYAML(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// eventMix is a realistic stream: mostly inference traffic, then auth, data, network and the
// rarer pipeline events, with the fields of the event vocabulary and a small share of outliers.
func eventMix(n int, seed uint64) []event.Event {
	r := rand.New(rand.NewPCG(seed, 2))
	base := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	out := make([]event.Event, n)
	pick := func(l ...string) string { return l[r.IntN(len(l))] }
	for i := range out {
		t := base.Add(time.Duration(i) * time.Millisecond)
		var typ string
		var data any
		switch p := r.IntN(1000); {
		case p < 680:
			typ = "pipewarden.inference.request"
			st := 200
			switch r.IntN(100) {
			case 0:
				st = 500
			case 1:
				st = 429
			}
			lat := 5 + r.Float64()*50
			if r.IntN(200) == 0 {
				lat = 1000 + r.Float64()*4000
			}
			data = map[string]any{"endpoint": pick("fraud-api", "fraud-api", "churn-api", "rank-api"),
				"client": fmt.Sprintf("client-%03d", r.IntN(200)), "status": st, "latency_ms": lat}
		case p < 780:
			typ = "pipewarden.access.auth"
			res := "success"
			if r.IntN(10) == 0 {
				res = "failure"
			}
			data = map[string]any{"principal": pick("alice", "bob", "carol", "dave", "svc-train", "svc-serve"), "result": res,
				"source_ip": pick("203.0.113.7", "198.51.100.4", "10.1.2.3")}
		case p < 840:
			typ = "pipewarden.data.batch"
			ds := pick("sales", "ads", "users")
			data = map[string]any{"dataset": ds, "source": "s3://lake/" + ds, "rows": 1000 + r.IntN(20),
				"schema": []any{map[string]any{"name": "id", "type": "int64"}, map[string]any{"name": "amount", "type": "double"}},
				"digest": fmt.Sprintf("sha256:%064x", i)}
		case p < 890:
			typ = "pipewarden.infra.network"
			data = map[string]any{"source": pick("train-job-1", "train-job-2", "serve-fraud"),
				"destination": pick("pypi.org", "files.pythonhosted.org", "10.0.0.5", "huggingface.co"), "port": 443, "bytes": r.IntN(1 << 20)}
		case p < 930:
			typ = "pipewarden.model.metric"
			data = map[string]any{"model": pick("fraud", "churn", "rank"), "metric": pick("accuracy", "auc"), "value": 0.9 + r.Float64()/100, "dataset": "sales"}
		case p < 950:
			typ = "pipewarden.training.run"
			data = map[string]any{"run_id": fmt.Sprint("run-", i), "phase": pick("started", "completed"), "actor": pick("training-bot", "ci-pipeline"),
				"project": pick("fraud-training", "churn-training")}
		case p < 960:
			typ = "pipewarden.model.artifact"
			data = map[string]any{"model": pick("fraud", "churn", "rank"), "version": fmt.Sprint(i), "digest": "sha256:m", "action": "registered",
				"actor": "ci-pipeline", "signed": true}
		case p < 970:
			typ = "pipewarden.access.change"
			data = map[string]any{"actor": "iam-bot", "principal": pick("alice", "bob"), "resource": pick("project/fraud", "project/churn"),
				"role_before": "viewer", "role_after": pick("viewer", "editor")}
		case p < 980:
			typ = "pipewarden.deploy.change"
			data = map[string]any{"endpoint": pick("fraud-api", "churn-api"), "model_digest": "sha256:m", "actor": pick("deploy-bot", "argocd"), "approved": true}
		case p < 990:
			typ = "pipewarden.infra.config"
			data = map[string]any{"resource": pick("inference-gateway", "web-frontend"), "field": pick("replicas", "image"), "before": 2, "after": 3,
				"actor": pick("argocd", "terraform")}
		case p < 995:
			typ = "pipewarden.feature.transform"
			data = map[string]any{"pipeline": pick("fx-daily", "fx-hourly"), "code_digest": "sha256:c", "actor": "feature-bot", "approved": true}
		default:
			typ = "pipewarden.deps.change"
			data = map[string]any{"project": pick("website", "docs"), "lockfile": pick("package-lock.json", "go.sum"),
				"added": []any{}, "removed": []any{}, "changed": []any{map[string]any{"name": "left-pad", "from": "1.0.0", "to": "1.0.1"}}}
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

// runBench reports events/s of wall time and events per CPU-second of the process (getrusage
// around the timed loop): on a shared machine the second is the figure for one dedicated core
// (run with -cpu 1). It also reports findings and rule evaluations per event.
func runBench(b *testing.B, e *rules.Engine) {
	evs := eventMix(1<<14, 11)
	// Warm up: histories and correlation state reach their steady size, and the one-off
	// allocations of the first events stay out of the figure.
	for _, ev := range evs {
		e.Evaluate(ev)
	}
	evals0 := totalEvaluations(e)
	findings := 0
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		findings += len(e.Evaluate(evs[i&(len(evs)-1)]))
	}
	cpu := cpuTime() - cpu0
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	if cpu > 0 {
		b.ReportMetric(float64(b.N)/cpu.Seconds(), "events/cpu-s")
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/event")
	}
	b.ReportMetric(float64(findings)/float64(b.N), "findings/event")
	b.ReportMetric(float64(totalEvaluations(e)-evals0)/float64(b.N), "evals/event")
}

func totalEvaluations(e *rules.Engine) uint64 {
	var n uint64
	for _, s := range e.Stats() {
		n += s.Evaluations
	}
	return n
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkEvaluateSingleEvent: default single-event rules + histories + 200 generated rules
// (type index, literal index, prefilters, CEL). Run with -cpu 1 for the one-core figure.
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

// BenchmarkNoRules: the fixed cost per event (type index, reading data) with one rule per type
// that reads one field and never fires, the baseline for the figures above.
func BenchmarkNoRules(b *testing.B) {
	var src strings.Builder
	for _, bt := range benchTypes {
		fmt.Fprintf(&src, "- rule: never_%s\n  desc: d\n  condition: data.%s == \"none\"\n  match: %s\n  severity: low\n",
			strings.ReplaceAll(bt.typ, ".", "_"), bt.strs[0].name, bt.typ)
	}
	rs, err := rules.Load(context.Background(), rules.LoadOptions{NoDefaults: true, Sources: []rules.Source{{Name: "n.yaml", Data: []byte(src.String())}}})
	if err != nil {
		b.Fatal(err)
	}
	e, _ := rules.NewEngine(rs, rules.EngineOptions{})
	runBench(b, e)
}

// BenchmarkEvaluateByType: the single-event workload one event type at a time, to show where
// the time of the mix goes (share: the type's events per thousand in the mix).
func BenchmarkEvaluateByType(b *testing.B) {
	all := eventMix(1<<14, 11)
	byType := map[string][]event.Event{}
	for _, ev := range all {
		byType[ev.Type] = append(byType[ev.Type], ev)
	}
	for _, bt := range benchTypes {
		evs := byType[bt.typ]
		if len(evs) == 0 {
			continue
		}
		b.Run(strings.TrimPrefix(bt.typ, "pipewarden."), func(b *testing.B) {
			e := benchEngine(b, rules.Source{Name: "only-single.yaml", Data: []byte(onlySingle)})
			// The whole mix first, so that histories hold what they hold in the mix.
			for _, ev := range all {
				e.Evaluate(ev)
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			for i := 0; i < b.N; i++ {
				e.Evaluate(evs[i%len(evs)])
			}
			cpu := cpuTime() - cpu0
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/event")
			b.ReportMetric(float64(len(evs))*1000/float64(len(all)), "share-permille")
		})
	}
}

// BenchmarkSnapshot encodes (and restores) the state of the default rules after 60,000 events of
// the benchmark mix, about a minute of the daemon's single-event benchmark: the daemon takes
// this snapshot every 30 s beside ingestion.
func BenchmarkSnapshot(b *testing.B) {
	rs, err := rules.Load(context.Background(), rules.LoadOptions{})
	if err != nil {
		b.Fatal(err)
	}
	e, _ := rules.NewEngine(rs, rules.EngineOptions{})
	for _, ev := range eventMix(60000, 7) {
		e.Evaluate(ev)
	}
	snap, err := e.Snapshot()
	if err != nil {
		b.Fatal(err)
	}
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := e.Snapshot(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(snap)), "bytes")
	})
	b.Run("restore", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			e2, _ := rules.NewEngine(rs, rules.EngineOptions{})
			if err := e2.Restore(snap); err != nil {
				b.Fatal(err)
			}
		}
	})
}
