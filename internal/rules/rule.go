package rules

import (
	"fmt"
	"strings"
	"sync/atomic"

	"cel.dev/cel-go/cel"
	yaml "go.yaml.in/yaml/v3"

	"github.com/pipewarden/pipewarden/internal/finding"
)

// rule is one compiled rule.
type rule struct {
	id         string
	desc       string
	pos        pos
	severity   finding.Severity
	tags       []string
	atlas      []string
	owasp      []string
	enabled    bool
	match      []string    // event types; empty means every type
	cond       *expr       // nil for sequences, whose steps hold the conditions
	pre        []prefilter // the condition's top-level conjuncts that are leaves, for the literal index
	output     *template
	evidence   []namedExpr
	subjKind   string
	subjName   *expr
	confidence float64
	corr       *correlation
	fp         string

	st *ruleCounters
}

type namedExpr struct {
	name string
	x    *expr
}

// ruleCounters are a rule's statistics; they carry over reloads when the rule id stays.
type ruleCounters struct {
	evals     atomic.Uint64
	matches   atomic.Uint64
	errors    atomic.Uint64
	evalNanos atomic.Uint64 // estimated from sampled evaluations
}

func (c *compiler) compileRule(m *merged) *rule {
	r := &rule{id: m.name, pos: m.pos, enabled: true, confidence: 0.8, st: &ruleCounters{}}
	fail := func(e *Error) *rule { c.fail(e); return nil }
	if onlyKeys(m.rawItem, "rule", "enabled") {
		return fail(m.errAt("rule", "no earlier file defines rule %q (an item with only rule and enabled switches an existing rule on or off)", m.name))
	}
	var e *Error
	if r.desc, e = m.str("desc"); e != nil {
		return fail(e)
	}
	if b, e := m.boolean("enabled"); e != nil {
		return fail(e)
	} else if b != nil {
		r.enabled = *b
	}
	if r.severity, e = parseSeverity(m); e != nil {
		return fail(e)
	}
	for _, p := range m.parts["tags"] {
		v, err := yamlValue(p.node)
		l, ok := v.([]any)
		if err != nil || !ok {
			return fail(&Error{File: p.file, Line: p.node.Line, Item: m.label(), Msg: "tags must be a list of strings"})
		}
		for _, t := range l {
			s, ok := t.(string)
			if !ok {
				return fail(&Error{File: p.file, Line: p.node.Line, Item: m.label(), Msg: "tags must be a list of strings"})
			}
			if !contains(r.tags, s) {
				r.tags = append(r.tags, s)
			}
		}
	}
	r.atlas, r.owasp = splitTags(r.tags)
	if r.match, e = c.matchTypes(m, "match", m.parts["match"]); e != nil {
		return fail(e)
	}
	costLimit := c.lim.DefaultCostLimit
	if n, ok, e := m.number("cost_limit"); e != nil {
		return fail(e)
	} else if ok {
		if n < 1 || n != float64(uint64(n)) {
			return fail(m.errAt("cost_limit", "cost_limit must be a positive integer"))
		}
		costLimit = uint64(n)
	}
	if n, ok, e := m.number("confidence"); e != nil {
		return fail(e)
	} else if ok {
		if n < 0 || n > 1 {
			return fail(m.errAt("confidence", "confidence must be between 0 and 1"))
		}
		r.confidence = n
	}
	fp := []string{fmt.Sprint(r.match)}
	if n, ok := m.fields["correlation"]; ok {
		r.corr, e = c.compileCorrelation(m, n, costLimit)
		if e != nil {
			return fail(e)
		}
		fp = append(fp, r.corr.fp)
		for _, s := range r.corr.steps {
			if s.ruleRef == "" && len(s.match) == 0 {
				s.match = r.match // steps inherit the rule's event types
			}
		}
	}
	isSeq := r.corr != nil && r.corr.kind == corrSequence
	var conds []string
	for _, p := range m.parts["condition"] {
		if p.node.Kind != yaml.ScalarNode {
			return fail(&Error{File: p.file, Line: p.node.Line, Item: m.label(), Msg: "condition must be a string"})
		}
		if strings.TrimSpace(p.node.Value) != "" {
			conds = append(conds, "("+p.node.Value+")")
		}
	}
	switch {
	case isSeq && len(conds) > 0:
		return fail(m.errAt("condition", "a sequence takes its conditions from its steps; remove condition"))
	case !isSeq && len(conds) == 0:
		return fail(m.errAt("rule", "rule needs a condition"))
	}
	if !isSeq {
		excs, e := c.exceptions(m)
		if e != nil {
			return fail(e)
		}
		text := strings.Join(append(conds, excs...), " && ")
		if r.cond, e = c.expr(m, "condition", text, cel.BoolType, costLimit); e != nil {
			return fail(e)
		}
		r.pre = prefilters(r.cond.ast.NativeRep().Expr(), r.cond.runtimeCost)
		fp = append(fp, r.cond.text)
	}
	out, e := m.str("output")
	if e != nil {
		return fail(e)
	}
	if out == "" {
		out = r.desc
	}
	if out == "" {
		return fail(m.errAt("rule", "rule needs an output (the finding's title) or a desc"))
	}
	if r.output, e = c.template(m, out); e != nil {
		return fail(e)
	}
	if e = c.subject(m, r); e != nil {
		return fail(e)
	}
	if n, ok := m.fields["evidence"]; ok {
		if n.Kind != yaml.MappingNode {
			return fail(m.errAt("evidence", "evidence must map names to expressions"))
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if v.Kind != yaml.ScalarNode {
				return fail(&Error{File: m.pos.file, Line: v.Line, Item: m.label(), Msg: "evidence values are CEL expressions"})
			}
			x, e := c.expr(m, "evidence", v.Value, nil, costLimit)
			if e != nil {
				e.Line = v.Line
				return fail(e)
			}
			r.evidence = append(r.evidence, namedExpr{k.Value, x})
		}
	}
	r.fp = fingerprint(fp...)
	return r
}

