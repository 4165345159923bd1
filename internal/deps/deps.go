// Package deps checks the third-party dependencies of a Python project: it reads requirements
// files and lockfiles, matches the pinned versions against an offline OSV database, and reports
// malicious packages, likely typosquats of popular packages, unpinned or hash-less requirements
// and what changed since an approved lockfile.
package deps

import (
	"regexp"
	"strings"

	"github.com/pipewarden/pipewarden/internal/finding"
)

// Ecosystems a package can come from. Conda packages are matched against PyPI advisories by
// name, with lower confidence (see docs/deps.md).
const (
	PyPI  = "PyPI"
	Conda = "conda"
)

// Package is one dependency read from a lockfile or requirements file.
type Package struct {
	Name      string   // as written in the file
	Key       string   // PEP 503 normalized name, the index key
	Version   string   // exact version when pinned ("==1.2.3", lockfiles); "" otherwise
	Specifier string   // the constraint as written when the version is not exact
	Ecosystem string   // PyPI or conda
	Extras    []string // requirement extras, sorted
	Marker    string   // PEP 508 environment marker, as written
	Hashes    []string // "sha256:..." as written
	Source    string   // URL, path or VCS reference when the package does not come from an index
	// Location is where the package is named: the lockfile and its 1-based line.
	Location finding.Location
}

// Pinned reports whether the package names one exact version.
func (p Package) Pinned() bool { return p.Version != "" }

// Problem is a part of a file that could not be analysed; it becomes a finding, since a file
// that cannot be fully analysed is never reported clean.
type Problem struct {
	Location finding.Location
	Message  string
	Fatal    bool // nothing of the file could be read
}

// Lockfile is what a parser read from one file (and, for requirements files, its includes).
type Lockfile struct {
	Path     string
	Format   string // requirements, poetry, pipenv, pdm, uv, pylock, conda
	Packages []Package
	Problems []Problem
	// Requirements are set for requirements-style inputs (requirements files and the pip
	// section of a conda environment): the pinning policy applies to them.
	Requirements bool
	// RequireHashes is set when the file turns on pip's hash-checking mode.
	RequireHashes bool
}

var separators = regexp.MustCompile(`[-_.]+`)

// Normalize returns the PEP 503 normalized form of a distribution name: lower case, with runs
// of '-', '_' and '.' replaced by a single '-'.
func Normalize(name string) string {
	return separators.ReplaceAllString(strings.ToLower(strings.TrimSpace(name)), "-")
}
