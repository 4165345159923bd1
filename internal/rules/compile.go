package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"cel.dev/cel-go/cel"
	yaml "go.yaml.in/yaml/v3"

	"github.com/pipewarden/pipewarden/internal/event"
	"github.com/pipewarden/pipewarden/internal/finding"
)

var (
	atlasTag = regexp.MustCompile(`^AML\.T\d{4}(\.\d{3})?$`)
	owaspTag = regexp.MustCompile(`^ML(0[1-9]|10)$`)
)

// compiler turns merged items into a Ruleset.
type compiler struct {
	lim       Limits
	byKey     map[string]*merged
	order     []*merged
	policyCfg map[string]any
	x         *expander
	env       *cel.Env
	rs        *Ruleset
	errs      Errors
}

func (c *compiler) fail(e *Error) { c.errs = append(c.errs, e) }

func (c *compiler) compile() {
	c.x = &expander{macros: map[string]string{}, lists: map[string]string{}, policy: map[string]string{},
		maxDepth: c.lim.MaxMacroDepth, maxLen: c.lim.MaxExpandedLen}
	c.compileValues()
	c.rs.histories = map[string]*history{}
	for _, m := range c.order {
		if m.kind == kindHistory {
			c.declareHistory(m)
		}
	}
	env, err := newEnv(func(name string) *history { return c.rs.histories[name] })
	if err != nil {
		c.fail(&Error{Msg: fmt.Sprintf("build CEL environment: %v", err)})
		return
	}
	c.env = env
	c.rs.adapter = env.CELTypeAdapter()
	for _, m := range c.order {
		if m.kind == kindHistory {
			c.compileHistory(m)
		}
	}
	for _, m := range c.order {
		if m.kind == kindRule {
			if r := c.compileRule(m); r != nil {
				c.rs.rules = append(c.rs.rules, r)
			}
		}
	}
	for _, r := range c.rs.rules {
		if r.corr != nil && r.corr.kind == corrSequence {
			c.linkSteps(r)
		}
	}
}

// compileValues reads lists, policy values (with the config's values on top) and macros.
func (c *compiler) compileValues() {
	declared := map[string]bool{}
	for _, m := range c.order {
		switch m.kind {
		case kindList:
			declared[m.name] = true
			var items []any
			for _, p := range m.parts["items"] {
				if p.node.Kind != yaml.SequenceNode {
					c.fail(&Error{File: p.file, Line: p.node.Line, Item: m.label(), Msg: "items must be a list"})
					continue
				}
				v, err := yamlValue(p.node)
				if err != nil {
					c.fail(&Error{File: p.file, Line: p.node.Line, Item: m.label(), Msg: err.Error()})
					continue
				}
				items = append(items, v.([]any)...)
			}
			if v, ok := c.policyCfg[m.name]; ok {
				l, ok := normalizeConfigValue(v).([]any)
				if !ok {
					c.fail(&Error{File: "config", Item: m.label(), Msg: fmt.Sprintf("policy value for list %q must be a list, not %T", m.name, v)})
					continue
				}
				items = l
			}
			c.setList(m, items)
		case kindPolicy:
			declared[m.name] = true
			n, ok := m.fields["value"]
			if !ok {
				c.fail(m.errAt("policy", "policy %q needs a value", m.name))
				continue
			}
			v, err := yamlValue(n)
			if err != nil {
				c.fail(m.errAt("value", "%v", err))
				continue
			}
			if cv, ok := c.policyCfg[m.name]; ok {
				v = normalizeConfigValue(cv)
			}
			c.rs.policy[m.name] = v
			lit, err := celLiteral(v)
			if err != nil {
				c.fail(m.errAt("value", "%v", err))
				continue
			}
			c.x.policy[m.name] = lit
		case kindMacro:
			cond, err := m.str("condition")
			if err != nil {
				c.fail(err)
				continue
			}
			if strings.TrimSpace(cond) == "" {
				c.fail(m.errAt("macro", "macro %q needs a condition", m.name))
				continue
			}
			if len(cond) > c.lim.MaxConditionLen {
				c.fail(m.errAt("condition", "condition exceeds %d bytes", c.lim.MaxConditionLen))
				continue
			}
			c.x.macros[m.name] = cond
		}
	}
	keys := make([]string, 0, len(c.policyCfg))
	for k := range c.policyCfg {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !declared[k] {
			c.fail(&Error{File: "config", Item: "policy " + k, Msg: "no list or policy item of this name is defined"})
		}
	}
}

func (c *compiler) setList(m *merged, items []any) {
	if len(items) > c.lim.MaxListItems {
		c.fail(m.errAt("items", "%d items exceed the limit of %d", len(items), c.lim.MaxListItems))
		return
	}
	lit, err := celLiteral(items)
	if err != nil {
		c.fail(m.errAt("items", "%v", err))
		return
	}
	c.x.lists[m.name] = lit
	c.rs.lists[m.name] = items
}

