package rules

import (
	"math"
	"regexp"
	"strings"
	"unicode/utf8"

	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
)

// A decider answers a boolean CEL expression natively, on the raw event data, when the answer
// is certain, and says "unknown" otherwise; CEL then runs as usual. It is a tree of &&, || and
// ! (and ?: over booleans) over leaves (prefilters) of the forms rules are mostly made of:
//
//	data.path OP literal           OP: == != < <= > >= in [literals]
//	data.path.lowerAscii() OP literal, data.path.upperAscii() OP literal
//	size(data.path) OP number, data.path.size() OP number
//	data.path.startsWith|endsWith|contains|matches(literal), also after lowerAscii/upperAscii
//	data.path == data.path, data.path != data.path
//	has(data.path), data.path (a boolean field)
//	history.count|seen|last over data paths and literals (histleaf.go)
//	comparisons of arithmetic over numbers, fields and history.count|mean|stddev|zscore (numeric.go)
//
// A leaf answers yes or no only when CEL would certainly give true or false: a missing field,
// a value of a type CEL would reject, a list or an object all give "unknown", so every error
// still comes from CEL and is counted as before. && and || combine the answers the way CEL
// does, which is commutative: && is false when any operand is false even if another errs, ||
// is true when any operand is true; ?: evaluates its condition, then the branch it picks.
// Everything else (other functions, comprehensions, policy maps, time, the event variable) is
// an opaque node, always "unknown".
//
// The one effect of CEL that is not commutative is a run-time cost limit, which aborts the
// evaluation where it is hit. Expressions compiled with one (those whose static cost estimate
// exceeds their limit) get a decider over the leading leaves of their top-level && only: when
// one of those is false, CEL too would have stopped there, before any costly operand.
type decider struct {
	kind byte // decAnd, decOr, decNot, decLeaf, decOpaque
	kids []decider
	leaf prefilter
}

const (
	decOpaque = iota
	decAnd
	decOr
	decNot
	decLeaf
	decCond // c ? a : b, over booleans
)

// newDecider builds the decider of e; nil when no part of it can be answered natively.
// prefixOnly restricts it to the leading leaves of the top-level && (see decider).
func newDecider(e ast.Expr, prefixOnly bool, histories map[string]*history) *decider {
	var d decider
	if prefixOnly {
		d = decider{kind: decAnd}
		for _, c := range conjuncts(e) {
			p, ok := toPrefilter(c, histories)
			if !ok {
				break
			}
			d.kids = append(d.kids, decider{kind: decLeaf, leaf: p})
		}
		if len(d.kids) == 0 {
			return nil
		}
		// An opaque operand: the prefix can say no, never yes.
		d.kids = append(d.kids, decider{kind: decOpaque})
		return &d
	}
	d = build(e, histories)
	if !d.hasLeaf() {
		return nil
	}
	return &d
}

func build(e ast.Expr, histories map[string]*history) decider {
	if e.Kind() == ast.CallKind {
		c := e.AsCall()
		switch fn := c.FunctionName(); fn {
		case operators.LogicalAnd, operators.LogicalOr:
			kind := byte(decAnd)
			if fn == operators.LogicalOr {
				kind = decOr
			}
			d := decider{kind: kind}
			for _, a := range c.Args() {
				k := build(a, histories)
				if k.kind == kind {
					d.kids = append(d.kids, k.kids...) // flatten a && (b && c)
				} else {
					d.kids = append(d.kids, k)
				}
			}
			return d
		case operators.LogicalNot:
			if len(c.Args()) == 1 {
				return decider{kind: decNot, kids: []decider{build(c.Args()[0], histories)}}
			}
		case operators.Conditional:
			if a := c.Args(); len(a) == 3 {
				return decider{kind: decCond, kids: []decider{build(a[0], histories), build(a[1], histories), build(a[2], histories)}}
			}
		}
	}
	if p, ok := toPrefilter(e, histories); ok {
		return decider{kind: decLeaf, leaf: p}
	}
	return decider{kind: decOpaque}
}

