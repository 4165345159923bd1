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

	stack []value
	marks []int
	memo  memoTable
	proto int
	ops   int64

	sawCode bool // a GLOBAL, INST, STACK_GLOBAL, REDUCE, NEWOBJ, OBJ or EXT was seen
	// persist collects persistent ids (PyTorch storages) when non-nil.
	persist *[]value
	// capture keeps every item of lists (the legacy PyTorch storage-key list).
	capture bool
	// overrides are attributes of imported objects set by BUILD or SETITEM.
	overrides map[string]value
	slab      []value
	comps     []composite
}

func newPickleWalker(j *job, r *byteReader, depth int) *pickleWalker {
	return &pickleWalker{j: j, r: r, lim: j.s.lim, depth: depth}
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

func (w *pickleWalker) pop() (value, error) {
	n := len(w.stack)
	if n == 0 || (len(w.marks) > 0 && w.marks[len(w.marks)-1] >= n) {
		return value{}, parseErr(w.r.off, "stack underflow")
	}
	v := w.stack[n-1]
	w.stack = w.stack[:n-1]
	return v, nil
}

func (w *pickleWalker) top() (*value, error) {
	n := len(w.stack)
	if n == 0 || (len(w.marks) > 0 && w.marks[len(w.marks)-1] >= n) {
		return nil, parseErr(w.r.off, "stack underflow")
	}
	return &w.stack[n-1], nil
}

func (w *pickleWalker) push(v value) error {
	if len(w.stack)+len(w.marks) >= w.lim.MaxStackDepth {
		return limitErr("pickle stack over %d entries", w.lim.MaxStackDepth)
	}
	w.stack = append(w.stack, v)
	return nil
}

// popMark pops everything above the last MARK and the mark itself.
func (w *pickleWalker) popMark() ([]value, error) {
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
	w.stack = w.stack[:0]
	w.marks = w.marks[:0]
	w.proto = 0
	w.memo.reset() // each pickle.load starts with an empty memo
	for {
		start := w.r.off
		op, err := w.r.ReadByte()
		if err != nil {
			return value{}, fmt.Errorf("%w at offset %d: no STOP opcode", err, start)
		}
		w.ops++
		if w.ops > w.lim.MaxOpcodes {
			return value{}, limitErr("over %d pickle opcodes", w.lim.MaxOpcodes)
		}
		if w.ops&(1<<20-1) == 0 {
			if err := w.j.checkTime(); err != nil {
				return value{}, err
			}
		}
		if op == opStop {
			v, err := w.pop()
			if err != nil {
				return value{}, err
			}
			return v, nil
		}
		if err := w.step(op, start); err != nil {
			return value{}, err
		}
	}
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
		return w.push(value{k: kNone})
	case opNewTrue, opNewFalse:
		return w.push(value{k: kBool, n: int64(op & 1)})
	case opEmptyTuple:
		return w.push(w.comp(kTuple, nil))
	case opEmptyList:
		if w.capture {
			return w.push(value{k: kList, c: &composite{}})
		}
		return w.push(value{k: kList})
	case opEmptyDict:
		return w.push(value{k: kDict})
	case opEmptySet:
		return w.push(value{k: kSet})
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
		return w.push(value{k: kInt, n: int64(int32(binary.LittleEndian.Uint32(b)))})
	case opBinInt1:
		b, err := r.ReadByte()
		if err != nil {
			return err
		}
		return w.push(value{k: kInt, n: int64(b)})
	case opBinInt2:
		b, err := r.next(2)
		if err != nil {
			return err
		}
		return w.push(value{k: kInt, n: int64(binary.LittleEndian.Uint16(b))})
	case opInt, opLong:
		b, _, err := r.line(64)
		if err != nil {
			return err
		}
		if op == opInt && (string(b) == "01" || string(b) == "00") {
			return w.push(value{k: kBool, n: int64(b[1] - '0')})
		}
		if op == opLong {
			b = []byte(strings.TrimSuffix(string(b), "L"))
		}
		n, big, ok := parsePyInt(b)
		if !ok {
			return parseErr(start, "invalid integer literal")
		}
		if big != "" {
			v := value{k: kBigInt}
			if big == torchMagicDecimal {
				v.s = torchMagic
			}
			return w.push(v)
		}
		return w.push(value{k: kInt, n: n})
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
		s, err := r.bytesArg(n, 64, w.lim.MaxStringBytes, true)
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
			return w.push(value{k: kInt, n: x})
		}
		return w.push(value{k: kBigInt, s: s, n: n})
	case opFloat:
		if _, _, err := r.line(0); err != nil {
			return err
		}
		return w.push(value{k: kFloat})
	case opBinFloat:
		if _, err := r.next(8); err != nil {
			return err
		}
		return w.push(value{k: kFloat})
	case opString:
		b, full, err := r.line(4 * maxNameLen)
		if err != nil {
			return err
		}
		if !full {
			return w.push(value{k: kStr, n: maxNameLen + 1})
		}
		d, err := decodeStringOpcode(b)
		if err != nil {
			return parseErr(start, "%v", err)
		}
		return w.pushText(d, op)
	case opBinString, opShortBinString, opBinBytes, opShortBinBytes, opBinBytes8, opByteArray8,
		opBinUnicode, opShortBinUni, opBinUnicode8:
		return w.lengthPrefixed(op, start)
	case opUnicode:
		b, full, err := r.line(4 * maxNameLen)
		if err != nil {
			return err
		}
		if !full {
			return w.push(value{k: kStr, n: maxNameLen + 1})
		}
		s, err := decodeRawUnicodeEscape(b)
		if err != nil {
			return parseErr(start, "%v", err)
		}
		return w.push(value{k: kStr, s: s, n: int64(len(s))})
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
		return w.push(value{k: kSet})
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
		if known(mod.k) && mod.k != kStr || known(name.k) && name.k != kStr {
			return parseErr(start, "STACK_GLOBAL requires str")
		}
		if !mod.hasText() || !name.hasText() {
			w.finding(RuleUnresolvedImport, finding.Critical, "unresolved import", start, map[string]any{
				"opcode": "STACK_GLOBAL", "module": mod.describe(), "name": name.describe()})
			return w.push(value{k: kGlobal, s: "<unresolved>"})
		}
		return w.push(w.imported(mod.s, name.s, "STACK_GLOBAL", start))
	case opExt1, opExt2, opExt4:
		n := 1 << (op - opExt1) // EXT1, EXT2, EXT4 take 1, 2 and 4 bytes
		if _, err := r.next(n); err != nil {
			return err
		}
		w.sawCode = true
		w.finding(RuleUnresolvedImport, finding.Critical, "import through the copyreg extension registry", start,
			map[string]any{"opcode": "EXT"})
		return w.push(value{k: kGlobal, s: "<extension>"})
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
		pid := value{k: kStr, s: string(b), n: int64(len(b))}
		return w.persistent(w.comp(kTuple, []value{pid}))
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
		w.addTo(t, []value{v}, "APPEND", start)
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
		w.addTo(t, []value{k, v}, "SETITEM", start)
	case opBuild:
		state, err := w.pop()
		if err != nil {
			return err
		}
		t, err := w.top()
		if err != nil {
			return err
		}
		return w.build(t, state, start)
	case opNextBuffer:
		return w.push(value{k: kBytes})
	case opReadonlyBuffer:
		_, err := w.top()
		return err
	default:
		return parseErr(start, "unknown opcode 0x%02x", op)
	}
	return nil
}

