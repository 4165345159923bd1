package monitor_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pipewarden/pipewarden/internal/dataset"
	"github.com/pipewarden/pipewarden/internal/dataset/monitor"
	"github.com/pipewarden/pipewarden/internal/dataset/table"
	"github.com/pipewarden/pipewarden/internal/event"
	"github.com/pipewarden/pipewarden/internal/finding"
)

const irisFixture = "../../../../shared/fixtures/datasets/iris.csv"

var clock = func() time.Time { return time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC) }

// irisRows reads the fixture as a header and string rows.
func irisRows(t *testing.T) ([]string, [][]string) {
	t.Helper()
	f, err := os.Open(irisFixture)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	all, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return all[0], all[1:]
}

// irisBaseline is the fixture's baseline as 'pipewarden data profile --label label' writes it.
func irisBaseline(t *testing.T) []byte {
	t.Helper()
	f, err := table.Open(irisFixture, table.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := dataset.Profile(f, dataset.ProfileOptions{Label: "label", Source: "iris.csv", Digest: f.Digest})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := b.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// records turns rows into the records field of a batch event (numbers as JSON numbers).
func records(header []string, rows [][]string) []map[string]any {
	var out []map[string]any
	for _, r := range rows {
		m := map[string]any{}
		for i, h := range header {
			m[h] = json.Number(r[i])
		}
		out = append(out, m)
	}
	return out
}

// decodeEvent builds an event the way the daemon receives it.
func decodeEvent(t *testing.T, typ, id string, data map[string]any) event.Event {
	t.Helper()
	raw, err := json.Marshal(map[string]any{"specversion": "1.0", "id": id, "source": "test/monitor", "type": typ, "data": data})
	if err != nil {
		t.Fatal(err)
	}
	evs, err := event.NewDecoder(event.Limits{}, clock).Decode(raw)
	if err != nil {
		t.Fatalf("decode %s: %v", typ, err)
	}
	return evs[0]
}

func batchEvent(t *testing.T, id, name string, extra map[string]any) event.Event {
	data := map[string]any{"dataset": name, "source": "s3://lake/" + name, "rows": 150, "digest": "sha256:00",
		"schema": []map[string]string{{"name": "sepal_length_cm", "type": "float"}}}
	for k, v := range extra {
		data[k] = v
	}
	return decodeEvent(t, "pipewarden.data.batch", id, data)
}

func newMonitor(t *testing.T, cfg monitor.Config) (*monitor.Monitor, string) {
	t.Helper()
	dir := t.TempDir()
	m, err := monitor.New(monitor.Options{Config: cfg, DataDir: dir, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m, dir
}

func rules(fs []finding.Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Rule)
	}
	return out
}

func status(t *testing.T, m *monitor.Monitor, name string) monitor.DatasetStatus {
	t.Helper()
	for _, d := range m.Datasets() {
		if d.Name == name {
			return d
		}
	}
	t.Fatalf("dataset %q not listed", name)
	return monitor.DatasetStatus{}
}

func TestRegisterStoresAtomicallyAndReloads(t *testing.T) {
	raw := irisBaseline(t)
	dir := t.TempDir()
	m, err := monitor.New(monitor.Options{DataDir: dir, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Register("iris", raw); err != nil {
		t.Fatal(err)
	}
	// Replacing it goes through a rename too: no temporary file is left behind.
	if err := m.Register("iris", raw); err != nil {
		t.Fatal(err)
	}
	m.Close()
	stored, err := os.ReadFile(filepath.Join(dir, "datasets", "iris", "baseline.json"))
	if err != nil || !bytes.Equal(stored, raw) {
		t.Fatalf("stored baseline differs from the registered one (err %v)", err)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "datasets", "iris"))
	for _, e := range ents {
		if e.Name() != "baseline.json" && e.Name() != "meta.json" {
			t.Errorf("left behind: %s", e.Name())
		}
	}
	m2, err := monitor.New(monitor.Options{DataDir: dir, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	s := status(t, m2, "iris")
	if s.Origin != monitor.OriginAPI || s.Baseline == nil || s.Baseline.Rows != 150 || s.Baseline.Label != "label" || s.RegisteredAt == nil {
		t.Errorf("reloaded status %+v", s)
	}
}

func TestRegisterRefuses(t *testing.T) {
	raw := irisBaseline(t)
	cfgFile := filepath.Join(t.TempDir(), "iris.json")
	os.WriteFile(cfgFile, raw, 0o600)
	m, dir := newMonitor(t, monitor.Config{Datasets: []monitor.Dataset{{Name: "pinned", Baseline: cfgFile}}})
	cases := []struct {
		name, dataset string
		body          []byte
		want          error
		text          string
	}{
		{"path in name", "../evil", raw, monitor.ErrInvalidName, "invalid dataset name"},
		{"empty name", "", raw, monitor.ErrInvalidName, "invalid dataset name"},
		{"slash", "a/b", raw, monitor.ErrInvalidName, "invalid dataset name"},
		{"corrupted", "x", bytes.Replace(raw, []byte(`"rows": 150`), []byte(`"rows": 151`), 1), dataset.ErrBaselineCorrupt, "checksum mismatch"},
		{"other version", "x", bytes.Replace(raw, []byte(`"version": 1`), []byte(`"version": 2`), 1), dataset.ErrBaselineVersion, "unsupported baseline version 2"},
		{"not json", "x", []byte("sepal,label\n1,2\n"), dataset.ErrBaselineCorrupt, "not valid JSON"},
		{"config managed", "pinned", raw, monitor.ErrConfigManaged, "config file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := m.Register(c.dataset, c.body)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) {
				t.Errorf("Register(%q) = %v, want %v mentioning %q", c.dataset, err, c.want, c.text)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "datasets", "x")); err == nil {
		t.Error("a refused baseline left a directory behind")
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "evil")); err == nil {
		t.Error("a dataset name escaped the data dir")
	}
	if s := status(t, m, "pinned"); s.Origin != monitor.OriginConfig || s.Baseline == nil {
		t.Errorf("config dataset status %+v", s)
	}
}

func TestBatchRecordsChecked(t *testing.T) {
	m, _ := newMonitor(t, monitor.Config{})
	if err := m.Register("iris", irisBaseline(t)); err != nil {
		t.Fatal(err)
	}
	header, rows := irisRows(t)

	clean := m.HandleEvent(t.Context(), batchEvent(t, "ev-clean", "iris", map[string]any{"records": records(header, rows)}))
	for _, f := range clean {
		if f.Severity >= finding.High {
			t.Errorf("clean batch: %s %s", f.Severity, f.Title)
		}
	}

	// Flip the label of every third row: label noise, reported as suspected manipulation.
	flipped := slices.Clone(rows)
	for i := 0; i < len(flipped); i += 3 {
		r := slices.Clone(flipped[i])
		r[len(r)-1] = map[string]string{"0": "1", "1": "2", "2": "0"}[r[len(r)-1]]
		flipped[i] = r
	}
	fs := m.HandleEvent(t.Context(), batchEvent(t, "ev-flip", "iris", map[string]any{"records": records(header, flipped)}))
	var noise *finding.Finding
	for i, f := range fs {
		if len(f.EventIDs) != 1 || f.EventIDs[0] != "ev-flip" {
			t.Errorf("%s: event ids %v", f.Rule, f.EventIDs)
		}
		if f.Subject != (finding.Subject{Kind: "dataset", Name: "iris"}) || f.Labels["dataset"] != "iris" {
			t.Errorf("%s: subject %+v labels %v", f.Rule, f.Subject, f.Labels)
		}
		if f.Rule == "data.poison.label_noise" {
			noise = &fs[i]
		}
	}
	if noise == nil || noise.Severity < finding.High || noise.Labels["verdict"] != dataset.VerdictManipulation {
		t.Fatalf("label flip not reported as high suspected manipulation: %v", rules(fs))
	}

	s := status(t, m, "iris")
	if s.Checks != 2 || s.Verdicts["clean"] != 1 || s.Verdicts[dataset.VerdictManipulation] != 1 {
		t.Errorf("stats %+v", s.Stats)
	}
	if s.LastCheck == nil || s.LastCheck.EventID != "ev-flip" || s.LastCheck.Verdict != dataset.VerdictManipulation {
		t.Errorf("last check %+v", s.LastCheck)
	}
}

func TestBatchWithoutBaselineOrContent(t *testing.T) {
	m, _ := newMonitor(t, monitor.Config{})
	fs := m.HandleEvent(t.Context(), batchEvent(t, "e1", "unknown", map[string]any{"records": []map[string]any{{"a": 1}}}))
	if len(fs) != 1 || fs[0].Rule != "data.batch.no_baseline" || fs[0].EventIDs[0] != "e1" {
		t.Fatalf("unknown dataset: %v", rules(fs))
	}
	if err := m.Register("iris", irisBaseline(t)); err != nil {
		t.Fatal(err)
	}
	// No records and no path: only the declared schema can be compared.
	fs = m.HandleEvent(t.Context(), batchEvent(t, "e2", "iris", nil))
	var missing int
	for _, f := range fs {
		if f.Rule == "data.schema.missing_column" {
			missing++
		}
	}
	if missing != 4 { // the event declares one of the five columns
		t.Errorf("schema-only batch: %d missing columns, want 4 (%v)", missing, rules(fs))
	}
	// Records that are not flat objects cannot be checked: a finding, never clean.
	fs = m.HandleEvent(t.Context(), batchEvent(t, "e3", "iris", map[string]any{"records": []any{map[string]any{"a": []int{1}}}}))
	if len(fs) != 1 || fs[0].Rule != "data.batch.unreadable" || !strings.Contains(fmt.Sprint(fs[0].Evidence["error"]), "nested") {
		t.Errorf("nested records: %v %v", rules(fs), fs)
	}
	// Other event types are not the monitor's business.
	if fs := m.HandleEvent(t.Context(), decodeEvent(t, "pipewarden.model.metric", "e4",
		map[string]any{"model": "m", "metric": "auc", "value": 0.9, "dataset": "iris"})); fs != nil {
		t.Errorf("model.metric: %v", rules(fs))
	}
}

func TestBatchPathsConfinedToRoots(t *testing.T) {
	base := t.TempDir()
	rootDir := filepath.Join(base, "lake")
	outside := filepath.Join(base, "secret")
	os.MkdirAll(filepath.Join(rootDir, "iris"), 0o750)
	os.MkdirAll(outside, 0o750)
	iris, _ := os.ReadFile(irisFixture)
	os.WriteFile(filepath.Join(rootDir, "iris", "day1.csv"), iris, 0o600)
	os.WriteFile(filepath.Join(outside, "stolen.csv"), iris, 0o600)
	os.WriteFile(filepath.Join(rootDir, "ragged.csv"), []byte("sepal_length_cm,label\n1,0\n2\n"), 0o600)
	if err := os.Symlink(filepath.Join(outside, "stolen.csv"), filepath.Join(rootDir, "escape.csv")); err != nil {
		t.Skip("symlinks unavailable:", err)
	}
	os.Symlink(outside, filepath.Join(rootDir, "escape-dir"))
	os.Symlink(filepath.Join(rootDir, "iris", "day1.csv"), filepath.Join(rootDir, "latest.csv"))

	m, _ := newMonitor(t, monitor.Config{Roots: []string{rootDir}})
	if err := m.Register("iris", irisBaseline(t)); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, path, rule string // rule "" means the batch was checked
	}{
		{"absolute inside", filepath.Join(rootDir, "iris", "day1.csv"), ""},
		{"relative to the root", "iris/day1.csv", ""},
		{"symlink staying inside", filepath.Join(rootDir, "latest.csv"), ""},
		{"absolute outside", filepath.Join(outside, "stolen.csv"), "data.batch.path_refused"},
		{"dot-dot", filepath.Join(rootDir, "..", "secret", "stolen.csv"), "data.batch.path_refused"},
		{"relative dot-dot", "../secret/stolen.csv", "data.batch.path_refused"},
		{"symlink escaping", filepath.Join(rootDir, "escape.csv"), "data.batch.path_refused"},
		{"through a symlinked dir", "escape-dir/stolen.csv", "data.batch.path_refused"},
		{"system file", "/etc/passwd", "data.batch.path_refused"},
		{"missing file", filepath.Join(rootDir, "nope.csv"), "data.batch.unreadable"},
		{"directory", filepath.Join(rootDir, "iris"), "data.batch.unreadable"},
		{"ragged csv", filepath.Join(rootDir, "ragged.csv"), "data.batch.unreadable"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs := m.HandleEvent(t.Context(), batchEvent(t, "ev-"+c.name, "iris", map[string]any{"path": c.path}))
			got := rules(fs)
			if c.rule == "" {
				if slices.Contains(got, "data.batch.path_refused") || slices.Contains(got, "data.batch.unreadable") {
					t.Fatalf("%s not checked: %v", c.path, fs)
				}
				return
			}
			if len(fs) != 1 || fs[0].Rule != c.rule || fs[0].EventIDs[0] != "ev-"+c.name {
				t.Fatalf("%s: %v, want only %s", c.path, fs, c.rule)
			}
			if c.rule == "data.batch.path_refused" && fs[0].Severity != finding.High {
				t.Errorf("refused path at %s, want high", fs[0].Severity)
			}
		})
	}
	// Without roots every path is refused.
	m2, _ := newMonitor(t, monitor.Config{})
	m2.Register("iris", irisBaseline(t))
	fs := m2.HandleEvent(t.Context(), batchEvent(t, "e", "iris", map[string]any{"path": filepath.Join(rootDir, "iris", "day1.csv")}))
	if len(fs) != 1 || fs[0].Rule != "data.batch.path_refused" {
		t.Errorf("no roots: %v", rules(fs))
	}
}

func TestLearnFromFirstBatches(t *testing.T) {
	cfg := monitor.Config{LearnFromBatches: 2, Datasets: []monitor.Dataset{{Name: "iris", Label: "label"}}}
	m, dir := newMonitor(t, cfg)
	header, rows := irisRows(t)
	even, odd := [][]string{}, [][]string{}
	for i, r := range rows {
		if i%2 == 0 {
			even = append(even, r)
		} else {
			odd = append(odd, r)
		}
	}
	if fs := m.HandleEvent(t.Context(), batchEvent(t, "b1", "iris", map[string]any{"records": records(header, even)})); len(fs) != 0 {
		t.Fatalf("first learning batch: %v", rules(fs))
	}
	if s := status(t, m, "iris"); s.Learning == nil || s.Learning.Batches != 1 || s.Learning.Of != 2 || s.Baseline != nil {
		t.Fatalf("learning status %+v", s)
	}
	fs := m.HandleEvent(t.Context(), batchEvent(t, "b2", "iris", map[string]any{"records": records(header, odd)}))
	if len(fs) != 1 || fs[0].Rule != "data.baseline.learned" || fs[0].Evidence["rows"] != int64(150) || fs[0].EventIDs[0] != "b2" {
		t.Fatalf("second learning batch: %v", fs)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "datasets", "iris", "baseline.json"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := dataset.DecodeBaseline(bytes.NewReader(raw))
	if err != nil || b.Rows != 150 || b.Label != "label" {
		t.Fatalf("learned baseline: %v rows %d label %q", err, b.Rows, b.Label)
	}
	s := status(t, m, "iris")
	if s.Origin != monitor.OriginLearned || s.Learning != nil {
		t.Errorf("after learning: %+v", s)
	}
	// From now on batches are checked against it.
	flipped := slices.Clone(rows)
	for i := 0; i < len(flipped); i += 3 {
		r := slices.Clone(flipped[i])
		r[len(r)-1] = map[string]string{"0": "2", "1": "0", "2": "1"}[r[len(r)-1]]
		flipped[i] = r
	}
	fs = m.HandleEvent(t.Context(), batchEvent(t, "b3", "iris", map[string]any{"records": records(header, flipped)}))
	if !slices.Contains(rules(fs), "data.poison.label_noise") {
		t.Errorf("batch after learning not checked with the configured label: %v", rules(fs))
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		cfg  monitor.Config
		want string // "" valid
	}{
		{"defaults", monitor.DefaultConfig(), ""},
		{"relative root", monitor.Config{Roots: []string{"lake"}}, "data.roots[0]"},
		{"learn range", monitor.Config{LearnFromBatches: -1}, "data.learn_from_batches"},
		{"dataset name", monitor.Config{Datasets: []monitor.Dataset{{Name: "../x", Baseline: "/b.json"}}}, "data.datasets[0].name"},
		{"duplicate dataset", monitor.Config{Datasets: []monitor.Dataset{{Name: "a", Baseline: "/a"}, {Name: "a", Baseline: "/b"}}}, "listed twice"},
		{"baseline required", monitor.Config{Datasets: []monitor.Dataset{{Name: "a"}}}, "data.datasets[0].baseline"},
		{"baseline optional when learning", monitor.Config{LearnFromBatches: 3, Datasets: []monitor.Dataset{{Name: "a"}}}, ""},
		{"detector", monitor.Config{Streaming: monitor.Streaming{Detector: "ewma"}}, "data.streaming.detector"},
		{"warmup", monitor.Config{Streaming: monitor.Streaming{Warmup: 3}}, "data.streaming.warmup"},
		{"alpha", monitor.Config{Alpha: 1.5}, "data.alpha"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.cfg.Validate()
			if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
				t.Errorf("Validate() = %v, want %q", err, c.want)
			}
		})
	}
	c := monitor.Config{Roots: []string{"lake", "/abs"}, Datasets: []monitor.Dataset{{Name: "a", Baseline: "b/a.json"}}}
	c.Resolve("/etc/pipewarden")
	if c.Roots[0] != "/etc/pipewarden/lake" || c.Roots[1] != "/abs" || c.Datasets[0].Baseline != "/etc/pipewarden/b/a.json" {
		t.Errorf("Resolve: %+v", c)
	}
	// A configured baseline that does not decode stops New with its name.
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte("{}"), 0o600)
	_, err := monitor.New(monitor.Options{DataDir: t.TempDir(), Config: monitor.Config{Datasets: []monitor.Dataset{{Name: "a", Baseline: bad}}}})
	if err == nil || !strings.Contains(err.Error(), `"a"`) || !strings.Contains(err.Error(), "corrupted baseline") {
		t.Errorf("bad configured baseline: %v", err)
	}
}

