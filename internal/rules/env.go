package rules

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/ext"
)

// newEnv builds the CEL environment of one ruleset. History functions look histories up by name
// in the ruleset being compiled.
func newEnv(lookup func(string) *history) (*cel.Env, error) {
	opts := []cel.EnvOption{
		cel.Variable("event", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("data", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("subject", cel.StringType),
		cel.Variable("time", cel.TimestampType),
		cel.Variable("corr", cel.MapType(cel.StringType, cel.DynType)),
		cel.CrossTypeNumericComparisons(true),
		cel.OptionalTypes(),
		ext.Strings(), ext.Math(), ext.Sets(), ext.Lists(),
		cel.ParserExpressionSizeLimit(512 << 10),
		cel.ParserRecursionLimit(200),
		cel.Function("net.allowed", cel.Overload("net_allowed", []*cel.Type{cel.DynType, cel.ListType(cel.DynType)}, cel.BoolType,
			cel.BinaryBinding(netAllowed))),
		cel.Function("schema.diff", cel.Overload("schema_diff", []*cel.Type{cel.DynType, cel.DynType}, cel.MapType(cel.StringType, cel.ListType(cel.StringType)),
			cel.BinaryBinding(schemaDiff))),
	}
	opts = append(opts, historyFuncs(lookup)...)
	return cel.NewEnv(opts...)
}

// expr is one compiled CEL expression.
type expr struct {
	text string
	prg  cel.Program
	ast  *cel.Ast
	path []string // set when the expression is a plain data.a.b path, read without CEL
	// constant is set when the expression is a literal true or false; literal holds the value
	// of any literal (a history key such as "all").
	constant  *bool
	literal   any
	isLiteral bool
	concat    *valueRef // a concatenation of strings and data fields, joined without CEL
	// dec answers a boolean expression natively when it can (see decider); runtimeCost says
	// the program checks its cost limit as it runs.
	dec         *decider
	runtimeCost bool
}

// errNoSuchKey is what value returns for a missing data field, like CEL's "no such key".
type errNoSuchKey string

func (e errNoSuchKey) Error() string { return "no such key: " + string(e) }

// value evaluates to a native value; plain data paths are read directly.
func (e *expr) value(act *activation) (any, error) {
	if e.isLiteral {
		return e.literal, nil
	}
	if e.concat != nil && !act.reference {
		if s, ok := e.concat.concat(act.data); ok {
			return s, nil
		}
	}
	if e.path != nil {
		v, ok := act.value(e.path)
		if !ok {
			return nil, errNoSuchKey(e.path[len(e.path)-1])
		}
		return v, nil
	}
	v, err := e.eval(act)
	if err != nil {
		return nil, err
	}
	return native(v), nil
}

// eval runs the program. Programs share the event's execution frame, except those that
// track their cost as they run: the cost tracker stays on the frame it is attached to, and
// would charge (and cut) every program evaluated after it on that frame.
func (e *expr) eval(act *activation) (ref.Val, error) {
	var vars any = act
	if !e.runtimeCost {
		vars = act.vars()
	}
	v, _, err := e.prg.Eval(vars)
	if err != nil {
		return nil, err
	}
	if types.IsError(v) {
		return nil, v.(*types.Err)
	}
	return v, nil
}

// compileExpr compiles text; want is the required output type or nil for any. costLimit bounds
// the evaluation cost: when the static estimate is within it no run-time tracking is needed,
// otherwise the program is given a run-time limit.
func compileExpr(env *cel.Env, text string, want *cel.Type, costLimit uint64, histories map[string]*history) (*expr, error) {
	a, iss := env.Compile(text)
	if iss != nil && iss.Err() != nil {
		return nil, fmt.Errorf("%s", strings.TrimSpace(iss.Err().Error()))
	}
	if want != nil && !a.OutputType().IsAssignableType(want) && a.OutputType() != cel.DynType {
		return nil, fmt.Errorf("must be %s, not %s", want, a.OutputType())
	}
	if err := checkCalls(a.NativeRep().Expr(), histories); err != nil {
		return nil, err
	}
	popts := []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize)}
	est, err := env.EstimateCost(a, sizeEstimator{})
	runtimeCost := err != nil || est.Max > costLimit
	if runtimeCost {
		popts = append(popts, cel.CostLimit(costLimit))
	}
	prg, err := env.Program(a, popts...)
	if err != nil {
		return nil, err
	}
	x := &expr{text: text, prg: prg, ast: a, runtimeCost: runtimeCost}
	if want == cel.BoolType {
		x.dec = newDecider(a.NativeRep().Expr(), runtimeCost, histories)
	}
	if p, ok := dataPath(a.NativeRep().Expr()); ok {
		x.path = p
	}
	if r, ok := toValueRef(a.NativeRep().Expr()); ok && r.parts != nil {
		x.concat = &r
	}
	if root := a.NativeRep().Expr(); root.Kind() == ast.LiteralKind {
		if b, ok := root.AsLiteral().(types.Bool); ok {
			c := bool(b)
			x.constant = &c
		}
		x.literal, x.isLiteral = native(root.AsLiteral()), true
	}
	return x, nil
}

