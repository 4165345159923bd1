package rules

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// expander replaces macro and list names in conditions before compilation, as Falco does:
// a macro name becomes its parenthesised condition, a list name a CEL list literal.
type expander struct {
	macros   map[string]string
	lists    map[string]string // name -> CEL list literal
	policy   map[string]string // name -> CEL literal, used as policy.<name>
	maxDepth int
	maxLen   int
}

// expand returns cond with every macro and list name replaced. Names are identifiers that are not
// field selections (after '.'), function calls (before '('), or inside string literals.
func (x *expander) expand(cond string) (string, error) {
	return x.expandDepth(cond, nil)
}

func (x *expander) expandDepth(cond string, stack []string) (string, error) {
	if len(stack) > x.maxDepth {
		return "", fmt.Errorf("macros nested deeper than %d (%s)", x.maxDepth, strings.Join(stack, " -> "))
	}
	var b strings.Builder
	i := 0
	for i < len(cond) {
		c := cond[i]
		switch {
		case c == '"' || c == '\'':
			j, err := skipString(cond, i, false)
			if err != nil {
				return "", err
			}
			b.WriteString(cond[i:j])
			i = j
		case isIdentStart(c):
			j := i + 1
			for j < len(cond) && isIdentPart(cond[j]) {
				j++
			}
			word := cond[i:j]
			// String prefixes: r"...", b'...', rb"..." and so on.
			if j < len(cond) && (cond[j] == '"' || cond[j] == '\'') && isStringPrefix(word) {
				k, err := skipString(cond, j, strings.ContainsAny(word, "rR"))
				if err != nil {
					return "", err
				}
				b.WriteString(cond[i:k])
				i = k
				continue
			}
			if prevNonSpace(cond, i) == '.' || nextNonSpace(cond, j) == '(' {
				b.WriteString(word)
				i = j
				continue
			}
			if word == "policy" && nextNonSpace(cond, j) == '.' {
				k := j
				for cond[k] != '.' {
					k++
				}
				k++
				for k < len(cond) && (cond[k] == ' ' || cond[k] == '\t') {
					k++
				}
				e := k
				for e < len(cond) && isIdentPart(cond[e]) {
					e++
				}
				name := cond[k:e]
				lit, ok := x.policy[name]
				if !ok {
					return "", fmt.Errorf("unknown policy value %q (declare it with a policy item)", name)
				}
				b.WriteByte('(')
				b.WriteString(lit)
				b.WriteByte(')')
				i = e
				continue
			}
			if m, ok := x.macros[word]; ok {
				for _, s := range stack {
					if s == word {
						return "", fmt.Errorf("macro %s refers to itself (%s -> %s)", word, strings.Join(stack, " -> "), word)
					}
				}
				inner, err := x.expandDepth(m, append(stack, word))
				if err != nil {
					return "", err
				}
				b.WriteByte('(')
				b.WriteString(inner)
				b.WriteByte(')')
			} else if l, ok := x.lists[word]; ok {
				b.WriteString(l)
			} else {
				b.WriteString(word)
			}
			i = j
		default:
			b.WriteByte(c)
			i++
		}
		if b.Len() > x.maxLen {
			return "", fmt.Errorf("condition exceeds %d bytes after expanding macros and lists", x.maxLen)
		}
	}
	return b.String(), nil
}

func isIdentStart(c byte) bool { return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isIdentPart(c byte) bool  { return isIdentStart(c) || c >= '0' && c <= '9' }

func isStringPrefix(w string) bool {
	switch strings.ToLower(w) {
	case "r", "b", "rb", "br":
		return true
	}
	return false
}

func prevNonSpace(s string, i int) byte {
	for i--; i >= 0; i-- {
		if c := s[i]; c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return c
		}
	}
	return 0
}

func nextNonSpace(s string, i int) byte {
	for ; i < len(s); i++ {
		if c := s[i]; c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return c
		}
	}
	return 0
}

// skipString returns the index just past the CEL string literal starting at s[i] (a quote).
func skipString(s string, i int, raw bool) (int, error) {
	q := s[i]
	triple := strings.HasPrefix(s[i:], strings.Repeat(string(q), 3))
	j := i + 1
	if triple {
		j = i + 3
	}
	for j < len(s) {
		c := s[j]
		switch {
		case c == '\\' && !raw:
			j += 2
			continue
		case c == q && triple:
			if strings.HasPrefix(s[j:], strings.Repeat(string(q), 3)) {
				return j + 3, nil
			}
		case c == q:
			return j + 1, nil
		case (c == '\n' || c == '\r') && !triple:
			return 0, fmt.Errorf("unterminated string literal at offset %d", i)
		}
		j++
	}
	return 0, fmt.Errorf("unterminated string literal at offset %d", i)
}

// celLiteral writes a YAML scalar value as a CEL literal.
func celLiteral(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return strconv.Quote(x), nil
	case bool:
		return strconv.FormatBool(x), nil
	case int:
		return strconv.Itoa(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case uint64:
		return strconv.FormatUint(x, 10) + "u", nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return "", fmt.Errorf("%v cannot be used in a condition", x)
		}
		s := strconv.FormatFloat(x, 'g', -1, 64)
		if !strings.ContainsAny(s, ".eE") {
			s += ".0"
		}
		return s, nil
	case nil:
		return "null", nil
	case map[string]any:
		return celMapLiteral(x)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			p, err := celLiteral(e)
			if err != nil {
				return "", err
			}
			parts[i] = p
		}
		return "[" + strings.Join(parts, ", ") + "]", nil
	}
	return "", fmt.Errorf("value of type %T cannot be used in a condition (use strings, numbers or booleans)", v)
}
