package rules

import (
	"math"

	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
)

// Numeric operands of decider leaves: comparisons whose sides are arithmetic over literals,
// data fields and the numeric history functions, as in
//
//	math.abs(history.zscore("dataset_rows", data.dataset, data.rows)) > double(4)
//	data.value < history.mean("model_metric", data.model + "/" + data.metric) * (1.0 - double(0.05))
//
// Values carry CEL's types (int or double) and follow CEL's rules: arithmetic only between
// values of one type (an int and a double are "no such overload"), int overflow and division
// by zero are errors, double arithmetic is IEEE, comparisons across int and double are exact,
// ordering a NaN is an error. Every error is "unknown", so CEL reports it.

type numVal struct {
	isInt bool
	i     int64
	f     float64
}

type numExpr struct {
	kind  byte // numLit, numPath, numHist, numDouble, numAbs, numBin
	lit   numVal
	path  []string
	hfn   string // history function
	hist  *history
	hargs []valueRef
	op    string // numBin: operators.Add, Subtract, Multiply, Divide
	kids  []numExpr
}

const (
	numLit = iota
	numPath
	numHist
	numDouble
	numAbs
	numBin
)

// buildNum reads e as a numeric expression; ok is false for anything else.
func buildNum(e ast.Expr, histories map[string]*history) (numExpr, bool) {
	switch e.Kind() {
	case ast.LiteralKind:
		switch x := e.AsLiteral().(type) {
		case types.Int:
			return numExpr{kind: numLit, lit: numVal{isInt: true, i: int64(x)}}, true
		case types.Double:
			return numExpr{kind: numLit, lit: numVal{f: float64(x)}}, true
		}
		return numExpr{}, false
	case ast.SelectKind:
		p, ok := dataPath(e)
		return numExpr{kind: numPath, path: p}, ok
	case ast.CallKind:
	default:
		return numExpr{}, false
	}
	c := e.AsCall()
	args := c.Args()
	fn := c.FunctionName()
	switch fn {
	case "history.count", "history.mean", "history.stddev", "history.zscore":
		want := 1
		if fn == "history.zscore" {
			want = 2
		}
		h, refs, ok := histCall(e, fn, histories)
		if !ok || len(refs) != want {
			return numExpr{}, false
		}
		return numExpr{kind: numHist, hfn: fn, hist: h, hargs: refs}, true
	case "double", "math.abs":
		if c.IsMemberFunction() || len(args) != 1 {
			return numExpr{}, false
		}
		k, ok := buildNum(args[0], histories)
		if !ok {
			return numExpr{}, false
		}
		kind := byte(numDouble)
		if fn == "math.abs" {
			kind = numAbs
		}
		return numExpr{kind: kind, kids: []numExpr{k}}, true
	case operators.Add, operators.Subtract, operators.Multiply, operators.Divide:
		if len(args) != 2 {
			return numExpr{}, false
		}
		a, ok1 := buildNum(args[0], histories)
		b, ok2 := buildNum(args[1], histories)
		if !ok1 || !ok2 {
			return numExpr{}, false
		}
		return numExpr{kind: numBin, op: fn, kids: []numExpr{a, b}}, true
	}
	return numExpr{}, false
}

// eval computes the value; ok is false where CEL would raise an error.
func (n *numExpr) eval(d *eventData) (numVal, bool) {
	switch n.kind {
	case numLit:
		return n.lit, true
	case numPath:
		if len(n.path) == 1 {
			if f := d.field(n.path[0]); f != nil && f.kind == kindNumber {
				return numVal{f: d.number(f)}, true
			}
			return numVal{}, false
		}
		sc, ok := d.scalarAt(n.path)
		if !ok || sc.kind != kindNumber {
			return numVal{}, false
		}
		return numVal{f: sc.f}, true
	case numHist:
		return n.history(d)
	case numDouble:
		v, ok := n.kids[0].eval(d)
		if !ok {
			return v, false
		}
		if v.isInt {
			return numVal{f: float64(v.i)}, true
		}
		return v, true
	case numAbs:
		v, ok := n.kids[0].eval(d)
		switch {
		case !ok:
			return v, false
		case v.isInt && v.i == math.MinInt64:
			return v, false // overflow
		case v.isInt && v.i < 0:
			v.i = -v.i
		case !v.isInt:
			v.f = math.Abs(v.f)
		}
		return v, true
	case numBin:
		a, ok := n.kids[0].eval(d)
		if !ok {
			return a, false
		}
		b, ok := n.kids[1].eval(d)
		if !ok || a.isInt != b.isInt {
			return a, false // an error, or int with double: no such overload
		}
		if !a.isInt {
			switch n.op {
			case operators.Add:
				return numVal{f: a.f + b.f}, true
			case operators.Subtract:
				return numVal{f: a.f - b.f}, true
			case operators.Multiply:
				return numVal{f: a.f * b.f}, true
			default:
				return numVal{f: a.f / b.f}, true
			}
		}
		x, y := a.i, b.i
		var r int64
		switch n.op {
		case operators.Add:
			r = x + y
			if (r > x) != (y > 0) {
				return a, false
			}
		case operators.Subtract:
			r = x - y
			if (r < x) != (y > 0) {
				return a, false
			}
		case operators.Multiply:
			if x != 0 && y != 0 {
				r = x * y
				if r/y != x || (x == -1 && y == math.MinInt64) || (y == -1 && x == math.MinInt64) {
					return a, false
				}
			}
		default:
			if y == 0 || (x == math.MinInt64 && y == -1) {
				return a, false
			}
			r = x / y
		}
		return numVal{isInt: true, i: r}, true
	}
	return numVal{}, false
}