// normalizeConfigValue turns config values ([]string, int, ...) into the shapes yamlValue gives.
func normalizeConfigValue(v any) any {
	switch x := v.(type) {
	case []string:
		out := make([]any, len(x))
		for i, s := range x {
			out[i] = s
		}
		return out
	case int64:
		return int(x)
	case float32:
		return float64(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normalizeConfigValue(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalizeConfigValue(e)
		}
		return out
	}
	return v
}

// condition expands macros and lists in the given key's text and checks its size.
func (c *compiler) condition(m *merged, key string, text string) (string, *Error) {
	if len(text) > c.lim.MaxConditionLen {
		return "", m.errAt(key, "%s exceeds %d bytes", key, c.lim.MaxConditionLen)
	}
	out, err := c.x.expand(text)
	if err != nil {
		return "", m.errAt(key, "%s: %v", key, err)
	}
	return out, nil
}

func (c *compiler) expr(m *merged, key, text string, want *cel.Type, costLimit uint64) (*expr, *Error) {
	exp, e := c.condition(m, key, text)
	if e != nil {
		return nil, e
	}
	x, err := compileExpr(c.env, exp, want, costLimit, c.rs.histories)
	if err != nil {
		return nil, m.errAt(key, "%s: %v", key, err)
	}
	if key != "output" && key != "evidence" && usesIdent(x.ast.NativeRep().Expr(), "corr") {
		return nil, m.errAt(key, "%s: corr is only available in output and evidence", key)
	}
	return x, nil
}

func (c *compiler) matchTypes(m *merged, key string, parts []src) ([]string, *Error) {
	var out []string
	for _, p := range parts {
		v, err := yamlValue(p.node)
		if err != nil {
			return nil, &Error{File: p.file, Line: p.node.Line, Item: m.label(), Msg: err.Error()}
		}
		var list []any
		switch x := v.(type) {
		case string:
			list = []any{x}
		case []any:
			list = x
		default:
			return nil, &Error{File: p.file, Line: p.node.Line, Item: m.label(), Msg: key + " must be an event type or a list of them"}
		}
		for _, t := range list {
			s, ok := t.(string)
			if !ok {
				return nil, &Error{File: p.file, Line: p.node.Line, Item: m.label(), Msg: key + " must list event types as strings"}
			}
			if _, known := event.Lookup(s); !known {
				return nil, &Error{File: p.file, Line: p.node.Line, Item: m.label(),
					Msg: fmt.Sprintf("unknown event type %q (known: %s)", s, strings.Join(event.Types(), ", "))}
			}
			if !contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out, nil
}

func (c *compiler) declareHistory(m *merged) {
	h := &history{name: m.name, pos: m.pos, size: 50, maxKeys: 10000}
	h.desc, _ = m.str("desc")
	if n, ok, err := m.number("size"); err != nil {
		c.fail(err)
	} else if ok {
		if n < 1 || n > 10000 || n != float64(int(n)) {
			c.fail(m.errAt("size", "size must be an integer from 1 to 10000"))
		}
		h.size = int(n)
	}
	if n, ok, err := m.number("max_keys"); err != nil {
		c.fail(err)
	} else if ok {
		if n < 1 || n > 1e7 || n != float64(int(n)) {
			c.fail(m.errAt("max_keys", "max_keys must be an integer from 1 to 10000000"))
		}
		h.maxKeys = int(n)
	}
	if d, err := m.duration("ttl"); err != nil {
		c.fail(err)
	} else {
		h.ttl = d
	}
	h.reset()
	c.rs.histories[m.name] = h
}

func (c *compiler) compileHistory(m *merged) {
	h := c.rs.histories[m.name]
	var err *Error
	if h.match, err = c.matchTypes(m, "match", m.parts["match"]); err != nil {
		c.fail(err)
		return
	}
	if len(h.match) == 0 {
		c.fail(m.errAt("history", "history %q needs match: the event types it records", m.name))
		return
	}
	fp := []string{strings.Join(h.match, ","), fmt.Sprint(h.size, h.maxKeys, h.ttl)}
	for _, k := range []string{"when", "key", "value"} {
		text, e := m.str(k)
		if e != nil {
			c.fail(e)
			return
		}
		if text == "" {
			if k == "when" {
				continue
			}
			c.fail(m.errAt("history", "history %q needs %s", m.name, k))
			return
		}
		var want *cel.Type
		if k == "when" {
			want = cel.BoolType
		}
		x, e := c.expr(m, k, text, want, c.lim.DefaultCostLimit)
		if e != nil {
			c.fail(e)
			return
		}
		fp = append(fp, x.text)
		switch k {
		case "when":
			h.when = x
		case "key":
			h.key = x
		case "value":
			h.value = x
		}
	}
	h.fp = fingerprint(fp...)
}

func fingerprint(parts ...string) string {
	s := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(s[:8])
}

// splitTags separates MITRE ATLAS technique ids and OWASP ML Top 10 ids from other tags.
func splitTags(tags []string) (atlas, owasp []string) {
	for _, t := range tags {
		switch {
		case atlasTag.MatchString(t):
			atlas = append(atlas, t)
		case owaspTag.MatchString(t):
			owasp = append(owasp, t)
		}
	}
	return atlas, owasp
}

func parseSeverity(m *merged) (finding.Severity, *Error) {
	s, err := m.str("severity")
	if err != nil {
		return 0, err
	}
	if s == "" {
		return 0, m.errAt("rule", "rule needs a severity (critical, high, medium, low or info)")
	}
	sev, perr := finding.ParseSeverity(s)
	if perr != nil {
		return 0, m.errAt("severity", "%v", perr)
	}
	return sev, nil
}
