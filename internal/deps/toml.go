package deps

import (
	"errors"
	"regexp"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/pipewarden/pipewarden/internal/finding"
)

var tomlNameRE = regexp.MustCompile(`^\s*name\s*=`)

// tableLines returns, for each [[header]] array-of-tables entry in order, the line of its name
// key (or of the header when there is none), so packages can point at their lockfile line.
func tableLines(data []byte, header string) []int {
	var out []int
	want := "[[" + header + "]]"
	in := false
	for i, line := range strings.Split(string(data), "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "[") {
			if t == want {
				out = append(out, i+1)
				in = true
			} else if strings.HasPrefix(t, "[[") {
				in = false
			}
			continue
		}
		if in && tomlNameRE.MatchString(line) {
			out[len(out)-1] = i + 1
			in = false
		}
	}
	return out
}

func lineAt(lines []int, i int) int {
	if i < len(lines) {
		return lines[i]
	}
	return 0
}

// decodeTOML decodes data into v; a syntax error becomes a fatal problem with its line.
func decodeTOML(lf *Lockfile, data []byte, v any) bool {
	if _, err := toml.Decode(string(data), v); err != nil {
		line := 0
		var pe toml.ParseError
		if errors.As(err, &pe) {
			line = pe.Position.Line
			err = errors.New(pe.Message)
		}
		lf.fatal(line, "%s is not valid TOML: %v", lf.Format, err)
		return false
	}
	return true
}

func newPackage(lf *Lockfile, name, ver string, line int) Package {
	return Package{Name: name, Key: Normalize(name), Version: ver, Ecosystem: PyPI,
		Location: finding.Location{Path: lf.Path, Line: line}}
}

type fileHash struct {
	File string `toml:"file"`
	Hash string `toml:"hash"`
}

func hashesOf(fs []fileHash) []string {
	var out []string
	for _, f := range fs {
		if f.Hash != "" {
			out = append(out, f.Hash)
		}
	}
	return out
}

// parsePoetry reads poetry.lock (lock-version 1.1 keeps hashes in [metadata.files], 2.x in each
// package's files).
func parsePoetry(path string, data []byte) *Lockfile {
	lf := &Lockfile{Path: path, Format: "poetry"}
	var doc struct {
		Package []struct {
			Name    string     `toml:"name"`
			Version string     `toml:"version"`
			Files   []fileHash `toml:"files"`
			Source  struct {
				Type      string `toml:"type"`
				URL       string `toml:"url"`
				Reference string `toml:"reference"`
			} `toml:"source"`
		} `toml:"package"`
		Metadata struct {
			Files map[string][]fileHash `toml:"files"`
		} `toml:"metadata"`
	}
	if !decodeTOML(lf, data, &doc) {
		return lf
	}
	lines := tableLines(data, "package")
	for i, p := range doc.Package {
		if p.Name == "" {
			lf.Problems = append(lf.Problems, Problem{Location: finding.Location{Path: path, Line: lineAt(lines, i)}, Message: "package without a name"})
			continue
		}
		pkg := newPackage(lf, p.Name, p.Version, lineAt(lines, i))
		pkg.Hashes = hashesOf(p.Files)
		if len(pkg.Hashes) == 0 {
			pkg.Hashes = hashesOf(doc.Metadata.Files[p.Name])
		}
		if p.Source.Type != "" && p.Source.Type != "legacy" {
			pkg.Source = p.Source.Type + "+" + p.Source.URL
		}
		lf.Packages = append(lf.Packages, pkg)
	}
	return lf
}

// parsePDM reads pdm.lock.
func parsePDM(path string, data []byte) *Lockfile {
	lf := &Lockfile{Path: path, Format: "pdm"}
	var doc struct {
		Package []struct {
			Name     string     `toml:"name"`
			Version  string     `toml:"version"`
			Files    []fileHash `toml:"files"`
			Git      string     `toml:"git"`
			URL      string     `toml:"url"`
			Path     string     `toml:"path"`
			Editable bool       `toml:"editable"`
		} `toml:"package"`
	}
	if !decodeTOML(lf, data, &doc) {
		return lf
	}
	lines := tableLines(data, "package")
	for i, p := range doc.Package {
		if p.Name == "" {
			lf.Problems = append(lf.Problems, Problem{Location: finding.Location{Path: path, Line: lineAt(lines, i)}, Message: "package without a name"})
			continue
		}
		pkg := newPackage(lf, p.Name, p.Version, lineAt(lines, i))
		pkg.Hashes = hashesOf(p.Files)
		pkg.Source = firstNonEmpty(p.Git, p.URL, p.Path)
		lf.Packages = append(lf.Packages, pkg)
	}
	return lf
}

