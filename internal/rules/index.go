package rules

import (
	"math/bits"

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

// each calls f with the index of every set bit, in increasing order.
func (b bitset) each(f func(i int)) {
	for w, word := range b {
		for word != 0 {
			f(w*64 + bits.TrailingZeros64(word))
			word &= word - 1
		}
	}
}

// indexKey picks the conjunct a rule is filed under: the first equality, else the first
// membership test, with a literal a JSON value can equal; -1 when there is none.
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
	return x
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
}
