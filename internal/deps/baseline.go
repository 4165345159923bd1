package deps

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/pipewarden/pipewarden/internal/finding"
)

// Rule ids of the baseline comparison.
const (
	RuleAdded      = "deps.added"
	RuleRemoved    = "deps.removed"
	RuleUpgraded   = "deps.upgraded"
	RuleDowngraded = "deps.downgraded"
	RuleChanged    = "deps.changed"
)

// Changes is what differs between an approved lockfile and the current one; its JSON form is
// the data of a pipewarden.deps.change event (with project and lockfile added by the caller).
type Changes struct {
	Added   []Dependency `json:"added"`
	Removed []Dependency `json:"removed"`
	Changed []Change     `json:"changed"`
}

// Dependency is a name and its version(s), several when markers select per-platform pins.
type Dependency struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	line    *finding.Location
}

// Change is one package whose version moved.
type Change struct {
	Name string `json:"name"`
	From string `json:"from"`
	To   string `json:"to"`
	Kind string `json:"kind"` // upgraded, downgraded or changed (not comparable)
	line *finding.Location
}

// Empty reports whether nothing changed.
func (c Changes) Empty() bool { return len(c.Added)+len(c.Removed)+len(c.Changed) == 0 }

// Diff compares the packages of an approved lockfile with the current ones, by normalized name.
func Diff(approved, current []Package) Changes {
	before, after := versionsByName(approved), versionsByName(current)
	var ch Changes
	for _, k := range sortedKeys(after) {
		a := after[k]
		b, ok := before[k]
		switch {
		case !ok:
			ch.Added = append(ch.Added, Dependency{Name: k, Version: a.version, line: a.loc})
		case a.version != b.version:
			ch.Changed = append(ch.Changed, Change{Name: k, From: b.version, To: a.version, Kind: direction(b.version, a.version), line: a.loc})
		}
	}
	for _, k := range sortedKeys(before) {
		if _, ok := after[k]; !ok {
			ch.Removed = append(ch.Removed, Dependency{Name: k, Version: before[k].version})
		}
	}
	return ch
}

type pinned struct {
	version string
	loc     *finding.Location
}

func versionsByName(ps []Package) map[string]pinned {
	vs := map[string][]string{}
	locs := map[string]*finding.Location{}
	for _, p := range ps {
		v := p.Version
		if v == "" {
			v = p.Specifier
		}
		if v == "" && p.Source != "" {
			v = p.Source
		}
		vs[p.Key] = append(vs[p.Key], v)
		if locs[p.Key] == nil {
			loc := p.Location
			locs[p.Key] = &loc
		}
	}
	out := make(map[string]pinned, len(vs))
	for k, v := range vs {
		out[k] = pinned{version: strings.Join(uniqueSorted(v), " | "), loc: locs[k]}
	}
	return out
}

func sortedKeys(m map[string]pinned) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func direction(from, to string) string {
	a, okA := parseVersion(from)
	b, okB := parseVersion(to)
	if !okA || !okB {
		return "changed"
	}
	if b.compare(a) > 0 {
		return "upgraded"
	}
	if b.compare(a) < 0 {
		return "downgraded"
	}
	return "changed"
}

// Findings turns changes into findings: an added package is low (it has not been reviewed), a
// downgrade medium (it can bring back fixed vulnerabilities), removals and upgrades info.
func (c Changes) Findings(lockfile, baseline string, now time.Time) []finding.Finding {
	var out []finding.Finding
	add := func(rule string, sev finding.Severity, name, title string, loc *finding.Location, ev map[string]any) {
		if loc == nil {
			loc = &finding.Location{Path: lockfile}
		}
		ev["baseline"] = baseline
		out = append(out, finding.Finding{Rule: rule, Severity: sev, Title: title, Confidence: 1, Time: now,
			Subject: finding.Subject{Kind: "package", Name: name}, Location: loc, Evidence: ev,
			Labels: map[string]string{"package": name, "lockfile": lockfile},
			ATLAS:  atlasTags, OWASP: owaspTags})
	}
	for _, d := range c.Added {
		add(RuleAdded, finding.Low, d.Name, fmt.Sprintf("%s %s added since the approved lockfile", d.Name, d.Version), d.line,
			map[string]any{"version": d.Version})
	}
	for _, d := range c.Removed {
		add(RuleRemoved, finding.Info, d.Name, fmt.Sprintf("%s %s removed since the approved lockfile", d.Name, d.Version), nil,
			map[string]any{"version": d.Version})
	}
	for _, ch := range c.Changed {
		rule, sev := RuleChanged, finding.Low
		switch ch.Kind {
		case "upgraded":
			rule, sev = RuleUpgraded, finding.Info
		case "downgraded":
			rule, sev = RuleDowngraded, finding.Medium
		}
		add(rule, sev, ch.Name, fmt.Sprintf("%s %s from %s to %s", ch.Name, ch.Kind, ch.From, ch.To), ch.line,
			map[string]any{"from": ch.From, "to": ch.To})
	}
	return out
}
