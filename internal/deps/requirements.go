package deps

import (
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/pipewarden/pipewarden/internal/finding"
)

// Limits on requirements files and their -r/-c includes.
const (
	maxIncludeDepth = 8
	maxIncludeFiles = 64
)

var (
	commentRE = regexp.MustCompile(`(^|\s+)#.*$`)
	nameRE    = regexp.MustCompile(`^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(\[[^\]]*\])?\s*`)
	eggRE     = regexp.MustCompile(`[#&]egg=([A-Za-z0-9][A-Za-z0-9._-]*)`)
	wheelRE   = regexp.MustCompile(`([A-Za-z0-9][A-Za-z0-9._]*)-([0-9][^-]*)-[^/]*\.whl$`)
)

// reqParser reads a requirements file and the files it includes.
type reqParser struct {
	read        func(path string) ([]byte, error) // nil: includes are reported, not followed
	lf          *Lockfile
	stack       []string
	seen        map[string]bool
	files       int
	constraints map[string]Package
}

func parseRequirements(path string, data []byte, read func(string) ([]byte, error)) *Lockfile {
	p := &reqParser{read: read, lf: &Lockfile{Path: path, Format: "requirements", Requirements: true},
		seen: map[string]bool{}, constraints: map[string]Package{}}
	p.file(path, data, 0, false)
	p.applyConstraints()
	return p.lf
}

func (p *reqParser) problem(path string, line int, format string, a ...any) {
	p.lf.Problems = append(p.lf.Problems, Problem{Location: finding.Location{Path: path, Line: line}, Message: fmt.Sprintf(format, a...)})
}

// logicalLine is one requirement or option after joining continuations.
type logicalLine struct {
	n    int
	text string
}

