// Package rules turns events into findings with a Falco-style rule language on CEL: YAML files of
// rule, macro, list, policy and history items; single-event rules indexed by event type and
// compiled once; correlation rules (event_count, value_count, sequence) with bounded state that
// can be snapshotted; and the default ruleset for every pipeline stage, embedded in the binary.
package rules

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"cel.dev/cel-go/common/types"
)

//go:embed defaults/*.yaml
var defaultFS embed.FS

// Source is a rule file held in memory.
type Source struct {
	Name string
	Data []byte
}

// LoadOptions say which rules to load and how.
type LoadOptions struct {
	// Files are paths or globs of rule files, loaded in order after the default ruleset. A glob
	// that matches nothing is not an error; a plain path that does not exist is.
	Files []string
	// Sources are in-memory rule files loaded after Files.
	Sources []Source
	// NoDefaults leaves out the embedded default ruleset.
	NoDefaults bool
	// Policy sets list items and policy values by name (the config's rules.policy).
	Policy map[string]any
	Limits Limits
	Logger *slog.Logger
	// Clock stamps findings of events without a time; default time.Now.
	Clock func() time.Time
}

// Ruleset is a compiled, immutable set of rules with the state of its correlation rules and
// histories. Use it through an Engine.
type Ruleset struct {
	rules     []*rule
	byType    map[string]*bucket
	all       *bucket // rules without match
	histories map[string]*history
	lists     map[string][]any
	policy    map[string]any
	files     []string
	digest    string
	loadedAt  time.Time
	logger    *slog.Logger
	clock     func() time.Time
	adapter   types.Adapter // the CEL environment's, for values read from event data
}

// bucket is what can match one event type.
type bucket struct {
	single    []*rule
	idx       *litIndex  // narrows single to the rules an event can match
	counts    []*rule    // event_count and value_count
	steps     []stepRef  // sequence steps
	histories []*history // updated after rules run
}

type stepRef struct {
	r   *rule
	idx int
}

// Files returns the rule files the ruleset was loaded from, in load order.
func (rs *Ruleset) Files() []string { return append([]string(nil), rs.files...) }

// Digest identifies the content of every file loaded and the policy; it changes when any does.
func (rs *Ruleset) Digest() string { return rs.digest }

// Len is the number of rules, enabled or not.
func (rs *Ruleset) Len() int { return len(rs.rules) }

// Load reads, merges and compiles the default ruleset (unless NoDefaults) and the given files.
// Any problem makes it return Errors, each with file, line and item, and no ruleset.
func Load(ctx context.Context, opts LoadOptions) (*Ruleset, error) {
	lim := opts.Limits.withDefaults()
	srcs, err := gather(opts)
	if err != nil {
		return nil, err
	}
	var items []*rawItem
	var errs Errors
	h := sha256.New()
	var files []string
	for _, s := range srcs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		files = append(files, s.Name)
		fmt.Fprintf(h, "%s\x00%d\x00", s.Name, len(s.Data))
		h.Write(s.Data)
		if len(s.Data) > lim.MaxFileBytes {
			errs = append(errs, &Error{File: s.Name, Msg: fmt.Sprintf("file exceeds the limit of %d bytes", lim.MaxFileBytes)})
			continue
		}
		its, es := parseBytes(s.Name, s.Data, lim)
		items = append(items, its...)
		errs = append(errs, es...)
	}
	if len(items) > lim.MaxItems {
		errs = append(errs, &Error{File: files[len(files)-1], Msg: fmt.Sprintf("%d items in all exceed the limit of %d", len(items), lim.MaxItems)})
	}
	if len(errs) > 0 {
		return nil, errs
	}
	byKey, order, merrs := mergeItems(items)
	if len(merrs) > 0 {
		return nil, merrs
	}
	pol := fmt.Sprint(sortedPolicy(opts.Policy))
	h.Write([]byte(pol))
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	clock := opts.Clock
	if clock == nil {
		clock = time.Now
	}
	rs := &Ruleset{lists: map[string][]any{}, policy: map[string]any{}, files: files,
		digest: hex.EncodeToString(h.Sum(nil)[:16]), loadedAt: clock(), logger: logger, clock: clock}
	c := &compiler{lim: lim, byKey: byKey, order: order, policyCfg: opts.Policy, rs: rs}
	c.compile()
	if len(c.errs) > 0 {
		return nil, c.errs
	}
	rs.index()
	return rs, nil
}

