// Package monitor is the daemon side of data integrity: a registry of dataset baselines kept in
// the data directory, the check of every pipewarden.data.batch event (inline records or a file
// inside configured roots) against its dataset's baseline, baselines learned from the first
// batches when configured, an HTTP handler to register and list datasets, and streaming
// change detectors on the feature vectors of pipewarden.inference.request events.
package monitor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/pipewarden/pipewarden/internal/dataset"
	"github.com/pipewarden/pipewarden/internal/event"
	"github.com/pipewarden/pipewarden/internal/finding"
)

// Errors callers may branch on (the HTTP handler maps them to status codes).
var (
	ErrInvalidName   = errors.New("invalid dataset name")
	ErrConfigManaged = errors.New("baseline is managed by the configuration")
)

// Options configure New.
type Options struct {
	Config  Config
	DataDir string // baselines live in <DataDir>/datasets/<name>/baseline.json
	Logger  *slog.Logger
	Now     func() time.Time
}

// Monitor checks data batches and inference feature streams. It is safe for concurrent use;
// checks of different batches run in parallel and never hold the registry lock.
type Monitor struct {
	cfg   Config
	dir   string
	log   *slog.Logger
	now   func() time.Time
	roots []root

	mu        sync.Mutex
	datasets  map[string]*entry
	untracked int64 // batches of datasets beyond maxDatasets
	streams   streams
}

// maxDatasets bounds the registry: batch events name datasets freely, and a flood of names must
// not grow memory without end.
const maxDatasets = 10000

// Untracked is how many batches named a dataset the registry had no room left to track.
func (m *Monitor) Untracked() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.untracked
}

// Origins of a baseline.
const (
	OriginConfig  = "config"
	OriginAPI     = "api"
	OriginLearned = "learned"
)

type entry struct {
	name     string
	baseline *dataset.Baseline
	origin   string
	label    string
	segment  string
	loaded   time.Time
	loadErr  string // a stored baseline that no longer decodes
	learn    *learner
	stats    Stats
	// noBaselineAt is when data.batch.no_baseline was last reported for this dataset.
	noBaselineAt time.Time
}

// meta is stored beside each baseline.
type meta struct {
	Origin       string    `json:"origin"`
	RegisteredAt time.Time `json:"registered_at"`
}

// New opens the registry in the data directory (creating it), loads the stored baselines and
// those the configuration lists, and opens the data roots. A configured baseline or root that
// cannot be read is an error naming it; a stored baseline that no longer decodes is kept as an
// unusable entry (its batches get a finding) and logged.
func New(opts Options) (*Monitor, error) {
	cfg := opts.Config
	cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.DataDir == "" {
		return nil, errors.New("data monitor: data directory is required")
	}
	m := &Monitor{cfg: cfg, dir: filepath.Join(opts.DataDir, "datasets"), log: opts.Logger, now: opts.Now,
		datasets: map[string]*entry{}}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.now == nil {
		m.now = time.Now
	}
	m.streams.init(cfg.Streaming)
	if err := os.MkdirAll(m.dir, 0o750); err != nil {
		return nil, fmt.Errorf("data monitor: %w", err)
	}
	roots, err := openRoots(cfg.Roots)
	if err != nil {
		return nil, err
	}
	m.roots = roots
	if err := m.loadStored(); err != nil {
		m.Close()
		return nil, err
	}
	for _, d := range cfg.Datasets {
		if d.Baseline == "" { // learned from its first batches, with this label and segment
			e := m.entry(d.Name)
			e.label, e.segment = d.Label, d.Segment
			continue
		}
		raw, err := os.ReadFile(d.Baseline)
		if err != nil {
			m.Close()
			return nil, fmt.Errorf("data.datasets %q: %w", d.Name, err)
		}
		b, err := dataset.DecodeBaseline(bytes.NewReader(raw))
		if err != nil {
			m.Close()
			return nil, fmt.Errorf("data.datasets %q: baseline %s: %w", d.Name, d.Baseline, err)
		}
		e := m.entry(d.Name)
		e.baseline, e.origin, e.label, e.segment, e.loaded, e.loadErr = b, OriginConfig, d.Label, d.Segment, m.now().UTC(), ""
	}
	return m, nil
}

