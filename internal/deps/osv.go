package deps

import (
	"encoding/json"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Record is one OSV advisory (https://ossf.github.io/osv-schema/), the fields this package uses.
type Record struct {
	ID               string         `json:"id" yaml:"id"`
	Summary          string         `json:"summary" yaml:"summary"`
	Details          string         `json:"details" yaml:"details"`
	Aliases          []string       `json:"aliases" yaml:"aliases"`
	Modified         string         `json:"modified" yaml:"modified"`
	Published        string         `json:"published" yaml:"published"`
	Withdrawn        string         `json:"withdrawn" yaml:"withdrawn"`
	Severity         []Severity     `json:"severity" yaml:"severity"`
	Affected         []Affected     `json:"affected" yaml:"affected"`
	DatabaseSpecific map[string]any `json:"database_specific" yaml:"database_specific"`
}

// Severity is an OSV severity entry: a CVSS vector and its type.
type Severity struct {
	Type  string `json:"type" yaml:"type"`
	Score string `json:"score" yaml:"score"`
}

// Affected names one package and the versions of it an advisory covers.
type Affected struct {
	Package struct {
		Ecosystem string `json:"ecosystem" yaml:"ecosystem"`
		Name      string `json:"name" yaml:"name"`
		Purl      string `json:"purl" yaml:"purl"`
	} `json:"package" yaml:"package"`
	Ranges           []Range        `json:"ranges" yaml:"ranges"`
	Versions         []string       `json:"versions" yaml:"versions"`
	Severity         []Severity     `json:"severity" yaml:"severity"`
	DatabaseSpecific map[string]any `json:"database_specific" yaml:"database_specific"`
}

// Range is an OSV range: ECOSYSTEM ranges are evaluated, GIT and SEMVER ranges are skipped for
// PyPI (they name commits, not releases).
type Range struct {
	Type   string  `json:"type" yaml:"type"`
	Repo   string  `json:"repo" yaml:"repo"`
	Events []Event `json:"events" yaml:"events"`
}

// Event is one boundary of a range; exactly one field is set.
type Event struct {
	Introduced   string `json:"introduced" yaml:"introduced"`
	Fixed        string `json:"fixed" yaml:"fixed"`
	LastAffected string `json:"last_affected" yaml:"last_affected"`
	Limit        string `json:"limit" yaml:"limit"`
}

// Malicious reports whether the record is a malicious-package report (OpenSSF MAL- ids).
func (r *Record) Malicious() bool {
	if strings.HasPrefix(r.ID, "MAL-") {
		return true
	}
	for _, a := range r.Aliases {
		if strings.HasPrefix(a, "MAL-") {
			return true
		}
	}
	return false
}

// decodeRecord reads one OSV record in JSON or YAML; name picks the decoder by extension.
func decodeRecord(name string, data []byte) (*Record, error) {
	var r Record
	lower := strings.ToLower(name)
	if strings.HasSuffix(lower, ".yaml") || strings.HasSuffix(lower, ".yml") {
		if err := yaml.Unmarshal(data, &r); err != nil {
			return nil, fmt.Errorf("decode osv record %s: %w", name, err)
		}
	} else if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("decode osv record %s: %w", name, err)
	}
	if r.ID == "" {
		return nil, fmt.Errorf("osv record %s: no id", name)
	}
	return &r, nil
}
