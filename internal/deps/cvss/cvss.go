// Package cvss computes Common Vulnerability Scoring System base scores from vector strings:
// CVSS v3.0 and v3.1 with the specification's formula, CVSS v4.0 with its MacroVector lookup.
package cvss

import (
	"fmt"
	"slices"
	"strings"
)

// Rating is the qualitative severity of a score (CVSS v3.1 and v4.0 specifications, section 5 /
// table 14): none, low, medium, high or critical.
func Rating(score float64) string {
	switch {
	case score == 0:
		return "none"
	case score < 4:
		return "low"
	case score < 7:
		return "medium"
	case score < 9:
		return "high"
	}
	return "critical"
}

// BaseScore scores a CVSS v3.x or v4.0 vector, chosen by its prefix: the v3 base score (temporal
// and environmental metrics ignored), or the v4.0 score of the metrics the vector carries (see V4).
func BaseScore(vector string) (float64, error) {
	v := strings.TrimSpace(vector)
	switch {
	case strings.HasPrefix(v, "CVSS:3.0/"), strings.HasPrefix(v, "CVSS:3.1/"):
		return V3(v)
	case strings.HasPrefix(v, "CVSS:4.0/"):
		return V4(v)
	}
	return 0, fmt.Errorf("cvss vector %q: unsupported version (want CVSS:3.0, 3.1 or 4.0)", vector)
}

// parseMetrics splits "CVSS:x/K:V/K:V" into a map, rejecting unknown keys, bad values and
// repeated keys. allowed maps each metric to its permitted values.
func parseMetrics(vector string, allowed map[string]string) (map[string]string, error) {
	if len(vector) > 512 {
		return nil, fmt.Errorf("cvss vector too long (%d bytes)", len(vector))
	}
	parts := strings.Split(vector, "/")
	m := make(map[string]string, len(parts))
	for _, p := range parts[1:] {
		k, val, ok := strings.Cut(p, ":")
		if !ok {
			return nil, fmt.Errorf("cvss vector %q: malformed metric %q", vector, p)
		}
		vals, known := allowed[k]
		if !known {
			return nil, fmt.Errorf("cvss vector %q: unknown metric %q", vector, k)
		}
		if !validValue(vals, val) {
			return nil, fmt.Errorf("cvss vector %q: metric %s has invalid value %q", vector, k, val)
		}
		if _, dup := m[k]; dup {
			return nil, fmt.Errorf("cvss vector %q: metric %s repeated", vector, k)
		}
		m[k] = val
	}
	return m, nil
}

// validValue reports whether val is one of vals: single letters written together ("HLN"), or
// words separated by spaces when a metric has multi-letter values.
func validValue(vals, val string) bool {
	if strings.Contains(vals, " ") {
		return val != "" && slices.Contains(strings.Fields(vals), val)
	}
	return len(val) == 1 && strings.Contains(vals, val)
}

func requireAll(vector string, m map[string]string, keys ...string) error {
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			return fmt.Errorf("cvss vector %q: base metric %s missing", vector, k)
		}
	}
	return nil
}