// Close releases the data roots.
func (m *Monitor) Close() error {
	for _, r := range m.roots {
		r.r.Close()
	}
	return nil
}

func (m *Monitor) loadStored() error {
	des, err := os.ReadDir(m.dir)
	if err != nil {
		return fmt.Errorf("data monitor: %w", err)
	}
	for _, de := range des {
		name := de.Name()
		if !de.IsDir() || !ValidName(name) {
			continue
		}
		path := filepath.Join(m.dir, name, "baseline.json")
		f, err := os.Open(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		e := m.entry(name)
		e.origin = OriginAPI
		if err != nil {
			e.loadErr = err.Error()
			m.log.Error("data monitor: stored baseline unreadable", "dataset", name, "path", path, "err", err)
			continue
		}
		b, err := dataset.DecodeBaseline(f)
		f.Close()
		if err != nil {
			e.loadErr = fmt.Sprintf("%s: %v", path, err)
			m.log.Error("data monitor: stored baseline unusable", "dataset", name, "path", path, "err", err)
			continue
		}
		e.baseline = b
		e.label, e.segment = m.configured(name)
		if raw, err := os.ReadFile(filepath.Join(m.dir, name, "meta.json")); err == nil {
			var mt meta
			if json.Unmarshal(raw, &mt) == nil {
				e.origin, e.loaded = mt.Origin, mt.RegisteredAt
			}
		}
	}
	return nil
}

// entry returns the named entry, creating it; m.mu must be held or m not yet shared.
func (m *Monitor) entry(name string) *entry {
	e := m.datasets[name]
	if e == nil {
		e = &entry{name: name, stats: Stats{Verdicts: map[string]int64{}}}
		m.datasets[name] = e
	}
	return e
}

// Register validates a baseline (as written by 'pipewarden data profile') and stores it as the
// named dataset's, atomically, replacing any earlier one. Errors wrap ErrInvalidName,
// ErrConfigManaged, dataset.ErrBaselineCorrupt or dataset.ErrBaselineVersion.
func (m *Monitor) Register(name string, baselineJSON []byte) error {
	_, err := m.register(name, baselineJSON, OriginAPI)
	return err
}

func (m *Monitor) register(name string, raw []byte, origin string) (*dataset.Baseline, error) {
	if !ValidName(name) {
		return nil, fmt.Errorf("%w %q: use 1-128 letters, digits, '.', '_' or '-'", ErrInvalidName, name)
	}
	b, err := dataset.DecodeBaseline(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("baseline for %q: %w", name, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if e := m.datasets[name]; e != nil && e.origin == OriginConfig {
		return nil, fmt.Errorf("dataset %q: %w; edit data.datasets in the config file", name, ErrConfigManaged)
	}
	now := m.now().UTC()
	dir := filepath.Join(m.dir, name)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("store baseline for %q: %w", name, err)
	}
	if err := writeAtomic(filepath.Join(dir, "baseline.json"), raw); err != nil {
		return nil, fmt.Errorf("store baseline for %q: %w", name, err)
	}
	mt, _ := json.Marshal(meta{Origin: origin, RegisteredAt: now})
	if err := writeAtomic(filepath.Join(dir, "meta.json"), mt); err != nil {
		return nil, fmt.Errorf("store baseline for %q: %w", name, err)
	}
	e := m.entry(name)
	e.baseline, e.origin, e.loaded, e.loadErr, e.learn = b, origin, now, "", nil
	e.label, e.segment = m.configured(name)
	return b, nil
}

// writeAtomic replaces path with data so that a reader (or a crash) sees the old file or the
// new one, never a mix: a synced temporary file in the same directory renamed over it, then
// the directory synced.
func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// Stats are what the monitor has seen of one dataset since it started.
type Stats struct {
	Checks    int64            `json:"checks"`
	Verdicts  map[string]int64 `json:"verdicts"` // clean, drift, suspected_manipulation, invalid, unchecked
	LastCheck *LastCheck       `json:"last_check,omitempty"`
}

// LastCheck summarises the latest batch of a dataset.
type LastCheck struct {
	Time     time.Time `json:"time"`
	EventID  string    `json:"event_id"`
	Rows     int64     `json:"rows,omitempty"`
	Verdict  string    `json:"verdict"`
	Findings int       `json:"findings"`
	Digest   string    `json:"digest,omitempty"`
	Error    string    `json:"error,omitempty"`
}

// DatasetStatus is one row of GET /v1/datasets.
type DatasetStatus struct {
	Name         string        `json:"name"`
	Origin       string        `json:"origin,omitempty"` // config, api, learned; empty while learning
	RegisteredAt *time.Time    `json:"registered_at,omitempty"`
	Baseline     *BaselineInfo `json:"baseline,omitempty"`
	Error        string        `json:"error,omitempty"` // a stored baseline that cannot be used
	Learning     *Learning     `json:"learning,omitempty"`
	Stats
}

// BaselineInfo describes a registered baseline.
type BaselineInfo struct {
	Source   string `json:"source,omitempty"`
	Rows     int64  `json:"rows"`
	Columns  int    `json:"columns"`
	Label    string `json:"label,omitempty"`
	Digest   string `json:"digest,omitempty"`
	Checksum string `json:"checksum"`
	Sample   int    `json:"sample_rows"`
}

// Learning is the progress of a baseline being learned from the first batches.
type Learning struct {
	Batches int `json:"batches"`
	Of      int `json:"of"`
}

func info(b *dataset.Baseline) *BaselineInfo {
	i := &BaselineInfo{Source: b.Source, Rows: b.Rows, Columns: len(b.Columns), Label: b.Label, Digest: b.Digest, Checksum: b.Checksum}
	if b.Sample != nil {
		i.Sample = len(b.Sample.Rows)
	}
	return i
}

// Datasets lists every known dataset by name.
func (m *Monitor) Datasets() []DatasetStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]DatasetStatus, 0, len(m.datasets))
	for _, e := range m.datasets {
		s := DatasetStatus{Name: e.name, Origin: e.origin, Error: e.loadErr, Stats: e.stats}
		s.Verdicts = make(map[string]int64, len(e.stats.Verdicts))
		for k, v := range e.stats.Verdicts {
			s.Verdicts[k] = v
		}
		if e.stats.LastCheck != nil {
			lc := *e.stats.LastCheck
			s.LastCheck = &lc
		}
		if e.baseline != nil {
			s.Baseline = info(e.baseline)
			if !e.loaded.IsZero() {
				t := e.loaded
				s.RegisteredAt = &t
			}
		}
		if e.learn != nil {
			s.Learning = &Learning{Batches: len(e.learn.sources), Of: m.cfg.LearnFromBatches}
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// HandleEvents runs the monitor on a batch of events from the bus and returns the findings, in
// event order. Other event types are ignored.
func (m *Monitor) HandleEvents(ctx context.Context, evs []event.Event) []finding.Finding {
	var out []finding.Finding
	for i := range evs {
		if ctx.Err() != nil {
			break
		}
		out = append(out, m.HandleEvent(ctx, evs[i])...)
	}
	return out
}

// HandleEvent runs the monitor on one event: a pipewarden.data.batch is checked against its
// dataset's baseline, a pipewarden.inference.request feeds the feature detectors. Every
// finding carries the event's id.
func (m *Monitor) HandleEvent(ctx context.Context, ev event.Event) []finding.Finding {
	var fs []finding.Finding
	switch ev.Type {
	case "pipewarden.data.batch":
		fs = m.batch(ctx, ev)
	case "pipewarden.inference.request":
		fs = m.inference(ev)
	default:
		return nil
	}
	for i := range fs {
		fs[i].EventIDs = []string{ev.ID}
	}
	return fs
}
