package deps

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/pipewarden/pipewarden/internal/finding"
)

// Rule ids of the findings Check reports.
const (
	RuleVulnerability = "deps.vulnerability"
	RuleMalicious     = "deps.malicious"
	RuleUnverified    = "deps.unverified"
	RuleTyposquat     = "deps.typosquat"
	RuleUnpinned      = "deps.unpinned"
	RuleUnhashed      = "deps.unhashed"
	RuleUnparsed      = "deps.unparsed"
	RuleUnresolved    = "deps.unresolved"
)

// Threat tags every dependency finding carries: MITRE ATLAS AML.T0010 (ML supply chain
// compromise) and OWASP ML06:2023 (AI supply chain attacks).
var (
	atlasTags = []string{"AML.T0010"}
	owaspTags = []string{"ML06:2023"}
)

// Options tune Check. The zero value checks nothing but pinning and parse problems.
type Options struct {
	DB         *DB              // offline OSV database; nil skips advisory matching
	Typosquats *Typosquats      // nil skips the typosquat check
	Now        func() time.Time // the clock for Finding.Time; nil is time.Now
}

// Check judges one parsed lockfile and returns its findings.
func Check(lf *Lockfile, opts Options) []finding.Finding {
	c := checker{lf: lf, opts: opts, now: time.Now()}
	if opts.Now != nil {
		c.now = opts.Now()
	}
	for _, p := range lf.Problems {
		sev, what := finding.Medium, "part of the file could not be analysed"
		if p.Fatal {
			sev, what = finding.High, "the file could not be analysed"
		}
		loc := p.Location
		c.add(finding.Finding{Rule: RuleUnparsed, Severity: sev, Confidence: 1, Location: &loc,
			Title:    fmt.Sprintf("%s: %s", what, p.Message),
			Subject:  finding.Subject{Kind: "file", Name: lf.Path},
			Evidence: map[string]any{"message": p.Message, "format": lf.Format}})
	}
	var unresolved []string
	for i := range lf.Packages {
		p := &lf.Packages[i]
		if opts.DB != nil {
			if !p.Pinned() {
				unresolved = append(unresolved, p.Name)
			} else if _, ok := parseVersion(p.Version); !ok {
				unresolved = append(unresolved, p.Name+" "+p.Version)
			}
			c.advisories(p)
		}
		if opts.Typosquats != nil && p.Ecosystem == PyPI {
			c.typosquat(p)
		}
	}
	if len(unresolved) > 0 {
		c.add(finding.Finding{Rule: RuleUnresolved, Severity: finding.Info, Confidence: 1,
			Title:    fmt.Sprintf("%d packages have no exact PEP 440 version and were not checked against advisories", len(unresolved)),
			Subject:  finding.Subject{Kind: "file", Name: lf.Path},
			Location: &finding.Location{Path: lf.Path},
			Evidence: map[string]any{"packages": unresolved}})
	}
	if lf.Requirements {
		c.pinning()
	}
	return c.out
}

type checker struct {
	lf   *Lockfile
	opts Options
	now  time.Time
	out  []finding.Finding
}

func (c *checker) add(f finding.Finding) {
	f.Time = c.now
	f.ATLAS, f.OWASP = atlasTags, owaspTags
	if f.Labels == nil {
		f.Labels = map[string]string{}
	}
	f.Labels["lockfile"] = c.lf.Path
	c.out = append(c.out, f)
}

func pkgSubject(p *Package) finding.Subject {
	return finding.Subject{Kind: "package", Name: p.Name}
}

func pkgLabels(p *Package) map[string]string {
	l := map[string]string{"package": p.Key, "ecosystem": p.Ecosystem}
	if p.Version != "" {
		l["version"] = p.Version
	}
	return l
}

func (c *checker) typosquat(p *Package) {
	s, ok := c.opts.Typosquats.Match(p.Name)
	if !ok {
		return
	}
	sev, conf := finding.Medium, 0.5
	if s.Strong {
		sev, conf = finding.High, 0.8
	}
	loc := p.Location
	labels := pkgLabels(p)
	labels["imitates"] = s.Target
	c.add(finding.Finding{Rule: RuleTyposquat, Severity: sev, Confidence: conf, Location: &loc,
		Title:    fmt.Sprintf("%s looks like a typosquat of %s (%s)", p.Name, s.Target, s.Technique),
		Subject:  pkgSubject(p),
		Labels:   labels,
		Evidence: map[string]any{"package": p.Name, "imitates": s.Target, "technique": s.Technique}})
}