func (n *decider) hasLeaf() bool {
	if n.kind == decLeaf {
		return true
	}
	for i := range n.kids {
		if n.kids[i].hasLeaf() {
			return true
		}
	}
	return false
}

// decide answers the expression for the event's data.
func (n *decider) decide(d *eventData) triState {
	switch n.kind {
	case decLeaf:
		return n.leaf.check(d)
	case decAnd:
		res := yes
		for i := range n.kids {
			switch n.kids[i].decide(d) {
			case no:
				return no
			case unknown:
				res = unknown
			}
		}
		return res
	case decOr:
		res := no
		for i := range n.kids {
			switch n.kids[i].decide(d) {
			case yes:
				return yes
			case unknown:
				res = unknown
			}
		}
		return res
	case decNot:
		switch n.kids[0].decide(d) {
		case yes:
			return no
		case no:
			return yes
		}
	case decCond:
		// CEL evaluates the condition, then only the branch it picks.
		switch n.kids[0].decide(d) {
		case yes:
			return n.kids[1].decide(d)
		case no:
			return n.kids[2].decide(d)
		}
	}
	return unknown
}

// conjuncts lists the operands of e's top-level && chain, in order (e itself when it is not
// an &&).
func conjuncts(e ast.Expr) []ast.Expr {
	if e.Kind() == ast.CallKind && e.AsCall().FunctionName() == operators.LogicalAnd {
		var out []ast.Expr
		for _, a := range e.AsCall().Args() {
			out = append(out, conjuncts(a)...)
		}
		return out
	}
	return []ast.Expr{e}
}

// A prefilter is one leaf of a decider.
type prefilter struct {
	path  []string
	xform byte   // applied to the value first: xfLower, xfUpper, xfSize, or 0
	op    string // operators.Equals, NotEquals, In, Less, LessEquals, Greater, GreaterEquals, a string method, opHas or opTruthy
	lit   any    // string, float64, bool, nil
	set   *litSet
	re    *regexp.Regexp // for matches
	path2 []string       // data.path OP data.path2 (== and != only)
	// History leaves (histleaf.go).
	hist  *history
	hargs []valueRef
	cmp   string
	nums  []numExpr // opNumCmp (numeric.go)
}

// Value transforms.
const (
	xfLower = 'l' // lowerAscii()
	xfUpper = 'u' // upperAscii()
	xfSize  = 's' // size()
)

// String methods a prefilter answers when the receiver is a data string and the argument a
// literal; CEL's own implementations are the same strings and regexp functions. opHas is
// has(data.path), opTruthy a boolean field used as a condition.
const (
	opStartsWith = "startsWith"
	opEndsWith   = "endsWith"
	opContains   = "contains"
	opMatches    = "matches"
	opHas        = "has"
	opTruthy     = "truthy"
)

type triState int8

const (
	unknown triState = iota
	yes
	no
)

// prefilters lists the top-level conjuncts of e that are leaves, for the literal index. With
// prefixOnly, only the leading ones (see decider).
func prefilters(e ast.Expr, prefixOnly bool) []prefilter {
	var pre []prefilter
	for _, c := range conjuncts(e) {
		p, ok := toPrefilter(c, nil)
		if !ok {
			if prefixOnly {
				break
			}
			continue
		}
		pre = append(pre, p)
	}
	return pre
}

func toPrefilter(e ast.Expr, histories map[string]*history) (prefilter, bool) {
	if p, ok := histPrefilter(e, histories); ok {
		return p, true
	}
	if p, ok := simplePrefilter(e); ok {
		return p, true
	}
	if histories != nil {
		return numPrefilter(e, histories)
	}
	return prefilter{}, false
}

