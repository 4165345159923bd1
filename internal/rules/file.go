package rules

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"
)

// Limits bound what one rule file and one ruleset may hold, so a hostile or broken file cannot
// exhaust memory or compile time. Zero fields take the defaults.
type Limits struct {
	MaxFileBytes     int // one file; default 4 MiB
	MaxItems         int // items in the whole ruleset; default 5,000
	MaxConditionLen  int // one condition as written; default 16 KiB
	MaxExpandedLen   int // one condition after macro and list expansion; default 256 KiB
	MaxListItems     int // items in one list; default 10,000
	MaxYAMLDepth     int // nesting of YAML nodes; default 32
	MaxMacroDepth    int // macros referring to macros; default 16
	DefaultCostLimit uint64
}

// DefaultLimits are the limits applied when LoadOptions.Limits is zero.
func DefaultLimits() Limits {
	return Limits{MaxFileBytes: 4 << 20, MaxItems: 5000, MaxConditionLen: 16 << 10,
		MaxExpandedLen: 256 << 10, MaxListItems: 10000, MaxYAMLDepth: 32, MaxMacroDepth: 16,
		DefaultCostLimit: 100000}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	set := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	set(&l.MaxFileBytes, d.MaxFileBytes)
	set(&l.MaxItems, d.MaxItems)
	set(&l.MaxConditionLen, d.MaxConditionLen)
	set(&l.MaxExpandedLen, d.MaxExpandedLen)
	set(&l.MaxListItems, d.MaxListItems)
	set(&l.MaxYAMLDepth, d.MaxYAMLDepth)
	set(&l.MaxMacroDepth, d.MaxMacroDepth)
	if l.DefaultCostLimit == 0 {
		l.DefaultCostLimit = d.DefaultCostLimit
	}
	return l
}

// Error is one problem in a rule file, located by file, line and item id.
type Error struct {
	File string
	Line int
	Item string // "rule foo", "macro bar", "list baz", ... or "" for the file as a whole
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Item != "" {
		b.WriteString(e.Item)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found while loading; a ruleset with any error is not used.
type Errors []*Error

func (es Errors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "\n")
}

// AsErrors returns the located errors inside err (one entry for an unlocated error).
func AsErrors(err error) Errors {
	if err == nil {
		return nil
	}
	var es Errors
	if errors.As(err, &es) {
		return es
	}
	var e *Error
	if errors.As(err, &e) {
		return Errors{e}
	}
	return Errors{{Msg: err.Error()}}
}

// item kinds, the key that names an item in a rule file.
const (
	kindRule    = "rule"
	kindMacro   = "macro"
	kindList    = "list"
	kindPolicy  = "policy"
	kindHistory = "history"
)

// pos locates an item or one of its fields.
type pos struct {
	file string
	line int
}

// rawItem is one entry of a rule file, before overrides are applied.
type rawItem struct {
	kind   string
	name   string
	pos    pos
	fields map[string]*yaml.Node // key -> value, for overrides and line numbers
	keys   []string              // keys in file order
}

func (it *rawItem) label() string { return it.kind + " " + it.name }

func (it *rawItem) line(key string) int {
	if n, ok := it.fields[key]; ok {
		return n.Line
	}
	return it.pos.line
}

// allowed keys of each item kind; anything else is an error (strict decoding).
var itemKeys = map[string][]string{
	kindRule: {"rule", "desc", "condition", "output", "severity", "tags", "enabled", "exceptions",
		"match", "override", "cost_limit", "confidence", "subject", "evidence", "correlation"},
	kindMacro:   {"macro", "desc", "condition", "override"},
	kindList:    {"list", "desc", "items", "override"},
	kindPolicy:  {"policy", "desc", "value"},
	kindHistory: {"history", "desc", "match", "when", "key", "value", "size", "max_keys", "ttl"},
}

func parseBytes(name string, data []byte, lim Limits) ([]*rawItem, Errors) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil // an empty file holds no items
		}
		return nil, Errors{yamlError(name, err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, Errors{{File: name, Line: extra.Line, Msg: "more than one YAML document; put all items in one list"}}
	}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = *doc.Content[0]
	}
	if d := depth(&doc, 0, lim.MaxYAMLDepth+1); d > lim.MaxYAMLDepth {
		return nil, Errors{{File: name, Line: doc.Line, Msg: fmt.Sprintf("YAML nested deeper than %d levels", lim.MaxYAMLDepth)}}
	}
	if doc.Kind == yaml.ScalarNode && doc.Tag == "!!null" {
		return nil, nil
	}
	if doc.Kind != yaml.SequenceNode {
		return nil, Errors{{File: name, Line: doc.Line, Msg: "a rule file is a YAML list of rule, macro, list, policy and history items"}}
	}
	if len(doc.Content) > lim.MaxItems {
		return nil, Errors{{File: name, Line: doc.Line, Msg: fmt.Sprintf("%d items exceed the limit of %d", len(doc.Content), lim.MaxItems)}}
	}
	var items []*rawItem
	var errs Errors
	for _, n := range doc.Content {
		it, err := parseItem(name, n)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		items = append(items, it)
	}
	return items, errs
}

