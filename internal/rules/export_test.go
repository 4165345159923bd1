package rules

// NewReferenceEngine returns an engine that evaluates every rule of an event's type in CEL on
// data decoded in full by decodeData: no literal index, no native decisions, no lazy data. The
// differential tests hold the real engine to it.
func NewReferenceEngine(rs *Ruleset) *Engine {
	e, _ := NewEngine(rs, EngineOptions{})
	e.reference = true
	return e
}

// DeciderShape describes how the condition of rule id is answered: "cel" when only CEL can,
// else the decider tree, leaves as "leaf" and parts left to CEL as "cel".
func DeciderShape(e *Engine, id string) string {
	for _, r := range e.rs.Load().rules {
		if r.id == id && r.cond != nil {
			if r.cond.dec == nil {
				return "cel"
			}
			return r.cond.dec.shape()
		}
	}
	return ""
}

func (n *decider) shape() string {
	name := map[byte]string{decAnd: "and", decOr: "or", decNot: "not", decCond: "cond"}[n.kind]
	switch n.kind {
	case decLeaf:
		return "leaf"
	case decOpaque:
		return "cel"
	}
	s := name + "("
	for i := range n.kids {
		if i > 0 {
			s += ","
		}
		s += n.kids[i].shape()
	}
	return s + ")"
}
