package modelscan

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/pipewarden/pipewarden/internal/finding"
)

// errParse marks input the Python unpickler would reject as well.
var errParse = errors.New("malformed pickle")

func parseErr(off int64, format string, a ...any) error {
	return fmt.Errorf("%w at offset %d: %s", errParse, off, fmt.Sprintf(format, a...))
}

// pickleWalker emulates the unpickler's stack and memo over an opcode stream, judging every
// import, call and mutation, without constructing or calling anything.
type pickleWalker struct {
	j     *job
	r     *byteReader
	lim   Limits
	depth int

	stack []cell
	marks []int
	memo  memoTable
	h     heap
	spare oldGen      // the old generation's previous memory, reused by the next full compaction
	fwd   [2][]uint32 // compaction's forwarding tables, reused
	// lastName is the last str or bytes cell made of name bytes, whose text keepInMemo need
	// not look at again when it is memoized right away (the pickler's way).
	lastName cell
	// compactions counts the minor compactions, the full ones and those of the full ones
	// that moved texts; maxOld is the largest old generation a compaction saw (containers,
	// in budget units). For tests.
	compactions [3]int
	maxOld      int
	proto       int
	ops         int64
	// nextCheck is the opcode count at which the per-opcode limit, the time budget and the
	// heap are next looked at: checks hoisted out of the loop of every opcode.
	nextCheck int64
	heapFull  bool

	sawCode bool // a GLOBAL, INST, STACK_GLOBAL, REDUCE, NEWOBJ, OBJ or EXT was seen
	// persist collects persistent ids (PyTorch storages) when non-nil.
	persist *[]value
	pending []cell // persistent ids of the pickle being walked
	// pendingOld counts the pending ids a compaction has moved to the old generation.
	pendingOld int
	// capture keeps every item of lists (the legacy PyTorch storage-key list).
	capture bool
	// overrides are attributes of imported objects set by BUILD or SETITEM.
	overrides map[string]cell
}

// newPickleWalker returns a walker of r, with the memory a finished walker of the same
// scanner left (release), if any.
func newPickleWalker(j *job, r *byteReader, depth int) *pickleWalker {
	w, _ := j.s.walkers.Get().(*pickleWalker)
	if w == nil {
		w = &pickleWalker{}
	}
	*w = w.memory()
	w.j, w.r, w.lim, w.depth = j, r, j.s.lim, depth
	w.h.init(w.lim)
	return w
}

// release hands w's memory to the scanner's next walker: a scan of many pickles allocates it
// (and the kernel faults it in) once. Nothing may use w afterwards; what its walks exported
// is the caller's.
func (w *pickleWalker) release() {
	s := w.j.s
	*w = w.memory()
	s.walkers.Put(w)
}

// memory is a walker holding only w's memory: stack, memo, heap and compaction tables,
// emptied. Everything read from them is written first in each walk.
func (w *pickleWalker) memory() pickleWalker {
	return pickleWalker{
		stack: w.stack[:0], marks: w.marks[:0], pending: w.pending[:0],
		memo: memoTable{slots: w.memo.slots, cells: w.memo.cells},
		h: heap{text: w.h.text, items: w.h.items, oldComps: w.h.oldComps,
			youngComps: w.h.youngComps[:0], remembered: w.h.remembered[:0]},
		spare: w.spare, fwd: w.fwd,
	}
}

// Pickle opcodes, all protocols.
const (
	opMark           = '('
	opStop           = '.'
	opPop            = '0'
	opPopMark        = '1'
	opDup            = '2'
	opFloat          = 'F'
	opInt            = 'I'
	opBinInt         = 'J'
	opBinInt1        = 'K'
	opLong           = 'L'
	opBinInt2        = 'M'
	opNone           = 'N'
	opPersID         = 'P'
	opBinPersID      = 'Q'
	opReduce         = 'R'
	opString         = 'S'
	opBinString      = 'T'
	opShortBinString = 'U'
	opUnicode        = 'V'
	opBinUnicode     = 'X'
	opAppend         = 'a'
	opBuild          = 'b'
	opGlobal         = 'c'
	opDict           = 'd'
	opEmptyDict      = '}'
	opAppends        = 'e'
	opGet            = 'g'
	opBinGet         = 'h'
	opInst           = 'i'
	opLongBinGet     = 'j'
	opList           = 'l'
	opEmptyList      = ']'
	opObj            = 'o'
	opPut            = 'p'
	opBinPut         = 'q'
	opLongBinPut     = 'r'
	opSetItem        = 's'
	opTuple          = 't'
	opEmptyTuple     = ')'
	opSetItems       = 'u'
	opBinFloat       = 'G'
	opProto          = 0x80
	opNewObj         = 0x81
	opExt1           = 0x82
	opExt2           = 0x83
	opExt4           = 0x84
	opTuple1         = 0x85
	opTuple2         = 0x86
	opTuple3         = 0x87
	opNewTrue        = 0x88
	opNewFalse       = 0x89
	opLong1          = 0x8a
	opLong4          = 0x8b
	opBinBytes       = 'B'
	opShortBinBytes  = 'C'
	opShortBinUni    = 0x8c
	opBinUnicode8    = 0x8d
	opBinBytes8      = 0x8e
	opEmptySet       = 0x8f
	opAddItems       = 0x90
	opFrozenSet      = 0x91
	opNewObjEx       = 0x92
	opStackGlobal    = 0x93
	opMemoize        = 0x94
	opFrame          = 0x95
	opByteArray8     = 0x96
	opNextBuffer     = 0x97
	opReadonlyBuffer = 0x98
)

