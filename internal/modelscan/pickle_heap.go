package modelscan

import (
	"bytes"
	"math"
	"strconv"
)

// cell is a value on the walker's emulated stack or in its memo. It holds no Go pointers: its
// text and items live in the walker's heap and are named by offset, so the stack, the memo
// and the heap are plain memory that the garbage collector never scans, and a pickle of
// millions of small objects costs no allocation per object.
type cell struct {
	// n is the integer (kInt); the length (kStr, kBytes, kBigInt); the module length
	// (kGlobal); for a container (hasComp) 1 + the index of its items in heap.comps, 0 when
	// none are kept.
	n    int64
	toff uint32 // text: offset in heap.text
	lk   uint32 // text length << 8 | kind; the length is 0 when the content is not kept (or empty)
}

// maxText is the longest text a cell can name.
const maxText = 1<<24 - 1

func mkCell(k vkind, n int64) cell { return cell{n: n, lk: uint32(k)} }

func (c cell) kind() vkind { return vkind(c.lk) }

func (c *cell) setKind(k vkind) { c.lk = c.lk&^0xff | uint32(k) }

func (c cell) tlen() uint32 { return c.lk >> 8 }

// setText makes c name the text at off of length n.
func (c *cell) setText(off, n uint32) { c.toff, c.lk = off, n<<8|c.lk&0xff }

// withText is c naming the text of t.
func (c cell) withText(t cell) cell {
	c.setText(t.toff, t.tlen())
	return c
}

// hasComp reports whether cells of kind k keep their items in n.
func hasComp(k vkind) bool {
	switch k {
	case kTuple, kList, kDict, kSet, kCall, kPersist:
		return true
	}
	return false
}

// comp is the index of c's items in heap.comps, 0 when it has none.
func (c cell) comp() uint32 {
	if hasComp(c.kind()) {
		return uint32(c.n)
	}
	return 0
}

func (c *cell) setComp(h uint32) { c.n = int64(h) }

func compCell(k vkind, h uint32) cell { return cell{n: int64(h), lk: uint32(k)} }

// kUnset marks a memo key that was never PUT; it never appears on the stack.
const kUnset vkind = math.MaxUint8

// comp is a container's kept items: heap.items[off : off+n], with room for cap.
type comp struct {
	off    uint32
	n, cap int32
	more   bool // items were dropped
	refs   bool // an item is an imported object (isRef) or a dtype: see keepInMemo
	_, _   bool
}

// refItem reports whether c makes a container worth keeping in the memo.
func refItem(c cell) bool { return c.isRef() || c.kind() == kDtype }

// heap holds the texts and items of cells. It only grows while a pickle is walked; compact
// copies what is still reachable from the stack, the memo and the overrides into a fresh heap
// once enough garbage may have accumulated.
type heap struct {
	text  []byte
	items []cell
	comps []comp
	// budget is how much more may be allocated (text bytes/16 + items + comps) before the
	// next compaction is worth its cost.
	budget int
}

// emptyTuple is the composite every empty tuple shares: tuples are never mutated.
const emptyTuple = 1

// heapBase is the allocation (in units of about 24 bytes: an item, a container or 16 text
// bytes) allowed before the first compaction: a 256th of Limits.MaxInMemory, at most 1 Mi
// units (24 MB).
func heapBase(l Limits) int {
	return int(min(max(l.MaxInMemory/256, 64), 1<<20))
}

func (h *heap) init(textCap, itemCap, compCap, base int) {
	h.text = make([]byte, 0, textCap)
	h.items = make([]cell, 0, itemCap)
	h.comps = append(make([]comp, 0, compCap), comp{}, comp{}) // none, emptyTuple
	h.budget = base
}

