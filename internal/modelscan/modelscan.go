// Package modelscan finds code hidden in machine-learning model files without ever running it:
// pickle streams (and every container that carries them: PyTorch ZIP and legacy files, NumPy,
// joblib), Keras, TensorFlow SavedModel, ONNX, safetensors and GGUF. Formats are recognised by
// their content, never by their file name; pickles are judged by an opcode walker of our own
// under a default-deny import policy.
package modelscan

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pipewarden/pipewarden/internal/finding"
)

// Outcome is how the scan of one file ended.
type Outcome string

// Outcomes of a file scan. Inconclusive files are never reported clean: they carry a high finding.
const (
	Clean        Outcome = "clean"
	Findings     Outcome = "findings"
	Inconclusive Outcome = "inconclusive"
	Skipped      Outcome = "skipped" // not a format we analyse, found while walking a directory
)

// FileResult is the verdict on one file.
type FileResult struct {
	Path     string            `json:"path"`
	Format   string            `json:"format"`
	Outcome  Outcome           `json:"outcome"`
	Bytes    int64             `json:"bytes"`
	Findings []finding.Finding `json:"findings,omitempty"`
}

// Options configure a Scanner. The zero value is usable: default limits and policy.
type Options struct {
	Limits Limits
	// Allow adds imports to the pickle allowlist: "module.name" exactly, or "module.*" for
	// everything under a module. Known-dangerous callables cannot be allowed.
	Allow []string
	// Now stamps findings; time.Now when nil.
	Now func() time.Time
}

// Scanner scans model files. It holds no per-scan state and is safe for concurrent use.
type Scanner struct {
	lim    Limits
	policy *Policy
	now    func() time.Time
	// walkers holds the memory of finished pickle walkers for the next ones.
	walkers sync.Pool
}

// New returns a Scanner with opts, filling unset limits with their defaults.
func New(opts Options) (*Scanner, error) {
	p, err := NewPolicy(opts.Allow)
	if err != nil {
		return nil, err
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Scanner{lim: opts.Limits.withDefaults(), policy: p, now: now}, nil
}

// ScanPath scans a file, or every regular file under a directory. The error is for an input
// that cannot be read at all (missing, permission denied); everything found inside a readable
// input, including what could not be analysed, is in the results.
func (s *Scanner) ScanPath(ctx context.Context, path string) ([]FileResult, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("scan %q: %w", path, err)
	}
	if !st.IsDir() {
		r, err := s.scanFile(ctx, path, true)
		if err != nil {
			return nil, err
		}
		return []FileResult{r}, nil
	}
	var out []FileResult
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("walk %q: %w", p, err)
		}
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if !d.Type().IsRegular() {
			return nil
		}
		r, err := s.scanFile(ctx, p, false)
		if err != nil {
			return err
		}
		out = append(out, r)
		return nil
	})
	if err != nil {
		return out, err
	}
	return out, nil
}

// ScanReader scans content that is not on disk (an upload, a registry blob). name is used in
// findings and only ever makes the scan stricter.
func (s *Scanner) ScanReader(ctx context.Context, name string, r io.ReaderAt, size int64) FileResult {
	j := s.newJob(ctx, name)
	format := j.scanTop(&source{name: name, ra: r, size: size}, true)
	return j.result(format, size)
}

func (s *Scanner) scanFile(ctx context.Context, path string, explicit bool) (FileResult, error) {
	f, err := os.Open(path)
	if err != nil {
		return FileResult{}, fmt.Errorf("scan %q: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return FileResult{}, fmt.Errorf("scan %q: %w", path, err)
	}
	j := s.newJob(ctx, path)
	format := j.scanTop(&source{name: path, ra: f, size: st.Size()}, explicit)
	if format == "" {
		return FileResult{Path: path, Format: "unknown", Outcome: Skipped, Bytes: st.Size()}, nil
	}
	return j.result(format, st.Size()), nil
}

// AllFindings flattens the findings of results.
func AllFindings(results []FileResult) []finding.Finding {
	var out []finding.Finding
	for _, r := range results {
		out = append(out, r.Findings...)
	}
	return out
}

func (j *job) result(format string, size int64) FileResult {
	r := FileResult{Path: j.path, Format: format, Bytes: size, Findings: j.findings()}
	r.Outcome = Clean
	for _, f := range r.Findings {
		if f.Rule == RuleInconclusive {
			r.Outcome = Inconclusive
		}
	}
	for _, f := range r.Findings {
		if f.Rule != RuleInconclusive {
			r.Outcome = Findings
		}
	}
	return r
}

// job is the state of scanning one top-level file.
type job struct {
	s        *Scanner
	ctx      context.Context
	path     string
	deadline time.Time
	members  []string // container path of what is being scanned now
	byKey    map[string]*finding.Finding
	order    []string
	now      time.Time
}

func (s *Scanner) newJob(ctx context.Context, path string) *job {
	now := s.now()
	return &job{s: s, ctx: ctx, path: path, byKey: map[string]*finding.Finding{}, now: now,
		deadline: time.Now().Add(s.lim.MaxScanTime)}
}

// errLimit marks a stop caused by one of our limits rather than by malformed input.
var errLimit = errors.New("limit exceeded")

// limitErr builds an error wrapping errLimit.
func limitErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errLimit, fmt.Sprintf(format, a...))
}

// checkTime fails once the scan has used its time budget or the context is done.
func (j *job) checkTime() error {
	if err := j.ctx.Err(); err != nil {
		return err
	}
	if time.Now().After(j.deadline) {
		return limitErr("scan time over %s", j.s.lim.MaxScanTime)
	}
	return nil
}

func (j *job) member() string { return strings.Join(j.members, "/") }

func (j *job) push(name string) { j.members = append(j.members, name) }
func (j *job) pop()             { j.members = j.members[:len(j.members)-1] }

// add records a finding about the current member, merging repeats of the same rule and title.
func (j *job) add(rule string, sev finding.Severity, title string, ev map[string]any) {
	m := j.member()
	key := rule + "\x00" + m + "\x00" + title
	if f, ok := j.byKey[key]; ok {
		if c, ok := f.Evidence["count"].(int); ok {
			f.Evidence["count"] = c + 1
		} else {
			f.Evidence["count"] = 2
		}
		if sev > f.Severity {
			f.Severity = sev
		}
		return
	}
	if ev == nil {
		ev = map[string]any{}
	}
	if m != "" {
		ev["member"] = m
		title = title + " in " + m
	}
	f := &finding.Finding{
		Rule: rule, Severity: sev, Title: title,
		Subject:    finding.Subject{Kind: "file", Name: j.path},
		Labels:     map[string]string{"scanner": "modelscan", "path": j.path},
		Evidence:   ev,
		ATLAS:      []string{"AML.T0010", "AML.T0018"},
		OWASP:      []string{"ML06:2023"},
		Confidence: confidence(rule),
		Time:       j.now,
		Location:   &finding.Location{Path: j.path},
	}
	j.byKey[key] = f
	j.order = append(j.order, key)
}

// inconclusive records that part of the file could not be fully analysed.
func (j *job) inconclusive(what string, err error) {
	j.add(RuleInconclusive, finding.High, "could not fully analyse "+what, map[string]any{"reason": err.Error()})
}

func (j *job) findings() []finding.Finding {
	out := make([]finding.Finding, 0, len(j.order))
	for _, k := range j.order {
		out = append(out, *j.byKey[k])
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].Severity > out[b].Severity })
	return out
}
