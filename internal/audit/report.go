package audit

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

//go:embed report.html.tmpl
var reportTemplate string

// Stages of the event vocabulary, in pipeline order.
var stages = []string{"data", "feature", "training", "model", "deploy", "inference", "access", "deps", "infra"}

var severities = []string{"critical", "high", "medium", "low", "info"}

type reportMeta struct {
	Origin, Key         string
	From, To, Generated time.Time
	First, Next         int64
	Checkpoint          Checkpoint
	Uncovered           int64
}

// evidenceReport is what report.html.tmpl renders; it is built from the records alone.
type evidenceReport struct {
	reportMeta
	Root       string
	KindCounts []kindCount
	Stages     []stageRow
	Findings   matrix
	Alerts     matrix
	Response   []responseRow
	Latencies  []latency
	Actions    []row
	Changes    []row
	Controls   []control
}

type kindCount struct {
	Kind  Kind
	Count int
}

type stageRow struct {
	Stage  string
	Events int
	Assets []string
	More   int
}

// matrix counts by stage (rows) and severity (columns).
type matrix struct {
	Cols   []string // severities, plus "unknown" when a record names none or another
	Rows   []matrixRow
	Totals []int
	Total  int
}

type matrixRow struct {
	Stage  string
	Counts []int
	Total  int
}

type responseRow struct {
	Alert, Rule, Severity, Stage string
	Detected, Acked, Resolved    string
	ToAck, ToResolve             string
	Index                        int64
}

type latency struct {
	Name             string
	N                int
	Median, P90, Max string
}

type row struct {
	Index                              int64
	Time, Kind, Action, Actor, Subject string
	Detail                             string
}

type control struct {
	Framework, ID, Title, How string
	Evidence                  []int64
	Count                     int
}

func str(m map[string]any, k string) string {
	if v, ok := m[k]; ok {
		if s, ok := v.(string); ok {
			return s
		}
		if v != nil {
			return fmt.Sprint(v)
		}
	}
	return ""
}

// stageOf reads a record's stage: data.stage, else the <stage> of an event type
// pipewarden.<stage>.<what>.
func stageOf(r Record) string {
	if s := str(r.Data, "stage"); s != "" {
		return s
	}
	if parts := strings.Split(str(r.Data, "type"), "."); len(parts) == 3 && parts[0] == "pipewarden" {
		return parts[1]
	}
	return "other"
}