// addText stores b and returns its offset. The heap is bounded far below 4 GiB by compaction
// and the opcode and memo limits; the check keeps a hostile input from wrapping an offset.
func (w *pickleWalker) addText(b []byte) (uint32, uint32) {
	h := &w.h
	off := len(h.text)
	if off+len(b) > math.MaxUint32 || len(b) > maxText {
		w.heapFull = true
		return 0, 0
	}
	h.text = append(grow(h.text, len(b)), b...)
	h.budget -= len(b)/16 + 1
	return uint32(off), uint32(len(b))
}

// grow makes room for n more elements in s, doubling its capacity when it must grow: the
// runtime's append grows large slices by a quarter, which copies the heap over and over.
func grow[T any](s []T, n int) []T {
	if len(s)+n <= cap(s) {
		return s
	}
	ns := make([]T, len(s), max(2*cap(s), len(s)+n, 256))
	copy(ns, s)
	return ns
}

// addText3 stores a + sep + b (a qualified name) and returns its offset and length.
func (w *pickleWalker) addText3(a []byte, sep byte, b []byte) (uint32, uint32) {
	h := &w.h
	off := len(h.text)
	n := len(a) + 1 + len(b)
	if off+n > math.MaxUint32 || n > maxText {
		w.heapFull = true
		return 0, 0
	}
	h.text = append(append(append(grow(h.text, n), a...), sep), b...)
	h.budget -= n/16 + 1
	return uint32(off), uint32(n)
}

// textCell is a cell of kind k whose text is s.
func (w *pickleWalker) textCell(k vkind, s string, n int64) cell {
	h := &w.h
	off := len(h.text)
	if off+len(s) > math.MaxUint32 || len(s) > maxText {
		w.heapFull = true
		return mkCell(k, n)
	}
	h.text = append(grow(h.text, len(s)), s...)
	h.budget -= len(s)/16 + 1
	c := mkCell(k, n)
	c.setText(uint32(off), uint32(len(s)))
	return c
}

// text is the kept content of c, valid until the next compaction.
func (w *pickleWalker) text(c cell) []byte {
	return w.h.text[c.toff : c.toff+c.tlen() : c.toff+c.tlen()]
}

// str is the kept content of c as a string of its own.
func (w *pickleWalker) str(c cell) string {
	if c.tlen() == 0 {
		return ""
	}
	return string(w.text(c))
}

// hasText reports whether c is a str whose content is known.
func (c cell) hasText() bool { return c.kind() == kStr && int64(c.tlen()) == c.n }

func (c cell) isRef() bool {
	switch c.kind() {
	case kGlobal, kModule, kModuleDict, kAttrGetter:
		return true
	}
	return false
}

// newComp stores a container of items (the first lim of them) with room for capacity.
func (w *pickleWalker) newComp(items []cell, lim, capacity int) uint32 {
	h := &w.h
	more := false
	if len(items) > lim {
		items, more = items[:lim], true
	}
	capacity = max(capacity, len(items))
	off := len(h.items)
	if off+capacity > math.MaxUint32 {
		w.heapFull = true
		return 0
	}
	h.items = grow(h.items, capacity)[:off+capacity]
	clear(h.items[off+copy(h.items[off:], items):])
	refs := false
	for _, it := range items {
		refs = refs || refItem(it)
	}
	h.comps = append(grow(h.comps, 1), comp{off: uint32(off), n: int32(len(items)), cap: int32(capacity), more: more, refs: refs})
	h.budget -= capacity + 1
	return uint32(len(h.comps) - 1)
}

// items are the kept items of c.
func (w *pickleWalker) items(c cell) []cell {
	if c.comp() == 0 {
		return nil
	}
	p := &w.h.comps[c.comp()]
	return w.h.items[p.off : int(p.off)+int(p.n)]
}

func (w *pickleWalker) item(c cell, i int) cell {
	if it := w.items(c); i < len(it) {
		return it[i]
	}
	return cell{}
}

func (w *pickleWalker) textHasSuffix(c cell, suffix string) bool {
	return bytes.HasSuffix(w.text(c), []byte(suffix))
}