func sortedPolicy(p map[string]any) []string {
	var out []string
	for k, v := range p {
		out = append(out, fmt.Sprintf("%s=%v", k, v))
	}
	sort.Strings(out)
	return out
}

// gather reads the default files, then Files (globs expanded, sorted), then Sources.
func gather(opts LoadOptions) ([]Source, error) {
	var out []Source
	if !opts.NoDefaults {
		names, _ := fs.Glob(defaultFS, "defaults/*.yaml")
		sort.Strings(names)
		for _, n := range names {
			b, err := defaultFS.ReadFile(n)
			if err != nil {
				return nil, fmt.Errorf("read default rules %s: %w", n, err)
			}
			out = append(out, Source{Name: "builtin:" + path.Base(n), Data: b})
		}
	}
	paths, err := ExpandFiles(opts.Files)
	if err != nil {
		return nil, err
	}
	for _, p := range paths {
		b, err := readLimited(p, opts.Limits.withDefaults().MaxFileBytes)
		if err != nil {
			return nil, Errors{{File: p, Msg: err.Error()}}
		}
		out = append(out, Source{Name: p, Data: b})
	}
	return append(out, opts.Sources...), nil
}

// ExpandFiles expands globs in order; a plain path must exist.
func ExpandFiles(patterns []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, p := range patterns {
		var matches []string
		if strings.ContainsAny(p, "*?[") {
			m, err := filepath.Glob(p)
			if err != nil {
				return nil, Errors{{File: p, Msg: fmt.Sprintf("bad glob: %v", err)}}
			}
			sort.Strings(m)
			matches = m
		} else {
			if _, err := os.Stat(p); err != nil {
				return nil, Errors{{File: p, Msg: fmt.Sprintf("cannot read rule file: %v", unwrapPath(err))}}
			}
			matches = []string{p}
		}
		for _, m := range matches {
			if !seen[m] {
				seen[m] = true
				out = append(out, m)
			}
		}
	}
	return out, nil
}

func unwrapPath(err error) error {
	if pe, ok := err.(*fs.PathError); ok {
		return pe.Err
	}
	return err
}

func readLimited(p string, max int) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("cannot read rule file: %v", unwrapPath(err))
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, int64(max)+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read rule file: %v", err)
	}
	if len(b) > max {
		return nil, fmt.Errorf("file exceeds the limit of %d bytes", max)
	}
	return b, nil
}

// index builds the per-type buckets of enabled rules.
func (rs *Ruleset) index() {
	rs.byType = map[string]*bucket{}
	rs.all = &bucket{}
	get := func(t string) *bucket {
		b, ok := rs.byType[t]
		if !ok {
			b = &bucket{}
			rs.byType[t] = b
		}
		return b
	}
	each := func(types []string, f func(b *bucket)) {
		if len(types) == 0 {
			f(rs.all)
			return
		}
		for _, t := range types {
			f(get(t))
		}
	}
	for _, r := range rs.rules {
		if !r.enabled {
			continue
		}
		switch {
		case r.corr == nil:
			each(r.match, func(b *bucket) { b.single = append(b.single, r) })
		case r.corr.kind == corrSequence:
			for i, s := range r.corr.steps {
				each(s.match, func(b *bucket) { b.steps = append(b.steps, stepRef{r, i}) })
			}
		default:
			each(r.match, func(b *bucket) { b.counts = append(b.counts, r) })
		}
	}
	names := make([]string, 0, len(rs.histories))
	for n := range rs.histories {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		h := rs.histories[n]
		each(h.match, func(b *bucket) { b.histories = append(b.histories, h) })
	}
	// Rules without match apply to every type: fold them into each typed bucket.
	for _, b := range rs.byType {
		b.single = append(b.single, rs.all.single...)
		b.counts = append(b.counts, rs.all.counts...)
		b.steps = append(b.steps, rs.all.steps...)
		b.histories = append(b.histories, rs.all.histories...)
		b.idx = newLitIndex(b.single)
	}
	rs.all.idx = newLitIndex(rs.all.single)
}

func (rs *Ruleset) bucketFor(typ string) *bucket {
	if b, ok := rs.byType[typ]; ok {
		return b
	}
	return rs.all
}
