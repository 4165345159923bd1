package deps

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/pipewarden/pipewarden/internal/finding"
)

// parsePipfileLock reads Pipfile.lock: JSON with "default" and "develop" sections mapping each
// package to {"version": "==x", "hashes": [...]}. The token stream gives each key's line.
func parsePipfileLock(path string, data []byte) *Lockfile {
	lf := &Lockfile{Path: path, Format: "pipenv"}
	dec := json.NewDecoder(bytes.NewReader(data))
	lineOf := func(off int64) int { return 1 + bytes.Count(data[:off], []byte("\n")) }
	fail := func(err error) *Lockfile {
		return lf.fatal(lineOf(dec.InputOffset()), "Pipfile.lock is not valid JSON: %v", err)
	}
	if t, err := dec.Token(); err != nil {
		return fail(err)
	} else if d, ok := t.(json.Delim); !ok || d != '{' {
		return lf.fatal(1, "Pipfile.lock is not a JSON object")
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return fail(err)
		}
		section, _ := t.(string)
		if strings.HasPrefix(section, "_") {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return fail(err)
			}
			continue
		}
		if t, err := dec.Token(); err != nil {
			return fail(err)
		} else if d, ok := t.(json.Delim); !ok || d != '{' {
			return lf.fatal(lineOf(dec.InputOffset()), "Pipfile.lock section %q is not an object", section)
		}
		for dec.More() {
			t, err := dec.Token()
			if err != nil {
				return fail(err)
			}
			name, _ := t.(string)
			line := lineOf(dec.InputOffset())
			var e struct {
				Version  string   `json:"version"`
				Hashes   []string `json:"hashes"`
				Markers  string   `json:"markers"`
				Extras   []string `json:"extras"`
				Git      string   `json:"git"`
				Ref      string   `json:"ref"`
				Path     string   `json:"path"`
				File     string   `json:"file"`
				Editable bool     `json:"editable"`
			}
			if err := dec.Decode(&e); err != nil {
				return fail(err)
			}
			pkg := Package{Name: name, Key: Normalize(name), Ecosystem: PyPI, Hashes: e.Hashes, Marker: e.Markers,
				Extras: e.Extras, Location: finding.Location{Path: path, Line: line}}
			if v, ok := strings.CutPrefix(e.Version, "=="); ok {
				pkg.Version = v
			} else if e.Version != "" && e.Version != "*" {
				pkg.Specifier = e.Version
			}
			if e.Git != "" {
				pkg.Source = e.Git + "@" + e.Ref
			} else {
				pkg.Source = firstNonEmpty(e.Path, e.File)
			}
			lf.Packages = append(lf.Packages, pkg)
		}
		if _, err := dec.Token(); err != nil {
			return fail(err)
		}
	}
	return lf
}
