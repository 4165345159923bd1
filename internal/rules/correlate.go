package rules

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"cel.dev/cel-go/cel"
	yaml "go.yaml.in/yaml/v3"
)

// Correlation kinds, after the Sigma correlation spec and EQL sequences.
const (
	corrEventCount = "event_count" // N matching events per group within timespan
	corrValueCount = "value_count" // N distinct values of field per group within timespan
	corrSequence   = "sequence"    // steps in order per group within maxspan
)

// maxEvidenceIDs bounds the event ids a correlation finding carries.
const maxEvidenceIDs = 50

type correlation struct {
	kind      string
	groupBy   []*expr
	groupText []string
	timespan  time.Duration // window; maxspan for sequences
	threshold int
	field     *expr
	steps     []*step
	maxKeys   int
	fp        string

	cs *corrStore // shared with the next ruleset when the definition is unchanged
}

// corrStore is a correlation's per-group state; it moves to the next ruleset on reload.
type corrStore struct {
	mu sync.Mutex
	m  *boundedMap[*corrEntry]
}

type step struct {
	ruleRef string
	rule    *rule
	match   []string
	cond    *expr
	count   int
	groupBy []*expr // overrides the rule's group_by for this step
	pos     pos
}

// corrEntry is the state of one group. Exported fields are what snapshots keep.
type corrEntry struct {
	Times  []int64              `json:"times,omitempty"`  // event_count: ring of the last threshold times (unix ns)
	TNext  int                  `json:"tnext,omitempty"`  // ring position of the oldest time once full
	IDs    []string             `json:"ids,omitempty"`    // ring of the last event ids
	INext  int                  `json:"inext,omitempty"`  // ring position of the oldest id once full
	Values map[string]time.Time `json:"values,omitempty"` // value_count: value -> last seen
	Hits   []seqHit             `json:"hits,omitempty"`   // sequence
}

type seqHit struct {
	Step int       `json:"step"`
	Time time.Time `json:"time"`
	ID   string    `json:"id"`
}

func newCorrEntry() *corrEntry { return &corrEntry{} }

func (c *correlation) reset() { c.cs = &corrStore{m: newBoundedMap[*corrEntry](c.maxKeys, c.timespan)} }

type corrYAML struct {
	Type      string
	GroupBy   yaml.Node `yaml:"group_by"`
	Timespan  string
	Maxspan   string
	Threshold yaml.Node
	Field     string
	MaxKeys   int `yaml:"max_keys"`
	Steps     []yaml.Node
}

var corrKeys = []string{"type", "group_by", "timespan", "maxspan", "threshold", "field", "max_keys", "steps"}

