package rules

import (
	"math"

	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
)

// Decider leaves over histories, for the forms the default ruleset is made of:
//
//	history.count(NAME, K) OP number
//	history.seen(NAME, K, V)
//	history.last(NAME, K) == V, history.last(NAME, K) != V
//
// where K and V are data paths or literals. They read the history as the CEL functions do
// (same key strings, same lock) and compare values with CEL's equality, answering unknown
// whenever CEL would raise an error (a missing field) or a value is of a shape they do not
// compare (CEL then decides).

const (
	opHistCount = "history.count"
	opHistSeen  = "history.seen"
	opHistLast  = "history.last"
)

// valueRef is an argument of a history leaf: a data path, a literal, or a concatenation of
// strings (data.model + "/" + data.metric).
type valueRef struct {
	path  []string
	lit   any
	parts []valueRef
}

func toValueRef(e ast.Expr) (valueRef, bool) {
	if p, ok := dataPath(e); ok {
		return valueRef{path: p}, true
	}
	if e.Kind() == ast.CallKind && e.AsCall().FunctionName() == operators.Add && len(e.AsCall().Args()) == 2 {
		var parts []valueRef
		for _, a := range e.AsCall().Args() {
			r, ok := toValueRef(a)
			if !ok {
				return valueRef{}, false
			}
			if r.parts != nil {
				parts = append(parts, r.parts...)
				continue
			}
			if _, isStr := r.lit.(string); r.path == nil && !isStr {
				return valueRef{}, false
			}
			parts = append(parts, r)
		}
		return valueRef{parts: parts}, true
	}
	if e.Kind() == ast.LiteralKind {
		v, ok := litValue(e.AsLiteral())
		return valueRef{lit: v}, ok
	}
	return valueRef{}, false
}

// key is the history key of the value, as keyString(native(value)) in the CEL functions; ok is
// false when a data path is missing (CEL's error).
func (v *valueRef) key(d *eventData) (string, bool) {
	if v.parts != nil {
		return v.concat(d)
	}
	if v.path == nil {
		return keyString(v.lit), true
	}
	if sc, ok := d.scalarAt(v.path); ok {
		switch sc.kind {
		case kindString:
			return sc.s, true
		case kindNumber:
			return keyString(sc.f), true
		case kindTrue:
			return "true", true
		case kindFalse:
			return "false", true
		default:
			return "null", true
		}
	}
	x, ok := d.path(v.path)
	if !ok {
		return "", false
	}
	return keyString(x), true
}

// concat joins the parts, all strings (CEL has no + of a string and another type).
func (v *valueRef) concat(d *eventData) (string, bool) {
	n := 0
	for i := range v.parts {
		p := &v.parts[i]
		if p.path == nil {
			n += len(p.lit.(string))
			continue
		}
		sc, ok := d.scalarAt(p.path)
		if !ok || sc.kind != kindString {
			return "", false
		}
		n += len(sc.s)
	}
	b := make([]byte, 0, n)
	for i := range v.parts {
		p := &v.parts[i]
		if p.path == nil {
			b = append(b, p.lit.(string)...)
			continue
		}
		sc, _ := d.scalarAt(p.path)
		b = append(b, sc.s...)
	}
	return string(b), true
}

// histCall reads history.NAME(literal name, K[, V]) with K and V data paths or literals.
func histCall(e ast.Expr, fn string, histories map[string]*history) (*history, []valueRef, bool) {
	if e.Kind() != ast.CallKind {
		return nil, nil, false
	}
	c := e.AsCall()
	if c.IsMemberFunction() || c.FunctionName() != fn {
		return nil, nil, false
	}
	args := c.Args()
	if len(args) < 2 || args[0].Kind() != ast.LiteralKind {
		return nil, nil, false
	}
	name, ok := args[0].AsLiteral().(types.String)
	if !ok {
		return nil, nil, false
	}
	h := histories[string(name)]
	if h == nil {
		return nil, nil, false
	}
	var refs []valueRef
	for _, a := range args[1:] {
		r, ok := toValueRef(a)
		if !ok {
			return nil, nil, false
		}
		refs = append(refs, r)
	}
	return h, refs, true
}

// histPrefilter recognises the history leaves.
func histPrefilter(e ast.Expr, histories map[string]*history) (prefilter, bool) {
	if histories == nil || e.Kind() != ast.CallKind {
		return prefilter{}, false
	}
	if h, refs, ok := histCall(e, opHistSeen, histories); ok && len(refs) == 2 {
		return prefilter{op: opHistSeen, hist: h, hargs: refs}, true
	}
	c := e.AsCall()
	args := c.Args()
	op := c.FunctionName()
	if len(args) != 2 {
		return prefilter{}, false
	}
	switch op {
	case operators.Equals, operators.NotEquals, operators.Less, operators.LessEquals,
		operators.Greater, operators.GreaterEquals:
	default:
		return prefilter{}, false
	}
	for side := 0; side < 2; side++ {
		call, other := args[side], args[1-side]
		o := op
		if side == 1 {
			o = flip(op)
		}
		if h, refs, ok := histCall(call, opHistCount, histories); ok && len(refs) == 1 {
			if other.Kind() != ast.LiteralKind {
				return prefilter{}, false
			}
			lit, ok := litValue(other.AsLiteral())
			if _, isNum := lit.(float64); !ok || !isNum {
				return prefilter{}, false
			}
			return prefilter{op: opHistCount, cmp: o, lit: lit, hist: h, hargs: refs}, true
		}
		if h, refs, ok := histCall(call, opHistLast, histories); ok && len(refs) == 1 {
			if o != operators.Equals && o != operators.NotEquals {
				return prefilter{}, false
			}
			r, ok := toValueRef(other)
			if !ok || r.parts != nil {
				return prefilter{}, false
			}
			return prefilter{op: opHistLast, cmp: o, hist: h, hargs: append(refs, r)}, true
		}
	}
	return prefilter{}, false
}