// history reads history.count/mean/stddev/zscore as the CEL functions do.
func (n *numExpr) history(d *eventData) (numVal, bool) {
	k, ok := n.hargs[0].key(d)
	if !ok {
		return numVal{}, false
	}
	var z float64
	if n.hfn == "history.zscore" {
		// The value must be a number (an error otherwise, before the history is read).
		r := &n.hargs[1]
		if r.path == nil {
			if z, ok = exactNum(r.lit); !ok {
				return numVal{}, false
			}
		} else if sc, ok := d.scalarAt(r.path); ok && sc.kind == kindNumber {
			z = sc.f
		} else {
			return numVal{}, false
		}
	}
	hs := n.hist.hs
	hs.mu.RLock()
	defer hs.mu.RUnlock()
	e, _ := hs.m.get(k, hs.now)
	switch n.hfn {
	case "history.count":
		if e == nil {
			return numVal{isInt: true}, true
		}
		return numVal{isInt: true, i: e.Count}, true
	case "history.mean", "history.stddev":
		if e == nil {
			return numVal{}, true
		}
		m, s := meanStd(e.Nums)
		if n.hfn == "history.mean" {
			return numVal{f: m}, true
		}
		return numVal{f: s}, true
	}
	if e == nil {
		return numVal{}, true
	}
	return numVal{f: zscore(e.Nums, z)}, true
}

// compareVals is CEL's comparison of two numbers of either type; ok is false for an ordering
// of NaN (an error in CEL) or an int too large to compare exactly here.
func compareVals(op string, a, b numVal) (triState, bool) {
	if a.isInt && b.isInt {
		switch op {
		case operators.Equals:
			return boolState(a.i == b.i), true
		case operators.NotEquals:
			return boolState(a.i != b.i), true
		case operators.Less:
			return boolState(a.i < b.i), true
		case operators.LessEquals:
			return boolState(a.i <= b.i), true
		case operators.Greater:
			return boolState(a.i > b.i), true
		case operators.GreaterEquals:
			return boolState(a.i >= b.i), true
		}
		return unknown, false
	}
	fa, oka := a.float()
	fb, okb := b.float()
	if !oka || !okb {
		return unknown, false
	}
	if (math.IsNaN(fa) || math.IsNaN(fb)) && op != operators.Equals && op != operators.NotEquals {
		return unknown, false
	}
	return compareNum(op, fa, fb), true
}

func (v numVal) float() (float64, bool) {
	if !v.isInt {
		return v.f, true
	}
	return float64(v.i), v.i <= 1<<53 && v.i >= -(1<<53)
}

// numPrefilter recognises a comparison of numeric expressions (once the simpler leaves have
// declined it).
func numPrefilter(e ast.Expr, histories map[string]*history) (prefilter, bool) {
	if e.Kind() != ast.CallKind {
		return prefilter{}, false
	}
	c := e.AsCall()
	switch c.FunctionName() {
	case operators.Equals, operators.NotEquals, operators.Less, operators.LessEquals,
		operators.Greater, operators.GreaterEquals:
	default:
		return prefilter{}, false
	}
	if len(c.Args()) != 2 {
		return prefilter{}, false
	}
	a, ok1 := buildNum(c.Args()[0], histories)
	b, ok2 := buildNum(c.Args()[1], histories)
	if !ok1 || !ok2 {
		return prefilter{}, false
	}
	return prefilter{op: opNumCmp, cmp: c.FunctionName(), nums: []numExpr{a, b}}, true
}

const opNumCmp = "numcmp"

func (p *prefilter) checkNumeric(d *eventData) triState {
	a, ok := p.nums[0].eval(d)
	if !ok {
		return unknown
	}
	b, ok := p.nums[1].eval(d)
	if !ok {
		return unknown
	}
	ans, ok := compareVals(p.cmp, a, b)
	if !ok {
		return unknown
	}
	return ans
}