func buildReport(recs []indexed, meta reportMeta) *evidenceReport {
	rep := &evidenceReport{reportMeta: meta, Root: b64(meta.Checkpoint.Hash)}
	kinds := map[Kind]int{}
	assets := map[string]map[string]bool{}
	events := map[string]int{}
	findings := map[string]map[string]int{}
	alertSev := map[string]map[string]int{}
	type life struct {
		rule, sev, stage          string
		detected, acked, resolved time.Time
		index                     int64
	}
	alerts := map[string]*life{}
	var alertOrder []string
	ev := map[string][]int64{} // evidence by control key
	note := func(key string, i int64) { ev[key] = append(ev[key], i) }
	for _, x := range recs {
		r := x.Record
		kinds[r.Kind]++
		st := stageOf(r)
		switch r.Kind {
		case KindEvent:
			if assets[st] == nil {
				assets[st] = map[string]bool{}
			}
			if r.Subject != "" {
				assets[st][r.Subject] = true
			}
			events[st]++
			note("monitor", x.Index)
			if st == "data" || st == "feature" {
				note("provenance", x.Index)
			}
			if st == "deps" {
				note("suppliers", x.Index)
			}
		case KindFinding:
			sev := str(r.Data, "severity")
			if findings[st] == nil {
				findings[st] = map[string]int{}
			}
			findings[st][sev]++
			note("security", x.Index)
			if st == "deps" {
				note("suppliers", x.Index)
			}
			if st == "data" || st == "feature" {
				note("provenance", x.Index)
			}
		case KindAlert:
			id := r.Subject
			a := alerts[id]
			if a == nil {
				a = &life{index: x.Index}
				alerts[id] = a
				alertOrder = append(alertOrder, id)
			}
			if v := str(r.Data, "rule"); v != "" {
				a.rule = v
			}
			if v := str(r.Data, "severity"); v != "" {
				a.sev = v
			}
			if v := stageOf(r); v != "other" {
				a.stage = v
			}
			switch r.Action {
			case "firing":
				if a.detected.IsZero() {
					a.detected = r.Time
				}
			case "acknowledged":
				if a.acked.IsZero() {
					a.acked = r.Time
				}
			case "resolved", "false_positive":
				if a.resolved.IsZero() {
					a.resolved = r.Time
				}
			}
			note("response", x.Index)
		case KindNotification:
			note("response", x.Index)
			rep.Actions = append(rep.Actions, toRow(x, str(r.Data, "receiver")+" "+str(r.Data, "status")))
		case KindAction:
			note("response", x.Index)
			note("security", x.Index)
			d := str(r.Data, "type")
			if t := str(r.Data, "target"); t != "" {
				d += " → " + t
			}
			if res := str(r.Data, "result"); res != "" {
				d += ": " + res
			}
			if str(r.Data, "dry_run") == "true" {
				d += " (dry run)"
			}
			rep.Actions = append(rep.Actions, toRow(x, d))
		case KindSilence:
			note("response", x.Index)
			rep.Actions = append(rep.Actions, toRow(x, str(r.Data, "comment")))
		case KindConfig, KindToken:
			note("change", x.Index)
			d := str(r.Data, "digest")
			if role := str(r.Data, "role"); role != "" {
				d = "role " + role
				if prev := str(r.Data, "previous_role"); prev != "" {
					d = "role " + prev + " → " + role
				}
			}
			rep.Changes = append(rep.Changes, toRow(x, d))
		case KindAPI:
			note("change", x.Index)
		}
		note("all", x.Index)
	}
	for _, k := range slices.Sorted(func(yield func(Kind) bool) {
		for k := range kinds {
			if !yield(k) {
				return
			}
		}
	}) {
		rep.KindCounts = append(rep.KindCounts, kindCount{k, kinds[k]})
	}
	for _, st := range stagesSeen(assets, events) {
		names := slices.Sorted(func(yield func(string) bool) {
			for a := range assets[st] {
				if !yield(a) {
					return
				}
			}
		})
		row := stageRow{Stage: st, Events: events[st], Assets: names}
		if len(names) > 25 {
			row.Assets, row.More = names[:25], len(names)-25
		}
		rep.Stages = append(rep.Stages, row)
	}
	rep.Findings = toMatrix(findings)
	var toAck, toResolve, detectResolve []time.Duration
	for _, id := range alertOrder {
		a := alerts[id]
		if a.stage == "" {
			a.stage = "other"
		}
		if alertSev[a.stage] == nil {
			alertSev[a.stage] = map[string]int{}
		}
		alertSev[a.stage][a.sev]++
		rr := responseRow{Alert: id, Rule: a.rule, Severity: a.sev, Stage: a.stage, Index: a.index,
			Detected: fmtTS(a.detected), Acked: fmtTS(a.acked), Resolved: fmtTS(a.resolved)}
		if !a.detected.IsZero() && !a.acked.IsZero() {
			d := a.acked.Sub(a.detected)
			toAck = append(toAck, d)
			rr.ToAck = fmtDur(d)
		}
		if !a.acked.IsZero() && !a.resolved.IsZero() {
			toResolve = append(toResolve, a.resolved.Sub(a.acked))
		}
		if !a.detected.IsZero() && !a.resolved.IsZero() {
			d := a.resolved.Sub(a.detected)
			detectResolve = append(detectResolve, d)
			rr.ToResolve = fmtDur(d)
		}
		if len(rep.Response) < 500 {
			rep.Response = append(rep.Response, rr)
		}
	}
	rep.Alerts = toMatrix(alertSev)
	rep.Latencies = []latency{
		summarise("detect → acknowledge", toAck),
		summarise("acknowledge → resolve", toResolve),
		summarise("detect → resolve", detectResolve),
	}
	if len(rep.Actions) > 1000 {
		rep.Actions = rep.Actions[:1000]
	}
	if len(rep.Changes) > 1000 {
		rep.Changes = rep.Changes[:1000]
	}
	rep.Controls = controls(ev)
	return rep
}