func (w *pickleWalker) pushText(b []byte, op byte) error {
	if !asciiOnly(b) {
		return w.push(value{k: kBytes, n: int64(len(b))})
	}
	v := value{k: kStr, n: int64(len(b))}
	if len(b) <= maxNameLen {
		v.s = string(b)
	}
	return w.push(v)
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
	s, err := r.bytesArg(n, maxNameLen, w.lim.MaxStringBytes, false)
	if err != nil {
		return err
	}
	switch op {
	case opBinString, opShortBinString:
		// Decoded with the unpickler's encoding (ASCII by default) into str.
		if int64(len(s)) == n && !asciiOnly([]byte(s)) {
			return w.push(value{k: kBytes, n: n})
		}
		return w.push(value{k: kStr, s: s, n: n})
	case opBinUnicode, opShortBinUni, opBinUnicode8:
		if int64(len(s)) == n && !utf8.ValidString(s) {
			return parseErr(start, "invalid UTF-8 in string")
		}
		return w.push(value{k: kStr, s: s, n: n})
	}
	return w.push(value{k: kBytes, s: s, n: n})
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
	return w.memo.put(key, big, *t, w.lim.MaxMemo)
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
	var g value
	switch {
	case !mfull || !nfull:
		w.finding(RuleUnresolvedImport, finding.Critical, "unresolved import", start, map[string]any{
			"opcode": opName, "module": truncate(modS, 80), "name": truncate(nameS, 80)})
		g = value{k: kGlobal, s: "<unresolved>"}
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
func (w *pickleWalker) imported(module, name, opcode string, off int64) value {
	m, n := fixImports(module, name)
	q := m + "." + n
	w.judge(q, len(m), module+"."+name, opcode, off, "")
	if v, ok := w.overrides[q]; ok {
		return v
	}
	return value{k: kGlobal, s: q, n: int64(len(m))}
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
func (w *pickleWalker) call(fn, args value, opcode string, off int64) value {
	a0, _ := args.item(0)
	a1, _ := args.item(1)
	switch fn.k {
	case kGlobal:
		switch fn.s {
		case "builtins.getattr":
			if a0.isRef() && a1.hasText() {
				return w.attr(a0, a1.s, opcode, off, "getattr")
			}
			if a0.isRef() && a1.k == kStr {
				w.finding(RuleUnresolvedImport, finding.Critical, "unresolved attribute lookup", off,
					map[string]any{"object": a0.describe(), "attribute": a1.describe()})
			}
		case "builtins.__import__", "importlib.import_module", "importlib.__import__":
			if a0.hasText() {
				w.judge(a0.s, len(a0.s), "", opcode, off, fn.s)
				return value{k: kModule, s: a0.s, n: int64(len(a0.s))}
			}
		case "operator.attrgetter", "_operator.attrgetter":
			if a0.hasText() {
				return value{k: kAttrGetter, s: a0.s}
			}
		case "builtins.vars":
			if a0.isRef() {
				return value{k: kModuleDict, s: refName(a0)}
			}
		case "numpy.dtype":
			if a0.hasText() {
				return value{k: kDtype, s: a0.s}
			}
		}
		return value{k: kCall, s: fn.s, c: args.c}
	case kAttrGetter:
		if a0.isRef() {
			return w.attr(a0, fn.s, opcode, off, "attrgetter")
		}
	case kModule:
		return value{k: kCall, s: fn.s}
	}
	w.finding(RuleIndirectCall, finding.High, "call of a computed object", off,
		map[string]any{"opcode": opcode, "callable": fn.describe()})
	return value{k: kOpaque}
}

func refName(v value) string {
	return v.s
}

// attr is the object reached by the attribute path name from the imported object ref.
func (w *pickleWalker) attr(ref value, name, opcode string, off int64, via string) value {
	q := ref.s + "." + name
	modLen := int(ref.n)
	if modLen <= 0 || modLen > len(ref.s) {
		modLen = len(ref.s)
	}
	w.judge(q, modLen, "", opcode, off, via)
	return value{k: kGlobal, s: q, n: int64(modLen)}
}

func (w *pickleWalker) persistent(pid value) error {
	if w.persist != nil && len(*w.persist) < w.lim.MaxStorageCount {
		*w.persist = append(*w.persist, pid)
	}
	return w.push(value{k: kPersist, c: pid.c})
}

// addTo emulates APPEND(S), SETITEM(S) and ADDITEMS on t. Lists keep no items (except the
// legacy PyTorch key list); dicts keep a few str-keyed pairs, enough for BUILD states.
func (w *pickleWalker) addTo(t *value, items []value, opcode string, off int64) {
	if t.isRef() {
		w.finding(RuleGlobalMutation, finding.Critical, "mutation of an imported object", off,
			map[string]any{"opcode": opcode, "target": t.describe()})
		if opcode == "SETITEM" || opcode == "SETITEMS" {
			w.override(*t, w.comp(kDict, items))
		}
		return
	}
	switch {
	case t.k == kList && w.capture && t.c != nil:
		if room := w.lim.MaxStorageCount - len(t.c.items); len(items) > room {
			items = items[:max(room, 0)]
			t.c.more = true
		}
		t.c.items = append(t.c.items, items...)
	case t.k == kDict && opcode != "APPEND" && opcode != "APPENDS" && w.stateCandidate():
		for i := 0; i+1 < len(items); i += 2 {
			if !items[i].hasText() {
				continue
			}
			if t.c == nil {
				t.c = w.newComp()
				t.c.items = w.slabItems(2 * dictKeep)
			}
			if len(t.c.items)+2 > cap(t.c.items) {
				t.c.more = true
				return
			}
			t.c.items = append(t.c.items, items[i], items[i+1])
		}
	}
}

// stateCandidate reports whether the dict on top of the stack may become the state of a BUILD
// that matters: one applied to an imported object (a mutation) or to a joblib array wrapper.
// Other dicts keep nothing, so a pickle of millions of dicts costs no allocation per dict.
func (w *pickleWalker) stateCandidate() bool {
	n := len(w.stack)
	for i := n - 2; i >= 0 && i >= n-3; i-- {
		if v := w.stack[i]; v.isRef() || v.k == kCall && strings.HasSuffix(v.s, "NumpyArrayWrapper") {
			return true
		}
	}
	return false
}

// dictKeep is how many str-keyed pairs a dict keeps.
const dictKeep = 8

// slabItems returns an empty slice with room for n values, carved from a shared slab so that
// millions of small containers do not cost millions of allocations.
func (w *pickleWalker) slabItems(n int) []value {
	if cap(w.slab)-len(w.slab) < n {
		w.slab = make([]value, 0, max(4096, n))
	}
	l := len(w.slab)
	w.slab = w.slab[:l+n]
	return w.slab[l : l : l+n]
}

func (w *pickleWalker) newComp() *composite {
	if len(w.comps) == cap(w.comps) {
		w.comps = make([]composite, 0, 1024)
	}
	w.comps = w.comps[:len(w.comps)+1]
	return &w.comps[len(w.comps)-1]
}

// comp builds a container value holding (at most maxItems of) items.
func (w *pickleWalker) comp(k vkind, items []value) value {
	if k == kList && !w.capture {
		return value{k: kList}
	}
	c := w.newComp()
	lim := maxItems
	if k == kDict {
		lim *= 2
	}
	if len(items) > lim {
		c.more = true
		items = items[:lim]
	}
	c.items = append(w.slabItems(len(items)), items...)
	return value{k: k, c: c}
}

// build emulates BUILD: setting state on a module or class object is a mutation of the
// interpreter; a joblib array wrapper is followed by raw array bytes in the stream.
func (w *pickleWalker) build(t *value, state value, off int64) error {
	if t.isRef() {
		w.finding(RuleGlobalMutation, finding.Critical, "state set on an imported module or class", off,
			map[string]any{"opcode": "BUILD", "target": t.describe(), "state": state.describe()})
		w.override(*t, state)
		return nil
	}
	if t.k == kCall && strings.HasSuffix(t.s, "numpy_pickle.NumpyArrayWrapper") {
		return w.joblibArray(state, off)
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
func (w *pickleWalker) override(t, state value) {
	if state.k == kTuple { // (state, slotstate)
		if s, ok := state.item(1); ok {
			state = s
		}
	}
	if state.k != kDict || state.c == nil {
		return
	}
	if w.overrides == nil {
		w.overrides = map[string]value{}
	}
	for i := 0; i+1 < len(state.c.items) && len(w.overrides) < 1024; i += 2 {
		if k := state.c.items[i]; k.hasText() {
			w.overrides[t.s+"."+k.s] = state.c.items[i+1]
		}
	}
}