func (c *compiler) compileCorrelation(m *merged, n *yaml.Node, costLimit uint64) (*correlation, *Error) {
	bad := func(line int, format string, a ...any) (*correlation, *Error) {
		return nil, &Error{File: m.parts["correlation"][0].file, Line: line, Item: m.label(), Msg: "correlation: " + fmt.Sprintf(format, a...)}
	}
	if n.Kind != yaml.MappingNode {
		return bad(n.Line, "must be a mapping")
	}
	for i := 0; i < len(n.Content); i += 2 {
		if !contains(corrKeys, n.Content[i].Value) {
			return bad(n.Content[i].Line, "unknown key %q (allowed: %s)", n.Content[i].Value, strings.Join(corrKeys, ", "))
		}
	}
	var y corrYAML
	if err := n.Decode(&y); err != nil {
		return bad(n.Line, "%v", err)
	}
	cr := &correlation{kind: y.Type, maxKeys: y.MaxKeys}
	if y.Threshold.Kind != 0 {
		t, err := c.intValue(&y.Threshold)
		if err != nil {
			return bad(y.Threshold.Line, "threshold: %v", err)
		}
		cr.threshold = t
	}
	if cr.maxKeys == 0 {
		cr.maxKeys = 10000
	}
	if cr.maxKeys < 1 || cr.maxKeys > 1e7 {
		return bad(n.Line, "max_keys must be from 1 to 10000000")
	}
	span := y.Timespan
	if cr.kind == corrSequence && y.Maxspan != "" {
		span = y.Maxspan
	}
	if span == "" {
		return bad(n.Line, "needs timespan (or maxspan for a sequence)")
	}
	d, err := parseDuration(span)
	if err != nil {
		return bad(n.Line, "%v", err)
	}
	cr.timespan = d
	groups, e := c.groupBy(m, &y.GroupBy, costLimit)
	if e != nil {
		return nil, e
	}
	cr.groupBy = groups
	fp := []string{cr.kind, span, fmt.Sprint(cr.threshold, cr.maxKeys)}
	for _, g := range groups {
		cr.groupText = append(cr.groupText, g.text)
		fp = append(fp, g.text)
	}
	switch cr.kind {
	case corrEventCount, corrValueCount:
		if cr.threshold < 1 || cr.threshold > 100000 {
			return bad(n.Line, "threshold must be from 1 to 100000")
		}
		if len(y.Steps) > 0 {
			return bad(n.Line, "steps belong to sequences")
		}
		if cr.kind == corrValueCount {
			if y.Field == "" {
				return bad(n.Line, "value_count needs field")
			}
			if cr.field, e = c.expr(m, "correlation", y.Field, nil, costLimit); e != nil {
				return nil, e
			}
			fp = append(fp, cr.field.text)
		}
	case corrSequence:
		if len(y.Steps) < 2 || len(y.Steps) > 8 {
			return bad(n.Line, "a sequence has 2 to 8 steps")
		}
		for i := range y.Steps {
			s, e := c.step(m, &y.Steps[i], costLimit)
			if e != nil {
				return nil, e
			}
			if s.groupBy == nil && len(cr.groupBy) == 0 {
				return bad(y.Steps[i].Line, "a sequence needs group_by (on the correlation or on every step)")
			}
			cr.steps = append(cr.steps, s)
			fp = append(fp, s.ruleRef, fmt.Sprint(s.count, s.match))
			if s.cond != nil {
				fp = append(fp, s.cond.text)
			}
		}
	default:
		return bad(n.Line, "type must be event_count, value_count or sequence, not %q", cr.kind)
	}
	cr.fp = fingerprint(fp...)
	cr.reset()
	return cr, nil
}

func (c *compiler) groupBy(m *merged, n *yaml.Node, costLimit uint64) ([]*expr, *Error) {
	var texts []string
	switch n.Kind {
	case 0:
		return nil, nil
	case yaml.ScalarNode:
		texts = []string{n.Value}
	default:
		if err := n.Decode(&texts); err != nil {
			return nil, &Error{File: m.pos.file, Line: n.Line, Item: m.label(), Msg: "group_by must be a list of expressions"}
		}
	}
	var out []*expr
	for _, t := range texts {
		x, e := c.expr(m, "correlation", t, nil, costLimit)
		if e != nil {
			e.Line = n.Line
			return nil, e
		}
		out = append(out, x)
	}
	return out, nil
}

func (c *compiler) step(m *merged, n *yaml.Node, costLimit uint64) (*step, *Error) {
	bad := func(format string, a ...any) (*step, *Error) {
		return nil, &Error{File: m.pos.file, Line: n.Line, Item: m.label(), Msg: "correlation step: " + fmt.Sprintf(format, a...)}
	}
	if n.Kind != yaml.MappingNode {
		return bad("each step is {rule: ID} or {match: [...], condition: ...}, with optional count and group_by")
	}
	var y struct {
		Rule      string
		Match     yaml.Node
		Condition string
		Count     yaml.Node
		GroupBy   yaml.Node `yaml:"group_by"`
	}
	for i := 0; i < len(n.Content); i += 2 {
		if !contains([]string{"rule", "match", "condition", "count", "group_by"}, n.Content[i].Value) {
			return bad("unknown key %q (allowed: rule, match, condition, count, group_by)", n.Content[i].Value)
		}
	}
	if err := n.Decode(&y); err != nil {
		return bad("%v", err)
	}
	s := &step{ruleRef: y.Rule, count: 1, pos: pos{m.pos.file, n.Line}}
	if y.Count.Kind != 0 {
		n, err := c.intValue(&y.Count)
		if err != nil {
			return bad("count: %v", err)
		}
		s.count = n
	}
	if s.count < 1 || s.count > 1000 {
		return bad("count must be from 1 to 1000")
	}
	switch {
	case y.Rule != "" && (y.Condition != "" || y.Match.Kind != 0):
		return bad("give either rule or match and condition")
	case y.Rule == "" && y.Condition == "":
		return bad("needs rule or condition")
	case y.Rule == "":
		var err *Error
		if y.Match.Kind != 0 {
			if s.match, err = c.matchTypes(m, "match", []src{{m.pos.file, &y.Match}}); err != nil {
				return nil, err
			}
		}
		if s.cond, err = c.expr(m, "correlation", y.Condition, cel.BoolType, costLimit); err != nil {
			err.Line = n.Line
			return nil, err
		}
	}
	g, e := c.groupBy(m, &y.GroupBy, costLimit)
	if e != nil {
		return nil, e
	}
	s.groupBy = g
	return s, nil
}

