package monitor

import (
	"time"

	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"

	"github.com/pipewarden/pipewarden/internal/dataset"
	"github.com/pipewarden/pipewarden/internal/dataset/table"
	"github.com/pipewarden/pipewarden/internal/event"
	"github.com/pipewarden/pipewarden/internal/finding"
)

// batchData is the part of a pipewarden.data.batch event the monitor reads.
type batchData struct {
	Dataset string `json:"dataset"`
	Rows    int64  `json:"rows"`
	Digest  string `json:"digest"`
	Schema  []struct {
		Name string `json:"name"`
	} `json:"schema"`
	Path    string          `json:"path"`
	Records json.RawMessage `json:"records"`
}

// Verdicts counted per dataset besides dataset.Verdict*.
const (
	verdictClean     = "clean"
	verdictUnchecked = "unchecked"
)

// source is a batch's rows to be read: inline records or a file in a root.
type source struct {
	records []byte
	path    string
}

// rows opens a source. The closer is nil for records.
func (m *Monitor) rows(s source) (dataset.RowSource, io.Closer, func() string, error) {
	if s.path == "" {
		r, err := dataset.Records(s.records)
		return r, nil, nil, err
	}
	f, err := m.openBatch(s.path)
	if err != nil {
		return nil, nil, nil, err
	}
	t, err := table.OpenFile(f, filepath.Base(s.path), table.Options{})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", s.path, err)
	}
	return t, t, t.Digest, nil
}

func (m *Monitor) batch(ctx context.Context, ev event.Event) []finding.Finding {
	d, err := parseBatch(ev.Data)
	if err != nil || d.Dataset == "" {
		return []finding.Finding{m.problem("data.batch.unreadable", finding.Medium, d.Dataset,
			"batch event has no usable data", map[string]any{"error": fmt.Sprint(err)})}
	}
	name := d.Dataset
	var src source
	switch {
	case len(d.Records) > 0 && string(d.Records) != "null":
		src.records = d.Records
	case d.Path != "":
		src.path = d.Path
	}

	m.mu.Lock()
	e := m.datasets[name]
	if e == nil || (e.baseline == nil && e.loadErr == "") {
		m.mu.Unlock()
		return m.noBaseline(ctx, ev, d, src)
	}
	b, label, segment, loadErr := e.baseline, e.label, e.segment, e.loadErr
	m.mu.Unlock()

	if loadErr != "" {
		f := m.problem("data.baseline.unusable", finding.Medium, name,
			fmt.Sprintf("dataset %q: stored baseline cannot be used, batch not checked", name),
			map[string]any{"error": loadErr, "reasoning": "register a new baseline with POST /v1/datasets/{name}/baseline"})
		m.record(name, ev, d, verdictUnchecked, 1, "", loadErr)
		return []finding.Finding{f}
	}
	if src.records == nil && src.path == "" {
		fs := m.schemaOnly(b, name, d)
		m.record(name, ev, d, verdictOf(fs, verdictUnchecked), len(fs), "", "")
		return fs
	}
	rs, closer, digest, err := m.rows(src)
	if err != nil {
		f := m.unreadable(name, src, err)
		m.record(name, ev, d, dataset.VerdictInvalid, 1, "", err.Error())
		return []finding.Finding{f}
	}
	if closer != nil {
		defer closer.Close()
	}
	opts := dataset.CheckOptions{Subject: name, Label: label, Alpha: m.cfg.Alpha, IndicatorP: m.cfg.IndicatorP, Now: m.now}
	if segment != "" && slices.Contains(rs.Columns(), segment) {
		opts.Segment = segment
	}
	fs, err := dataset.Check(b, rs, opts)
	if err != nil {
		f := m.unreadable(name, src, err)
		m.record(name, ev, d, dataset.VerdictInvalid, 1, "", err.Error())
		return []finding.Finding{f}
	}
	for i := range fs {
		fs[i].Labels["dataset"] = name
		if src.path != "" {
			fs[i].Evidence["path"] = src.path
		}
	}
	dg := ""
	if digest != nil {
		dg = digest()
	}
	m.record(name, ev, d, verdictOf(fs, verdictClean), len(fs), dg, "")
	return fs
}

// verdictOf ranks what the findings say: manipulation over drift over invalid input.
func verdictOf(fs []finding.Finding, none string) string {
	rank := map[string]int{dataset.VerdictInvalid: 1, dataset.VerdictDrift: 2, dataset.VerdictManipulation: 3}
	v, best := none, 0
	for _, f := range fs {
		if r := rank[f.Labels["verdict"]]; r > best {
			v, best = f.Labels["verdict"], r
		}
	}
	return v
}

func (m *Monitor) record(name string, ev event.Event, d batchData, verdict string, findings int, digest, errText string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.datasets[name]
	if e == nil {
		if len(m.datasets) >= maxDatasets {
			m.untracked++ // shown by Untracked, never silently lost
			return
		}
		e = m.entry(name)
	}
	e.stats.Checks++
	e.stats.Verdicts[verdict]++
	if digest == "" {
		digest = d.Digest
	}
	e.stats.LastCheck = &LastCheck{Time: m.now().UTC(), EventID: ev.ID, Rows: d.Rows, Verdict: verdict,
		Findings: findings, Digest: digest, Error: errText}
}