func (c *compiler) subject(m *merged, r *rule) *Error {
	n, ok := m.fields["subject"]
	if !ok {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return m.errAt("subject", "subject must be {kind: KIND, name: EXPRESSION}")
	}
	var s struct{ Kind, Name string }
	if err := n.Decode(&s); err != nil || s.Kind == "" || s.Name == "" || len(n.Content) != 4 {
		return m.errAt("subject", "subject must be {kind: KIND, name: EXPRESSION}")
	}
	x, e := c.expr(m, "subject", s.Name, nil, c.lim.DefaultCostLimit)
	if e != nil {
		return e
	}
	r.subjKind, r.subjName = s.Kind, x
	return nil
}

// exceptions compiles a rule's exceptions into "!(...)" terms, Falco style: each exception names
// fields and lists tuples of values; an event matching any tuple is excepted. A comparison on
// a field the event lacks is false, so a missing field never turns an exception into an error.
func (c *compiler) exceptions(m *merged) ([]string, *Error) {
	var out []string
	for _, p := range m.parts["exceptions"] {
		if p.node.Kind != yaml.SequenceNode {
			return nil, &Error{File: p.file, Line: p.node.Line, Item: m.label(), Msg: "exceptions must be a list"}
		}
		for _, en := range p.node.Content {
			term, err := c.exception(en)
			if err != nil {
				return nil, &Error{File: p.file, Line: en.Line, Item: m.label(), Msg: "exception: " + err.Error()}
			}
			if term != "" {
				out = append(out, term)
			}
		}
	}
	return out, nil
}