// isOpcode reports whether b starts some pickle opcode.
func isOpcode(b byte) bool {
	if b >= opProto && b <= opReadonlyBuffer {
		return true
	}
	return strings.IndexByte("(.012FIJKLMNPQRSTUVXabcd}eghijl]opqrst)uGBC", b) >= 0
}

func (w *pickleWalker) pop() (cell, error) {
	n := len(w.stack)
	if n == 0 || (len(w.marks) > 0 && w.marks[len(w.marks)-1] >= n) {
		return cell{}, parseErr(w.r.off, "stack underflow")
	}
	v := w.stack[n-1]
	w.stack = w.stack[:n-1]
	return v, nil
}

func (w *pickleWalker) top() (*cell, error) {
	n := len(w.stack)
	if n == 0 || (len(w.marks) > 0 && w.marks[len(w.marks)-1] >= n) {
		return nil, parseErr(w.r.off, "stack underflow")
	}
	return &w.stack[n-1], nil
}

func (w *pickleWalker) push(v cell) error {
	if len(w.stack)+len(w.marks) >= w.lim.MaxStackDepth {
		return limitErr("pickle stack over %d entries", w.lim.MaxStackDepth)
	}
	w.stack = append(w.stack, v)
	return nil
}

// popMark pops everything above the last MARK and the mark itself. The items stay valid until
// the next push.
func (w *pickleWalker) popMark() ([]cell, error) {
	if len(w.marks) == 0 {
		return nil, parseErr(w.r.off, "could not find MARK")
	}
	m := w.marks[len(w.marks)-1]
	w.marks = w.marks[:len(w.marks)-1]
	items := w.stack[m:]
	w.stack = w.stack[:m]
	return items, nil
}

// walkOne walks one pickle up to its STOP and returns the value it would produce.
func (w *pickleWalker) walkOne() (value, error) {
	v, err := w.walk()
	if w.persist != nil {
		for _, p := range w.pending {
			*w.persist = append(*w.persist, w.export(p, exportDepth))
		}
	}
	w.pending = w.pending[:0]
	w.pendingOld = 0
	if err != nil {
		return value{}, err
	}
	return w.export(v, exportDepth), nil
}