// parseUV reads uv.lock. The project itself (a virtual or editable source) is not a dependency.
func parseUV(path string, data []byte) *Lockfile {
	lf := &Lockfile{Path: path, Format: "uv"}
	type artifact struct {
		URL  string `toml:"url"`
		Hash string `toml:"hash"`
	}
	var doc struct {
		Package []struct {
			Name    string `toml:"name"`
			Version string `toml:"version"`
			Source  struct {
				Registry  string `toml:"registry"`
				Git       string `toml:"git"`
				URL       string `toml:"url"`
				Path      string `toml:"path"`
				Directory string `toml:"directory"`
				Editable  string `toml:"editable"`
				Virtual   string `toml:"virtual"`
			} `toml:"source"`
			Sdist  artifact   `toml:"sdist"`
			Wheels []artifact `toml:"wheels"`
		} `toml:"package"`
	}
	if !decodeTOML(lf, data, &doc) {
		return lf
	}
	lines := tableLines(data, "package")
	for i, p := range doc.Package {
		if p.Source.Virtual != "" || p.Source.Editable != "" {
			continue
		}
		if p.Name == "" {
			lf.Problems = append(lf.Problems, Problem{Location: finding.Location{Path: path, Line: lineAt(lines, i)}, Message: "package without a name"})
			continue
		}
		pkg := newPackage(lf, p.Name, p.Version, lineAt(lines, i))
		if p.Sdist.Hash != "" {
			pkg.Hashes = append(pkg.Hashes, p.Sdist.Hash)
		}
		for _, w := range p.Wheels {
			if w.Hash != "" {
				pkg.Hashes = append(pkg.Hashes, w.Hash)
			}
		}
		pkg.Source = firstNonEmpty(p.Source.Git, p.Source.URL, p.Source.Path, p.Source.Directory)
		lf.Packages = append(lf.Packages, pkg)
	}
	return lf
}

// parsePylock reads a PEP 751 pylock.toml.
func parsePylock(path string, data []byte) *Lockfile {
	lf := &Lockfile{Path: path, Format: "pylock"}
	type hashed struct {
		URL    string            `toml:"url"`
		Path   string            `toml:"path"`
		Hashes map[string]string `toml:"hashes"`
	}
	var doc struct {
		LockVersion string `toml:"lock-version"`
		Packages    []struct {
			Name    string   `toml:"name"`
			Version string   `toml:"version"`
			Marker  string   `toml:"marker"`
			Sdist   *hashed  `toml:"sdist"`
			Wheels  []hashed `toml:"wheels"`
			Archive *hashed  `toml:"archive"`
			VCS     *struct {
				URL      string `toml:"url"`
				Path     string `toml:"path"`
				CommitID string `toml:"commit-id"`
			} `toml:"vcs"`
			Directory *struct {
				Path string `toml:"path"`
			} `toml:"directory"`
		} `toml:"packages"`
	}
	if !decodeTOML(lf, data, &doc) {
		return lf
	}
	if doc.LockVersion == "" {
		return lf.fatal(1, "pylock.toml has no lock-version")
	}
	lines := tableLines(data, "packages")
	for i, p := range doc.Packages {
		if p.Name == "" {
			lf.Problems = append(lf.Problems, Problem{Location: finding.Location{Path: path, Line: lineAt(lines, i)}, Message: "package without a name"})
			continue
		}
		pkg := newPackage(lf, p.Name, p.Version, lineAt(lines, i))
		pkg.Marker = p.Marker
		add := func(h *hashed) {
			if h == nil {
				return
			}
			algs := make([]string, 0, len(h.Hashes))
			for alg := range h.Hashes {
				algs = append(algs, alg)
			}
			sort.Strings(algs)
			for _, alg := range algs {
				pkg.Hashes = append(pkg.Hashes, alg+":"+h.Hashes[alg])
			}
		}
		add(p.Sdist)
		add(p.Archive)
		for i := range p.Wheels {
			add(&p.Wheels[i])
		}
		switch {
		case p.VCS != nil:
			pkg.Source = firstNonEmpty(p.VCS.URL, p.VCS.Path) + "@" + p.VCS.CommitID
		case p.Directory != nil:
			pkg.Source = p.Directory.Path
		case p.Archive != nil:
			pkg.Source = firstNonEmpty(p.Archive.URL, p.Archive.Path)
		}
		lf.Packages = append(lf.Packages, pkg)
	}
	return lf
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
