package modelscan

// The heap is compacted by copying (Cheney-style) what the roots (stack, memo, pending
// persistent ids, overrides) still reach, generationally: a minor compaction moves only the
// young containers, those allocated since the last compaction, to the end of the old
// generation, which it never copies again; old containers whose items changed since
// (remember) are roots of a minor compaction too. Garbage collects in the old generation when
// a memo key is overwritten, when the stack drops what a minor compaction kept, and in texts
// (allocated old); once it is estimated to outweigh the rest (see heap.garbage), or the old
// generation reaches oldLimit, a full compaction copies everything reachable into a fresh
// old generation, the texts too once they reach textLimit.
//
// A pickle of millions of objects that memoizes some of them (a state_dict's persistent ids)
// thus copies each survivor about once, and the young generation's memory is reused from one
// round to the next instead of being grown and zeroed.

// youngBase is the allocation (in heap units, see heapBase) between two minor compactions:
// small enough for the young generation to stay in cache, at most heapBase.
func youngBase(l Limits) int {
	return min(heapBase(l), 1<<18)
}

// dropped notes that the memo no longer refers to c: what c refers to in the old generation
// may have become garbage.
func (w *pickleWalker) dropped(c cell) {
	if k := c.comp(); k > emptyTuple && gen(k) == 0 {
		w.h.garbage += int(w.h.comp(k).cap) + 1
	}
}

// remember notes that the items of container k changed.
func (w *pickleWalker) remember(k uint32) {
	h := &w.h
	if gen(k) == 0 && k > emptyTuple && !h.comp(k).rem {
		h.comp(k).rem = true
		h.remembered = append(h.remembered, k)
	}
}

// maybeCompact compacts the heap once it has used its budget.
func (w *pickleWalker) maybeCompact() {
	if w.h.budget > 0 {
		return
	}
	h := &w.h
	w.maxOld = max(w.maxOld, h.oldUnits())
	if old := h.oldUnits(); 2*h.garbage >= old+heapBase(w.lim) || old >= h.oldLimit || h.text.n >= h.textLimit {
		w.compact()
		return
	}
	w.minor()
}

// oldGen is the memory of an old generation.
type oldGen struct {
	text  arena[byte]
	items arena[cell]
	comps arena[comp]
}

// mover copies texts and containers into an old generation: the young ones (a minor
// compaction) or all of them (a full one).
type mover struct {
	h     *heap // moved from
	all   bool  // move old containers too
	texts bool  // move texts (only a full compaction may)
	// textRefs sums the lengths of the texts the cells a full compaction looked at refer to:
	// the live text, or more when cells share a text.
	textRefs int
	text     *arena[byte]
	items    *arena[cell]
	comps    *arena[comp]
	fwd      [2][]uint32 // where each old and young container went, 0 if not yet moved
	full     bool        // an arena is full
}

// wants reports whether move has anything to do for c: most cells a minor compaction looks
// at refer to nothing young, which is decided inline.
func (m *mover) wants(c cell) bool {
	return m.all || compKinds>>(c.lk&0xff)&1 != 0 && uint32(c.n)&youngBit != 0
}

// compKinds has bit k set for the kinds that hasComp.
const compKinds uint64 = 1<<kTuple | 1<<kList | 1<<kDict | 1<<kSet | 1<<kCall | 1<<kPersist

// move moves what c refers to and makes c refer to where it went.
func (m *mover) move(c *cell) {
	if n := c.tlen(); n != 0 && m.all {
		m.textRefs += int(n)
	}
	if n := c.tlen(); n != 0 && m.texts {
		off, s, ok := m.text.alloc(int(n))
		if !ok {
			m.full = true
			return
		}
		copy(s, m.h.textAt(c.toff, n))
		c.toff = off
	}
	if k := c.comp(); k > emptyTuple && (m.all || gen(k) == 1) {
		fwd := m.fwd[gen(k)]
		if f := fwd[k&^youngBit]; f != 0 {
			c.setComp(f)
			return
		}
		p := *m.h.comp(k)
		off, s, ok := m.items.alloc(int(p.cap))
		if !ok {
			m.full = true
			return
		}
		copy(s, m.h.itemsAt(p.off, p.cap))
		p.off = off
		f, d, ok := m.comps.alloc(1)
		if !ok {
			m.full = true
			return
		}
		d[0] = p
		fwd[k&^youngBit] = f
		c.setComp(f)
	}
}

// appendComp appends p to s, doubling its capacity when it must grow: append grows large
// slices by a quarter, which copies the old generation's containers over and over.
func appendComp(s []comp, p comp) []comp {
	if len(s) == cap(s) {
		s = append(make([]comp, 0, max(2*cap(s), 256)), s...)
	}
	return append(s, p)
}

// scan moves what the moved containers from index first on refer to, and what those refer
// to, until nothing is left.
func (m *mover) scan(first int) (next int) {
	i := first
	for ; i < m.comps.n; i++ {
		p := *m.comps.ptr(uint32(i))
		items := m.items.at(p.off, uint32(p.cap))
		for j := range items {
			if m.wants(items[j]) {
				m.move(&items[j])
			}
		}
	}
	return i
}

// fwdTable returns forwarding table g for n containers, cleared.
func (w *pickleWalker) fwdTable(g, n int) []uint32 {
	if cap(w.fwd[g]) < n {
		w.fwd[g] = make([]uint32, n, 2*n)
	}
	w.fwd[g] = w.fwd[g][:n]
	clear(w.fwd[g])
	return w.fwd[g]
}