func (w *pickleWalker) walk() (cell, error) {
	w.stack = w.stack[:0]
	w.marks = w.marks[:0]
	w.proto = 0
	w.memo.reset() // each pickle.load starts with an empty memo
	if len(w.overrides) == 0 {
		// Nothing outlives the previous pickle: start the heap afresh, keeping its memory.
		w.h.reset(w.lim)
		w.lastName = cell{} // texts are overwritten
	}
	r := w.r
	for {
		start := r.off
		var op byte
		if r.r < r.w {
			op = r.buf[r.r]
			r.r++
			r.off++
		} else {
			b, err := r.ReadByte()
			if err != nil {
				return cell{}, fmt.Errorf("%w at offset %d: no STOP opcode", err, start)
			}
			op = b
		}
		w.ops++
		if w.ops >= w.nextCheck {
			if err := w.periodic(); err != nil {
				return cell{}, err
			}
		}
		var err error
		switch op {
		case opStop:
			return w.pop()
		case opMemoize:
			// The hottest opcodes of real pickles, handled here rather than through step.
			if len(w.stack) == 0 || (len(w.marks) > 0 && w.marks[len(w.marks)-1] >= len(w.stack)) {
				return cell{}, parseErr(start, "memo put with an empty stack")
			}
			err = w.memoPut(uint64(w.memo.count), "", w.stack[len(w.stack)-1])
		case opBinPut:
			if r.r < r.w && len(w.stack) > 0 && (len(w.marks) == 0 || w.marks[len(w.marks)-1] < len(w.stack)) {
				key := r.buf[r.r]
				r.r++
				r.off++
				err = w.memoPut(uint64(key), "", w.stack[len(w.stack)-1])
			} else {
				err = w.put(op, start)
			}
		case opLongBinPut:
			if r.w-r.r >= 4 && len(w.stack) > 0 && (len(w.marks) == 0 || w.marks[len(w.marks)-1] < len(w.stack)) {
				key := binary.LittleEndian.Uint32(r.buf[r.r:])
				r.r += 4
				r.off += 4
				err = w.memoPut(uint64(key), "", w.stack[len(w.stack)-1])
			} else {
				err = w.put(op, start)
			}
		case opBinGet, opLongBinGet:
			n := 1
			if op == opLongBinGet {
				n = 4
			}
			if r.w-r.r >= n {
				key := uint64(r.buf[r.r])
				if n == 4 {
					key = uint64(binary.LittleEndian.Uint32(r.buf[r.r:]))
				}
				r.r += n
				r.off += int64(n)
				if s := w.memo.slots; key < uint64(w.memo.n) && s[key>>memoShift][key&memoMask] != slotUnset && len(w.stack)+len(w.marks) < w.lim.MaxStackDepth {
					w.stack = append(w.stack, w.memo.cellOf(s[key>>memoShift][key&memoMask]))
				} else {
					err = w.getKey(key, "", start)
				}
			} else {
				err = w.get(op, start)
			}
		case opMark:
			if len(w.stack)+len(w.marks) >= w.lim.MaxStackDepth {
				return cell{}, limitErr("pickle stack over %d entries", w.lim.MaxStackDepth)
			}
			w.marks = append(w.marks, len(w.stack))
		case opShortBinUni, opShortBinString, opShortBinBytes:
			if r.r < r.w && r.w-r.r > int(r.buf[r.r]) && int64(r.buf[r.r]) <= w.lim.MaxStringBytes {
				n := int(r.buf[r.r])
				b := r.buf[r.r+1 : r.r+1+n]
				r.r += 1 + n
				r.off += int64(1 + n)
				c := mkCell(kStr, int64(n))
				if op == opShortBinBytes {
					c.setKind(kBytes)
				}
				if nameBytes(b) {
					c.setText(w.addText(b))
					w.lastName = c
				}
				err = w.push(c)
			} else {
				err = w.lengthPrefixed(op, start)
			}
		case opBinUnicode:
			// A name of at most maxNameLen bytes already in the buffer; the rest as any
			// length-prefixed argument.
			if r.w-r.r >= 4 {
				n := int64(binary.LittleEndian.Uint32(r.buf[r.r:]))
				if n <= maxNameLen && n <= w.lim.MaxStringBytes && int64(r.w-r.r-4) >= n && n <= r.remaining()-4 {
					b := r.buf[r.r+4 : r.r+4+int(n)]
					r.r += 4 + int(n)
					r.off += 4 + n
					c := mkCell(kStr, n)
					if nameBytes(b) {
						c.setText(w.addText(b))
						w.lastName = c
					}
					err = w.push(c)
					break
				}
			}
			err = w.lengthPrefixed(op, start)
		case opBinInt1:
			if r.r < r.w {
				b := r.buf[r.r]
				r.r++
				r.off++
				err = w.push(mkCell(kInt, int64(b)))
			} else {
				err = w.step(op, start)
			}
		case opBinInt2:
			if r.w-r.r >= 2 {
				n := binary.LittleEndian.Uint16(r.buf[r.r:])
				r.r += 2
				r.off += 2
				err = w.push(mkCell(kInt, int64(n)))
			} else {
				err = w.step(op, start)
			}
		case opTuple2:
			// A state_dict's shapes and strides.
			if n := len(w.stack); n >= 2 && (len(w.marks) == 0 || w.marks[len(w.marks)-1] <= n-2) {
				t := w.comp(kTuple, w.stack[n-2:])
				w.stack[n-2] = t
				w.stack = w.stack[:n-1]
			} else {
				err = w.step(op, start)
			}
		default:
			err = w.step(op, start)
		}
		if err != nil {
			return cell{}, err
		}
	}
}

// periodic runs the checks hoisted out of the per-opcode loop: the opcode limit, the time
// budget every 2^20 opcodes, and heap compaction. It runs at least every 4096 opcodes.
func (w *pickleWalker) periodic() error {
	if w.ops > w.lim.MaxOpcodes {
		return limitErr("over %d pickle opcodes", w.lim.MaxOpcodes)
	}
	if w.ops&(1<<20-1) == 0 {
		if err := w.j.checkTime(); err != nil {
			return err
		}
	}
	w.maybeCompact()
	if w.heapFull {
		return limitErr("pickle strings and containers over 4 GiB")
	}
	w.nextCheck = min((w.ops|(1<<12-1))+1, w.lim.MaxOpcodes+1)
	return nil
}

