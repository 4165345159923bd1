package modelwatch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pipewarden/pipewarden/internal/event"
	"github.com/pipewarden/pipewarden/internal/finding"
	"github.com/pipewarden/pipewarden/internal/signing"
)

// Reporter receives what the watcher concludes: pipewarden.model.artifact events and findings.
// The daemon implements it (store, bus, alerts). A failed report is retried at the next check.
type Reporter interface {
	Report(ctx context.Context, events []event.Event, findings []finding.Finding) error
}

// ReporterFunc adapts a function to Reporter.
type ReporterFunc func(ctx context.Context, events []event.Event, findings []finding.Finding) error

// Report implements Reporter.
func (f ReporterFunc) Report(ctx context.Context, evs []event.Event, fs []finding.Finding) error {
	return f(ctx, evs, fs)
}

// Watch is one model directory to keep to its approvals.
type Watch struct {
	Name string // the model name approvals are recorded under
	Path string // the directory
	// Verifier, when set, requires the approved version to carry a signature that verifies with
	// it: an unsigned approval or a signature it rejects is a finding.
	Verifier signing.Verifier
}

// WatcherOptions configure a Watcher.
type WatcherOptions struct {
	Manager  *Manager
	Watches  []Watch
	Reporter Reporter
	// Debounce is how long a model must be quiet after a change before it is checked (default
	// 50ms); MaxDelay bounds the wait under a steady stream of writes (default 300ms).
	Debounce, MaxDelay time.Duration
	// Rescan is the period of the full re-hash of every model, the safety net for changes
	// inotify cannot see (default 5m; negative disables it).
	Rescan time.Duration
	Now    func() time.Time
	Logger *slog.Logger
}

// Watcher watches model directories with inotify (recursively, debounced) and re-hashes them
// periodically; every state that differs from the latest approval is reported once.
type Watcher struct {
	o      WatcherOptions
	dec    *event.Decoder
	models []*watched
	byName map[string]*watched
	wds    map[int][]watchTarget
	apprWd int
	in     *notify

	mu       sync.Mutex
	snapshot []ModelStatus
}

// watchTarget is what an inotify watch descriptor stands for.
type watchTarget struct {
	m      *watched
	rel    string // directory relative to the model root, "" for the root
	parent bool   // the directory holding the model root
}

// watched is the state of one model.
type watched struct {
	Watch
	root     string
	wds      map[int]bool
	approval *Approval
	apprErr  error
	reload   bool // approval file changed
	// cur is the last known digest of every file; valid when fresh.
	cur      map[string][]byte
	problems []signing.PathProblem
	missing  bool // the root was gone at the last check
	fresh    bool
	full     bool            // a full re-hash is needed
	rewatch  bool            // the directory tree changed shape
	dirty    map[string]bool // files changed since the last check
	first    time.Time       // first unchecked change
	last     time.Time       // last unchecked change
	reported map[string]string
	sigFor   string // approval (version and digest) the signature state is for
	sigErr   error
	signer   string
	status   ModelStatus
}

