package alert

import "strings"

// inhibitRule is a compiled inhibition rule with an index of its open source alerts by the
// values of the equal labels, so checking a target costs one map lookup per rule.
type inhibitRule struct {
	source, target Matchers
	equal          []string
	sources        map[string]map[string]string // equal values -> fingerprint -> alert id
}

func newInhibitRule(ir InhibitRule) *inhibitRule {
	r := &inhibitRule{equal: ir.Equal, sources: map[string]map[string]string{}}
	r.source, _ = ParseMatchers(ir.Source)
	r.target, _ = ParseMatchers(ir.Target)
	return r
}

func (r *inhibitRule) key(labels map[string]string) string {
	var b strings.Builder
	for _, l := range r.equal {
		b.WriteString(labels[l])
		b.WriteByte(0)
	}
	return b.String()
}

// indexInhibit adds an open alert to (or removes a closed one from) the source indexes.
func (p *Pipeline) indexInhibit(e *entry, add bool) {
	for _, r := range p.inh {
		if !r.source.Matches(e.a.Labels) {
			continue
		}
		k := r.key(e.a.Labels)
		if add {
			m := r.sources[k]
			if m == nil {
				m = map[string]string{}
				r.sources[k] = m
			}
			m[e.a.Fingerprint] = e.a.ID
			continue
		}
		if m := r.sources[k]; m != nil {
			delete(m, e.a.Fingerprint)
			if len(m) == 0 {
				delete(r.sources, k)
			}
		}
	}
}

// inhibitedBy returns the ids of open alerts that inhibit e. An alert never inhibits itself.
func (p *Pipeline) inhibitedBy(e *entry) []string {
	var out []string
	for _, r := range p.inh {
		if !r.target.Matches(e.a.Labels) {
			continue
		}
		for fp, id := range r.sources[r.key(e.a.Labels)] {
			if fp != e.a.Fingerprint && !containsStr(out, id) {
				out = append(out, id)
			}
		}
	}
	if len(out) > 1 {
		sortStrings(out)
	}
	return out
}