func (w *pickleWalker) describe(c cell) string {
	switch c.kind() {
	case kGlobal:
		return w.str(c)
	case kModule:
		return "module " + w.str(c)
	case kModuleDict:
		return "namespace of " + w.str(c)
	case kAttrGetter:
		return "attrgetter(" + strconv.Quote(w.str(c)) + ")"
	case kCall:
		return "result of " + w.str(c) + "()"
	case kStr:
		if c.hasText() {
			return strconv.Quote(w.str(c))
		}
		return "str of " + strconv.FormatInt(c.n, 10) + " bytes"
	case kInt:
		return strconv.FormatInt(c.n, 10)
	}
	return kindNames[c.kind()]
}

// keepInMemo reports whether a memoized cell is worth remembering; the rest is stored as
// opaque so that the memo of a pickle of millions of small objects references nothing.
func (w *pickleWalker) keepInMemo(c cell) bool {
	switch c.kind() {
	case kStr, kBytes:
		return c.tlen() != 0 && int64(c.tlen()) == c.n && nameLike(w.text(c))
	case kGlobal, kModule, kModuleDict, kAttrGetter, kDtype, kInt, kBigInt, kNone, kBool:
		return true
	case kTuple, kCall:
		return c.comp() != 0 && w.h.comps[c.comp()].refs
	}
	return false
}

// exportDepth is how deep export copies nested containers: the callers look at a persistent
// id's items, a BUILD state's items and their items (a joblib shape), never deeper.
const exportDepth = 3

// export copies c out of the heap into a value of its own, for the callers outside the walk.
func (w *pickleWalker) export(c cell, depth int) value {
	v := value{k: c.kind(), s: w.str(c)}
	if !hasComp(v.k) {
		v.n = c.n
	}
	if c.comp() != 0 && depth > 1 {
		p := w.h.comps[c.comp()]
		items := w.h.items[p.off : int(p.off)+int(p.n)]
		v.c = &composite{more: p.more, items: make([]value, len(items))}
		for i, it := range items {
			v.c.items[i] = w.export(it, depth-1)
		}
	}
	return v
}

// maybeCompact compacts the heap once it has used its budget.
func (w *pickleWalker) maybeCompact() {
	if w.h.budget > 0 {
		return
	}
	w.compact()
}

// compact copies every text and container reachable from the roots (stack, memo, overrides)
// into a fresh heap, Cheney-style: containers are forwarded so that shared ones stay shared,
// then the copied items are scanned in turn. Its cost is paid for by the budget: the next
// compaction waits until as much again as survived (and as the roots hold) was allocated.
func (w *pickleWalker) compact() {
	old := w.h
	// The heap compacted into is the one compacted from last time, reused.
	nh := w.spare
	nh.text = nh.text[:0]
	nh.items = nh.items[:0]
	nh.comps = append(nh.comps[:0], comp{}, comp{})
	fwd := w.fwd
	if cap(fwd) < len(old.comps) {
		fwd = make([]uint32, len(old.comps), 2*len(old.comps))
	}
	fwd = fwd[:len(old.comps)]
	clear(fwd)
	fwd[emptyTuple] = emptyTuple
	move := func(c *cell) {
		if c.tlen() != 0 {
			off := len(nh.text)
			nh.text = append(grow(nh.text, int(c.tlen())), old.text[c.toff:c.toff+c.tlen()]...)
			c.toff = uint32(off)
		}
		if c.comp() != 0 {
			if f := fwd[c.comp()]; f != 0 {
				c.setComp(f)
				return
			}
			p := old.comps[c.comp()]
			off := len(nh.items)
			nh.items = append(grow(nh.items, int(p.cap)), old.items[p.off:int(p.off)+int(p.cap)]...)
			p.off = uint32(off)
			nh.comps = append(grow(nh.comps, 1), p)
			fwd[c.comp()] = uint32(len(nh.comps) - 1)
			c.setComp(fwd[c.comp()])
		}
	}
	for i := range w.stack {
		move(&w.stack[i])
	}
	for i := 0; i < w.memo.n; i++ {
		if c := w.memo.dense(uint64(i)); c.kind() != kUnset {
			move(c)
		}
	}
	for k, c := range w.memo.sparse {
		move(&c)
		w.memo.sparse[k] = c
	}
	for i := range w.pending {
		move(&w.pending[i])
	}
	for k, c := range w.overrides {
		move(&c)
		w.overrides[k] = c
	}
	for i := 0; i < len(nh.items); i++ {
		c := nh.items[i]
		move(&c)
		nh.items[i] = c
	}
	roots := len(w.stack) + w.memo.n + len(w.memo.sparse) + len(w.overrides)
	// Scanning the roots is cheap next to copying what survives: they count for little.
	nh.budget = heapBase(w.lim) + roots/4 + 2*(len(nh.text)/16+len(nh.items)+len(nh.comps))
	w.h, w.spare, w.fwd = nh, old, fwd
}

