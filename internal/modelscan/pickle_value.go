package modelscan

import (
	"strconv"
	"strings"
)

// vkind is what the walker knows about a value on the emulated pickle stack. Only what matters
// for judging imports is kept: strings that may be names, references to imported objects, and
// small containers of them. Everything else is opaque.
type vkind uint8

const (
	kOpaque     vkind = iota // an object we do not track
	kNone                    // None
	kBool                    // True / False
	kInt                     // an integer that fits int64 (n)
	kBigInt                  // a larger integer (s: little-endian two's complement bytes, when short)
	kFloat                   // a float
	kStr                     // text; s holds it when short, n is its length
	kBytes                   // bytes / bytearray; s holds them when short
	kTuple                   // c.items
	kList                    // c.items (bounded)
	kDict                    // c.items as key, value, key, value (bounded)
	kSet                     // a set or frozenset
	kGlobal                  // an imported object: s is its qualified name
	kModule                  // a module object from __import__ / import_module: s is its name
	kModuleDict              // a module's or class's namespace (vars(), __dict__): s is its owner
	kAttrGetter              // operator.attrgetter(s)
	kCall                    // the result of calling / instantiating s; c.items are the arguments
	kDtype                   // numpy.dtype(s)
	kPersist                 // a persistent-load result; c.items are the persistent id
)

// maxNameLen is the longest string kept as a possible import name. Longer strings used as names
// are unresolved, which is critical: no real module or attribute path is that long.
const maxNameLen = 256

// maxItems bounds the items kept per container; dicts keep twice as many (keys and values).
const maxItems = 16

type value struct {
	k vkind
	n int64
	s string
	c *composite
}

type composite struct {
	items []value
	more  bool // items were dropped
}

func (v value) isRef() bool {
	switch v.k {
	case kGlobal, kModule, kModuleDict, kAttrGetter:
		return true
	}
	return false
}

// hasText reports whether v is a str whose content is known.
func (v value) hasText() bool { return v.k == kStr && int64(len(v.s)) == v.n }

func (v value) describe() string {
	switch v.k {
	case kGlobal:
		return v.s
	case kModule:
		return "module " + v.s
	case kModuleDict:
		return "namespace of " + v.s
	case kAttrGetter:
		return "attrgetter(" + strconv.Quote(v.s) + ")"
	case kCall:
		return "result of " + v.s + "()"
	case kStr:
		if v.hasText() {
			return strconv.Quote(v.s)
		}
		return "str of " + strconv.FormatInt(v.n, 10) + " bytes"
	case kInt:
		return strconv.FormatInt(v.n, 10)
	}
	return [...]string{"object", "None", "bool", "int", "int", "float", "str", "bytes", "tuple", "list", "dict",
		"set", "global", "module", "namespace", "attrgetter", "call", "dtype", "persistent object"}[v.k]
}

func (v value) item(i int) (value, bool) {
	if v.c == nil || i >= len(v.c.items) {
		return value{}, false
	}
	return v.c.items[i], true
}

// dictGet returns the value under a str key of a tracked dict.
func (v value) dictGet(key string) (value, bool) {
	if v.k != kDict || v.c == nil {
		return value{}, false
	}
	for i := 0; i+1 < len(v.c.items); i += 2 {
		if k := v.c.items[i]; k.hasText() && k.s == key {
			return v.c.items[i+1], true
		}
	}
	return value{}, false
}

// keepInMemo reports whether a memoized value is worth remembering; the rest is stored as opaque
// so that a pickle of millions of small objects does not cost millions of tracked values.
func keepInMemo(v value) bool {
	switch v.k {
	case kStr, kBytes:
		return v.s != "" && int64(len(v.s)) == v.n && nameLike(v.s)
	case kGlobal, kModule, kModuleDict, kAttrGetter, kDtype, kInt, kBigInt, kNone, kBool:
		return true
	case kTuple, kCall:
		if v.c == nil {
			return false
		}
		for _, it := range v.c.items {
			if it.isRef() || it.k == kDtype {
				return true
			}
		}
	}
	return false
}

