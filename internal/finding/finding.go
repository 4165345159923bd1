// Package finding defines the Finding type, what a rule or detector concludes about one subject
// at one time, and the severity scale shared by every detector, report and alert.
package finding

import (
	"fmt"
	"strings"
	"time"
)

// Severity orders how bad a finding is. The zero value is Info.
type Severity int

// Severities, lowest first, so they compare with < and >.
const (
	Info Severity = iota
	Low
	Medium
	High
	Critical
)

var severityNames = [...]string{"info", "low", "medium", "high", "critical"}

// String returns the lower-case name used in every output format.
func (s Severity) String() string {
	if s < Info || s > Critical {
		return fmt.Sprintf("severity(%d)", int(s))
	}
	return severityNames[s]
}

// ParseSeverity reads one of critical, high, medium, low, info (case-insensitive).
func ParseSeverity(s string) (Severity, error) {
	for i, n := range severityNames {
		if strings.EqualFold(strings.TrimSpace(s), n) {
			return Severity(i), nil
		}
	}
	return Info, fmt.Errorf("unknown severity %q (want critical, high, medium, low or info)", s)
}

// MarshalText implements encoding.TextMarshaler.
func (s Severity) MarshalText() ([]byte, error) {
	if s < Info || s > Critical {
		return nil, fmt.Errorf("invalid severity %d", int(s))
	}
	return []byte(s.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Subject names the asset a finding is about.
type Subject struct {
	Kind string `json:"kind"` // dataset, model, endpoint, client, principal, file, package, ...
	Name string `json:"name"`
}

// Location points into a file, for reports that annotate source (SARIF).
type Location struct {
	Path string `json:"path"`
	Line int    `json:"line,omitempty"`
}

// Finding is one conclusion of a rule or detector.
type Finding struct {
	ID         string            `json:"id,omitempty"`
	Rule       string            `json:"rule"`
	Severity   Severity          `json:"severity"`
	Title      string            `json:"title"`
	Subject    Subject           `json:"subject"`
	Labels     map[string]string `json:"labels,omitempty"`
	Evidence   map[string]any    `json:"evidence,omitempty"`
	ATLAS      []string          `json:"atlas,omitempty"`
	OWASP      []string          `json:"owasp,omitempty"`
	EventIDs   []string          `json:"event_ids,omitempty"`
	Confidence float64           `json:"confidence"`
	Time       time.Time         `json:"time"`
	Location   *Location         `json:"location,omitempty"`
}

// Validate reports the first missing or malformed field.
func (f *Finding) Validate() error {
	switch {
	case f.Rule == "":
		return fmt.Errorf("finding: rule is required")
	case f.Severity < Info || f.Severity > Critical:
		return fmt.Errorf("finding %s: invalid severity %d", f.Rule, int(f.Severity))
	case f.Title == "":
		return fmt.Errorf("finding %s: title is required", f.Rule)
	case f.Confidence < 0 || f.Confidence > 1:
		return fmt.Errorf("finding %s: confidence %v outside 0..1", f.Rule, f.Confidence)
	}
	return nil
}

// MaxSeverity returns the highest severity among fs and whether there was any finding.
func MaxSeverity(fs []Finding) (Severity, bool) {
	if len(fs) == 0 {
		return Info, false
	}
	m := Info
	for _, f := range fs {
		if f.Severity > m {
			m = f.Severity
		}
	}
	return m, true
}

// CountBySeverity returns how many findings there are of each severity, keyed by name.
func CountBySeverity(fs []Finding) map[string]int {
	out := map[string]int{}
	for _, n := range severityNames {
		out[n] = 0
	}
	for _, f := range fs {
		out[f.Severity.String()]++
	}
	return out
}