// memoTable is the pickle memo. Keys are dense in practice (the pickler numbers them 0, 1,
// 2...) so they index cells kept in fixed-size chunks (growing never copies them); sparse keys
// go to a map. Only cells that keepInMemo are stored as they are, the rest as opaque.
type memoTable struct {
	chunks [][]cell // dense keys below n: chunks[key>>memoShift][key&memoMask]
	n      int
	sparse map[string]cell
	count  int
}

const (
	memoShift = 14
	memoMask  = 1<<memoShift - 1
)

func (m *memoTable) reset() {
	m.n = 0
	m.sparse = nil
	m.count = 0
}

// dense returns the cell of a dense key below m.n.
func (m *memoTable) dense(key uint64) *cell {
	return &m.chunks[key>>memoShift][key&memoMask]
}

// extend makes the dense keys reach key, the new ones unset.
func (m *memoTable) extend(key uint64) {
	for uint64(m.n) <= key {
		if m.n>>memoShift == len(m.chunks) {
			m.chunks = append(m.chunks, make([]cell, 1<<memoShift))
		}
		m.dense(uint64(m.n)).setKind(kUnset)
		m.n++
	}
}

func (w *pickleWalker) memoPut(key uint64, bigKey string, c cell) error {
	m := &w.memo
	if !w.keepInMemo(c) {
		c = mkCell(kOpaque, 0)
	}
	if bigKey == "" && key < uint64(m.n) {
		d := m.dense(key)
		if d.kind() == kUnset {
			m.count++
			if m.count > w.lim.MaxMemo {
				return limitErr("pickle memo over %d entries", w.lim.MaxMemo)
			}
		}
		*d = c
		return nil
	}
	if bigKey == "" && key < uint64(m.n)+4096 && key < 1<<32 {
		m.count++
		if m.count > w.lim.MaxMemo {
			return limitErr("pickle memo over %d entries", w.lim.MaxMemo)
		}
		m.extend(key)
		*m.dense(key) = c
		return nil
	}
	if m.sparse == nil {
		m.sparse = map[string]cell{}
	}
	k := bigKey
	if k == "" {
		k = strconv.FormatUint(key, 10)
	}
	if _, ok := m.sparse[k]; !ok {
		m.count++
		if m.count > w.lim.MaxMemo {
			return limitErr("pickle memo over %d entries", w.lim.MaxMemo)
		}
	}
	m.sparse[k] = c
	return nil
}

func (m *memoTable) get(key uint64, bigKey string) (cell, bool) {
	if bigKey == "" && key < uint64(m.n) {
		c := *m.dense(key)
		return c, c.kind() != kUnset
	}
	if m.sparse == nil {
		return cell{}, false
	}
	k := bigKey
	if k == "" {
		k = strconv.FormatUint(key, 10)
	}
	c, ok := m.sparse[k]
	return c, ok
}