// pinning applies the policy for requirements files: in a project that otherwise pins exact
// versions, each unpinned requirement is reported; once any requirement carries hashes (or
// --require-hashes is on), each one without is reported.
func (c *checker) pinning() {
	var total, pinned, hashed int
	for _, p := range c.lf.Packages {
		if p.Source != "" {
			continue
		}
		total++
		if p.Pinned() {
			pinned++
		}
		if len(p.Hashes) > 0 {
			hashed++
		}
	}
	pinsProject := pinned >= 2 && pinned*2 >= total
	hashesProject := hashed > 0 || c.lf.RequireHashes
	for i := range c.lf.Packages {
		p := &c.lf.Packages[i]
		if p.Source != "" {
			continue
		}
		loc := p.Location
		if pinsProject && !p.Pinned() {
			spec := p.Specifier
			if spec == "" {
				spec = "any version"
			}
			c.add(finding.Finding{Rule: RuleUnpinned, Severity: finding.Medium, Confidence: 1, Location: &loc,
				Title:   fmt.Sprintf("%s is not pinned (%s) while %d of %d requirements are", p.Name, spec, pinned, total),
				Subject: pkgSubject(p), Labels: pkgLabels(p),
				Evidence: map[string]any{"specifier": p.Specifier, "pinned": pinned, "requirements": total}})
		}
		if hashesProject && len(p.Hashes) == 0 {
			c.add(finding.Finding{Rule: RuleUnhashed, Severity: finding.Medium, Confidence: 1, Location: &loc,
				Title:   fmt.Sprintf("%s has no --hash while %d of %d requirements do", p.Name, hashed, total),
				Subject: pkgSubject(p), Labels: pkgLabels(p),
				Evidence: map[string]any{"hashed": hashed, "requirements": total, "require_hashes": c.lf.RequireHashes}})
		}
	}
}

// advisories matches one pinned package against the database. Records that name each other as
// aliases are one finding, carrying every id.
func (c *checker) advisories(p *Package) {
	if !p.Pinned() {
		return
	}
	var hits []*Record
	var hitAff []*Affected
	var unsure []string
	for _, e := range c.opts.DB.byName[p.Key] {
		a := &e.rec.Affected[e.aff]
		hit, uncertain := affects(a, p.Version)
		switch {
		case hit:
			hits = append(hits, e.rec)
			hitAff = append(hitAff, a)
		case uncertain:
			unsure = append(unsure, e.rec.ID)
		}
	}
	loc := p.Location
	if len(unsure) > 0 {
		c.add(finding.Finding{Rule: RuleUnverified, Severity: finding.Medium, Confidence: 0.5, Location: &loc,
			Title:   fmt.Sprintf("%s %s could not be checked against %s (version or range bounds are not PEP 440)", p.Name, p.Version, strings.Join(unsure, ", ")),
			Subject: pkgSubject(p), Labels: pkgLabels(p),
			Evidence: map[string]any{"advisories": unsure}})
	}
	for _, group := range groupAliases(hits) {
		c.vulnerability(p, group, hits, hitAff)
	}
}

func (c *checker) vulnerability(p *Package, group []int, hits []*Record, affs []*Affected) {
	var ids, aliases, fixed []string
	sev, source, malicious := finding.Info, "", false
	first := hits[group[0]]
	for _, i := range group {
		r := hits[i]
		ids = append(ids, r.ID)
		aliases = append(aliases, r.Aliases...)
		fixed = append(fixed, fixedVersions(affs[i])...)
		s, src := recordSeverity(r, affs[i])
		if source == "" || s > sev {
			sev, source = s, src
		}
		if r.Malicious() {
			malicious = true
		}
	}
	rule := RuleVulnerability
	if malicious {
		rule, sev, source = RuleMalicious, finding.Critical, "malicious package"
	}
	aliases = uniqueSorted(aliases)
	fixed = uniqueSorted(fixed)
	conf := 1.0
	if p.Ecosystem == Conda {
		conf = 0.7 // a conda build is matched against its PyPI namesake
	}
	title := summaryOf(first)
	evidence := map[string]any{"ids": ids, "aliases": aliases, "version": p.Version,
		"severity_source": source, "summary": title}
	if len(fixed) > 0 {
		evidence["fixed"] = fixed
	}
	labels := pkgLabels(p)
	labels["advisory"] = ids[0]
	loc := p.Location
	c.add(finding.Finding{Rule: rule, Severity: sev, Confidence: conf, Location: &loc,
		Title:   fmt.Sprintf("%s %s: %s %s", p.Name, p.Version, strings.Join(ids, ", "), title),
		Subject: pkgSubject(p), Labels: labels, Evidence: evidence})
}

// groupAliases partitions records into groups connected by shared ids or aliases.
func groupAliases(rs []*Record) [][]int {
	parent := make([]int, len(rs))
	for i := range parent {
		parent[i] = i
	}
	find := func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	owner := map[string]int{}
	for i, r := range rs {
		for _, id := range append([]string{r.ID}, r.Aliases...) {
			if j, ok := owner[id]; ok {
				parent[find(i)] = find(j)
			} else {
				owner[id] = i
			}
		}
	}
	groups := map[int][]int{}
	var roots []int
	for i := range rs {
		r := find(i)
		if _, ok := groups[r]; !ok {
			roots = append(roots, r)
		}
		groups[r] = append(groups[r], i)
	}
	out := make([][]int, 0, len(roots))
	for _, r := range roots {
		out = append(out, groups[r])
	}
	return out
}

func fixedVersions(a *Affected) []string {
	var out []string
	for _, r := range a.Ranges {
		if !strings.EqualFold(r.Type, "ECOSYSTEM") {
			continue
		}
		for _, e := range r.Events {
			if e.Fixed != "" {
				out = append(out, e.Fixed)
			}
		}
	}
	return out
}

func summaryOf(r *Record) string {
	s := r.Summary
	if s == "" {
		s, _, _ = strings.Cut(strings.TrimSpace(r.Details), "\n")
	}
	return truncate(strings.Join(strings.Fields(s), " "), 160)
}

func uniqueSorted(ss []string) []string {
	sort.Strings(ss)
	out := ss[:0]
	for i, s := range ss {
		if i == 0 || s != ss[i-1] {
			out = append(out, s)
		}
	}
	return out
}
