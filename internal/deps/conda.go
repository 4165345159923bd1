package deps

import (
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/pipewarden/pipewarden/internal/finding"
)

var condaSpecRE = regexp.MustCompile(`^([A-Za-z0-9_][A-Za-z0-9._-]*)\s*(.*)$`)

// parseConda reads a conda environment.yml: conda packages under dependencies, and the pip
// subsection, read as requirements lines (its -r/-c includes are followed like a requirements
// file's).
func parseConda(path string, data []byte, read func(string) ([]byte, error)) *Lockfile {
	lf := &Lockfile{Path: path, Format: "conda"}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return lf.fatal(0, "environment file is not valid YAML: %v", err)
	}
	if len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return lf.fatal(1, "environment file is not a YAML mapping")
	}
	doc := root.Content[0]
	var deps *yaml.Node
	for i := 0; i+1 < len(doc.Content); i += 2 {
		if doc.Content[i].Value == "dependencies" {
			deps = doc.Content[i+1]
		}
	}
	if deps == nil || deps.Kind != yaml.SequenceNode {
		return lf.fatal(1, "environment file has no dependencies list")
	}
	p := &reqParser{read: read, lf: lf, seen: map[string]bool{}, constraints: map[string]Package{}, stack: []string{path}}
	for _, n := range deps.Content {
		switch {
		case n.Kind == yaml.ScalarNode:
			pkg, ok := parseCondaSpec(n.Value)
			if !ok {
				p.problem(path, n.Line, "not a conda package spec: %q", truncate(n.Value, 80))
				continue
			}
			if pkg.Key == "python" {
				continue // the interpreter, not a dependency
			}
			pkg.Location = finding.Location{Path: path, Line: n.Line}
			lf.Packages = append(lf.Packages, pkg)
		case n.Kind == yaml.MappingNode && len(n.Content) == 2 && n.Content[0].Value == "pip" && n.Content[1].Kind == yaml.SequenceNode:
			lf.Requirements = true
			for _, r := range n.Content[1].Content {
				text := strings.TrimSpace(commentRE.ReplaceAllString(r.Value, ""))
				switch {
				case r.Kind != yaml.ScalarNode:
					p.problem(path, r.Line, "pip entry is not a string")
				case text == "":
				case strings.HasPrefix(text, "-"):
					p.option(path, r.Line, text, 0, false)
				default:
					p.requirement(path, r.Line, text, false)
				}
			}
		default:
			p.problem(path, n.Line, "unexpected dependencies entry")
		}
	}
	p.applyConstraints()
	return lf
}

// parseCondaSpec reads a conda MatchSpec as environment files write it: [channel::]name, then
// "=ver", "=ver=build", "==ver", "ver build" or a relational constraint. "name=ver" is taken as
// version ver, which is exact for `conda env export` output.
func parseCondaSpec(s string) (Package, bool) {
	s = strings.TrimSpace(s)
	if i := strings.LastIndex(s, "::"); i >= 0 {
		s = s[i+2:]
	}
	m := condaSpecRE.FindStringSubmatch(s)
	if m == nil {
		return Package{}, false
	}
	pkg := Package{Name: m[1], Key: Normalize(m[1]), Ecosystem: Conda}
	rest := strings.TrimSpace(m[2])
	var ver string
	switch {
	case rest == "":
		return pkg, true
	case strings.HasPrefix(rest, "=="):
		ver = strings.TrimSpace(rest[2:])
	case strings.HasPrefix(rest, "=") && !strings.HasPrefix(rest, "=="):
		ver, _, _ = strings.Cut(rest[1:], "=")
	case !strings.ContainsAny(rest[:1], "<>!~[,"):
		ver = strings.Fields(rest)[0]
	default:
		pkg.Specifier = rest
		return pkg, true
	}
	ver = strings.TrimSpace(ver)
	if ver == "" || strings.ContainsAny(ver, "*|,<>!~ ") {
		pkg.Specifier = rest
		return pkg, true
	}
	pkg.Version = ver
	return pkg, true
}