// NewWatcher checks the options; Run starts watching.
func NewWatcher(o WatcherOptions) (*Watcher, error) {
	if o.Manager == nil || o.Reporter == nil {
		return nil, errors.New("model watcher: a manager and a reporter are required")
	}
	if o.Debounce <= 0 {
		o.Debounce = 50 * time.Millisecond
	}
	if o.MaxDelay <= 0 {
		o.MaxDelay = 300 * time.Millisecond
	}
	if o.Rescan == 0 {
		o.Rescan = 5 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	w := &Watcher{o: o, dec: event.NewDecoder(event.Limits{}, o.Now), byName: map[string]*watched{}, wds: map[int][]watchTarget{}}
	for _, wt := range o.Watches {
		if err := ValidName(wt.Name); err != nil {
			return nil, fmt.Errorf("model watcher: %w", err)
		}
		if w.byName[wt.Name] != nil {
			return nil, fmt.Errorf("model watcher: model %s is watched twice", wt.Name)
		}
		root, err := filepath.Abs(wt.Path)
		if err != nil || wt.Path == "" {
			return nil, fmt.Errorf("model watcher: model %s: directory %q: %v", wt.Name, wt.Path, err)
		}
		m := &watched{Watch: wt, root: root, wds: map[int]bool{}, reload: true, full: true, rewatch: true,
			dirty: map[string]bool{}, reported: map[string]string{}}
		m.status = ModelStatus{Name: wt.Name, Path: root, SignatureRequired: wt.Verifier != nil}
		w.models = append(w.models, m)
		w.byName[wt.Name] = m
	}
	return w, nil
}

// Run watches until ctx ends. Every model is checked once at start.
func (w *Watcher) Run(ctx context.Context) error {
	in, err := newNotify()
	if err != nil {
		return err
	}
	w.in = in
	defer in.close()
	if w.apprWd, err = in.add(filepath.Join(w.o.Manager.dir, "approvals"), approvalsMask); err != nil {
		return fmt.Errorf("model watcher: %w", err)
	}
	evc := make(chan []notifyEvent, 64)
	go func() {
		defer close(evc)
		buf := make([]byte, 64<<10)
		for {
			evs, err := in.read(buf)
			if err != nil {
				if !errors.Is(err, os.ErrClosed) {
					w.o.Logger.Error("model watcher: read inotify", "err", err)
				}
				return
			}
			select {
			case evc <- evs:
			case <-ctx.Done():
				return
			}
		}
	}()
	var rescan <-chan time.Time
	if w.o.Rescan > 0 {
		t := time.NewTicker(w.o.Rescan)
		defer t.Stop()
		rescan = t.C
	}
	now := w.o.Now()
	for _, m := range w.models {
		m.first, m.last = now.Add(-w.o.MaxDelay), now.Add(-w.o.MaxDelay)
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case evs, ok := <-evc:
			if !ok {
				return errors.New("model watcher: inotify closed")
			}
			w.handle(evs)
		case <-rescan:
			for _, m := range w.models {
				w.touch(m, "", true)
			}
		case <-timer.C:
			w.runDue(ctx)
		}
		timer.Reset(w.nextDue())
	}
}

// touch marks a model changed: a file (rel) or, with full, the whole tree.
func (w *Watcher) touch(m *watched, rel string, full bool) {
	now := w.o.Now()
	if m.first.IsZero() {
		m.first = now
	}
	m.last = now
	if full {
		m.full, m.rewatch = true, true
	} else if rel != "" {
		m.dirty[rel] = true
	}
}

func (m *watched) pending() bool {
	return !m.first.IsZero()
}

func (w *Watcher) nextDue() time.Duration {
	next := time.Duration(-1)
	now := w.o.Now()
	for _, m := range w.models {
		if !m.pending() {
			continue
		}
		due := min(m.last.Add(w.o.Debounce).Sub(now), m.first.Add(w.o.MaxDelay).Sub(now))
		if next < 0 || due < next {
			next = due
		}
	}
	if next < 0 {
		return time.Hour
	}
	return max(next, time.Millisecond)
}

func (w *Watcher) runDue(ctx context.Context) {
	now := w.o.Now()
	wrote := false
	for _, m := range w.models {
		if !m.pending() || (now.Before(m.last.Add(w.o.Debounce)) && now.Before(m.first.Add(w.o.MaxDelay))) {
			continue
		}
		m.first, m.last = time.Time{}, time.Time{}
		w.check(ctx, m)
		wrote = true
	}
	if wrote {
		w.writeStatus()
	}
}

// handle turns inotify events into pending checks.
func (w *Watcher) handle(evs []notifyEvent) {
	for _, e := range evs {
		if e.Mask&unix.IN_Q_OVERFLOW != 0 {
			w.o.Logger.Warn("model watcher: inotify queue overflowed; re-hashing every model")
			for _, m := range w.models {
				w.touch(m, "", true)
			}
			continue
		}
		if e.Wd == w.apprWd {
			if name, ok := strings.CutSuffix(e.Name, ".json"); ok && w.byName[name] != nil {
				m := w.byName[name]
				m.reload = true
				w.touch(m, "", false)
			}
			continue
		}
		if e.Mask&unix.IN_IGNORED != 0 {
			for _, t := range w.wds[e.Wd] {
				delete(t.m.wds, e.Wd)
			}
			delete(w.wds, e.Wd)
			continue
		}
		for _, t := range w.wds[e.Wd] {
			m := t.m
			switch {
			case t.parent:
				if e.Name == filepath.Base(m.root) {
					w.touch(m, "", true)
				}
			case e.Name == "" || e.Mask&(unix.IN_DELETE_SELF|unix.IN_MOVE_SELF) != 0:
				w.touch(m, "", true)
			default:
				rel := path.Join(t.rel, e.Name)
				if m.ignored(rel) {
					continue
				}
				if e.Mask&unix.IN_ISDIR != 0 {
					if e.Mask&unix.IN_ATTRIB == 0 {
						w.touch(m, "", true)
					}
					continue
				}
				w.touch(m, rel, false)
			}
		}
	}
}

