package rules

import (
	"sort"

	"cel.dev/cel-go/common/operators"
)

// litIndex narrows the single-event rules of one event type to those an event can match,
// using the literal constraints in their conditions. A rule whose condition has a top-level
// conjunct data.path == LITERAL or data.path in [LITERALS] is filed under that path and those
// values; an event then selects, for each indexed path, the rules filed under the value it
// carries, plus every rule without such a conjunct. A rule left out is one whose conjunct is
// false for the event, which makes the whole condition false in CEL too (CEL's && is false
// when any operand is false, even if another errs), so leaving it out changes no result, no
// error count and no match count; TestIndexChangesNothing and FuzzIndexChangesNothing check it
// against evaluating every rule. When the event lacks the path, or holds a list or an object
// there, every rule filed under the path is a candidate and CEL decides as before.
//
// Candidates are a bit set over the bucket's rules, so they are evaluated in rule order.
type litIndex struct {
	words  int
	always bitset // rules without an indexed conjunct
	fields []*fieldIndex
	ranges []*rangeIndex
}

// rangeIndex files rules whose only indexable conjunct is a threshold on a top-level number,
// data.name OP number (OP one of < <= > >=), sorted by threshold: an event selects those whose
// threshold its value can pass. Values are bracketed without parsing when that decides
// (eventData.numberBounds).
type rangeIndex struct {
	name  string
	above []threshold // > and >=, by increasing threshold
	below []threshold // < and <=, by decreasing threshold
	all   bitset
}

type threshold struct {
	lit       float64
	inclusive bool
	rule      int
}

type fieldIndex struct {
	path       []string
	strs       map[string]bitset
	nums       map[float64]bitset
	t, f, null bitset
	all        bitset // every rule filed under the path
}

type bitset []uint64

func newBitset(words int) bitset { return make(bitset, words) }

func (b bitset) set(i int) { b[i/64] |= 1 << (i % 64) }

func (b bitset) or(o bitset) {
	for i := range o {
		b[i] |= o[i]
	}
}

// indexKey picks the conjunct a rule is filed under: the first equality, else the first
// membership test, with a literal a JSON value can equal; -1 when there is none.
// (rangeKey then looks for a threshold.)
func indexKey(pre []prefilter) int {
	for i := range pre {
		if pre[i].xform != 0 || pre[i].path2 != nil {
			continue
		}
		if pre[i].op == operators.Equals {
			switch pre[i].lit.(type) {
			case string, float64, bool, nil:
				return i
			}
		}
	}
	for i := range pre {
		if pre[i].op == operators.In && pre[i].xform == 0 {
			return i
		}
	}
	return -1
}

// rangeKey picks a threshold on a top-level field, data.name OP number; -1 when there is none.
func rangeKey(pre []prefilter) int {
	for i := range pre {
		p := &pre[i]
		if p.xform != 0 || p.path2 != nil || len(p.path) != 1 {
			continue
		}
		switch p.op {
		case operators.Less, operators.LessEquals, operators.Greater, operators.GreaterEquals:
			return i
		}
	}
	return -1
}

func newLitIndex(rs []*rule) *litIndex {
	x := &litIndex{words: (len(rs) + 63) / 64}
	x.always = newBitset(x.words)
	byPath := map[string]*fieldIndex{}
	for i, r := range rs {
		k := -1
		if r.cond != nil && r.cond.constant == nil {
			k = indexKey(r.pre)
		}
		if k < 0 {
			if r.cond != nil && r.cond.constant == nil {
				if k = rangeKey(r.pre); k >= 0 {
					x.fileRange(i, &r.pre[k])
					continue
				}
			}
			x.always.set(i)
			continue
		}
		p := &r.pre[k]
		name := pathKey(p.path)
		fi := byPath[name]
		if fi == nil {
			fi = &fieldIndex{path: p.path, strs: map[string]bitset{}, nums: map[float64]bitset{},
				t: newBitset(x.words), f: newBitset(x.words), null: newBitset(x.words), all: newBitset(x.words)}
			byPath[name] = fi
			x.fields = append(x.fields, fi)
		}
		fi.all.set(i)
		if p.op == operators.In {
			fi.file(i, x.words, p.set)
			continue
		}
		var one litSet
		one.add(p.lit)
		fi.file(i, x.words, &one)
	}
	for _, ri := range x.ranges {
		// Equal thresholds: the inclusive ones first, since the scan stops at the first
		// threshold the value cannot pass.
		sort.Slice(ri.above, func(a, b int) bool {
			x, y := ri.above[a], ri.above[b]
			return x.lit < y.lit || (x.lit == y.lit && x.inclusive && !y.inclusive)
		})
		sort.Slice(ri.below, func(a, b int) bool {
			x, y := ri.below[a], ri.below[b]
			return x.lit > y.lit || (x.lit == y.lit && x.inclusive && !y.inclusive)
		})
	}
	return x
}

func (x *litIndex) fileRange(i int, p *prefilter) {
	var ri *rangeIndex
	for _, r := range x.ranges {
		if r.name == p.path[0] {
			ri = r
		}
	}
	if ri == nil {
		ri = &rangeIndex{name: p.path[0], all: newBitset(x.words)}
		x.ranges = append(x.ranges, ri)
	}
	ri.all.set(i)
	t := threshold{lit: p.lit.(float64), rule: i}
	switch p.op {
	case operators.Greater, operators.GreaterEquals:
		t.inclusive = p.op == operators.GreaterEquals
		ri.above = append(ri.above, t)
	default:
		t.inclusive = p.op == operators.LessEquals
		ri.below = append(ri.below, t)
	}
}

func pathKey(p []string) string {
	n := ""
	for _, s := range p {
		n += s + "\x00"
	}
	return n
}

func (fi *fieldIndex) file(i, words int, l *litSet) {
	for s := range l.strs {
		if fi.strs[s] == nil {
			fi.strs[s] = newBitset(words)
		}
		fi.strs[s].set(i)
	}
	for f := range l.nums {
		if fi.nums[f] == nil {
			fi.nums[f] = newBitset(words)
		}
		fi.nums[f].set(i)
	}
	if l.hasTrue {
		fi.t.set(i)
	}
	if l.hasFalse {
		fi.f.set(i)
	}
	if l.nul {
		fi.null.set(i)
	}
}

// candidates fills cand (x.words long) with the rules d can match.
func (x *litIndex) candidates(d *eventData, cand bitset) {
	copy(cand, x.always)
	for _, fi := range x.fields {
		v, ok := d.scalarAt(fi.path)
		if !ok {
			cand.or(fi.all)
			continue
		}
		var b bitset
		switch v.kind {
		case kindString:
			b = fi.strs[v.s]
		case kindNumber:
			b = fi.nums[v.f]
		case kindTrue:
			b = fi.t
		case kindFalse:
			b = fi.f
		case kindNull:
			b = fi.null
		}
		if b != nil {
			cand.or(b)
		}
	}
	for _, ri := range x.ranges {
		f := d.field(ri.name)
		if f == nil || f.kind != kindNumber {
			cand.or(ri.all) // CEL decides: an error, or false
			continue
		}
		// value in [lo, hi]: a rule is left out only when its threshold cannot be passed.
		lo, hi := d.numberBounds(f)
		for _, t := range ri.above {
			if t.lit > hi || (t.lit == hi && !t.inclusive) {
				break
			}
			cand.set(t.rule)
		}
		for _, t := range ri.below {
			if t.lit < lo || (t.lit == lo && !t.inclusive) {
				break
			}
			cand.set(t.rule)
		}
	}
}