func (p *prefilter) checkHistory(d *eventData) triState {
	k, ok := p.hargs[0].key(d)
	if !ok {
		return unknown
	}
	hs := p.hist.hs
	hs.mu.RLock()
	defer hs.mu.RUnlock()
	e, _ := hs.m.get(k, hs.now)
	switch p.op {
	case opHistCount:
		n := 0.0
		if e != nil {
			n = float64(e.Count)
		}
		return compareNum(p.cmp, n, p.lit.(float64))
	case opHistSeen:
		v, ok := p.hargs[1].key(d)
		if !ok {
			return unknown
		}
		if e == nil {
			return no
		}
		_, seen := e.Distinct[v]
		return boolState(seen)
	case opHistLast:
		var last any // no entry: null
		if e != nil {
			last = e.Last
		}
		eq := unknown
		r := &p.hargs[1]
		if raw := d.rawComposite1(r.path); raw != nil && e != nil && e.lastRaw != "" && e.lastRaw == string(raw) {
			eq = yes // the very text Last was decoded from
		} else if r.path == nil {
			eq = celEqual(last, r.lit)
		} else if sc, ok := d.scalarAt(r.path); ok {
			eq = celEqualScalar(last, sc)
		} else if x, ok := d.path(r.path); ok {
			eq = celEqual(last, x)
		}
		if eq == unknown || p.cmp == operators.Equals {
			return eq
		}
		return boolState(eq == no)
	}
	return unknown
}

func compareNum(op string, f, lit float64) triState {
	switch op {
	case operators.Equals:
		return boolState(f == lit)
	case operators.NotEquals:
		return boolState(f != lit)
	case operators.Less:
		return boolState(f < lit)
	case operators.LessEquals:
		return boolState(f <= lit)
	case operators.Greater:
		return boolState(f > lit)
	case operators.GreaterEquals:
		return boolState(f >= lit)
	}
	return unknown
}

// exactNum reads a number CEL compares exactly with a double: float64, or an integer within
// 2^53.
func exactNum(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int64:
		return float64(x), x <= 1<<53 && x >= -(1<<53)
	case int:
		return float64(x), x <= 1<<53 && x >= -(1<<53)
	case uint64:
		return float64(x), x <= 1<<53
	}
	return 0, false
}

// celEqual is CEL's heterogeneous equality over the shapes of decoded data (and the integers
// CEL results add): values of different kinds are unequal, numbers compare by value, lists and
// maps element by element. It answers unknown for anything else.
func celEqual(a, b any) triState {
	if fa, ok := exactNum(a); ok {
		if fb, ok := exactNum(b); ok {
			return boolState(fa == fb)
		}
	}
	switch x := a.(type) {
	case nil:
		return isKind(b, func(v any) bool { return v == nil })
	case bool:
		return isKind(b, func(v any) bool { w, ok := v.(bool); return ok && w == x })
	case string:
		return isKind(b, func(v any) bool { w, ok := v.(string); return ok && w == x })
	case float64, int64, int, uint64:
		if _, ok := exactNum(a); !ok {
			return unknown
		}
		return isKind(b, func(any) bool { return false }) // b is not an exact number
	case []any:
		y, ok := b.([]any)
		if !ok {
			return isKind(b, func(any) bool { return false })
		}
		if len(x) != len(y) {
			return no
		}
		res := yes
		for i := range x {
			switch celEqual(x[i], y[i]) {
			case no:
				return no
			case unknown:
				res = unknown
			}
		}
		return res
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok {
			return isKind(b, func(any) bool { return false })
		}
		if len(x) != len(y) {
			return no
		}
		res := yes
		for k, v := range x {
			w, ok := y[k]
			if !ok {
				return no
			}
			switch celEqual(v, w) {
			case no:
				return no
			case unknown:
				res = unknown
			}
		}
		return res
	}
	return unknown
}

// isKind answers f(b) when b is one of the shapes celEqual knows, else unknown.
func isKind(b any, f func(any) bool) triState {
	switch x := b.(type) {
	case nil, bool, string, []any, map[string]any:
		return boolState(f(b))
	case float64:
		if math.IsNaN(x) {
			return no
		}
		return boolState(f(b))
	case int64, int, uint64:
		if _, ok := exactNum(b); ok {
			return boolState(f(b))
		}
	}
	return unknown
}

// celEqualScalar compares a native value with an event scalar without boxing the scalar.
func celEqualScalar(a any, sc scalar) triState {
	switch sc.kind {
	case kindString:
		switch x := a.(type) {
		case string:
			return boolState(x == sc.s)
		}
		return isKind(a, func(any) bool { return false })
	case kindNumber:
		if f, ok := exactNum(a); ok {
			return boolState(f == sc.f)
		}
		return isKind(a, func(any) bool { return false })
	case kindTrue, kindFalse:
		if x, ok := a.(bool); ok {
			return boolState(x == (sc.kind == kindTrue))
		}
		return isKind(a, func(any) bool { return false })
	case kindNull:
		return isKind(a, func(v any) bool { return v == nil })
	}
	return unknown
}
