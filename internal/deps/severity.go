package deps

import (
	"fmt"
	"strings"

	"github.com/pipewarden/pipewarden/internal/deps/cvss"
	"github.com/pipewarden/pipewarden/internal/finding"
)

// recordSeverity rates an advisory for one affected package: the highest CVSS base score
// computed from its vectors (per-package vectors first), else database_specific.severity
// (GitHub's LOW, MODERATE, HIGH, CRITICAL), else high: a known vulnerability without a score is
// not assumed to be harmless. source says which was used.
func recordSeverity(r *Record, a *Affected) (finding.Severity, string) {
	for _, vs := range [][]Severity{a.Severity, r.Severity} {
		best, src := -1.0, ""
		for _, s := range vs {
			score, err := cvss.BaseScore(s.Score)
			if err != nil {
				continue
			}
			if score > best {
				best, src = score, fmt.Sprintf("%s %s = %.1f", s.Type, s.Score, score)
			}
		}
		if best >= 0 {
			return scoreSeverity(best), src
		}
	}
	for _, ds := range []map[string]any{a.DatabaseSpecific, r.DatabaseSpecific} {
		if s, ok := ds["severity"].(string); ok {
			if sev, ok := namedSeverity(s); ok {
				return sev, "database_specific.severity " + s
			}
		}
	}
	return finding.High, "no severity in the advisory (assumed high)"
}

func scoreSeverity(score float64) finding.Severity {
	switch cvss.Rating(score) {
	case "critical":
		return finding.Critical
	case "high":
		return finding.High
	case "medium":
		return finding.Medium
	case "low":
		return finding.Low
	}
	return finding.Info
}

func namedSeverity(s string) (finding.Severity, bool) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "CRITICAL":
		return finding.Critical, true
	case "HIGH":
		return finding.High, true
	case "MODERATE", "MEDIUM":
		return finding.Medium, true
	case "LOW":
		return finding.Low, true
	}
	return finding.Info, false
}
