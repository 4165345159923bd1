package report

import (
	"encoding/json"
	"io"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pipewarden/pipewarden/internal/finding"
)

// SARIF 2.1.0, the subset GitHub code scanning reads.
type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool    sarifTool     `json:"tool"`
	Results []sarifResult `json:"results"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	Version        string      `json:"version,omitempty"`
	InformationURI string      `json:"informationUri,omitempty"`
	Rules          []sarifRule `json:"rules"`
}

type sarifRule struct {
	ID               string         `json:"id"`
	Name             string         `json:"name,omitempty"`
	ShortDescription sarifMessage   `json:"shortDescription"`
	FullDescription  *sarifMessage  `json:"fullDescription,omitempty"`
	HelpURI          string         `json:"helpUri,omitempty"`
	Properties       map[string]any `json:"properties,omitempty"`
}

type sarifMessage struct {
	Text string `json:"text"`
}

type sarifResult struct {
	RuleID     string          `json:"ruleId"`
	RuleIndex  int             `json:"ruleIndex"`
	Level      string          `json:"level"`
	Message    sarifMessage    `json:"message"`
	Locations  []sarifLocation `json:"locations,omitempty"`
	Properties map[string]any  `json:"properties,omitempty"`
}

type sarifLocation struct {
	PhysicalLocation sarifPhysical `json:"physicalLocation"`
}

type sarifPhysical struct {
	ArtifactLocation sarifArtifact `json:"artifactLocation"`
	Region           *sarifRegion  `json:"region,omitempty"`
}

type sarifArtifact struct {
	URI string `json:"uri"`
}

type sarifRegion struct {
	StartLine int `json:"startLine"`
}

// sarifLevel maps severities onto SARIF levels.
func sarifLevel(s finding.Severity) string {
	switch {
	case s >= finding.High:
		return "error"
	case s == finding.Medium:
		return "warning"
	default:
		return "note"
	}
}

// securitySeverity is the numeric score GitHub uses to rank security results.
func securitySeverity(s finding.Severity) string {
	return [...]string{"0.0", "3.0", "5.5", "8.0", "9.5"}[s]
}

func writeSARIF(w io.Writer, r *Report) error {
	fs := r.Sorted()
	ruleIdx := map[string]int{}
	var rules []sarifRule
	ids := make([]string, 0)
	maxSev := map[string]finding.Severity{}
	title := map[string]string{}
	tags := map[string][]string{}
	for _, f := range fs {
		if _, ok := maxSev[f.Rule]; !ok {
			ids = append(ids, f.Rule)
			title[f.Rule] = f.Title
			tags[f.Rule] = append(append([]string{"security"}, f.ATLAS...), f.OWASP...)
		}
		if f.Severity >= maxSev[f.Rule] {
			maxSev[f.Rule] = f.Severity
		}
	}
	sort.Strings(ids)
	for i, id := range ids {
		ruleIdx[id] = i
		sr := sarifRule{ID: id, Name: id, ShortDescription: sarifMessage{Text: title[id]},
			Properties: map[string]any{"tags": tags[id], "security-severity": securitySeverity(maxSev[id])}}
		if info, ok := r.Rules[id]; ok {
			if info.Name != "" {
				sr.Name = info.Name
			}
			if info.Description != "" {
				sr.FullDescription = &sarifMessage{Text: info.Description}
			}
			sr.HelpURI = info.HelpURI
		}
		rules = append(rules, sr)
	}
	results := make([]sarifResult, 0, len(fs))
	for _, f := range fs {
		res := sarifResult{RuleID: f.Rule, RuleIndex: ruleIdx[f.Rule], Level: sarifLevel(f.Severity),
			Message: sarifMessage{Text: f.Title}, Properties: map[string]any{"severity": f.Severity.String()}}
		if f.Subject.Name != "" {
			res.Properties["subject"] = f.Subject
		}
		if len(f.Evidence) > 0 {
			res.Properties["evidence"] = f.Evidence
		}
		path := ""
		line := 0
		if f.Location != nil {
			path, line = f.Location.Path, f.Location.Line
		} else if f.Subject.Kind == "file" {
			path = f.Subject.Name
		}
		if path != "" {
			loc := sarifLocation{PhysicalLocation: sarifPhysical{ArtifactLocation: sarifArtifact{URI: sarifURI(path)}}}
			if line > 0 {
				loc.PhysicalLocation.Region = &sarifRegion{StartLine: line}
			}
			res.Locations = []sarifLocation{loc}
		}
		results = append(results, res)
	}
	if rules == nil {
		rules = []sarifRule{}
	}
	log := sarifLog{
		Schema:  "https://json.schemastore.org/sarif-2.1.0.json",
		Version: "2.1.0",
		Runs: []sarifRun{{
			Tool:    sarifTool{Driver: sarifDriver{Name: nonEmpty(r.Tool, "pipewarden"), Version: r.Version, InformationURI: "https://github.com/pipewarden/pipewarden", Rules: rules}},
			Results: results,
		}},
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(log)
}

// sarifURI turns a path into a relative URI with forward slashes, as code scanning expects.
func sarifURI(p string) string {
	p = filepath.ToSlash(filepath.Clean(p))
	return strings.TrimPrefix(p, "./")
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