func (w *pickleWalker) step(op byte, start int64) error {
	r := w.r
	switch op {
	case opMark:
		if len(w.stack)+len(w.marks) >= w.lim.MaxStackDepth {
			return limitErr("pickle stack over %d entries", w.lim.MaxStackDepth)
		}
		w.marks = append(w.marks, len(w.stack))
	case opPop:
		if len(w.stack) == 0 || (len(w.marks) > 0 && w.marks[len(w.marks)-1] == len(w.stack)) {
			// Python's C unpickler pops a mark when the stack top is a mark.
			if len(w.marks) > 0 {
				w.marks = w.marks[:len(w.marks)-1]
				return nil
			}
			return parseErr(start, "stack underflow")
		}
		w.stack = w.stack[:len(w.stack)-1]
	case opPopMark:
		_, err := w.popMark()
		return err
	case opDup:
		t, err := w.top()
		if err != nil {
			return err
		}
		return w.push(*t)
	case opNone:
		return w.push(mkCell(kNone, 0))
	case opNewTrue, opNewFalse:
		return w.push(mkCell(kBool, int64(op&1)))
	case opEmptyTuple:
		return w.push(compCell(kTuple, emptyTuple))
	case opEmptyList:
		if w.capture {
			return w.push(compCell(kList, w.newComp(nil, 0, 0)))
		}
		return w.push(mkCell(kList, 0))
	case opEmptyDict:
		return w.push(mkCell(kDict, 0))
	case opEmptySet:
		return w.push(mkCell(kSet, 0))
	case opProto:
		b, err := r.ReadByte()
		if err != nil {
			return err
		}
		if b > 5 {
			return parseErr(start, "unsupported pickle protocol %d", b)
		}
		w.proto = int(b)
	case opFrame:
		b, err := r.next(8)
		if err != nil {
			return err
		}
		n := binary.LittleEndian.Uint64(b)
		if n > math.MaxInt64 || int64(n) > r.remaining() {
			return parseErr(start, "frame of %d bytes exceeds the data", n)
		}
	case opBinInt:
		b, err := r.next(4)
		if err != nil {
			return err
		}
		return w.push(mkCell(kInt, int64(int32(binary.LittleEndian.Uint32(b)))))
	case opBinInt1:
		b, err := r.ReadByte()
		if err != nil {
			return err
		}
		return w.push(mkCell(kInt, int64(b)))
	case opBinInt2:
		b, err := r.next(2)
		if err != nil {
			return err
		}
		return w.push(mkCell(kInt, int64(binary.LittleEndian.Uint16(b))))
	case opInt, opLong:
		b, _, err := r.line(64)
		if err != nil {
			return err
		}
		if op == opInt && (string(b) == "01" || string(b) == "00") {
			return w.push(mkCell(kBool, int64(b[1]-'0')))
		}
		if op == opLong {
			b = []byte(strings.TrimSuffix(string(b), "L"))
		}
		n, big, ok := parsePyInt(b)
		if !ok {
			return parseErr(start, "invalid integer literal")
		}
		if big != "" {
			if big == torchMagicDecimal {
				return w.push(w.textCell(kBigInt, torchMagic, 0))
			}
			return w.push(mkCell(kBigInt, 0))
		}
		return w.push(mkCell(kInt, n))
	case opLong1, opLong4:
		var n int64
		if op == opLong1 {
			b, err := r.ReadByte()
			if err != nil {
				return err
			}
			n = int64(b)
		} else {
			b, err := r.next(4)
			if err != nil {
				return err
			}
			n = int64(int32(binary.LittleEndian.Uint32(b)))
			if n < 0 {
				return parseErr(start, "LONG pickle has negative byte count")
			}
		}
		s, err := w.argBytes(n, 64, true)
		if err != nil {
			return err
		}
		if n <= 8 {
			var x int64
			for i := len(s) - 1; i >= 0; i-- {
				x = x<<8 | int64(s[i])
			}
			if n > 0 && n < 8 && s[n-1]&0x80 != 0 {
				x -= 1 << (8 * n)
			}
			return w.push(mkCell(kInt, x))
		}
		c := mkCell(kBigInt, n)
		c.setText(w.addText(s))
		return w.push(c)
	case opFloat:
		if _, _, err := r.line(0); err != nil {
			return err
		}
		return w.push(mkCell(kFloat, 0))
	case opBinFloat:
		if _, err := r.next(8); err != nil {
			return err
		}
		return w.push(mkCell(kFloat, 0))
	case opString:
		b, full, err := r.line(4 * maxNameLen)
		if err != nil {
			return err
		}
		if !full {
			return w.push(mkCell(kStr, maxNameLen+1))
		}
		d, err := decodeStringOpcode(b)
		if err != nil {
			return parseErr(start, "%v", err)
		}
		return w.pushText(d)
	case opBinString, opShortBinString, opBinBytes, opShortBinBytes, opBinBytes8, opByteArray8,
		opBinUnicode, opShortBinUni, opBinUnicode8:
		return w.lengthPrefixed(op, start)
	case opUnicode:
		b, full, err := r.line(4 * maxNameLen)
		if err != nil {
			return err
		}
		if !full {
			return w.push(mkCell(kStr, maxNameLen+1))
		}
		s, err := decodeRawUnicodeEscape(b)
		if err != nil {
			return parseErr(start, "%v", err)
		}
		return w.push(w.textCell(kStr, s, int64(len(s))))
	case opTuple:
		items, err := w.popMark()
		if err != nil {
			return err
		}
		return w.push(w.comp(kTuple, items))
	case opTuple1, opTuple2, opTuple3:
		n := int(op-opTuple1) + 1
		if len(w.stack) < n || (len(w.marks) > 0 && w.marks[len(w.marks)-1] > len(w.stack)-n) {
			return parseErr(start, "stack underflow")
		}
		t := w.comp(kTuple, w.stack[len(w.stack)-n:])
		w.stack = w.stack[:len(w.stack)-n]
		return w.push(t)
	case opList:
		items, err := w.popMark()
		if err != nil {
			return err
		}
		return w.push(w.comp(kList, items))
	case opDict:
		items, err := w.popMark()
		if err != nil {
			return err
		}
		if len(items)%2 != 0 {
			return parseErr(start, "odd number of items for DICT")
		}
		return w.push(w.comp(kDict, items))
	case opFrozenSet:
		if _, err := w.popMark(); err != nil {
			return err
		}
		return w.push(mkCell(kSet, 0))
	case opPut, opBinPut, opLongBinPut, opMemoize:
		return w.put(op, start)
	case opGet, opBinGet, opLongBinGet:
		return w.get(op, start)
	case opGlobal, opInst:
		return w.global(op, start)
	case opStackGlobal:
		name, err := w.pop()
		if err != nil {
			return err
		}
		mod, err := w.pop()
		if err != nil {
			return err
		}
		w.sawCode = true
		if known(mod.kind()) && mod.kind() != kStr || known(name.kind()) && name.kind() != kStr {
			return parseErr(start, "STACK_GLOBAL requires str")
		}
		if !mod.hasText() || !name.hasText() {
			w.finding(RuleUnresolvedImport, finding.Critical, "unresolved import", start, map[string]any{
				"opcode": "STACK_GLOBAL", "module": w.describe(mod), "name": w.describe(name)})
			return w.push(w.textCell(kGlobal, "<unresolved>", 0))
		}
		return w.push(w.imported(w.str(mod), w.str(name), "STACK_GLOBAL", start))
	case opExt1, opExt2, opExt4:
		n := 1 << (op - opExt1) // EXT1, EXT2, EXT4 take 1, 2 and 4 bytes
		if _, err := r.next(n); err != nil {
			return err
		}
		w.sawCode = true
		w.finding(RuleUnresolvedImport, finding.Critical, "import through the copyreg extension registry", start,
			map[string]any{"opcode": "EXT"})
		return w.push(w.textCell(kGlobal, "<extension>", 0))
	case opReduce:
		args, err := w.pop()
		if err != nil {
			return err
		}
		fn, err := w.pop()
		if err != nil {
			return err
		}
		w.sawCode = true
		return w.push(w.call(fn, args, "REDUCE", start))
	case opNewObj:
		args, err := w.pop()
		if err != nil {
			return err
		}
		cls, err := w.pop()
		if err != nil {
			return err
		}
		w.sawCode = true
		return w.push(w.call(cls, args, "NEWOBJ", start))
	case opNewObjEx:
		if _, err := w.pop(); err != nil {
			return err
		}
		args, err := w.pop()
		if err != nil {
			return err
		}
		cls, err := w.pop()
		if err != nil {
			return err
		}
		w.sawCode = true
		return w.push(w.call(cls, args, "NEWOBJ_EX", start))
	case opObj:
		items, err := w.popMark()
		if err != nil {
			return err
		}
		if len(items) == 0 {
			return parseErr(start, "OBJ without a class")
		}
		w.sawCode = true
		cls := items[0]
		return w.push(w.call(cls, w.comp(kTuple, items[1:]), "OBJ", start))
	case opPersID:
		b, _, err := r.line(maxNameLen)
		if err != nil {
			return err
		}
		pid := mkCell(kStr, int64(len(b)))
		pid.setText(w.addText(b))
		return w.persistent(w.comp(kTuple, []cell{pid}))
	case opBinPersID:
		pid, err := w.pop()
		if err != nil {
			return err
		}
		return w.persistent(pid)
	case opAppend:
		v, err := w.pop()
		if err != nil {
			return err
		}
		t, err := w.top()
		if err != nil {
			return err
		}
		w.addTo(t, []cell{v}, "APPEND", start)
	case opAppends, opSetItems, opAddItems:
		items, err := w.popMark()
		if err != nil {
			return err
		}
		t, err := w.top()
		if err != nil {
			return err
		}
		if op == opSetItems && len(items)%2 != 0 {
			return parseErr(start, "odd number of items for SETITEMS")
		}
		name := "APPENDS"
		if op == opSetItems {
			name = "SETITEMS"
		} else if op == opAddItems {
			name = "ADDITEMS"
		}
		w.addTo(t, items, name, start)
	case opSetItem:
		v, err := w.pop()
		if err != nil {
			return err
		}
		k, err := w.pop()
		if err != nil {
			return err
		}
		t, err := w.top()
		if err != nil {
			return err
		}
		w.addTo(t, []cell{k, v}, "SETITEM", start)
	case opBuild:
		state, err := w.pop()
		if err != nil {
			return err
		}
		t, err := w.top()
		if err != nil {
			return err
		}
		return w.build(*t, state, start)
	case opNextBuffer:
		return w.push(mkCell(kBytes, 0))
	case opReadonlyBuffer:
		_, err := w.top()
		return err
	default:
		return parseErr(start, "unknown opcode 0x%02x", op)
	}
	return nil
}

