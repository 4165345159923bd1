// Package report writes findings as text, JSON, SARIF 2.1.0 or JUnit XML and applies the exit-code
// policy shared by every command that judges something.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/pipewarden/pipewarden/internal/finding"
)

// Format is an output format name.
type Format string

// Formats every judging command accepts; JUnit is for `check`.
const (
	Text  Format = "text"
	JSON  Format = "json"
	SARIF Format = "sarif"
	JUnit Format = "junit"
)

// ParseFormat validates a --format value.
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(s)); f {
	case Text, JSON, SARIF, JUnit:
		return f, nil
	}
	return "", fmt.Errorf("unknown format %q (want text, json, sarif or junit)", s)
}

// Exit codes of the CLI contract in DESIGN.md.
const (
	ExitClean    = 0
	ExitFindings = 1
	ExitUsage    = 2
)

// ExitCode is 1 when any finding is at or above failOn, else 0.
func ExitCode(fs []finding.Finding, failOn finding.Severity) int {
	for _, f := range fs {
		if f.Severity >= failOn {
			return ExitFindings
		}
	}
	return ExitClean
}

// Report is what a command hands to a writer.
type Report struct {
	Tool     string            // "pipewarden"
	Version  string            // build version
	Command  string            // "scan", "deps check", ...
	Findings []finding.Finding //
	// Inputs are the files or directories that were examined, listed in the summary.
	Inputs []string
	// Extra summary fields a command wants to add (e.g. files scanned, rows read).
	Extra map[string]any
	// Rules optionally describes rule ids for SARIF (help text, full description).
	Rules map[string]RuleInfo
}

// RuleInfo is SARIF rule metadata.
type RuleInfo struct {
	Name        string
	Description string
	HelpURI     string
}

// Summary is the "summary" object of the JSON output.
type Summary struct {
	Command    string         `json:"command,omitempty"`
	Inputs     []string       `json:"inputs,omitempty"`
	Total      int            `json:"total"`
	BySeverity map[string]int `json:"by_severity"`
	Max        string         `json:"max_severity,omitempty"`
	Extra      map[string]any `json:"extra,omitempty"`
}

// Summarize computes the summary of r.
func (r *Report) Summarize() Summary {
	s := Summary{Command: r.Command, Inputs: r.Inputs, Total: len(r.Findings),
		BySeverity: finding.CountBySeverity(r.Findings), Extra: r.Extra}
	if m, ok := finding.MaxSeverity(r.Findings); ok {
		s.Max = m.String()
	}
	return s
}

// Sorted returns the findings ordered by severity (highest first), then location, rule, subject.
func (r *Report) Sorted() []finding.Finding {
	fs := append([]finding.Finding(nil), r.Findings...)
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if a.Severity != b.Severity {
			return a.Severity > b.Severity
		}
		if pa, pb := locPath(a), locPath(b); pa != pb {
			return pa < pb
		}
		if a.Rule != b.Rule {
			return a.Rule < b.Rule
		}
		return a.Subject.Name < b.Subject.Name
	})
	return fs
}

func locPath(f finding.Finding) string {
	if f.Location != nil {
		return f.Location.Path
	}
	return f.Subject.Name
}

// Write renders r in format f.
func Write(w io.Writer, f Format, r *Report) error {
	switch f {
	case Text:
		return writeText(w, r)
	case JSON:
		return writeJSON(w, r)
	case SARIF:
		return writeSARIF(w, r)
	case JUnit:
		return writeJUnit(w, r)
	}
	return fmt.Errorf("unknown format %q", f)
}

func writeJSON(w io.Writer, r *Report) error {
	fs := r.Sorted()
	if fs == nil {
		fs = []finding.Finding{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Findings []finding.Finding `json:"findings"`
		Summary  Summary           `json:"summary"`
	}{fs, r.Summarize()})
}