func TestStoredBaselineDamaged(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "datasets", "iris"), 0o750)
	raw := irisBaseline(t)
	os.WriteFile(filepath.Join(dir, "datasets", "iris", "baseline.json"), raw[:len(raw)/2], 0o600)
	m, err := monitor.New(monitor.Options{DataDir: dir, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	header, rows := irisRows(t)
	fs := m.HandleEvent(t.Context(), batchEvent(t, "e", "iris", map[string]any{"records": records(header, rows)}))
	if len(fs) != 1 || fs[0].Rule != "data.baseline.unusable" {
		t.Fatalf("damaged stored baseline: %v", rules(fs))
	}
	if s := status(t, m, "iris"); s.Error == "" {
		t.Error("status does not show the damaged baseline")
	}
	// Registering a good one repairs it.
	if err := m.Register("iris", raw); err != nil {
		t.Fatal(err)
	}
	fs = m.HandleEvent(t.Context(), batchEvent(t, "e2", "iris", map[string]any{"records": records(header, rows)}))
	if slices.Contains(rules(fs), "data.baseline.unusable") {
		t.Errorf("still unusable after Register: %v", rules(fs))
	}
}

// TestConcurrentUse checks batches, registrations, inference events and listings at once (run
// with -race).
func TestConcurrentUse(t *testing.T) {
	m, _ := newMonitor(t, monitor.Config{LearnFromBatches: 2})
	raw := irisBaseline(t)
	header, rows := irisRows(t)
	recs := records(header, rows)
	var evs []event.Event
	for i := range 8 {
		evs = append(evs, batchEvent(t, fmt.Sprint("b", i), fmt.Sprint("ds", i%3), map[string]any{"records": recs}),
			decodeEvent(t, "pipewarden.inference.request", fmt.Sprint("r", i), map[string]any{
				"endpoint": "e", "client": "c", "status": 200, "latency_ms": 1, "features": []float64{float64(i)}}))
	}
	done := make(chan struct{})
	for g := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			if g == 0 {
				m.Register("ds0", raw)
			}
			m.HandleEvents(t.Context(), evs)
			m.Datasets()
			m.Streams()
		}()
	}
	for range 4 {
		<-done
	}
	for _, d := range m.Datasets() {
		if d.Baseline == nil {
			t.Errorf("%s: no baseline after %d batches (learning %+v)", d.Name, d.Checks, d.Learning)
		}
	}
}