// pushText pushes the content of the protocol-0 STRING opcode.
func (w *pickleWalker) pushText(b []byte) error {
	if !asciiOnly(b) {
		return w.push(mkCell(kBytes, int64(len(b))))
	}
	c := mkCell(kStr, int64(len(b)))
	if len(b) <= maxNameLen {
		c.setText(w.addText(b))
	}
	return w.push(c)
}

// argBytes reads a length-prefixed argument of n bytes: its content when it is at most keep
// bytes long (nil otherwise, the bytes skipped), valid until the next read.
func (w *pickleWalker) argBytes(n int64, keep int, raw bool) ([]byte, error) {
	r := w.r
	if n < 0 || n > w.lim.MaxStringBytes {
		return nil, limitErr("pickle argument of %d bytes", n)
	}
	if n > r.remaining() {
		return nil, errTruncated
	}
	if n <= int64(keep) {
		b, err := r.next(int(n))
		if err != nil || !raw && !nameBytes(b) {
			// Only strings that can be names are kept; the rest are known by length.
			return nil, err
		}
		return b, nil
	}
	return nil, r.skip(n)
}

func (w *pickleWalker) lengthPrefixed(op byte, start int64) error {
	r := w.r
	var n int64
	switch op {
	case opShortBinString, opShortBinBytes, opShortBinUni:
		b, err := r.ReadByte()
		if err != nil {
			return err
		}
		n = int64(b)
	case opBinString, opBinBytes, opBinUnicode:
		b, err := r.next(4)
		if err != nil {
			return err
		}
		if op == opBinString {
			n = int64(int32(binary.LittleEndian.Uint32(b)))
			if n < 0 {
				return parseErr(start, "BINSTRING pickle has negative byte count")
			}
		} else {
			n = int64(binary.LittleEndian.Uint32(b))
		}
	default:
		b, err := r.next(8)
		if err != nil {
			return err
		}
		u := binary.LittleEndian.Uint64(b)
		if u > math.MaxInt64 {
			return parseErr(start, "argument length %d too large", u)
		}
		n = int64(u)
	}
	s, err := w.argBytes(n, maxNameLen, false)
	if err != nil {
		return err
	}
	// Kept content is made of name bytes, so it is ASCII: valid UTF-8 for the unicode opcodes,
	// and str (not bytes) for BINSTRING under the unpickler's default ASCII encoding.
	c := mkCell(kBytes, n)
	switch op {
	case opBinString, opShortBinString, opBinUnicode, opShortBinUni, opBinUnicode8:
		c.setKind(kStr)
	}
	if s != nil {
		c.setText(w.addText(s))
	}
	return w.push(c)
}

