package rules

import (
	"math"
	"regexp"
	"strings"

	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
)

// A prefilter is one top-level conjunct of a condition, of the form data.path OP literal, that
// the engine checks natively on the decoded data before running CEL. It answers only when the
// answer is certain: a false conjunct makes the whole && false in CEL too (CEL's && is false
// whenever any operand is false, even if another errs), so the rule can be skipped. When the
// field is missing or of a type CEL would reject, it answers "unknown" and CEL decides, errors
// included. Most rules are rejected this way for a few nanoseconds.
type prefilter struct {
	path []string
	op   string // operators.Equals, NotEquals, In, Less, LessEquals, Greater, GreaterEquals, or a string method
	lit  any    // string, float64, bool, nil
	set  map[any]struct{}
	re   *regexp.Regexp // for matches
}

// String methods a prefilter answers when the receiver is a data string and the argument a
// literal; CEL's own implementations are the same strings and regexp functions.
const (
	opStartsWith = "startsWith"
	opEndsWith   = "endsWith"
	opContains   = "contains"
	opMatches    = "matches"
)

type triState int8

const (
	unknown triState = iota
	yes
	no
)

// prefilters extracts the conjuncts it can check; all reports whether they are the whole
// condition, so that when every one says yes CEL need not run at all.
func prefilters(e ast.Expr) (pre []prefilter, all bool) {
	all = true
	var walk func(ast.Expr)
	walk = func(e ast.Expr) {
		if e.Kind() == ast.CallKind && e.AsCall().FunctionName() == operators.LogicalAnd {
			for _, a := range e.AsCall().Args() {
				walk(a)
			}
			return
		}
		if p, ok := toPrefilter(e); ok {
			pre = append(pre, p)
			return
		}
		all = false
	}
	walk(e)
	if len(pre) == 0 {
		all = false
	}
	return pre, all
}

func toPrefilter(e ast.Expr) (prefilter, bool) {
	if e.Kind() != ast.CallKind {
		return prefilter{}, false
	}
	c := e.AsCall()
	args := c.Args()
	if c.IsMemberFunction() {
		return stringPrefilter(c)
	}
	if len(args) != 2 {
		return prefilter{}, false
	}
	op := c.FunctionName()
	switch op {
	case operators.Equals, operators.NotEquals, operators.Less, operators.LessEquals,
		operators.Greater, operators.GreaterEquals:
	case operators.In:
		path, ok := dataPath(args[0])
		if !ok || args[1].Kind() != ast.ListKind {
			return prefilter{}, false
		}
		set := map[any]struct{}{}
		for _, el := range args[1].AsList().Elements() {
			if el.Kind() != ast.LiteralKind {
				return prefilter{}, false
			}
			v, ok := litValue(el.AsLiteral())
			if !ok {
				return prefilter{}, false
			}
			set[v] = struct{}{}
		}
		return prefilter{path: path, op: op, set: set}, true
	default:
		return prefilter{}, false
	}
	path, ok := dataPath(args[0])
	litE := args[1]
	if !ok {
		// literal OP data.path: flip the operator.
		if path, ok = dataPath(args[1]); !ok {
			return prefilter{}, false
		}
		litE = args[0]
		op = flip(op)
	}
	if litE.Kind() != ast.LiteralKind {
		return prefilter{}, false
	}
	v, ok := litValue(litE.AsLiteral())
	if !ok {
		return prefilter{}, false
	}
	if op != operators.Equals && op != operators.NotEquals {
		if _, isNum := v.(float64); !isNum {
			return prefilter{}, false
		}
	}
	return prefilter{path: path, op: op, lit: v}, true
}

func stringPrefilter(c ast.CallExpr) (prefilter, bool) {
	fn := c.FunctionName()
	switch fn {
	case opStartsWith, opEndsWith, opContains, opMatches:
	default:
		return prefilter{}, false
	}
	path, ok := dataPath(c.Target())
	if !ok || len(c.Args()) != 1 || c.Args()[0].Kind() != ast.LiteralKind {
		return prefilter{}, false
	}
	lit, ok := c.Args()[0].AsLiteral().(types.String)
	if !ok {
		return prefilter{}, false
	}
	p := prefilter{path: path, op: fn, lit: string(lit)}
	if fn == opMatches {
		re, err := regexp.Compile(string(lit))
		if err != nil {
			return prefilter{}, false // CEL reports the bad pattern
		}
		p.re = re
	}
	return p, true
}

func flip(op string) string {
	switch op {
	case operators.Less:
		return operators.Greater
	case operators.LessEquals:
		return operators.GreaterEquals
	case operators.Greater:
		return operators.Less
	case operators.GreaterEquals:
		return operators.LessEquals
	}
	return op
}

// dataPath reads data.a.b (not has() tests) as ["a", "b"].
func dataPath(e ast.Expr) ([]string, bool) {
	var rev []string
	for e.Kind() == ast.SelectKind {
		s := e.AsSelect()
		if s.IsTestOnly() {
			return nil, false
		}
		rev = append(rev, s.FieldName())
		e = s.Operand()
	}
	if e.Kind() != ast.IdentKind || e.AsIdent() != "data" || len(rev) == 0 {
		return nil, false
	}
	out := make([]string, len(rev))
	for i, f := range rev {
		out[len(rev)-1-i] = f
	}
	return out, true
}

// litValue maps a CEL literal to the Go value JSON decoding gives; numbers become float64 when
// exact.
func litValue(v ref.Val) (any, bool) {
	switch x := v.(type) {
	case types.String:
		return string(x), true
	case types.Bool:
		return bool(x), true
	case types.Double:
		return float64(x), !math.IsNaN(float64(x))
	case types.Int:
		if x > 1<<53 || x < -(1<<53) {
			return nil, false
		}
		return float64(x), true
	case types.Uint:
		if x > 1<<53 {
			return nil, false
		}
		return float64(x), true
	case types.Null:
		return nil, true
	}
	return nil, false
}

func (p *prefilter) check(data map[string]any) triState {
	var cur any = data
	for _, f := range p.path {
		m, ok := cur.(map[string]any)
		if !ok {
			return unknown
		}
		if cur, ok = m[f]; !ok {
			return unknown
		}
	}
	switch p.op {
	case operators.Equals:
		return boolState(scalarEqual(cur, p.lit))
	case operators.NotEquals:
		return boolState(!scalarEqual(cur, p.lit))
	case operators.In:
		switch cur.(type) {
		case string, float64, bool, nil:
			_, ok := p.set[cur]
			return boolState(ok)
		}
		return unknown // lists and maps: let CEL compare them
	case opStartsWith, opEndsWith, opContains, opMatches:
		str, ok := cur.(string)
		if !ok {
			return unknown // CEL has no such overload: an error, CEL reports it
		}
		lit := p.lit.(string)
		switch p.op {
		case opStartsWith:
			return boolState(strings.HasPrefix(str, lit))
		case opEndsWith:
			return boolState(strings.HasSuffix(str, lit))
		case opContains:
			return boolState(strings.Contains(str, lit))
		default:
			return boolState(p.re.MatchString(str))
		}
	}
	f, ok := cur.(float64)
	if !ok {
		return unknown
	}
	lit := p.lit.(float64)
	switch p.op {
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

// scalarEqual is CEL's heterogeneous equality between a JSON value and a scalar literal: values
// of different kinds are unequal.
func scalarEqual(v, lit any) bool {
	switch x := v.(type) {
	case string, bool, float64, nil:
		return x == lit
	}
	return false
}

func boolState(b bool) triState {
	if b {
		return yes
	}
	return no
}
