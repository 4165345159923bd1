package alert

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/pipewarden/pipewarden/internal/store"
)

// Limits on matcher input, which arrives from the API.
const (
	maxMatcherLen = 1024
	maxMatchers   = 32
)

// Matcher is a compiled label matcher.
type Matcher struct {
	store.Matcher
	re *regexp.Regexp
}

// Matches reports whether the label set satisfies the matcher; a missing label reads as "".
func (m *Matcher) Matches(labels map[string]string) bool {
	v := labels[m.Name]
	var ok bool
	if m.IsRegex {
		ok = m.re.MatchString(v)
	} else {
		ok = v == m.Value
	}
	return ok == m.IsEqual
}

// String writes the matcher in the syntax ParseMatcher reads.
func (m *Matcher) String() string {
	op := "="
	switch {
	case m.IsRegex && m.IsEqual:
		op = "=~"
	case m.IsRegex:
		op = "!~"
	case !m.IsEqual:
		op = "!="
	}
	return m.Name + op + strconv.Quote(m.Value)
}

// Matchers is a conjunction of matchers.
type Matchers []*Matcher

// Matches reports whether every matcher matches.
func (ms Matchers) Matches(labels map[string]string) bool {
	for _, m := range ms {
		if !m.Matches(labels) {
			return false
		}
	}
	return true
}

// Stored returns the matchers as stored in a silence.
func (ms Matchers) Stored() []store.Matcher {
	out := make([]store.Matcher, len(ms))
	for i, m := range ms {
		out[i] = m.Matcher
	}
	return out
}

// CompileMatcher checks and compiles a stored matcher.
func CompileMatcher(s store.Matcher) (*Matcher, error) {
	if !validName(s.Name) {
		return nil, fmt.Errorf("matcher: invalid label name %q", s.Name)
	}
	if len(s.Value) > maxMatcherLen {
		return nil, fmt.Errorf("matcher %s: value longer than %d bytes", s.Name, maxMatcherLen)
	}
	m := &Matcher{Matcher: s}
	if s.IsRegex {
		re, err := regexp.Compile("^(?:" + s.Value + ")$")
		if err != nil {
			return nil, fmt.Errorf("matcher %s: bad regular expression %q: %w", s.Name, s.Value, err)
		}
		m.re = re
	}
	return m, nil
}

// ParseMatcher reads one matcher in Alertmanager's syntax: name, an operator (=, !=, =~, !~)
// and a value, double-quoted (Go escapes) or bare, e.g. severity="critical",
// rule=~"data_.*", subject!=staging.
func ParseMatcher(s string) (*Matcher, error) {
	if len(s) > maxMatcherLen {
		return nil, fmt.Errorf("matcher longer than %d bytes", maxMatcherLen)
	}
	in := strings.TrimSpace(s)
	i := 0
	for i < len(in) && isNameByte(in[i], i) {
		i++
	}
	name := in[:i]
	if name == "" {
		return nil, fmt.Errorf("matcher %q: must start with a label name", s)
	}
	rest := strings.TrimLeft(in[i:], " ")
	var sm store.Matcher
	sm.Name = name
	switch {
	case strings.HasPrefix(rest, "=~"):
		sm.IsEqual, sm.IsRegex, rest = true, true, rest[2:]
	case strings.HasPrefix(rest, "!~"):
		sm.IsRegex, rest = true, rest[2:]
	case strings.HasPrefix(rest, "!="):
		rest = rest[2:]
	case strings.HasPrefix(rest, "="):
		sm.IsEqual, rest = true, rest[1:]
	default:
		return nil, fmt.Errorf("matcher %q: want an operator =, !=, =~ or !~ after %q", s, name)
	}
	rest = strings.TrimSpace(rest)
	if strings.HasPrefix(rest, `"`) {
		v, err := strconv.Unquote(rest)
		if err != nil {
			return nil, fmt.Errorf("matcher %q: bad quoted value: %v", s, err)
		}
		rest = v
	} else if strings.ContainsAny(rest, "\"\n") {
		return nil, fmt.Errorf("matcher %q: quote a value holding quotes or newlines", s)
	}
	sm.Value = rest
	return CompileMatcher(sm)
}

// ParseMatchers reads a list of matchers (at most 32).
func ParseMatchers(ss []string) (Matchers, error) {
	if len(ss) > maxMatchers {
		return nil, fmt.Errorf("%d matchers exceed the limit of %d", len(ss), maxMatchers)
	}
	out := make(Matchers, 0, len(ss))
	for _, s := range ss {
		m, err := ParseMatcher(s)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

func isNameByte(c byte, i int) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9'
}

func validName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isNameByte(s[i], i) {
			return false
		}
	}
	return true
}