func (m *watched) ignored(rel string) bool {
	ign := []string{".git", ".gitattributes", ".github", ".gitignore"}
	if m.approval != nil {
		ign = append(ign, m.approval.IgnorePaths...)
	}
	for _, ig := range ign {
		if rel == ig || strings.HasPrefix(rel, ig+"/") {
			return true
		}
	}
	return strings.HasPrefix(rel, stagingPrefix) // an in-place rollback at work
}

// addWatches watches the model's parent and every directory of its tree, and drops watches of
// directories that left it.
func (w *Watcher) addWatches(m *watched) {
	keep := map[int]bool{}
	add := func(p, rel string, parent bool, mask uint32) {
		wd, err := w.in.add(p, mask)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				m.status.Error = err.Error()
				w.o.Logger.Warn("model watcher", "model", m.Name, "err", err)
			}
			return
		}
		keep[wd] = true
		ts := slices.DeleteFunc(w.wds[wd], func(t watchTarget) bool { return t.m == m })
		w.wds[wd] = append(ts, watchTarget{m: m, rel: rel, parent: parent})
	}
	add(filepath.Dir(m.root), "", true, parentMask)
	filepath.WalkDir(m.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		rel := relUnder(m.root, p)
		if rel != "" && m.ignored(rel) {
			return filepath.SkipDir
		}
		add(p, rel, false, dirMask)
		return nil
	})
	for wd := range m.wds {
		if !keep[wd] {
			ts := slices.DeleteFunc(w.wds[wd], func(t watchTarget) bool { return t.m == m })
			if len(ts) == 0 {
				delete(w.wds, wd)
				w.in.remove(wd)
			} else {
				w.wds[wd] = ts
			}
		}
	}
	m.wds = keep
	m.status.Watching = len(keep) > 1
	m.status.Watches = len(keep)
}

// check brings one model's state up to date and reports what is new.
func (w *Watcher) check(ctx context.Context, m *watched) {
	now := w.o.Now()
	m.status.Error = ""
	if m.reload {
		m.reload = false
		a, err := w.o.Manager.Latest(m.Name)
		if err != nil && !errors.Is(err, ErrNotApproved) {
			w.o.Logger.Error("model watcher: read approvals", "model", m.Name, "err", err)
		}
		if a == nil || m.approval == nil || a.Version != m.approval.Version || a.Digest != m.approval.Digest {
			m.full = true // the ignore paths may differ
		}
		m.approval, m.apprErr = a, err
	}
	if m.rewatch {
		m.rewatch = false
		w.addWatches(m)
	}
	if err := w.hash(ctx, m); err != nil {
		m.status.Error = err.Error()
		m.full = true
		return
	}
	m.status.LastCheck = now
	var evs []event.Event
	var fnd []finding.Finding
	keys := map[string]string{}
	a := m.approval
	switch {
	case a == nil:
		m.status.State, m.status.ApprovedVersion, m.status.ApprovedDigest, m.status.Deviation = StateNotApproved, 0, "", nil
		keys[RuleNotApproved] = "x"
		if m.reported[RuleNotApproved] == "" {
			why := "no approved version"
			if m.apprErr != nil {
				why = m.apprErr.Error()
			}
			fnd = append(fnd, modelFinding(RuleNotApproved, finding.High, m.Name, m.root,
				fmt.Sprintf("watched model %s has no approved version: approve it with 'pipewarden model approve'", m.Name),
				map[string]any{"reason": why}, now))
		}
	default:
		m.status.ApprovedVersion, m.status.ApprovedDigest = a.Version, a.Digest
		actual := m.manifest()
		d := deviation(a, actual, m.problems)
		d.RootMissing = m.missing
		if d.Empty() {
			m.status.State, m.status.Deviation = StateApproved, nil
		} else {
			m.status.State, m.status.Deviation = StateChanged, &d
			key := fmt.Sprintf("%d/%x/%v", a.Version, actual.RootDigest(), d.Files())
			keys[RuleUnapprovedChange] = key
			if m.reported[RuleUnapprovedChange] != key {
				ev, f, err := changeReport(w.dec, m.Name, m.root, a, d, actual, now)
				if err != nil {
					w.o.Logger.Error("model watcher", "model", m.Name, "err", err)
				} else {
					evs, fnd = append(evs, ev), append(fnd, f)
				}
			}
		}
		if m.Verifier != nil {
			if key := fmt.Sprint(a.Version, a.Digest, len(a.Signature)); m.sigFor != key {
				m.sigFor = key
				m.signer, m.sigErr = "", nil
				if a.Signed() {
					m.signer, m.sigErr = checkSignature(a, m.Verifier)
				}
			}
			m.status.Signer = m.signer
			switch {
			case !a.Signed():
				key := fmt.Sprint(a.Version)
				keys[RuleUnsigned] = key
				if m.reported[RuleUnsigned] != key {
					fnd = append(fnd, modelFinding(RuleUnsigned, finding.High, m.Name, m.root,
						fmt.Sprintf("model %s: approved version %d is not signed, and this model requires a signature", m.Name, a.Version),
						map[string]any{"approved_version": a.Version, "approved_by": a.Approver}, now))
				}
			case m.sigErr != nil:
				key := fmt.Sprint(a.Version)
				keys[RuleSignatureInvalid] = key
				if m.reported[RuleSignatureInvalid] != key {
					fnd = append(fnd, modelFinding(RuleSignatureInvalid, finding.Critical, m.Name, m.root,
						fmt.Sprintf("model %s: the signature of approved version %d does not verify: %v", m.Name, a.Version, m.sigErr),
						map[string]any{"approved_version": a.Version, "error": m.sigErr.Error()}, now))
				}
			}
		}
	}
	if len(evs)+len(fnd) > 0 {
		if err := w.o.Reporter.Report(ctx, evs, fnd); err != nil {
			w.o.Logger.Error("model watcher: report", "model", m.Name, "err", err)
			m.status.Error = "report: " + err.Error()
			return // reported is left as it was, so the next check reports again
		}
		for _, f := range fnd {
			w.o.Logger.Warn("model watcher: "+f.Title, "rule", f.Rule, "severity", f.Severity)
		}
	}
	m.reported = keys
}