func parseItem(file string, n *yaml.Node) (*rawItem, *Error) {
	if n.Kind != yaml.MappingNode {
		return nil, &Error{File: file, Line: n.Line, Msg: "each item must be a mapping with one of the keys rule, macro, list, policy or history"}
	}
	it := &rawItem{pos: pos{file, n.Line}, fields: map[string]*yaml.Node{}}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return nil, &Error{File: file, Line: k.Line, Msg: "keys must be plain strings"}
		}
		if _, dup := it.fields[k.Value]; dup {
			return nil, &Error{File: file, Line: k.Line, Msg: fmt.Sprintf("key %q given twice", k.Value)}
		}
		it.fields[k.Value] = v
		it.keys = append(it.keys, k.Value)
		if _, isKind := itemKeys[k.Value]; isKind {
			if it.kind != "" {
				return nil, &Error{File: file, Line: k.Line, Msg: fmt.Sprintf("item has both %q and %q keys", it.kind, k.Value)}
			}
			it.kind = k.Value
			if v.Kind != yaml.ScalarNode || strings.TrimSpace(v.Value) == "" {
				return nil, &Error{File: file, Line: v.Line, Msg: fmt.Sprintf("%s needs a non-empty name", k.Value)}
			}
			it.name = v.Value
		}
	}
	if it.kind == "" {
		return nil, &Error{File: file, Line: n.Line, Msg: "item has none of the keys rule, macro, list, policy or history"}
	}
	if !validName(it.name) {
		return nil, &Error{File: file, Line: n.Line, Item: it.label(), Msg: "names use letters, digits, '_', '-' and '.', start with a letter and are at most 128 bytes"}
	}
	allowed := itemKeys[it.kind]
	for _, k := range it.keys {
		if !contains(allowed, k) {
			return nil, &Error{File: file, Line: it.fields[k].Line, Item: it.label(),
				Msg: fmt.Sprintf("unknown key %q (allowed: %s)", k, strings.Join(allowed, ", "))}
		}
	}
	return it, nil
}

func validName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

func depth(n *yaml.Node, d, max int) int {
	if d > max {
		return d
	}
	m := d
	for _, c := range n.Content {
		if cd := depth(c, d+1, max); cd > m {
			m = cd
			if m > max {
				return m
			}
		}
	}
	return m
}

func yamlError(file string, err error) *Error {
	msg := err.Error()
	line := 0
	// yaml.v3 errors read "yaml: line N: ..."; keep the line as a field.
	if rest, ok := strings.CutPrefix(msg, "yaml: line "); ok {
		if i := strings.IndexByte(rest, ':'); i > 0 {
			fmt.Sscanf(rest[:i], "%d", &line)
			msg = strings.TrimSpace(rest[i+1:])
		}
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	return &Error{File: file, Line: line, Msg: "invalid YAML: " + msg}
}

// field decoding helpers; each reports the line of the offending value.

func (it *rawItem) str(key string) (string, *Error) {
	n, ok := it.fields[key]
	if !ok {
		return "", nil
	}
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!str" && n.Tag != "!!int" && n.Tag != "!!float" && n.Tag != "!!bool") {
		return "", it.errAt(key, "%s must be a string", key)
	}
	return n.Value, nil
}

func (it *rawItem) boolean(key string) (*bool, *Error) {
	n, ok := it.fields[key]
	if !ok {
		return nil, nil
	}
	var b bool
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || n.Decode(&b) != nil {
		return nil, it.errAt(key, "%s must be true or false", key)
	}
	return &b, nil
}

func (it *rawItem) number(key string) (float64, bool, *Error) {
	n, ok := it.fields[key]
	if !ok {
		return 0, false, nil
	}
	var f float64
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") || n.Decode(&f) != nil {
		return 0, false, it.errAt(key, "%s must be a number", key)
	}
	return f, true, nil
}

func (it *rawItem) duration(key string) (time.Duration, *Error) {
	s, err := it.str(key)
	if err != nil || s == "" {
		return 0, err
	}
	d, perr := parseDuration(s)
	if perr != nil {
		return 0, it.errAt(key, "%s: %v", key, perr)
	}
	return d, nil
}

// parseDuration accepts Go durations plus a "d" (day) suffix, as in Prometheus.
func parseDuration(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		var days int
		if _, err := fmt.Sscanf(n, "%d", &days); err != nil || fmt.Sprint(days) != n || days <= 0 {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (use e.g. 30s, 10m, 24h, 7d)", s)
	}
	if d <= 0 {
		return 0, fmt.Errorf("duration %q must be positive", s)
	}
	return d, nil
}

func (it *rawItem) errAt(key, format string, a ...any) *Error {
	return &Error{File: it.pos.file, Line: it.line(key), Item: it.label(), Msg: fmt.Sprintf(format, a...)}
}