// linkSteps resolves steps that name other rules.
func (c *compiler) linkSteps(r *rule) {
	for _, s := range r.corr.steps {
		if s.ruleRef == "" {
			continue
		}
		for _, o := range c.rs.rules {
			if o.id == s.ruleRef {
				s.rule = o
			}
		}
		switch {
		case s.rule == nil:
			c.fail(&Error{File: s.pos.file, Line: s.pos.line, Item: "rule " + r.id, Msg: fmt.Sprintf("correlation step: unknown rule %q", s.ruleRef)})
		case s.rule.cond == nil:
			c.fail(&Error{File: s.pos.file, Line: s.pos.line, Item: "rule " + r.id, Msg: fmt.Sprintf("correlation step: rule %q is a sequence; steps name single-event rules", s.ruleRef)})
		default:
			s.match = s.rule.match
			s.cond = s.rule.cond
		}
	}
}

// groupKey writes the group key of the event into buf: the canonical strings (keyString) of
// the group_by values, joined by 0x1f. Plain data paths are read without decoding or
// allocating; an error (a missing field) means the event has no group and is not counted.
func groupKey(buf []byte, xs []*expr, act *activation) ([]byte, error) {
	for i, x := range xs {
		if i > 0 {
			buf = append(buf, 0x1f)
		}
		if x.path != nil && !act.reference {
			if sc, ok := act.data.scalarAt(x.path); ok {
				switch sc.kind {
				case kindString:
					buf = append(buf, sc.s...)
				case kindNumber:
					buf = appendKeyFloat(buf, sc.f)
				case kindTrue:
					buf = append(buf, "true"...)
				case kindFalse:
					buf = append(buf, "false"...)
				default:
					buf = append(buf, "null"...)
				}
				continue
			}
		}
		v, err := x.value(act)
		if err != nil {
			return buf, fmt.Errorf("group_by %s: %w", x.text, err)
		}
		buf = append(buf, keyString(v)...)
	}
	return buf, nil
}

// appendKeyFloat is keyString of a float64.
func appendKeyFloat(b []byte, x float64) []byte {
	if x == math.Trunc(x) && math.Abs(x) < 1e15 {
		return strconv.AppendInt(b, int64(x), 10)
	}
	return strconv.AppendFloat(b, x, 'g', -1, 64)
}

// groupVals are the group_by values, for the finding of a correlation that fired.
func groupVals(xs []*expr, act *activation) []any {
	vals := make([]any, len(xs))
	for i, x := range xs {
		vals[i], _ = x.value(act)
	}
	return vals
}

// ringPush adds v to a ring of at most max items; *next is the oldest item's index once full.
func ringPush[T any](s []T, next *int, v T, max int) []T {
	if len(s) < max {
		return append(s, v)
	}
	s[*next] = v
	*next = (*next + 1) % max
	return s
}

// ringOrdered returns a copy of the ring, oldest first.
func ringOrdered[T any](s []T, next int) []T {
	if next <= 0 || next >= len(s) {
		return append([]T(nil), s...)
	}
	return append(append(make([]T, 0, len(s)), s[next:]...), s[:next]...)
}

// corrResult describes a correlation that fired.
type corrResult struct {
	group  string
	count  int
	values []string
	ids    []string
	first  time.Time
	last   time.Time
}