func (w *pickleWalker) put(op byte, start int64) error {
	var key uint64
	var big string
	switch op {
	case opMemoize:
		key = uint64(w.memo.count)
		// MEMOIZE uses len(memo), which counts sparse keys too.
	case opBinPut:
		b, err := w.r.ReadByte()
		if err != nil {
			return err
		}
		key = uint64(b)
	case opLongBinPut:
		b, err := w.r.next(4)
		if err != nil {
			return err
		}
		key = uint64(binary.LittleEndian.Uint32(b))
	case opPut:
		b, _, err := w.r.line(64)
		if err != nil {
			return err
		}
		n, bg, ok := parsePyInt(b)
		if !ok {
			return parseErr(start, "invalid PUT argument")
		}
		if n < 0 || strings.HasPrefix(bg, "-") {
			return parseErr(start, "negative PUT argument")
		}
		key, big = uint64(n), bg
	}
	t, err := w.top()
	if err != nil {
		return parseErr(start, "memo put with an empty stack")
	}
	return w.memoPut(key, big, *t)
}

func (w *pickleWalker) get(op byte, start int64) error {
	var key uint64
	var big string
	switch op {
	case opBinGet:
		b, err := w.r.ReadByte()
		if err != nil {
			return err
		}
		key = uint64(b)
	case opLongBinGet:
		b, err := w.r.next(4)
		if err != nil {
			return err
		}
		key = uint64(binary.LittleEndian.Uint32(b))
	case opGet:
		b, _, err := w.r.line(64)
		if err != nil {
			return err
		}
		n, bg, ok := parsePyInt(b)
		if !ok || n < 0 || strings.HasPrefix(bg, "-") {
			return parseErr(start, "invalid GET argument")
		}
		key, big = uint64(n), bg
	}
	return w.getKey(key, big, start)
}

func (w *pickleWalker) getKey(key uint64, big string, start int64) error {
	v, ok := w.memo.get(key, big)
	if !ok {
		return parseErr(start, "memo key %d not found", key)
	}
	return w.push(v)
}

func (w *pickleWalker) global(op byte, start int64) error {
	mod, mfull, err := w.r.line(maxNameLen)
	if err != nil {
		return err
	}
	modS := string(mod)
	name, nfull, err := w.r.line(maxNameLen)
	if err != nil {
		return err
	}
	nameS := string(name)
	w.sawCode = true
	opName := "GLOBAL"
	if op == opInst {
		opName = "INST"
	}
	var g cell
	switch {
	case !mfull || !nfull:
		w.finding(RuleUnresolvedImport, finding.Critical, "unresolved import", start, map[string]any{
			"opcode": opName, "module": truncate(modS, 80), "name": truncate(nameS, 80)})
		g = w.textCell(kGlobal, "<unresolved>", 0)
	case !utf8.Valid(mod) || !utf8.Valid(name):
		w.finding(RuleUnresolvedImport, finding.Critical, "import with an undecodable name", start, map[string]any{
			"opcode": opName, "module": strconv.Quote(modS), "name": strconv.Quote(nameS)})
		return parseErr(start, "undecodable %s argument", opName)
	default:
		g = w.imported(modS, nameS, opName, start)
	}
	if op == opGlobal {
		return w.push(g)
	}
	args, err := w.popMark()
	if err != nil {
		return err
	}
	return w.push(w.call(g, w.comp(kTuple, args), "INST", start))
}