// A stream of batches for a dataset without a baseline is one notice an hour, with every batch
// still counted as unchecked.
func TestNoBaselineReportedOncePerHour(t *testing.T) {
	now := clock()
	m, err := monitor.New(monitor.Options{DataDir: t.TempDir(), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var notices int
	for i := range 50 {
		fs := m.HandleEvent(t.Context(), batchEvent(t, fmt.Sprintf("e%d", i), "orders", nil))
		notices += len(fs)
		now = now.Add(time.Minute)
	}
	// 50 minutes of batches: the first is reported, the rest are counted.
	if notices != 1 {
		t.Fatalf("%d no_baseline findings in 50 minutes, want 1", notices)
	}
	if got := status(t, m, "orders").Verdicts["unchecked"]; got != 50 {
		t.Fatalf("unchecked batches = %d, want 50", got)
	}
	now = now.Add(10 * time.Minute)
	fs := m.HandleEvent(t.Context(), batchEvent(t, "late", "orders", nil))
	if len(fs) != 1 || fs[0].Rule != "data.batch.no_baseline" || fs[0].EventIDs[0] != "late" {
		t.Fatalf("after an hour: %v", rules(fs))
	}
	// Another dataset has its own notice.
	if fs := m.HandleEvent(t.Context(), batchEvent(t, "x", "invoices", nil)); len(fs) != 1 {
		t.Fatalf("second dataset: %v", rules(fs))
	}
}