// moveStack moves what the stack refers to.
func (w *pickleWalker) moveStack(m *mover) {
	for i := range w.stack {
		if m.wants(w.stack[i]) {
			m.move(&w.stack[i])
		}
	}
}

// moveRoots moves what the roots other than the stack refer to, and returns how many roots
// it looked at. A minor compaction looks at the memo cells and the pending ids written since
// the last compaction only: the others reach the old generation alone.
func (w *pickleWalker) moveRoots(m *mover) int {
	roots := len(w.memo.sparse) + len(w.overrides)
	lo, hi := 0, w.memo.ncells
	if !m.all {
		lo, hi = w.memo.lo, min(w.memo.hi, w.memo.ncells)
	}
	for i := lo; i < hi; i++ {
		if c := w.memo.cell(i); m.wants(*c) {
			m.move(c)
		}
	}
	roots += max(hi-lo, 0)
	w.memo.clean()
	for k, c := range w.memo.sparse {
		m.move(&c)
		w.memo.sparse[k] = c
	}
	first := 0
	if !m.all {
		first = w.pendingOld
	}
	for i := first; i < len(w.pending); i++ {
		m.move(&w.pending[i])
	}
	roots += len(w.pending) - first
	w.pendingOld = len(w.pending)
	for k, c := range w.overrides {
		m.move(&c)
		w.overrides[k] = c
	}
	return roots
}

// minor moves what is still reachable in the young generation to the old one.
func (w *pickleWalker) minor() {
	h := &w.h
	w.compactions[0]++
	first := h.oldComps.n
	m := &mover{h: h, items: &h.items[0], comps: &h.oldComps}
	m.fwd[1] = w.fwdTable(1, len(h.youngComps))
	roots := w.moveRoots(m)
	// Old containers written since the last compaction: items moved out of the old
	// generation (a growing list) move like a young container's, those still there are
	// looked at where they are. Each is looked at once, so no cell is moved twice.
	for _, k := range h.remembered {
		p := h.comp(k)
		p.rem = false
		if gen(p.off) == 1 {
			off, s, ok := h.items[0].alloc(int(p.cap))
			if !ok {
				m.full = true
				continue
			}
			copy(s, h.itemsAt(p.off, p.cap))
			p.off = off
		}
		items := h.itemsAt(p.off, p.n)
		for i := range items {
			m.move(&items[i])
		}
	}
	roots += len(h.remembered)
	h.remembered = h.remembered[:0]
	// What only the stack keeps is moved last: the stack soon drops most of it (a
	// container's items between MARK and the opcode that builds it), so it counts as
	// garbage of the old generation.
	next := m.scan(first)
	kept := m.items.n + m.comps.n
	w.moveStack(m)
	m.scan(next)
	h.garbage += m.items.n + m.comps.n - kept
	roots += len(w.stack)
	if m.full {
		w.heapFull = true
	}
	h.items[1].reset()
	h.youngComps = h.youngComps[:0]
	// Looking at the roots costs little next to copying: they count for a quarter.
	h.budget = youngBase(w.lim) + roots/4
}

// compact copies every container reachable from the roots into a fresh old generation,
// reusing the memory of the one before last, and the texts too once they have reached
// textLimit. The next full compaction waits until the old generation has grown by as much
// again as survived this one, plus heapBase; the texts are moved again once they have grown
// by as much again as the cells refer to, plus 16 * heapBase bytes. Texts are mostly the
// names the memo keeps for as long as the pickle lasts: moving them would copy them for
// nothing.
func (w *pickleWalker) compact() {
	h := &w.h
	w.compactions[1]++
	texts := h.text.n >= h.textLimit
	if texts {
		w.compactions[2]++
		w.lastName = cell{} // texts move
	}
	for _, k := range h.remembered {
		h.comp(k).rem = false
	}
	h.remembered = h.remembered[:0]
	sp := &w.spare
	sp.text.reset()
	sp.items.reset()
	sp.text.shift, sp.items.shift = h.text.shift, h.items[0].shift
	sp.comps.reset()
	sp.comps.shift = h.oldComps.shift
	sp.comps.alloc(2)
	*sp.comps.ptr(0), *sp.comps.ptr(emptyTuple) = comp{}, comp{}
	m := &mover{h: h, all: true, texts: texts, text: &sp.text, items: &sp.items, comps: &sp.comps}
	m.fwd[0] = w.fwdTable(0, h.oldComps.n)
	m.fwd[1] = w.fwdTable(1, len(h.youngComps))
	w.moveStack(m)
	roots := w.moveRoots(m) + len(w.stack)
	m.scan(emptyTuple + 1)
	if m.full {
		w.heapFull = true
	}
	if texts {
		h.text, sp.text = sp.text, h.text
	}
	h.items[0], sp.items = sp.items, h.items[0]
	h.oldComps, sp.comps = sp.comps, h.oldComps
	h.items[1].reset()
	h.youngComps = h.youngComps[:0]
	h.oldLimit = 4*heapBase(w.lim) + 2*h.oldUnits()
	h.garbage = 0
	h.textLimit = 16*heapBase(w.lim) + 2*m.textRefs
	h.budget = youngBase(w.lim) + roots/4
}
