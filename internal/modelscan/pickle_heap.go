package modelscan

import (
	"bytes"
	"strconv"
)

// cell is a value on the walker's emulated stack or in its memo. It holds no Go pointers: its
// text and items live in the walker's heap and are named by offset, so the stack, the memo
// and the heap are plain memory that the garbage collector never scans, and a pickle of
// millions of small objects costs no allocation per object.
type cell struct {
	// n is the integer (kInt); the length (kStr, kBytes, kBigInt); the module length
	// (kGlobal); for a container (hasComp) the index of its record (heap.comp), 0 when
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

// comp is the index of c's container record (heap.comp), 0 when it has none.
func (c cell) comp() uint32 {
	if hasComp(c.kind()) {
		return uint32(c.n)
	}
	return 0
}

func (c *cell) setComp(h uint32) { c.n = int64(h) }

func compCell(k vkind, h uint32) cell { return cell{n: int64(h), lk: uint32(k)} }

// comp is a container's kept items: heap.itemsAt(off, n), with room for cap.
type comp struct {
	off    uint32
	n, cap int32
	more   bool // items were dropped
	refs   bool // an item is an imported object (isRef) or a dtype: see keepInMemo
	rem    bool // in heap.remembered
	_      bool
}

// refItem reports whether c makes a container worth keeping in the memo.
func refItem(c cell) bool { return c.isRef() || c.kind() == kDtype }

// refKinds has bit k set for the kinds of the cells that refItem.
const refKinds uint64 = 1<<kGlobal | 1<<kModule | 1<<kModuleDict | 1<<kAttrGetter | 1<<kDtype

// heap holds the texts and items of cells. Containers are in two generations, each its own
// address space: what was allocated since the last compaction (young, the item offsets and
// container indices with youngBit set) and what survived a compaction (old). Texts are
// allocated old: most that are kept are names the memo keeps, so a minor compaction would
// only copy them. See pickle_compact.go.
type heap struct {
	text  arena[byte]
	items [2]arena[cell] // old, young
	// The container records: old ones in chunks (none and emptyTuple first), young ones
	// in a slice reused from one minor compaction to the next.
	oldComps   arena[comp]
	youngComps []comp
	// budget is how much more may be allocated (text bytes/16 + items + comps) before the
	// next compaction is worth its cost.
	budget int
	// garbage estimates how much of the old generation's containers (in budget units) no
	// longer has a root: what minor compactions moved only because the stack held it, what
	// the memo dropped, items a growing list left behind. It misses what dropped containers
	// held. A full compaction runs once garbage outweighs the rest plus heapBase, or at the
	// latest once the old generation's containers reach oldLimit. A full compaction moves
	// the texts too once they reach textLimit bytes.
	garbage             int
	oldLimit, textLimit int
	// remembered are the old containers whose items changed since the last compaction: they
	// may hold young cells, so a minor compaction scans them as roots.
	remembered []uint32
}

// youngBit marks an offset or container index of the young generation.
const youngBit = 1 << 31

func gen(off uint32) uint32 { return off >> 31 }

// textAt is the n bytes of text at off.
func (h *heap) textAt(off, n uint32) []byte { return h.text.at(off, n) }

// itemsAt is the n items at off.
func (h *heap) itemsAt(off uint32, n int32) []cell {
	if n == 0 {
		return nil // the empty tuple, whose off names no chunk
	}
	return h.items[gen(off)].at(off&^youngBit, uint32(n))
}

// comp is the container record k.
func (h *heap) comp(k uint32) *comp {
	if gen(k) == 0 {
		return h.oldComps.ptr(k)
	}
	return &h.youngComps[k&^youngBit]
}

// oldUnits is the size of the old generation's containers in budget units.
func (h *heap) oldUnits() int { return h.items[0].n + h.oldComps.n }

// emptyTuple is the composite every empty tuple shares: tuples are never mutated.
const emptyTuple = 1

// heapBase is the allocation (in units of about 24 bytes: an item, a container or 16 text
// bytes) allowed before the first compaction: a 256th of Limits.MaxInMemory, at most 1 Mi
// units (24 MB).
func heapBase(l Limits) int {
	return int(min(max(l.MaxInMemory/256, 64), 1<<20))
}

func (h *heap) init(lim Limits) {
	ts, is := arenaShifts(lim)
	if h.text.shift != ts || h.items[0].shift != is {
		// Memory of a walker under other limits: chunks of another size.
		*h = heap{}
	}
	h.text.shift = ts
	for g := range 2 {
		h.items[g].shift = is
	}
	h.oldComps.shift = is
	h.reset(lim)
}

// arenaShifts are the chunk sizes of the text arena (64 KiB) and of the item and old
// container arenas (16 Ki), smaller under a small Limits.MaxInMemory (which tests use to
// exercise chunk ends).
func arenaShifts(lim Limits) (text, items uint) {
	s := uint(6)
	for s < 14 && 1<<(s+1) <= heapBase(lim) {
		s++
	}
	return s + 2, s
}

// reset empties the heap, keeping its memory.
func (h *heap) reset(lim Limits) {
	h.text.reset()
	for g := range 2 {
		h.items[g].reset()
	}
	h.oldComps.reset()
	h.oldComps.alloc(2)
	*h.oldComps.ptr(0), *h.oldComps.ptr(emptyTuple) = comp{}, comp{}
	h.youngComps = h.youngComps[:0]
	h.oldLimit, h.textLimit = 4*heapBase(lim), 16*heapBase(lim)
	h.garbage = 0
	h.remembered = h.remembered[:0]
	h.budget = youngBase(lim)
}

// newText reserves n bytes of young text and returns their offset and memory; a text the
// heap cannot hold (over maxText, or a full arena) ends the walk at the next check.
func (w *pickleWalker) newText(n int) (uint32, []byte) {
	if n > maxText {
		w.heapFull = true
		return 0, nil
	}
	off, s, ok := w.h.text.alloc(n)
	if !ok {
		w.heapFull = true
		return 0, nil
	}
	w.h.budget -= n/16 + 1
	return off, s
}

// addText stores b and returns its offset and length.
func (w *pickleWalker) addText(b []byte) (uint32, uint32) {
	off, s := w.newText(len(b))
	if s == nil {
		return 0, 0
	}
	copy(s, b)
	return off, uint32(len(b))
}

// addText3 stores a + sep + b (a qualified name) and returns its offset and length.
func (w *pickleWalker) addText3(a []byte, sep byte, b []byte) (uint32, uint32) {
	n := len(a) + 1 + len(b)
	off, s := w.newText(n)
	if s == nil {
		return 0, 0
	}
	copy(s[copy(s, a):], []byte{sep})
	copy(s[len(a)+1:], b)
	return off, uint32(n)
}

// textCell is a cell of kind k whose text is s.
func (w *pickleWalker) textCell(k vkind, s string, n int64) cell {
	c := mkCell(k, n)
	off, t := w.newText(len(s))
	if t == nil {
		return c
	}
	copy(t, s)
	c.setText(off, uint32(len(s)))
	return c
}

// text is the kept content of c, valid until the next compaction.
func (w *pickleWalker) text(c cell) []byte {
	if c.tlen() == 0 {
		return nil
	}
	return w.h.textAt(c.toff, c.tlen())
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
	off, s, ok := h.items[1].alloc(capacity)
	if !ok || len(h.youngComps) >= maxArena {
		w.heapFull = true
		return 0
	}
	// Containers are small: copied here rather than by memmove.
	refs := false
	d := s[:len(items)]
	for i := range d {
		d[i] = items[i]
		refs = refs || refKinds>>(items[i].lk&0xff)&1 != 0
	}
	clear(s[len(items):])
	h.youngComps = appendComp(h.youngComps, comp{off: off | youngBit, n: int32(len(items)), cap: int32(capacity), more: more, refs: refs})
	h.budget -= capacity + 1
	return uint32(len(h.youngComps)-1) | youngBit
}

// items are the kept items of c.
func (w *pickleWalker) items(c cell) []cell {
	if c.comp() == 0 {
		return nil
	}
	p := w.h.comp(c.comp())
	return w.h.itemsAt(p.off, p.n)
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
		if c.tlen() != 0 && c == w.lastName {
			return true
		}
		return c.tlen() != 0 && int64(c.tlen()) == c.n && nameLike(w.text(c))
	case kGlobal, kModule, kModuleDict, kAttrGetter, kDtype, kInt, kBigInt, kNone, kBool:
		return true
	case kTuple, kCall:
		return c.comp() != 0 && w.h.comp(c.comp()).refs
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
		p := w.h.comp(c.comp())
		items := w.h.itemsAt(p.off, p.n)
		v.c = &composite{more: p.more, items: make([]value, len(items))}
		for i, it := range items {
			v.c.items[i] = w.export(it, depth-1)
		}
	}
	return v
}