// hash refreshes the model's digests: everything on a full check, else only the changed files.
func (w *Watcher) hash(ctx context.Context, m *watched) error {
	var ignore []string
	if m.approval != nil {
		ignore = m.approval.IgnorePaths
	}
	opts := signing.Options{IgnorePaths: ignore, Workers: w.o.Manager.opts.Workers}
	full := m.full || !m.fresh
	if !full && len(m.dirty) == 0 {
		return nil
	}
	dirty := m.dirty
	m.dirty = map[string]bool{}
	if !full {
		opts.Only = dirty
	}
	man, err := signing.ComputeManifest(ctx, m.root, opts)
	var te *signing.TreeError
	var problems []signing.PathProblem
	switch {
	case errors.As(err, &te):
		problems = te.Problems
	case err != nil && errors.Is(err, fs.ErrNotExist):
		m.cur, m.problems, m.missing, m.fresh, m.full = map[string][]byte{}, nil, true, true, false
		m.status.LastFullHash = w.o.Now()
		return nil
	case err != nil:
		if ctx.Err() != nil {
			return ctx.Err()
		}
		problems = []signing.PathProblem{{Name: ".", Reason: "model directory cannot be read", Err: err}}
		man = &signing.Manifest{}
		full = true
	}
	m.missing = false
	if full {
		m.cur = make(map[string][]byte, len(man.Resources))
		for _, r := range man.Resources {
			m.cur[r.Name] = r.Digest
		}
		m.problems, m.fresh, m.full = problems, true, false
		m.status.LastFullHash = w.o.Now()
		return nil
	}
	for n := range dirty {
		delete(m.cur, n)
	}
	for _, r := range man.Resources {
		m.cur[r.Name] = r.Digest
	}
	// The walk reports every problem of the tree; earlier hashing problems of files not looked at
	// again still stand.
	seen := map[string]bool{}
	for _, p := range problems {
		seen[p.Name] = true
	}
	for _, p := range m.problems {
		if !seen[p.Name] && !dirty[p.Name] {
			if _, err := os.Lstat(filepath.Join(m.root, filepath.FromSlash(p.Name))); err == nil {
				problems = append(problems, p)
			}
		}
	}
	m.problems = problems
	return nil
}

// manifest is the model's current state as a manifest, in OMS order.
func (m *watched) manifest() *signing.Manifest {
	man := &signing.Manifest{Serialization: signing.Serialization{Method: signing.MethodFiles, HashType: signing.HashSHA256}}
	for _, n := range slices.Sorted(maps.Keys(m.cur)) {
		man.Resources = append(man.Resources, signing.Resource{Name: n, Algorithm: signing.HashSHA256, Digest: m.cur[n]})
	}
	signing.SortResources(man.Resources, signing.MethodFiles)
	return man
}