// observeCount updates an event_count or value_count group with one matching event.
func (cr *correlation) observeCount(key []byte, t time.Time, id string, value any) (*corrResult, bool) {
	cs := cr.cs
	cs.mu.Lock()
	defer cs.mu.Unlock()
	e := cs.m.upsertBytes(key, t, newCorrEntry)
	cutoff := t.Add(-cr.timespan)
	e.IDs = ringPush(e.IDs, &e.INext, id, maxEvidenceIDs)
	switch cr.kind {
	case corrEventCount:
		e.Times = ringPush(e.Times, &e.TNext, t.UnixNano(), cr.threshold)
		if len(e.Times) < cr.threshold {
			return nil, false
		}
		oldest := time.Unix(0, e.Times[e.TNext]).UTC()
		if oldest.Before(cutoff) {
			return nil, false
		}
		res := &corrResult{group: string(key), count: len(e.Times), ids: tail(ringOrdered(e.IDs, e.INext), cr.threshold), first: oldest, last: t}
		cs.m.deleteBytes(key) // start a new window after firing
		return res, true
	case corrValueCount:
		if e.Values == nil {
			e.Values = map[string]time.Time{}
		}
		for v, vt := range e.Values {
			if vt.Before(cutoff) {
				delete(e.Values, v)
			}
		}
		e.Values[keyString(value)] = t
		if len(e.Values) < cr.threshold {
			return nil, false
		}
		res := &corrResult{group: string(key), count: len(e.Values), ids: ringOrdered(e.IDs, e.INext), last: t, first: t}
		for v, vt := range e.Values {
			res.values = append(res.values, v)
			if vt.Before(res.first) {
				res.first = vt
			}
		}
		sort.Strings(res.values)
		cs.m.deleteBytes(key)
		return res, true
	}
	return nil, false
}

func tail(ids []string, n int) []string {
	if len(ids) > n {
		ids = ids[len(ids)-n:]
	}
	return append([]string(nil), ids...)
}

// observeStep records that an event matched the given steps of a sequence for one group. The
// hits inside maxspan are replayed in time order: step i counts once it has its count of hits
// after step i-1 completed. The event advances the first step it can; when the last step
// completes the sequence fires and the group starts over.
func (cr *correlation) observeStep(key []byte, t time.Time, id string, steps []int) (*corrResult, bool) {
	cs := cr.cs
	cs.mu.Lock()
	defer cs.mu.Unlock()
	e := cs.m.upsertBytes(key, t, newCorrEntry)
	cutoff := t.Add(-cr.timespan)
	kept := e.Hits[:0]
	for _, h := range e.Hits {
		if !h.Time.Before(cutoff) {
			kept = append(kept, h)
		}
	}
	e.Hits = kept
	next, _ := cr.progress(e.Hits)
	chosen := steps[0]
	for _, s := range steps {
		if s == next {
			chosen = s
		}
	}
	e.Hits = append(e.Hits, seqHit{Step: chosen, Time: t, ID: id})
	// Bound the hits: a group that repeats an early step forever keeps only its recent hits.
	maxHits := 0
	for _, s := range cr.steps {
		maxHits += s.count
	}
	maxHits = 2*maxHits + 8
	if len(e.Hits) > maxHits {
		e.Hits = append(e.Hits[:0], e.Hits[len(e.Hits)-maxHits:]...)
	}
	done, used := cr.progress(e.Hits)
	if done < len(cr.steps) {
		return nil, false
	}
	res := &corrResult{group: string(key), count: len(used), first: used[0].Time, last: t}
	for _, h := range used {
		res.ids = append(res.ids, h.ID)
	}
	cs.m.deleteBytes(key)
	return res, true
}

// progress replays hits (sorted by time) and returns how many steps are complete and the hits
// that completed them. A step's window slides: only its last count hits before the next step
// are kept.
func (cr *correlation) progress(hits []seqHit) (int, []seqHit) {
	sorted := hits // events mostly come in time order: sort only when they did not
	for i := 1; i < len(hits); i++ {
		if hits[i].Time.Before(hits[i-1].Time) {
			sorted = append([]seqHit(nil), hits...)
			sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Time.Before(sorted[j].Time) })
			break
		}
	}
	stage := 0
	var cur, used []seqHit
	for _, h := range sorted {
		if stage >= len(cr.steps) {
			break
		}
		if h.Step != stage {
			continue
		}
		cur = append(cur, h)
		if len(cur) >= cr.steps[stage].count {
			used = append(used, cur...)
			cur = nil
			stage++
		}
	}
	return stage, used
}

// intValue reads an integer written as a number or as policy.NAME.
func (c *compiler) intValue(n *yaml.Node) (int, error) {
	if name, ok := strings.CutPrefix(n.Value, "policy."); ok && n.Kind == yaml.ScalarNode {
		v, ok := c.rs.policy[name]
		if !ok {
			return 0, fmt.Errorf("unknown policy value %q", name)
		}
		f, ok := toFloat(v)
		if !ok || f != float64(int(f)) {
			return 0, fmt.Errorf("policy value %q must be an integer, not %v", name, v)
		}
		return int(f), nil
	}
	var i int
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&i) != nil {
		return 0, fmt.Errorf("must be an integer or policy.NAME")
	}
	return i, nil
}