// problem is a finding about a batch the monitor could not check as asked.
func (m *Monitor) problem(rule string, sev finding.Severity, name, title string, ev map[string]any) finding.Finding {
	ev["verdict"] = dataset.VerdictInvalid
	return finding.Finding{Rule: rule, Severity: sev, Title: title, Subject: finding.Subject{Kind: "dataset", Name: name},
		Labels: map[string]string{"verdict": dataset.VerdictInvalid, "dataset": name}, Evidence: ev, Confidence: 1, Time: m.now().UTC()}
}

func (m *Monitor) unreadable(name string, s source, err error) finding.Finding {
	ev := map[string]any{"error": err.Error()}
	what := "inline records"
	if s.path != "" {
		ev["path"], what = s.path, s.path
	}
	if errors.Is(err, ErrOutsideRoots) {
		ev["reasoning"] = "the monitor reads batch files only inside data.roots; a path outside them, or leaving them through .. or a symlink, is refused"
		return m.problem("data.batch.path_refused", finding.High, name,
			fmt.Sprintf("dataset %q: batch path refused: %s", name, s.path), ev)
	}
	ev["reasoning"] = "a batch that cannot be read to the end is never reported clean"
	return m.problem("data.batch.unreadable", finding.Medium, name,
		fmt.Sprintf("dataset %q: batch could not be checked (%s)", name, what), ev)
}

// schemaOnly compares the schema a batch event declares with the baseline's columns, for
// events that carry neither records nor a path.
func (m *Monitor) schemaOnly(b *dataset.Baseline, name string, d batchData) []finding.Finding {
	if len(d.Schema) == 0 {
		return nil
	}
	have := map[string]bool{}
	for _, s := range d.Schema {
		have[s.Name] = true
	}
	known := map[string]bool{}
	var fs []finding.Finding
	for _, c := range b.Columns {
		known[c.Name] = true
		if !have[c.Name] {
			f := m.problem("data.schema.missing_column", finding.High, name, fmt.Sprintf("column %q is missing", c.Name),
				map[string]any{"baseline_type": c.Type, "test": "declared schema"})
			f.Labels["column"] = c.Name
			fs = append(fs, f)
		}
	}
	for _, s := range d.Schema {
		if !known[s.Name] {
			f := m.problem("data.schema.extra_column", finding.Medium, name, fmt.Sprintf("column %q is not in the baseline", s.Name),
				map[string]any{"test": "declared schema"})
			f.Labels["column"] = s.Name
			fs = append(fs, f)
		}
	}
	return fs
}

// noBaselineEvery is how often a dataset without a baseline is reported: its unchecked batches
// are all counted (GET /v1/datasets), but a steady stream of them is one notice an hour, not one
// finding per batch.
const noBaselineEvery = time.Hour

// noBaselineNotice returns the finding mk builds unless the dataset was reported within
// noBaselineEvery.
func (m *Monitor) noBaselineNotice(name string, mk func() finding.Finding) []finding.Finding {
	now := m.now()
	m.mu.Lock()
	e := m.entry(name)
	due := e.noBaselineAt.IsZero() || now.Sub(e.noBaselineAt) >= noBaselineEvery
	if due {
		e.noBaselineAt = now
	}
	m.mu.Unlock()
	if !due {
		return nil
	}
	return []finding.Finding{mk()}
}

// learner gathers a dataset's first batches until there are enough to profile.
type learner struct {
	sources   []source
	profiling bool
}

