package modelscan

import (
	"math"
	"strconv"
)

// memoTable is the pickle memo. Keys are dense in practice (the pickler numbers them 0, 1,
// 2...) so they index slots kept in fixed-size chunks (growing never copies them); sparse
// keys go to a map. Only cells that keepInMemo are stored as they are, the rest as opaque:
// a slot says whether its key is unset or opaque, or where in cells its cell is, so that the
// memo of a pickle of millions of objects costs 4 bytes per object and a compaction looks at
// the kept cells only.
type memoTable struct {
	slots [][]uint32 // dense keys below n: slots[key>>memoShift][key&memoMask]
	n     int
	// cells are the cells of slots kept+i below ncells: cells[i>>memoShift][i&memoMask].
	cells  [][]cell
	ncells int
	// sparse holds the keys too far from the dense ones.
	sparse map[string]cell
	count  int
	// lo and hi bound the cells written since the last compaction, the only ones a minor
	// compaction looks at.
	lo, hi int
}

const (
	memoShift = 14
	memoMask  = 1<<memoShift - 1
)

// Slot values: unset, opaque, or kept + the index of the key's cell in memoTable.cells.
const (
	slotUnset uint32 = iota
	slotOpaque
	slotKept
)

func (m *memoTable) reset() {
	m.n = 0
	m.ncells = 0
	m.sparse = nil
	m.count = 0
	m.clean()
}

// clean forgets which cells were written.
func (m *memoTable) clean() { m.lo, m.hi = math.MaxInt, 0 }

// slot returns the slot of a dense key below m.n.
func (m *memoTable) slot(key uint64) *uint32 {
	return &m.slots[key>>memoShift][key&memoMask]
}

// cellOf is the cell of a set slot.
func (m *memoTable) cellOf(s uint32) cell {
	if s == slotOpaque {
		return mkCell(kOpaque, 0)
	}
	return *m.cell(int(s - slotKept))
}

// cell is the cell at index i below m.ncells.
func (m *memoTable) cell(i int) *cell { return &m.cells[i>>memoShift][i&memoMask] }

// extend makes the dense keys reach key, the new ones unset.
func (m *memoTable) extend(key uint64) {
	for uint64(m.n) <= key {
		if m.n>>memoShift == len(m.slots) {
			m.slots = append(m.slots, make([]uint32, 1<<memoShift))
		}
		*m.slot(uint64(m.n)) = slotUnset
		m.n++
	}
}

// store puts c in slot s: its cell, a new one, or opaque.
func (m *memoTable) store(s *uint32, c cell, keep bool) {
	if !keep {
		if *s >= slotKept {
			*m.cell(int(*s - slotKept)) = mkCell(kOpaque, 0) // what it held is not a root any more
		}
		*s = slotOpaque
		return
	}
	if *s < slotKept {
		if m.ncells>>memoShift == len(m.cells) {
			m.cells = append(m.cells, make([]cell, 1<<memoShift))
		}
		*s = slotKept + uint32(m.ncells)
		m.ncells++
	}
	i := int(*s - slotKept)
	*m.cell(i) = c
	m.lo = min(m.lo, i)
	m.hi = max(m.hi, i+1)
}

func (w *pickleWalker) memoPut(key uint64, bigKey string, c cell) error {
	m := &w.memo
	keep := w.keepInMemo(c)
	if bigKey == "" && key < uint64(m.n) {
		s := m.slot(key)
		if *s == slotUnset {
			m.count++
			if m.count > w.lim.MaxMemo {
				return limitErr("pickle memo over %d entries", w.lim.MaxMemo)
			}
		} else if *s >= slotKept {
			w.dropped(*m.cell(int(*s - slotKept)))
		}
		m.store(s, c, keep)
		return nil
	}
	if bigKey == "" && key < uint64(m.n)+4096 && key < 1<<32 {
		m.count++
		if m.count > w.lim.MaxMemo {
			return limitErr("pickle memo over %d entries", w.lim.MaxMemo)
		}
		m.extend(key)
		m.store(m.slot(key), c, keep)
		return nil
	}
	if !keep {
		c = mkCell(kOpaque, 0)
	}
	if m.sparse == nil {
		m.sparse = map[string]cell{}
	}
	k := bigKey
	if k == "" {
		k = strconv.FormatUint(key, 10)
	}
	if old, ok := m.sparse[k]; !ok {
		m.count++
		if m.count > w.lim.MaxMemo {
			return limitErr("pickle memo over %d entries", w.lim.MaxMemo)
		}
	} else {
		w.dropped(old)
	}
	m.sparse[k] = c
	return nil
}

func (m *memoTable) get(key uint64, bigKey string) (cell, bool) {
	if bigKey == "" && key < uint64(m.n) {
		s := *m.slot(key)
		if s == slotUnset {
			return cell{}, false
		}
		return m.cellOf(s), true
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