func nameLike(s string) bool {
	if len(s) > maxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !nameByte[s[i]] {
			return false
		}
	}
	return true
}

func nameBytes(b []byte) bool {
	for _, c := range b {
		if !nameByte[c] {
			return false
		}
	}
	return true
}

var nameByte = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '<' || c == '>'
	}
	return t
}()

// memoTable is the pickle memo. Keys are dense in practice (the pickler numbers them 0, 1, 2...)
// so they index a slice of small slots; sparse keys go to a map. Only values that keepInMemo
// are stored in full.
type memoTable struct {
	slots  []uint32 // key -> 0 unset, 1 opaque, i+2 value i
	sparse map[string]uint32
	chunks [][]value // values in fixed chunks: growing never copies them
	nvals  int
	count  int
}

const memoChunk = 4096

func (m *memoTable) reset() {
	m.slots = m.slots[:0]
	m.sparse = nil
	m.nvals = 0
	m.count = 0
}

func (m *memoTable) val(i uint32) *value {
	return &m.chunks[i/memoChunk][i%memoChunk]
}

func (m *memoTable) put(key uint64, bigKey string, v value, max int) error {
	var slot *uint32
	switch {
	case bigKey == "" && key < uint64(len(m.slots)):
		slot = &m.slots[key]
	case bigKey == "" && key < uint64(len(m.slots))+4096 && key < 1<<32:
		for uint64(len(m.slots)) <= key {
			m.slots = append(m.slots, 0)
		}
		slot = &m.slots[key]
	default:
		if m.sparse == nil {
			m.sparse = map[string]uint32{}
		}
		k := bigKey
		if k == "" {
			k = strconv.FormatUint(key, 10)
		}
		s := m.sparse[k]
		if s == 0 {
			m.count++
			if m.count > max {
				return limitErr("pickle memo over %d entries", max)
			}
		}
		m.sparse[k] = m.store(s, v)
		return nil
	}
	if *slot == 0 {
		m.count++
		if m.count > max {
			return limitErr("pickle memo over %d entries", max)
		}
	}
	*slot = m.store(*slot, v)
	return nil
}

func (m *memoTable) store(old uint32, v value) uint32 {
	if !keepInMemo(v) {
		return 1
	}
	if old >= 2 {
		*m.val(old - 2) = v
		return old
	}
	if m.nvals/memoChunk == len(m.chunks) {
		m.chunks = append(m.chunks, make([]value, memoChunk))
	}
	*m.val(uint32(m.nvals)) = v
	m.nvals++
	return uint32(m.nvals + 1)
}

func (m *memoTable) get(key uint64, bigKey string) (value, bool) {
	var s uint32
	if bigKey == "" && key < uint64(len(m.slots)) {
		s = m.slots[key]
	} else if m.sparse != nil {
		k := bigKey
		if k == "" {
			k = strconv.FormatUint(key, 10)
		}
		s = m.sparse[k]
	}
	switch s {
	case 0:
		return value{}, false
	case 1:
		return value{k: kOpaque}, true
	}
	return *m.val(s - 2), true
}

// parsePyInt parses an integer the way Python's int() does for the text opcodes: surrounding
// whitespace, a sign, and single underscores between digits. big is the canonical decimal text
// when the value does not fit 64 bits.
func parsePyInt(b []byte) (n int64, big string, ok bool) {
	s := strings.Trim(string(b), " \t\r\n\v\f")
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "" || s[0] == '_' || s[len(s)-1] == '_' || strings.Contains(s, "__") {
		return 0, "", false
	}
	s = strings.ReplaceAll(s, "_", "")
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, "", false
		}
	}
	if len(s) > 1 && s[0] == '0' && strings.Trim(s, "0") != "" {
		// Python's int() accepts leading zeros in base 10.
		s = strings.TrimLeft(s, "0")
	}
	u, err := strconv.ParseUint(s, 10, 64)
	if err != nil || u > 1<<63-1 {
		t := strings.TrimLeft(s, "0")
		if neg {
			t = "-" + t
		}
		return 0, t, true
	}
	if neg {
		return -int64(u), "", true
	}
	return int64(u), "", true
}
