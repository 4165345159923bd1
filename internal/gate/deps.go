package gate

import (
	"fmt"

	"github.com/pipewarden/pipewarden/internal/deps"
	"github.com/pipewarden/pipewarden/internal/finding"
)

// osvState is the OSV database, loaded once for every lockfile check.
type osvState struct {
	db  *deps.DB
	err error
}

func (r *runner) osvDB() *osvState {
	if r.osv == nil {
		r.osv = &osvState{}
		if len(r.p.OSVDB) > 0 {
			r.osv.db, r.osv.err = deps.LoadOSV(r.p.OSVDB...)
		}
	}
	return r.osv
}

// deps checks one lockfile (internal/deps): advisories from the policy's OSV databases,
// typosquats, pinning and, with a baseline, what changed since it was approved.
func (r *runner) deps(l Lockfile) CheckResult {
	c := CheckResult{Kind: KindDeps, Target: l.Path, FailOn: r.failOn(l.FailOn), Extra: map[string]any{}}
	osv := r.osvDB()
	if osv.err != nil {
		c.Err = fmt.Errorf("osv_db: %w", osv.err)
		return c
	}
	opts := deps.Options{DB: osv.db, Now: r.stamp()}
	if l.Typosquats {
		opts.Typosquats = deps.DefaultTyposquats()
	}
	lf, err := deps.ParseLockfile(l.Path)
	if err != nil {
		c.Err = err // names the lockfile
		return c
	}
	if osv.db == nil {
		c.Findings = append(c.Findings, finding.Finding{Rule: RuleNoOSVDatabase, Severity: finding.Info, Confidence: 1, Time: r.now,
			Title:   "the policy names no osv_db: packages were not checked against vulnerability advisories",
			Subject: finding.Subject{Kind: "file", Name: l.Path}})
	} else if st := osv.db.Stats(); st.Bad > 0 {
		c.Findings = append(c.Findings, finding.Finding{Rule: RuleOSVDatabase, Severity: finding.Medium, Confidence: 1, Time: r.now,
			Title:    fmt.Sprintf("%d of %d OSV database files could not be read; matching may be incomplete", st.Bad, st.Files),
			Subject:  finding.Subject{Kind: "file", Name: r.p.OSVDB[0]},
			Evidence: map[string]any{"errors": st.Errors}})
	}
	c.Findings = append(c.Findings, deps.Check(lf, opts)...)
	c.Extra["packages"] = len(lf.Packages)
	if l.Baseline != "" {
		base, err := deps.ParseLockfile(l.Baseline)
		if err != nil {
			c.Err = fmt.Errorf("baseline: %w", err)
			return c
		}
		if len(base.Problems) > 0 {
			pr := base.Problems[0]
			c.Err = fmt.Errorf("baseline %s: line %d: %s", l.Baseline, pr.Location.Line, pr.Message)
			return c
		}
		ch := deps.Diff(base.Packages, lf.Packages)
		c.Extra["changes"] = ch
		c.Findings = append(c.Findings, ch.Findings(l.Path, l.Baseline, r.now)...)
	}
	return c
}