// imported judges the import of module.name and returns the imported object: what an earlier
// mutation stored there, if the walk saw one.
func (w *pickleWalker) imported(module, name, opcode string, off int64) cell {
	m, n := fixImports(module, name)
	q := m + "." + n
	w.judge(q, len(m), module+"."+name, opcode, off, "")
	if v, ok := w.overrides[q]; ok {
		return v
	}
	return w.textCell(kGlobal, q, int64(len(m)))
}

// known reports whether values of kind k have a type the walker is sure of; the others (an
// imported object, a call result) may be anything at load time, a str included.
func known(k vkind) bool {
	switch k {
	case kOpaque, kGlobal, kCall, kPersist, kModuleDict:
		return false
	}
	return true
}

// torchMagicDecimal is torchMagic as protocol-0 LONG text.
const torchMagicDecimal = "119547037146038801333356"

// judge raises the finding the policy gives for importing q, whose first modLen bytes name
// the module and the rest an attribute path.
func (w *pickleWalker) judge(q string, modLen int, raw, opcode string, off int64, via string) {
	mod, name := q, ""
	if modLen < len(q) {
		mod, name = q[:modLen], q[modLen+1:]
	}
	v, why := w.j.s.policy.Classify(mod, name)
	if v == Allowed {
		return
	}
	ev := map[string]any{"import": q, "opcode": opcode, "reason": why}
	if raw != q && raw != "" {
		ev["as_written"] = raw
	}
	if via != "" {
		ev["via"] = via
	}
	if v == Dangerous {
		w.finding(RuleDangerousImport, finding.Critical, "dangerous import "+q, off, ev)
		return
	}
	w.finding(RuleUnverifiedImport, finding.High, "unverified import "+q, off, ev)
}

func (w *pickleWalker) finding(rule string, sev finding.Severity, title string, off int64, ev map[string]any) {
	ev["offset"] = off
	ev["protocol"] = w.proto
	w.j.add(rule, sev, title, ev)
}

// call emulates calling fn with args (REDUCE, NEWOBJ, OBJ, INST) enough to follow attribute
// and import chains.
func (w *pickleWalker) call(fn, args cell, opcode string, off int64) cell {
	a0 := w.item(args, 0)
	a1 := w.item(args, 1)
	switch fn.kind() {
	case kGlobal:
		switch string(w.text(fn)) {
		case "builtins.getattr":
			if a0.isRef() && a1.hasText() {
				return w.attr(a0, w.text(a1), opcode, off, "getattr")
			}
			if a0.isRef() && a1.kind() == kStr {
				w.finding(RuleUnresolvedImport, finding.Critical, "unresolved attribute lookup", off,
					map[string]any{"object": w.describe(a0), "attribute": w.describe(a1)})
			}
		case "builtins.__import__", "importlib.import_module", "importlib.__import__":
			if a0.hasText() {
				s := w.str(a0)
				w.judge(s, len(s), "", opcode, off, w.str(fn))
				return mkCell(kModule, a0.n).withText(a0)
			}
		case "operator.attrgetter", "_operator.attrgetter":
			if a0.hasText() {
				return mkCell(kAttrGetter, 0).withText(a0)
			}
		case "builtins.vars":
			if a0.isRef() {
				return mkCell(kModuleDict, 0).withText(a0)
			}
		case "numpy.dtype":
			if a0.hasText() {
				return mkCell(kDtype, 0).withText(a0)
			}
		}
		return compCell(kCall, args.comp()).withText(fn)
	case kAttrGetter:
		if a0.isRef() {
			return w.attr(a0, w.text(fn), opcode, off, "attrgetter")
		}
	case kModule:
		return mkCell(kCall, 0).withText(fn)
	}
	w.finding(RuleIndirectCall, finding.High, "call of a computed object", off,
		map[string]any{"opcode": opcode, "callable": w.describe(fn)})
	return mkCell(kOpaque, 0)
}

// attr is the object reached by the attribute path name from the imported object ref.
func (w *pickleWalker) attr(ref cell, name []byte, opcode string, off int64, via string) cell {
	modLen := int(ref.n)
	if modLen <= 0 || modLen > int(ref.tlen()) {
		modLen = int(ref.tlen())
	}
	c := mkCell(kGlobal, int64(modLen))
	c.setText(w.addText3(w.text(ref), '.', name))
	w.judge(w.str(c), modLen, "", opcode, off, via)
	return c
}

// persistent emulates persistent_load. The ids are handed out (exported) when the pickle ends,
// as they stand then.
func (w *pickleWalker) persistent(pid cell) error {
	if w.persist != nil && len(*w.persist)+len(w.pending) < w.lim.MaxStorageCount {
		w.pending = append(w.pending, pid)
	}
	return w.push(compCell(kPersist, pid.comp()))
}

