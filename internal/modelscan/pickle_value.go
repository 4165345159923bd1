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

// value is a walked value handed out of the walker (a pickle's result, a persistent id, a
// BUILD state): a copy of a cell with its text and containers (to exportDepth levels) of its own.
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
	return kindNames[v.k]
}

var kindNames = [...]string{"object", "None", "bool", "int", "int", "float", "str", "bytes", "tuple", "list", "dict",
	"set", "global", "module", "namespace", "attrgetter", "call", "dtype", "persistent object"}

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

// nameLike reports whether s may be (part of) an import name: short, and made of the bytes
// of dotted identifiers.
func nameLike(s []byte) bool {
	return len(s) <= maxNameLen && nameBytes(s)
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