// logicalLines joins lines ending in a backslash, as pip does, keeping the first line's number;
// a comment line ends a continuation.
func logicalLines(data string) []logicalLine {
	var out []logicalLine
	var cur strings.Builder
	start := 0
	for i, line := range strings.Split(strings.ReplaceAll(data, "\r\n", "\n"), "\n") {
		n := i + 1
		isComment := strings.HasPrefix(strings.TrimLeft(line, " \t"), "#")
		if strings.HasSuffix(line, `\`) && !isComment {
			if cur.Len() == 0 {
				start = n
			}
			cur.WriteString(strings.TrimSuffix(line, `\`))
			continue
		}
		if cur.Len() > 0 {
			if !isComment {
				cur.WriteString(line)
			}
			out = append(out, logicalLine{n: start, text: cur.String()})
			cur.Reset()
			continue
		}
		out = append(out, logicalLine{n: n, text: line})
	}
	if cur.Len() > 0 {
		out = append(out, logicalLine{n: start, text: cur.String()})
	}
	return out
}

func (p *reqParser) file(path string, data []byte, depth int, constraint bool) {
	p.files++
	p.stack = append(p.stack, path)
	defer func() { p.stack = p.stack[:len(p.stack)-1] }()
	for _, ll := range logicalLines(string(data)) {
		text := strings.TrimSpace(commentRE.ReplaceAllString(ll.text, ""))
		if text == "" {
			continue
		}
		if strings.HasPrefix(text, "-") {
			p.option(path, ll.n, text, depth, constraint)
			continue
		}
		p.requirement(path, ll.n, text, constraint)
	}
}

// splitOption separates "-r x", "-rx", "--requirement=x" and "--requirement x".
func splitOption(text string) (name, value string) {
	fields := strings.Fields(text)
	name = fields[0]
	if k, v, ok := strings.Cut(name, "="); ok && strings.HasPrefix(name, "--") {
		return k, strings.TrimSpace(v + " " + strings.Join(fields[1:], " "))
	}
	if len(name) > 2 && !strings.HasPrefix(name, "--") {
		return name[:2], strings.TrimSpace(name[2:] + " " + strings.Join(fields[1:], " "))
	}
	return name, strings.Join(fields[1:], " ")
}

func (p *reqParser) option(path string, line int, text string, depth int, constraint bool) {
	name, value := splitOption(text)
	switch name {
	case "-r", "--requirement":
		p.include(path, line, value, depth, constraint)
	case "-c", "--constraint":
		p.include(path, line, value, depth, true)
	case "-e", "--editable":
		pkg := Package{Ecosystem: PyPI, Source: value, Location: finding.Location{Path: path, Line: line}}
		if m := eggRE.FindStringSubmatch(value); m != nil {
			pkg.Name = m[1]
		} else {
			pkg.Name = value
		}
		pkg.Key = Normalize(pkg.Name)
		if !constraint {
			p.lf.Packages = append(p.lf.Packages, pkg)
		}
	case "--require-hashes":
		p.lf.RequireHashes = true
	case "-i", "--index-url", "--extra-index-url", "-f", "--find-links", "--no-index", "--pre",
		"--trusted-host", "--prefer-binary", "--no-binary", "--only-binary", "--use-feature",
		"--hash", "--config-settings", "--global-option", "--install-option":
	default:
		p.problem(path, line, "unknown option %q", name)
	}
}

func (p *reqParser) include(from string, line int, target string, depth int, constraint bool) {
	if target == "" {
		p.problem(from, line, "include without a file name")
		return
	}
	if strings.Contains(target, "://") {
		p.problem(from, line, "remote include %s not fetched: vendor it and include the local copy", target)
		return
	}
	if p.read == nil {
		p.problem(from, line, "include %s not followed", target)
		return
	}
	if !filepath.IsAbs(target) {
		target = filepath.Join(filepath.Dir(from), target)
	}
	target = filepath.Clean(target)
	for _, open := range p.stack {
		if open == target {
			p.problem(from, line, "include cycle: %s includes itself through %s", target, strings.Join(p.stack, " -> "))
			return
		}
	}
	switch {
	case p.seen[target]:
		return
	case depth+1 > maxIncludeDepth:
		p.problem(from, line, "include %s deeper than %d levels: not followed", target, maxIncludeDepth)
		return
	case p.files >= maxIncludeFiles:
		p.problem(from, line, "include %s: more than %d files, not followed", target, maxIncludeFiles)
		return
	}
	p.seen[target] = true
	data, err := p.read(target)
	if err != nil {
		p.problem(from, line, "include %s: %v", target, err)
		return
	}
	p.file(target, data, depth+1, constraint)
}

// requirement parses one PEP 508 requirement with pip's per-requirement options (--hash).
func (p *reqParser) requirement(path string, line int, text string, constraint bool) {
	loc := finding.Location{Path: path, Line: line}
	spec, opts := text, ""
	if i := strings.Index(text, " -"); i >= 0 {
		spec, opts = strings.TrimSpace(text[:i]), text[i:]
	}
	pkg, err := parseRequirement(spec)
	if err != nil {
		p.problem(path, line, "%v", err)
		return
	}
	pkg.Location = loc
	fields := strings.Fields(opts)
	for i := 0; i < len(fields); i++ {
		name, value := splitOption(fields[i])
		if name == "--hash" && value == "" && i+1 < len(fields) {
			i++
			value = fields[i]
		}
		switch name {
		case "--hash":
			if !strings.Contains(value, ":") {
				p.problem(path, line, "malformed --hash %q", value)
				continue
			}
			pkg.Hashes = append(pkg.Hashes, value)
		case "--config-settings", "--global-option", "--install-option":
			i++ // their value
		default:
			p.problem(path, line, "unknown requirement option %q", name)
		}
	}
	if constraint {
		if pkg.Pinned() {
			p.constraints[pkg.Key] = pkg
		}
		return
	}
	p.lf.Packages = append(p.lf.Packages, pkg)
}

// parseRequirement reads "name[extras] specifiers ; marker", "name @ url ; marker" or a bare
// URL or path to an archive.
func parseRequirement(s string) (Package, error) {
	pkg := Package{Ecosystem: PyPI}
	if before, after, ok := strings.Cut(s, ";"); ok {
		s, pkg.Marker = strings.TrimSpace(before), strings.TrimSpace(after)
	}
	if m := nameRE.FindStringSubmatchIndex(s); (m == nil || !strings.HasPrefix(s[m[1]:], "@")) && isDirectReference(s) {
		pkg.Source = s
		if m := wheelRE.FindStringSubmatch(s); m != nil {
			pkg.Name, pkg.Version = m[1], m[2]
		} else if m := eggRE.FindStringSubmatch(s); m != nil {
			pkg.Name = m[1]
		} else {
			return pkg, fmt.Errorf("direct reference %q names no package (add #egg=NAME)", s)
		}
		pkg.Key = Normalize(pkg.Name)
		return pkg, nil
	}
	m := nameRE.FindStringSubmatchIndex(s)
	if m == nil {
		return pkg, fmt.Errorf("not a requirement: %q", truncate(s, 80))
	}
	pkg.Name = s[m[2]:m[3]]
	pkg.Key = Normalize(pkg.Name)
	if m[4] >= 0 {
		for _, e := range strings.Split(strings.Trim(s[m[4]:m[5]], "[]"), ",") {
			if e = strings.TrimSpace(e); e != "" {
				pkg.Extras = append(pkg.Extras, Normalize(e))
			}
		}
		sort.Strings(pkg.Extras)
	}
	rest := strings.TrimSpace(s[m[1]:])
	if strings.HasPrefix(rest, "@") {
		pkg.Source = strings.TrimSpace(rest[1:])
		if w := wheelRE.FindStringSubmatch(pkg.Source); w != nil && Normalize(w[1]) == pkg.Key {
			pkg.Version = w[2]
		}
		return pkg, nil
	}
	rest = strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(rest, "("), ")"))
	if rest == "" {
		return pkg, nil
	}
	clauses := strings.Split(rest, ",")
	for _, c := range clauses {
		c = strings.TrimSpace(c)
		if !validClause(c) {
			return pkg, fmt.Errorf("requirement %s: malformed version specifier %q", pkg.Name, c)
		}
	}
	pkg.Specifier = strings.Join(strings.Fields(rest), "")
	if len(clauses) == 1 {
		c := strings.TrimSpace(clauses[0])
		if v, ok := strings.CutPrefix(c, "==="); ok {
			pkg.Version = strings.TrimSpace(v)
		} else if v, ok := strings.CutPrefix(c, "=="); ok && !strings.Contains(v, "*") {
			pkg.Version = strings.TrimSpace(v)
		}
	}
	if pkg.Version != "" {
		pkg.Specifier = ""
	}
	return pkg, nil
}

func validClause(c string) bool {
	for _, op := range []string{"===", "==", "!=", "~=", "<=", ">=", "<", ">"} {
		if v, ok := strings.CutPrefix(c, op); ok {
			v = strings.TrimSpace(v)
			return v != "" && !strings.ContainsAny(v, " \t<>=!~")
		}
	}
	return false
}

func isDirectReference(s string) bool {
	return strings.Contains(s, "://") || strings.HasPrefix(s, ".") || strings.HasPrefix(s, "/") ||
		strings.HasPrefix(s, "git+") || strings.HasSuffix(s, ".whl") || strings.HasSuffix(s, ".tar.gz") ||
		strings.HasSuffix(s, ".zip")
}

// applyConstraints gives an unpinned requirement the version a -c file pins it to.
func (p *reqParser) applyConstraints() {
	for i := range p.lf.Packages {
		pkg := &p.lf.Packages[i]
		if c, ok := p.constraints[pkg.Key]; ok && !pkg.Pinned() && pkg.Source == "" {
			pkg.Version = c.Version
			if len(pkg.Hashes) == 0 {
				pkg.Hashes = c.Hashes
			}
		}
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