// addTo emulates APPEND(S), SETITEM(S) and ADDITEMS on t. Lists keep no items (except the
// legacy PyTorch key list); dicts keep a few str-keyed pairs, enough for BUILD states.
func (w *pickleWalker) addTo(t *cell, items []cell, opcode string, off int64) {
	if t.isRef() {
		w.finding(RuleGlobalMutation, finding.Critical, "mutation of an imported object", off,
			map[string]any{"opcode": opcode, "target": w.describe(*t)})
		if opcode == "SETITEM" || opcode == "SETITEMS" {
			w.override(*t, w.comp(kDict, items))
		}
		return
	}
	switch {
	case t.kind() == kList && w.capture && t.comp() != 0:
		p := w.h.comp(t.comp())
		w.remember(t.comp())
		if room := w.lim.MaxStorageCount - int(p.n); len(items) > room {
			items = items[:max(room, 0)]
			p.more = true
		}
		w.appendItems(t.comp(), items)
	case t.kind() == kDict && opcode != "APPEND" && opcode != "APPENDS" && w.stateCandidate():
		for i := 0; i+1 < len(items); i += 2 {
			if !items[i].hasText() {
				continue
			}
			if t.comp() == 0 {
				t.setComp(w.newComp(nil, 0, 2*dictKeep))
			}
			w.remember(t.comp())
			p := w.h.comp(t.comp())
			if p.n+2 > p.cap {
				p.more = true
				return
			}
			s := w.h.itemsAt(p.off, p.cap)
			s[p.n], s[p.n+1] = items[i], items[i+1]
			p.n += 2
			p.refs = p.refs || refItem(items[i]) || refItem(items[i+1])
		}
	}
}

// appendItems appends to a growable container (the captured list), moving its items to the
// end of the heap when they outgrow their room.
func (w *pickleWalker) appendItems(h uint32, items []cell) {
	p := *w.h.comp(h)
	if need := int(p.n) + len(items); need > int(p.cap) {
		c := max(need, 2*int(p.cap), 8)
		off, s, ok := w.h.items[1].alloc(c)
		if !ok {
			w.heapFull = true
			return
		}
		clear(s[copy(s, w.h.itemsAt(p.off, p.n)):])
		if gen(h) == 0 && gen(p.off) == 0 {
			w.h.garbage += int(p.cap) // the old generation's items left behind
		}
		w.h.budget -= c
		p.off, p.cap = off|youngBit, int32(c)
	}
	copy(w.h.itemsAt(p.off, p.cap)[p.n:], items)
	p.n += int32(len(items))
	for _, it := range items {
		p.refs = p.refs || refItem(it)
	}
	*w.h.comp(h) = p
}

// stateCandidate reports whether the dict on top of the stack may become the state of a BUILD
// that matters: one applied to an imported object (a mutation) or to a joblib array wrapper.
// Other dicts keep nothing, so a pickle of millions of dicts costs no allocation per dict.
func (w *pickleWalker) stateCandidate() bool {
	n := len(w.stack)
	for i := n - 2; i >= 0 && i >= n-3; i-- {
		if v := w.stack[i]; v.isRef() || v.kind() == kCall && w.textHasSuffix(v, "NumpyArrayWrapper") {
			return true
		}
	}
	return false
}

// dictKeep is how many str-keyed pairs a dict keeps.
const dictKeep = 8

// comp builds a container cell holding (at most maxItems of) items.
func (w *pickleWalker) comp(k vkind, items []cell) cell {
	if k == kList && !w.capture {
		return mkCell(kList, 0)
	}
	if k == kTuple && len(items) == 0 {
		return compCell(kTuple, emptyTuple)
	}
	lim := maxItems
	if k == kDict {
		lim *= 2
	}
	return compCell(k, w.newComp(items, lim, 0))
}

// build emulates BUILD: setting state on a module or class object is a mutation of the
// interpreter; a joblib array wrapper is followed by raw array bytes in the stream.
func (w *pickleWalker) build(t, state cell, off int64) error {
	if t.isRef() {
		w.finding(RuleGlobalMutation, finding.Critical, "state set on an imported module or class", off,
			map[string]any{"opcode": "BUILD", "target": w.describe(t), "state": w.describe(state)})
		w.override(t, state)
		return nil
	}
	if t.kind() == kCall && w.textHasSuffix(t, "numpy_pickle.NumpyArrayWrapper") {
		return w.joblibArray(w.export(state, exportDepth), off)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// override remembers attributes a mutation set on an imported object, so that later imports
// of them resolve to what the loader would really get.
func (w *pickleWalker) override(t, state cell) {
	if state.kind() == kTuple { // (state, slotstate)
		if it := w.items(state); len(it) > 1 {
			state = it[1]
		}
	}
	if state.kind() != kDict || state.comp() == 0 {
		return
	}
	if w.overrides == nil {
		w.overrides = map[string]cell{}
	}
	items := w.items(state)
	for i := 0; i+1 < len(items) && len(w.overrides) < 1024; i += 2 {
		if k := items[i]; k.hasText() {
			w.overrides[w.str(t)+"."+w.str(k)] = items[i+1]
		}
	}
}