// noBaseline handles a batch of a dataset without a baseline: learned from when configured,
// else reported unchecked.
func (m *Monitor) noBaseline(ctx context.Context, ev event.Event, d batchData, src source) []finding.Finding {
	name := d.Dataset
	n := m.cfg.LearnFromBatches
	if n <= 0 || !ValidName(name) {
		m.record(name, ev, d, verdictUnchecked, 1, "", "")
		return m.noBaselineNotice(name, func() finding.Finding {
			return m.problem("data.batch.no_baseline", finding.Low, name,
				fmt.Sprintf("dataset %q has no baseline; batch not checked", name),
				map[string]any{"reasoning": "register one with POST /v1/datasets/{name}/baseline, list it in data.datasets, or set data.learn_from_batches"})
		})
	}
	if src.records == nil && src.path == "" {
		m.record(name, ev, d, verdictUnchecked, 1, "", "")
		return m.noBaselineNotice(name, func() finding.Finding {
			return m.problem("data.batch.no_baseline", finding.Low, name,
				fmt.Sprintf("dataset %q: batch has neither records nor a path to learn a baseline from", name), map[string]any{})
		})
	}
	// Only a batch that reads to the end joins the learning set.
	rs, closer, _, err := m.rows(src)
	if err == nil {
		err = drain(rs)
	}
	if closer != nil {
		closer.Close()
	}
	if err != nil {
		m.record(name, ev, d, dataset.VerdictInvalid, 1, "", err.Error())
		return []finding.Finding{m.unreadable(name, src, err)}
	}
	m.mu.Lock()
	e := m.entry(name)
	if e.baseline != nil { // registered meanwhile
		m.mu.Unlock()
		return m.batch(ctx, ev)
	}
	if e.learn == nil {
		e.learn = &learner{}
	}
	if e.learn.profiling {
		m.mu.Unlock()
		m.record(name, ev, d, verdictUnchecked, 1, "", "")
		return []finding.Finding{m.problem("data.batch.no_baseline", finding.Low, name,
			fmt.Sprintf("dataset %q: baseline is being learned; batch not checked", name), map[string]any{})}
	}
	e.learn.sources = append(e.learn.sources, src)
	e.stats.Verdicts["learning"]++
	if len(e.learn.sources) < n {
		m.mu.Unlock()
		return nil
	}
	sources := e.learn.sources
	e.learn.profiling = true
	label, segment := m.configured(name)
	m.mu.Unlock()

	raw, b, err := m.learnBaseline(name, sources, label)
	if err == nil {
		b, err = m.register(name, raw, OriginLearned)
	}
	m.mu.Lock()
	if err != nil {
		e.learn = nil
		m.mu.Unlock()
		return []finding.Finding{m.problem("data.baseline.learn_failed", finding.Medium, name,
			fmt.Sprintf("dataset %q: could not learn a baseline from %d batches", name, n),
			map[string]any{"error": err.Error(), "reasoning": "learning starts again with the next batch"})}
	}
	e.label, e.segment = label, segment
	m.mu.Unlock()
	f := finding.Finding{Rule: "data.baseline.learned", Severity: finding.Info,
		Title:   fmt.Sprintf("dataset %q: baseline learned from its first %d batches (%d rows)", name, n, b.Rows),
		Subject: finding.Subject{Kind: "dataset", Name: name}, Labels: map[string]string{"dataset": name},
		Evidence: map[string]any{"batches": n, "rows": b.Rows, "columns": len(b.Columns), "checksum": b.Checksum,
			"reasoning": "batches from now on are checked against it; replace it with POST /v1/datasets/{name}/baseline"},
		Confidence: 1, Time: m.now().UTC()}
	return []finding.Finding{f}
}

// configured returns the label and segment the configuration gives a learned dataset.
func (m *Monitor) configured(name string) (string, string) {
	for _, d := range m.cfg.Datasets {
		if d.Name == name {
			return d.Label, d.Segment
		}
	}
	return "", ""
}

func drain(rs dataset.RowSource) error {
	for {
		_, err := rs.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (m *Monitor) learnBaseline(name string, sources []source, label string) ([]byte, *dataset.Baseline, error) {
	var rs []dataset.RowSource
	for _, s := range sources {
		r, closer, _, err := m.rows(s)
		if err != nil {
			return nil, nil, err
		}
		if closer != nil {
			defer closer.Close()
		}
		rs = append(rs, r)
	}
	cat := newConcat(rs)
	if label != "" && !slices.Contains(cat.Columns(), label) {
		label = ""
	}
	b, err := dataset.Profile(cat, dataset.ProfileOptions{Label: label, Source: "learned:" + name})
	if err != nil {
		return nil, nil, err
	}
	var buf bytes.Buffer
	if err := b.Encode(&buf); err != nil {
		return nil, nil, err
	}
	return buf.Bytes(), b, nil
}

// concat reads several row sources as one, in the first source's columns: later sources'
// columns are matched by name, missing ones read as null and extra ones are dropped.
type concat struct {
	srcs []dataset.RowSource
	cols []string
	maps [][]int // per source, per column: index in that source or -1
	i    int
	row  []table.Field
}

func newConcat(srcs []dataset.RowSource) *concat {
	c := &concat{srcs: srcs, cols: srcs[0].Columns()}
	for _, s := range srcs {
		idx := map[string]int{}
		for j, n := range s.Columns() {
			idx[n] = j
		}
		mp := make([]int, len(c.cols))
		for j, n := range c.cols {
			mp[j] = -1
			if k, ok := idx[n]; ok {
				mp[j] = k
			}
		}
		c.maps = append(c.maps, mp)
	}
	c.row = make([]table.Field, len(c.cols))
	return c
}

func (c *concat) Columns() []string { return c.cols }

func (c *concat) Next() ([]table.Field, error) {
	for c.i < len(c.srcs) {
		r, err := c.srcs[c.i].Next()
		if errors.Is(err, io.EOF) {
			c.i++
			continue
		}
		if err != nil {
			return nil, err
		}
		for j, k := range c.maps[c.i] {
			if k < 0 {
				c.row[j] = table.Field{Null: true}
			} else {
				c.row[j] = r[k]
			}
		}
		return c.row, nil
	}
	return nil, io.EOF
}