func controls(ev map[string][]int64) []control {
	defs := []struct{ fw, id, title, how, key string }{
		{"NIST AI RMF 1.0", "MEASURE 2.7", "AI system security and resilience are evaluated and documented",
			"findings of security rules and detectors, and the responses taken", "security"},
		{"NIST AI RMF 1.0", "MANAGE 4.1", "Post-deployment AI system monitoring plans are implemented",
			"events monitored across the pipeline stages, alert lifecycle and notifications", "monitor"},
		{"ISO/IEC 42001:2023", "Annex A.6.2.6", "AI system operation and monitoring",
			"events monitored, alerts raised, acknowledged and resolved", "response"},
		{"ISO/IEC 42001:2023", "Annex A.6.2.8", "AI system recording of event logs",
			"this tamper-evident log: every record, under signed checkpoints", "all"},
		{"ISO/IEC 42001:2023", "Annex A.7.5", "Data provenance",
			"data and feature events carrying dataset digests and sources", "provenance"},
		{"ISO/IEC 42001:2023", "Annex A.10.3", "Suppliers",
			"third-party dependency events and findings", "suppliers"},
		{"EU AI Act", "Article 12", "Record-keeping: automatic recording of events over the system's lifetime",
			"this log: every event, finding, alert change, action and configuration change", "all"},
		{"EU AI Act", "Article 15", "Accuracy, robustness and cybersecurity (incl. data and model poisoning, adversarial examples, model evasion, confidentiality attacks)",
			"findings tagged with MITRE ATLAS techniques and the responses to them", "security"},
		{"EU AI Act", "Article 12(2)", "Logging of situations that may result in risk or substantial modification",
			"rule, configuration, token and state-changing API records", "change"},
	}
	var out []control
	for _, d := range defs {
		c := control{Framework: d.fw, ID: d.id, Title: d.title, How: d.how, Count: len(ev[d.key])}
		c.Evidence = ev[d.key]
		if len(c.Evidence) > 40 {
			c.Evidence = c.Evidence[:40]
		}
		out = append(out, c)
	}
	return out
}

func toRow(x indexed, detail string) row {
	return row{Index: x.Index, Time: fmtTS(x.Time), Kind: string(x.Kind), Action: x.Action, Actor: x.Actor, Subject: x.Subject, Detail: strings.TrimSpace(detail)}
}

func stagesSeen[A, B any](a map[string]A, b map[string]B) []string {
	var out []string
	for _, s := range stages {
		_, ok1 := a[s]
		_, ok2 := b[s]
		if ok1 || ok2 {
			out = append(out, s)
		}
	}
	var extra []string
	for s := range b {
		if !slices.Contains(stages, s) {
			extra = append(extra, s)
		}
	}
	sort.Strings(extra)
	return append(out, extra...)
}

func toMatrix(m map[string]map[string]int) matrix {
	out := matrix{Cols: severities}
	for _, bySev := range m {
		for s := range bySev {
			if !slices.Contains(severities, s) {
				out.Cols = append(slices.Clip(severities), "unknown")
				break
			}
		}
	}
	out.Totals = make([]int, len(out.Cols))
	for _, st := range stagesSeen(m, m) {
		r := matrixRow{Stage: st, Counts: make([]int, len(out.Cols))}
		counts := map[string]int{}
		for s, n := range m[st] {
			if !slices.Contains(severities, s) {
				s = "unknown"
			}
			counts[s] += n
		}
		for i, s := range out.Cols {
			r.Counts[i] = counts[s]
			r.Total += r.Counts[i]
			out.Totals[i] += r.Counts[i]
		}
		out.Total += r.Total
		out.Rows = append(out.Rows, r)
	}
	return out
}

func summarise(name string, ds []time.Duration) latency {
	l := latency{Name: name, N: len(ds), Median: "–", P90: "–", Max: "–"}
	if len(ds) == 0 {
		return l
	}
	slices.Sort(ds)
	at := func(q float64) time.Duration { return ds[int(q*float64(len(ds)-1)+0.5)] }
	l.Median, l.P90, l.Max = fmtDur(at(0.5)), fmtDur(at(0.9)), fmtDur(ds[len(ds)-1])
	return l
}

func fmtTS(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func fmtDur(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

func renderReport(w io.Writer, rep *evidenceReport) error {
	t, err := template.New("report").Funcs(template.FuncMap{
		"ts":    fmtTS,
		"short": func(s string) string { return keyName(s) },
		"hash":  func(h tlog.Hash) string { return b64(h) },
		"tbl": func(id string, m matrix) any {
			return struct {
				ID string
				M  matrix
			}{id, m}
		},
	}).Parse(reportTemplate)
	if err != nil {
		return err
	}
	return t.Execute(w, rep)
}
