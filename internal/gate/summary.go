package gate

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/pipewarden/pipewarden/internal/finding"
	"github.com/pipewarden/pipewarden/internal/report"
)

// Paused turns a paused-deployments answer into a failing check, so that the table, the reports
// and the verdict all show it.
func (r *Result) Paused(server, endpoint string, st DeploymentStatus) {
	reason := st.Reason
	if reason == "" {
		reason = "no reason given"
	}
	f := finding.Finding{Rule: RuleDeployPaused, Severity: finding.Critical, Confidence: 1,
		Title:    "deployments are paused by the pipewarden server: " + reason,
		Subject:  finding.Subject{Kind: "endpoint", Name: endpoint},
		Labels:   map[string]string{"check": "deployments"},
		Evidence: map[string]any{"server": server, "status": st.Raw}}
	r.Checks = append(r.Checks, CheckResult{Kind: "deployments", Target: server, FailOn: finding.Info, Result: Fail,
		Findings: []finding.Finding{f}, Extra: map[string]any{"paused": true, "reason": reason}})
	if r.Verdict == Pass {
		r.Verdict = Fail
	}
}

// Findings are the findings that count, of every check.
func (r *Result) Findings() []finding.Finding {
	var fs []finding.Finding
	for _, c := range r.Checks {
		fs = append(fs, c.Findings...)
	}
	return fs
}

// Report is the gate's report for the report writers: every counting finding, the targets of
// checks without findings as inputs (they show as passing JUnit cases), and per-check results,
// allowed findings and errors in the JSON summary.
func (r *Result) Report(policy string, rules map[string]report.RuleInfo) *report.Report {
	rep := &report.Report{Command: "check", Findings: r.Findings(), Rules: rules}
	var checks []map[string]any
	var allowed []map[string]any
	for _, c := range r.Checks {
		if len(c.Findings) == 0 && c.Result != Error {
			rep.Inputs = append(rep.Inputs, c.Target)
		}
		m := map[string]any{"kind": c.Kind, "target": c.Target, "result": c.Result, "fail_on": c.FailOn.String(),
			"by_severity": finding.CountBySeverity(c.Findings), "allowed": len(c.Allowed)}
		if c.Err != nil {
			m["error"] = c.Err.Error()
		}
		for k, v := range c.Extra {
			m[k] = v
		}
		checks = append(checks, m)
		for _, a := range c.Allowed {
			allowed = append(allowed, map[string]any{"rule": a.Finding.Rule, "severity": a.Finding.Severity.String(),
				"title": a.Finding.Title, "subject": a.Finding.Subject, "check": c.Kind, "target": c.Target,
				"reason": a.Reason, "policy_line": a.Line})
		}
	}
	rep.Extra = map[string]any{"policy": policy, "verdict": r.Verdict, "checks": checks}
	if len(allowed) > 0 {
		rep.Extra["allowed"] = allowed
	}
	return rep
}

// WriteTable prints one line per check (check, target, result, fail-on, counting findings by
// severity, allowed findings), the error of each check that could not run, and the verdict.
func (r *Result) WriteTable(w io.Writer) error {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tTARGET\tRESULT\tFAIL-ON\tCRITICAL\tHIGH\tMEDIUM\tLOW\tINFO\tALLOWED")
	for _, c := range r.Checks {
		n := finding.CountBySeverity(c.Findings)
		counts := fmt.Sprintf("%d\t%d\t%d\t%d\t%d", n["critical"], n["high"], n["medium"], n["low"], n["info"])
		if c.Result == Error {
			counts = "-\t-\t-\t-\t-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", c.Kind, c.Target, strings.ToUpper(c.Result), c.FailOn, counts, len(c.Allowed))
	}
	tw.Flush()
	failed, errored := 0, 0
	for _, c := range r.Checks {
		switch c.Result {
		case Fail:
			failed++
		case Error:
			errored++
			fmt.Fprintf(&b, "error: %s %s: %v\n", c.Kind, c.Target, c.Err)
		}
	}
	fmt.Fprintf(&b, "verdict: %s (%d check(s): %d failed, %d could not run)\n", strings.ToUpper(r.Verdict), len(r.Checks), failed, errored)
	_, err := io.WriteString(w, b.String())
	return err
}