// checkCalls verifies that history.* calls name a declared history with a literal.
func checkCalls(e ast.Expr, histories map[string]*history) error {
	var err error
	visit(e, func(n ast.Expr) {
		if err != nil || n.Kind() != ast.CallKind {
			return
		}
		c := n.AsCall()
		if !strings.HasPrefix(c.FunctionName(), "history.") || len(c.Args()) == 0 {
			return
		}
		a0 := c.Args()[0]
		if a0.Kind() != ast.LiteralKind {
			err = fmt.Errorf("%s: the history name must be a string literal", c.FunctionName())
			return
		}
		name, _ := a0.AsLiteral().(types.String)
		if _, ok := histories[string(name)]; !ok {
			err = fmt.Errorf("%s: unknown history %q (declare it with a history item)", c.FunctionName(), string(name))
		}
	})
	return err
}

// usesIdent reports whether e refers to the variable name.
func usesIdent(e ast.Expr, name string) bool {
	found := false
	visit(e, func(n ast.Expr) {
		if n.Kind() == ast.IdentKind && n.AsIdent() == name {
			found = true
		}
	})
	return found
}

func visit(e ast.Expr, f func(ast.Expr)) {
	if e == nil {
		return
	}
	f(e)
	switch e.Kind() {
	case ast.CallKind:
		c := e.AsCall()
		if c.IsMemberFunction() {
			visit(c.Target(), f)
		}
		for _, a := range c.Args() {
			visit(a, f)
		}
	case ast.SelectKind:
		visit(e.AsSelect().Operand(), f)
	case ast.ListKind:
		for _, x := range e.AsList().Elements() {
			visit(x, f)
		}
	case ast.MapKind:
		for _, en := range e.AsMap().Entries() {
			me := en.AsMapEntry()
			visit(me.Key(), f)
			visit(me.Value(), f)
		}
	case ast.ComprehensionKind:
		cx := e.AsComprehension()
		visit(cx.IterRange(), f)
		visit(cx.AccuInit(), f)
		visit(cx.LoopCondition(), f)
		visit(cx.LoopStep(), f)
		visit(cx.Result(), f)
	case ast.StructKind:
		for _, fl := range e.AsStruct().Fields() {
			visit(fl.AsStructField().Value(), f)
		}
	}
}

// sizeEstimator bounds input sizes by the event decoder's limits, so the static cost estimate of
// ordinary conditions is finite.
type sizeEstimator struct{}

func (sizeEstimator) EstimateSize(n cost.AstNode) *cost.SizeEstimate {
	if len(n.Path()) > 0 {
		return &cost.SizeEstimate{Min: 0, Max: 64 << 10}
	}
	return nil
}

func (sizeEstimator) EstimateCallCost(string, string, *cost.AstNode, []cost.AstNode) *cost.CallEstimate {
	return nil
}

// netAllowed reports whether a destination (host name or IP address) is covered by an
// allow-list of exact names, ".suffix" or "*.suffix" domains and CIDR prefixes.
func netAllowed(dest, list ref.Val) ref.Val {
	d, ok := dest.(types.String)
	if !ok {
		return types.NewErr("net.allowed: destination must be a string")
	}
	host := strings.ToLower(string(d))
	if h, _, found := strings.Cut(host, ":"); found && strings.Count(host, ":") == 1 {
		host = h // host:port
	}
	ip, ipErr := netip.ParseAddr(host)
	l, ok := list.(traits.Lister)
	if !ok {
		return types.NewErr("net.allowed: allow-list must be a list")
	}
	it := l.Iterator()
	for it.HasNext() == types.True {
		s, ok := it.Next().(types.String)
		if !ok {
			continue
		}
		entry := strings.ToLower(string(s))
		switch {
		case entry == host:
			return types.True
		case strings.HasPrefix(entry, "*.") && strings.HasSuffix(host, entry[1:]):
			return types.True
		case strings.HasPrefix(entry, ".") && strings.HasSuffix(host, entry):
			return types.True
		case strings.Contains(entry, "/") && ipErr == nil:
			if p, err := netip.ParsePrefix(entry); err == nil && p.Contains(ip) {
				return types.True
			}
		}
	}
	return types.False
}

// schemaDiff compares two schemas ([{name, type}]) and lists the columns added, dropped and
// retyped, for rules and titles about schema changes.
func schemaDiff(before, after ref.Val) ref.Val {
	cols := func(v ref.Val) map[string]string {
		out := map[string]string{}
		l, ok := native(v).([]any)
		if !ok {
			return out
		}
		for _, c := range l {
			if m, ok := c.(map[string]any); ok {
				out[display(m["name"])] = display(m["type"])
			}
		}
		return out
	}
	b, a := cols(before), cols(after)
	var added, dropped, retyped []string
	for n, t := range a {
		bt, ok := b[n]
		switch {
		case !ok:
			added = append(added, n)
		case bt != t:
			retyped = append(retyped, n+": "+bt+" -> "+t)
		}
	}
	for n := range b {
		if _, ok := a[n]; !ok {
			dropped = append(dropped, n)
		}
	}
	sort.Strings(added)
	sort.Strings(dropped)
	sort.Strings(retyped)
	return types.DefaultTypeAdapter.NativeToValue(map[string][]string{
		"added": nonNil(added), "dropped": nonNil(dropped), "retyped": nonNil(retyped)})
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
