package rules

import (
	"fmt"

	yaml "go.yaml.in/yaml/v3"
)

// src is one value of a field and the file it came from.
type src struct {
	file string
	node *yaml.Node
}

// merged is an item after every file's overrides are applied, in load order.
type merged struct {
	*rawItem                  // fields hold the latest value of each key
	parts    map[string][]src // every value of a key: more than one when appended
	order    int
}

func (m *merged) errAt(key, format string, a ...any) *Error {
	e := m.rawItem.errAt(key, format, a...)
	if ps := m.parts[key]; len(ps) > 0 {
		e.File = ps[len(ps)-1].file
	}
	return e
}

// appendable keys per kind for override: append.
var appendKeys = map[string][]string{
	kindRule: {"condition", "exceptions", "tags", "match"},
	kindList: {"items"},
}

// mergeItems applies definitions and overrides in order. Items are keyed by kind and name, so a
// macro and a rule may share a name.
func mergeItems(items []*rawItem) (map[string]*merged, []*merged, Errors) {
	byKey := map[string]*merged{}
	var order []*merged
	var errs Errors
	for _, it := range items {
		key := it.kind + "\x00" + it.name
		cur, exists := byKey[key]
		override := ""
		if n, ok := it.fields["override"]; ok {
			if n.Kind != yaml.ScalarNode || (n.Value != "replace" && n.Value != "append") {
				errs = append(errs, it.errAt("override", "override must be replace or append"))
				continue
			}
			override = n.Value
		}
		if !exists {
			if override != "" {
				errs = append(errs, it.errAt("override", "override of %s %q, which no earlier file defines", it.kind, it.name))
				continue
			}
			m := &merged{rawItem: it, parts: map[string][]src{}, order: len(order)}
			for k, n := range it.fields {
				m.parts[k] = []src{{it.pos.file, n}}
			}
			byKey[key] = m
			order = append(order, m)
			continue
		}
		switch {
		case override == "" && it.kind == kindRule && onlyKeys(it, "rule", "enabled"):
			cur.set("enabled", it)
		case override == "" && it.kind == kindPolicy:
			// A later file sets a policy value as the config does.
			for _, k := range it.keys {
				cur.set(k, it)
			}
		case override == "":
			errs = append(errs, &Error{File: it.pos.file, Line: it.pos.line, Item: it.label(),
				Msg: fmt.Sprintf("already defined at %s:%d; add override: replace or override: append to change it, or give it another name", cur.pos.file, cur.pos.line)})
		case override == "replace":
			for _, k := range it.keys {
				if k != "override" && k != it.kind {
					cur.set(k, it)
				}
			}
		case override == "append":
			allowed := appendKeys[it.kind]
			bad := false
			for _, k := range it.keys {
				if k == "override" || k == it.kind {
					continue
				}
				if !contains(allowed, k) {
					errs = append(errs, it.errAt(k, "override: append cannot change %s of a %s (appendable: %v); use override: replace", k, it.kind, allowed))
					bad = true
				}
			}
			if bad {
				continue
			}
			for _, k := range it.keys {
				if k == "override" || k == it.kind {
					continue
				}
				cur.parts[k] = append(cur.parts[k], src{it.pos.file, it.fields[k]})
				cur.fields[k] = it.fields[k]
			}
		}
	}
	return byKey, order, errs
}

func (m *merged) set(k string, it *rawItem) {
	// Copy on first write so the original item, shared with nothing else, stays as parsed.
	fields := make(map[string]*yaml.Node, len(m.fields)+1)
	for key, n := range m.fields {
		fields[key] = n
	}
	if _, ok := fields[k]; !ok {
		m.keys = append(append([]string(nil), m.keys...), k)
	}
	fields[k] = it.fields[k]
	m.rawItem = &rawItem{kind: m.kind, name: m.name, pos: m.pos, fields: fields, keys: m.keys}
	m.parts[k] = []src{{it.pos.file, it.fields[k]}}
}

func onlyKeys(it *rawItem, keys ...string) bool {
	for _, k := range it.keys {
		if !contains(keys, k) {
			return false
		}
	}
	return true
}

// yamlValue decodes a node into plain Go values (string, int, float64, bool, nil, []any,
// map[string]any).
func yamlValue(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.AliasNode:
		return yamlValue(n.Alias)
	case yaml.ScalarNode:
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, err
		}
		return v, nil
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := yamlValue(c)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: map keys must be strings", n.Content[i].Line)
			}
			v, err := yamlValue(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			out[n.Content[i].Value] = v
		}
		return out, nil
	}
	return nil, fmt.Errorf("line %d: unsupported YAML value", n.Line)
}