func simplePrefilter(e ast.Expr) (prefilter, bool) {
	switch e.Kind() {
	case ast.SelectKind:
		s := e.AsSelect()
		if s.IsTestOnly() {
			// has(data.a.b): the operand is data or a data path.
			var path []string
			if op := s.Operand(); op.Kind() == ast.IdentKind && op.AsIdent() == "data" {
				path = []string{s.FieldName()}
			} else if p, ok := dataPath(op); ok {
				path = append(p, s.FieldName())
			} else {
				return prefilter{}, false
			}
			return prefilter{path: path, op: opHas}, true
		}
		if p, ok := dataPath(e); ok {
			return prefilter{path: p, op: opTruthy}, true
		}
		return prefilter{}, false
	case ast.CallKind:
	default:
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
		path, xf, ok := operand(args[0])
		if !ok || xf == xfSize || args[1].Kind() != ast.ListKind {
			return prefilter{}, false
		}
		set := &litSet{}
		for _, el := range args[1].AsList().Elements() {
			if el.Kind() != ast.LiteralKind {
				return prefilter{}, false
			}
			v, ok := litValue(el.AsLiteral())
			if !ok {
				return prefilter{}, false
			}
			set.add(v)
		}
		return prefilter{path: path, xform: xf, op: op, set: set}, true
	default:
		return prefilter{}, false
	}
	if op == operators.Equals || op == operators.NotEquals {
		// data.a == data.b
		if p1, ok := dataPath(args[0]); ok {
			if p2, ok := dataPath(args[1]); ok {
				return prefilter{path: p1, op: op, path2: p2}, true
			}
		}
	}
	path, xf, ok := operand(args[0])
	litE := args[1]
	if !ok {
		// literal OP data.path: flip the operator.
		if path, xf, ok = operand(args[1]); !ok {
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
	return prefilter{path: path, xform: xf, op: op, lit: v}, true
}

// operand reads data.a.b, data.a.b.lowerAscii(), data.a.b.upperAscii(), size(data.a.b) and
// data.a.b.size().
func operand(e ast.Expr) ([]string, byte, bool) {
	if p, ok := dataPath(e); ok {
		return p, 0, true
	}
	if e.Kind() != ast.CallKind {
		return nil, 0, false
	}
	c := e.AsCall()
	var target ast.Expr
	switch {
	case c.IsMemberFunction() && len(c.Args()) == 0:
		target = c.Target()
	case !c.IsMemberFunction() && len(c.Args()) == 1 && c.FunctionName() == "size":
		target = c.Args()[0]
	default:
		return nil, 0, false
	}
	var xf byte
	switch c.FunctionName() {
	case "lowerAscii":
		xf = xfLower
	case "upperAscii":
		xf = xfUpper
	case "size":
		xf = xfSize
	default:
		return nil, 0, false
	}
	p, ok := dataPath(target)
	return p, xf, ok
}

func stringPrefilter(c ast.CallExpr) (prefilter, bool) {
	fn := c.FunctionName()
	switch fn {
	case opStartsWith, opEndsWith, opContains, opMatches:
	default:
		return prefilter{}, false
	}
	path, xf, ok := operand(c.Target())
	if !ok || xf == xfSize || len(c.Args()) != 1 || c.Args()[0].Kind() != ast.LiteralKind {
		return prefilter{}, false
	}
	lit, ok := c.Args()[0].AsLiteral().(types.String)
	if !ok {
		return prefilter{}, false
	}
	p := prefilter{path: path, xform: xf, op: fn, lit: string(lit)}
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

func (p *prefilter) check(d *eventData) triState {
	if p.hist != nil {
		return p.checkHistory(d)
	}
	if p.op == opNumCmp {
		return p.checkNumeric(d)
	}
	switch p.op {
	case opHas:
		return d.has(p.path)
	case opTruthy:
		v, ok := d.scalarAt(p.path)
		switch {
		case !ok:
			return unknown
		case v.kind == kindTrue:
			return yes
		case v.kind == kindFalse:
			return no
		}
		return unknown // not a bool: CEL reports it
	}
	if p.xform == 0 && len(p.path) == 1 && p.path2 == nil {
		switch p.op {
		case operators.Less, operators.LessEquals, operators.Greater, operators.GreaterEquals:
			if ans, ok := d.compareNumber(p.path[0], p.op, p.lit.(float64)); ok {
				return ans
			}
			return unknown // missing, or not a number: CEL decides (and reports errors)
		}
	}
	v, ok := d.scalarAt(p.path)
	if !ok {
		return unknown // missing, or a list or map: CEL decides (and reports errors)
	}
	switch p.xform {
	case xfLower, xfUpper:
		if v.kind != kindString {
			return unknown // no such overload: CEL reports it
		}
		if p.xform == xfLower {
			v.s = lowerASCII(v.s)
		} else {
			v.s = upperASCII(v.s)
		}
	case xfSize:
		if v.kind != kindString {
			return unknown // size of a list or map, or no such overload: CEL
		}
		v = scalar{kind: kindNumber, f: float64(utf8.RuneCountInString(v.s))}
	}
	if p.path2 != nil {
		w, ok := d.scalarAt(p.path2)
		if !ok {
			return unknown
		}
		eq := v.equalsScalar(w)
		return boolState(eq == (p.op == operators.Equals))
	}
	switch p.op {
	case operators.Equals:
		return boolState(v.equals(p.lit))
	case operators.NotEquals:
		return boolState(!v.equals(p.lit))
	case operators.In:
		return boolState(p.set.has(v))
	case opStartsWith, opEndsWith, opContains, opMatches:
		if v.kind != kindString {
			return unknown // CEL has no such overload: an error, CEL reports it
		}
		lit := p.lit.(string)
		switch p.op {
		case opStartsWith:
			return boolState(strings.HasPrefix(v.s, lit))
		case opEndsWith:
			return boolState(strings.HasSuffix(v.s, lit))
		case opContains:
			return boolState(strings.Contains(v.s, lit))
		default:
			return boolState(p.re.MatchString(v.s))
		}
	}
	if v.kind != kindNumber {
		return unknown
	}
	f, lit := v.f, p.lit.(float64)
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

// lowerASCII is CEL's lowerAscii: ASCII letters only. It allocates only when s changes.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// upperASCII is CEL's upperAscii.
func upperASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'a' && c <= 'z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'a' && b[j] <= 'z' {
					b[j] -= 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// equals is CEL's heterogeneous equality between a JSON scalar and a literal (string, float64,
// bool or nil): values of different kinds are unequal.
func (v scalar) equals(lit any) bool {
	switch x := lit.(type) {
	case string:
		return v.kind == kindString && v.s == x
	case float64:
		return v.kind == kindNumber && v.f == x
	case bool:
		return (x && v.kind == kindTrue) || (!x && v.kind == kindFalse)
	case nil:
		return v.kind == kindNull
	}
	return false
}

// equalsScalar is CEL's equality between two JSON scalars.
func (v scalar) equalsScalar(w scalar) bool {
	if v.kind != w.kind {
		return false
	}
	switch v.kind {
	case kindString:
		return v.s == w.s
	case kindNumber:
		return v.f == w.f
	}
	return true // true, false, null
}

// litSet is a set of scalar literals (the Go values JSON decoding gives), typed so that a
// lookup allocates nothing.
type litSet struct {
	strs                   map[string]struct{}
	nums                   map[float64]struct{}
	hasTrue, hasFalse, nul bool
}

func (l *litSet) add(v any) {
	switch x := v.(type) {
	case string:
		if l.strs == nil {
			l.strs = map[string]struct{}{}
		}
		l.strs[x] = struct{}{}
	case float64:
		if l.nums == nil {
			l.nums = map[float64]struct{}{}
		}
		l.nums[x] = struct{}{}
	case bool:
		if x {
			l.hasTrue = true
		} else {
			l.hasFalse = true
		}
	case nil:
		l.nul = true
	}
}

func (l *litSet) has(v scalar) bool {
	switch v.kind {
	case kindString:
		_, ok := l.strs[v.s]
		return ok
	case kindNumber:
		_, ok := l.nums[v.f]
		return ok
	case kindTrue:
		return l.hasTrue
	case kindFalse:
		return l.hasFalse
	case kindNull:
		return l.nul
	}
	return false
}

func boolState(b bool) triState {
	if b {
		return yes
	}
	return no
}