func (c *compiler) exception(n *yaml.Node) (string, error) {
	if n.Kind != yaml.MappingNode {
		return "", fmt.Errorf("each exception is {name, fields, comps, values}")
	}
	var raw struct {
		Name   string
		Fields yaml.Node
		Comps  yaml.Node
		Values []yaml.Node
	}
	for i := 0; i < len(n.Content); i += 2 {
		if k := n.Content[i].Value; !contains([]string{"name", "fields", "comps", "values"}, k) {
			return "", fmt.Errorf("unknown key %q (allowed: name, fields, comps, values)", k)
		}
	}
	if err := n.Decode(&raw); err != nil {
		return "", err
	}
	if raw.Name == "" {
		return "", fmt.Errorf("needs a name")
	}
	var fields, comps []string
	single := raw.Fields.Kind == yaml.ScalarNode
	switch {
	case single:
		fields = []string{raw.Fields.Value}
	case raw.Fields.Kind == yaml.SequenceNode:
		if err := raw.Fields.Decode(&fields); err != nil {
			return "", fmt.Errorf("%s: fields must be a list of field expressions", raw.Name)
		}
	default:
		return "", fmt.Errorf("%s: needs fields", raw.Name)
	}
	switch raw.Comps.Kind {
	case 0:
		for range fields {
			if single {
				comps = append(comps, "in")
			} else {
				comps = append(comps, "=")
			}
		}
	case yaml.ScalarNode:
		comps = []string{raw.Comps.Value}
	default:
		if err := raw.Comps.Decode(&comps); err != nil {
			return "", fmt.Errorf("%s: comps must be a list", raw.Name)
		}
	}
	if len(comps) != len(fields) {
		return "", fmt.Errorf("%s: %d comps for %d fields", raw.Name, len(comps), len(fields))
	}
	var alts []string
	if single {
		// fields: one field, values: the values themselves.
		var vals []any
		for i := range raw.Values {
			v, err := yamlValue(&raw.Values[i])
			if err != nil {
				return "", err
			}
			vals = append(vals, v)
		}
		if len(vals) == 0 {
			return "", nil
		}
		var vv any = vals
		if comps[0] != "in" {
			var ors []string
			for _, v := range vals {
				t, err := c.comparison(fields[0], comps[0], v)
				if err != nil {
					return "", fmt.Errorf("%s: %v", raw.Name, err)
				}
				ors = append(ors, t)
			}
			return "!(" + strings.Join(ors, " || ") + ")", nil
		}
		t, err := c.comparison(fields[0], "in", vv)
		if err != nil {
			return "", fmt.Errorf("%s: %v", raw.Name, err)
		}
		return "!(" + t + ")", nil
	}
	for i := range raw.Values {
		v, err := yamlValue(&raw.Values[i])
		if err != nil {
			return "", err
		}
		tuple, ok := v.([]any)
		if !ok || len(tuple) != len(fields) {
			return "", fmt.Errorf("%s: each value must be a list of %d items, one per field", raw.Name, len(fields))
		}
		var ands []string
		for j, f := range fields {
			t, err := c.comparison(f, comps[j], tuple[j])
			if err != nil {
				return "", fmt.Errorf("%s: %v", raw.Name, err)
			}
			ands = append(ands, t)
		}
		alts = append(alts, "("+strings.Join(ands, " && ")+")")
	}
	if len(alts) == 0 {
		return "", nil
	}
	return "!(" + strings.Join(alts, " || ") + ")", nil
}

// comparison writes one exception comparison, guarded by has() for plain field paths.
func (c *compiler) comparison(field, comp string, v any) (string, error) {
	lit := ""
	if l, ok := v.([]any); ok && len(l) == 1 && comp == "in" {
		if s, ok := l[0].(string); ok {
			if _, isList := c.x.lists[s]; isList {
				v = s
			}
		}
	}
	if s, ok := v.(string); ok && comp == "in" {
		if l, ok := c.x.lists[s]; ok {
			lit = l
		}
	}
	if lit == "" {
		if comp == "in" {
			if _, ok := v.([]any); !ok {
				v = []any{v}
			}
		}
		var err error
		if lit, err = celLiteral(v); err != nil {
			return "", err
		}
	}
	var t string
	switch comp {
	case "=", "==":
		t = field + " == " + lit
	case "!=":
		t = field + " != " + lit
	case "in":
		t = field + " in " + lit
	case "<", "<=", ">", ">=":
		t = field + " " + comp + " " + lit
	case "startswith":
		t = field + ".startsWith(" + lit + ")"
	case "endswith":
		t = field + ".endsWith(" + lit + ")"
	case "contains":
		t = field + ".contains(" + lit + ")"
	default:
		return "", fmt.Errorf("unknown comparison %q (use =, !=, in, <, <=, >, >=, startswith, endswith, contains)", comp)
	}
	if guard := hasGuard(field); guard != "" {
		t = guard + " && " + t
	}
	return "(" + t + ")", nil
}

// hasGuard returns has(a.b) && has(a.b.c) ... for a dotted field path under data or event.
func hasGuard(field string) string {
	parts := strings.Split(strings.TrimSpace(field), ".")
	if len(parts) < 2 || (parts[0] != "data" && parts[0] != "event") {
		return ""
	}
	for _, p := range parts {
		if p == "" || !isIdentStart(p[0]) {
			return ""
		}
		for i := 1; i < len(p); i++ {
			if !isIdentPart(p[i]) {
				return ""
			}
		}
	}
	var gs []string
	for i := 2; i <= len(parts); i++ {
		gs = append(gs, "has("+strings.Join(parts[:i], ".")+")")
	}
	return strings.Join(gs, " && ")
}
