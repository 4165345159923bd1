package gate

import (
	"context"
	"time"

	"github.com/pipewarden/pipewarden/internal/finding"
)

// Check kinds, as the summary table names them.
const (
	KindScan   = "scan"
	KindVerify = "verify"
	KindData   = "data"
	KindDeps   = "deps"
	KindPolicy = "policy"
)

// Results of one check and of the whole gate.
const (
	Pass  = "pass"
	Fail  = "fail"
	Error = "error" // the check could not run: an unreadable input or a missing capability
)

// Rule ids of the findings the gate itself raises.
const (
	RuleAllowExpired  = "gate.allow-expired"
	RuleDataUnread    = "gate.data-unreadable"
	RuleDeployPaused  = "gate.deployments-paused"
	RuleNoOSVDatabase = "deps.no-osv-db"
	RuleOSVDatabase   = "deps.osv-db"
)

// CheckResult is the outcome of one check of the policy.
type CheckResult struct {
	Kind     string
	Target   string
	FailOn   finding.Severity
	Result   string            // Pass, Fail or Error
	Findings []finding.Finding // those that count (allowed ones removed)
	Allowed  []Allowed         // findings an allow entry accepted
	Err      error             // why the check could not run (Result Error)
	// Extra holds what the check wants in the JSON summary (files scanned, signer, ...).
	Extra map[string]any
}

// Allowed is a finding an allow entry accepted.
type Allowed struct {
	Finding finding.Finding
	Reason  string
	Line    int // the allow entry's line in the policy
}

// Result is the outcome of the whole policy.
type Result struct {
	Checks  []CheckResult
	Verdict string // Error when any check could not run, else Fail when any failed, else Pass
}

// Options tune Run.
type Options struct {
	// Now is the clock for findings and allowlist expiry; nil is time.Now.
	Now func() time.Time
	// FailOn, when set, replaces the policy's default fail-on severity for checks that do not
	// name their own.
	FailOn *finding.Severity
}

// Run runs every check of p, in the policy's order: models (scan, then verify), datasets,
// lockfiles. A check that cannot run is an Error result, never a pass; the others still run so
// that one report shows everything.
func Run(ctx context.Context, p *Policy, opts Options) *Result {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	r := &runner{p: p, opts: opts, now: opts.Now()}
	var checks []CheckResult
	for _, m := range p.Models {
		if m.Scan {
			checks = append(checks, r.finish(r.scan(ctx, m)))
		}
		if m.Verify != nil {
			checks = append(checks, r.finish(r.verify(ctx, m)))
		}
	}
	for _, d := range p.Datasets {
		checks = append(checks, r.finish(r.data(d)))
	}
	for _, l := range p.Lockfiles {
		checks = append(checks, r.finish(r.deps(l)))
	}
	if fs := r.expiredAllows(); len(fs) > 0 {
		checks = append(checks, r.finish(CheckResult{Kind: KindPolicy, Target: fs[0].Subject.Name, FailOn: r.failOn(nil), Findings: fs}))
	}
	return &Result{Checks: checks, Verdict: verdict(checks)}
}

func verdict(checks []CheckResult) string {
	v := Pass
	for _, c := range checks {
		switch c.Result {
		case Error:
			return Error
		case Fail:
			v = Fail
		}
	}
	return v
}

type runner struct {
	p    *Policy
	opts Options
	now  time.Time
	osv  *osvState
}

// failOn is the threshold of a check: its own when the policy names one, else the default, which
// the command line may override.
func (r *runner) failOn(own *finding.Severity) finding.Severity {
	switch {
	case own != nil:
		return *own
	case r.opts.FailOn != nil:
		return *r.opts.FailOn
	}
	return r.p.FailOn
}

// finish applies the allowlist, stamps each finding with its check and decides the result.
func (r *runner) finish(c CheckResult) CheckResult {
	if c.Err != nil {
		c.Result = Error
		c.Findings = nil
		return c
	}
	kept := c.Findings[:0:0]
	for _, f := range c.Findings {
		f.Labels = withLabel(f.Labels, "check", c.Kind)
		if a, ok := r.allowed(f, c.Target); ok {
			c.Allowed = append(c.Allowed, Allowed{Finding: f, Reason: a.Reason, Line: a.Line})
			continue
		}
		kept = append(kept, f)
	}
	c.Findings = kept
	c.Result = Pass
	for _, f := range kept {
		if f.Severity >= c.FailOn {
			c.Result = Fail
		}
	}
	return c
}

func withLabel(labels map[string]string, k, v string) map[string]string {
	out := make(map[string]string, len(labels)+1)
	for lk, lv := range labels {
		out[lk] = lv
	}
	out[k] = v
	return out
}

func (r *runner) stamp() func() time.Time { return func() time.Time { return r.now } }
