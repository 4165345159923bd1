package rules

import (
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"unsafe"

	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
)

// eventData is an event's data object read lazily. One validating pass over the JSON (scan)
// accepts exactly what decodeData accepts and records where each top-level field's value lies;
// nothing is decoded then. A rule that reads a field decodes that field only, once per event,
// and the literal index and prefilters compare plain strings and numbers against the raw bytes
// without decoding at all. Most events never build a map or copy a string.
//
// An eventData is reused from event to event (see evalScratch); values handed out of it (native
// values, CEL values) are built on a private copy of the input (own), never on the caller's
// buffer, so they stay valid after Evaluate returns however the caller reuses it.
type eventData struct {
	raw     []byte // the event's data, valid during one Evaluate
	own     []byte // private copy of raw, made when a value is first handed out
	fields  []dataField
	byName  map[string]int // for objects with many fields, built on first lookup
	full    map[string]any // the whole object, decoded on demand
	adapter types.Adapter
}

// Field kinds.
const (
	kindString = '"'
	kindNumber = '0'
	kindTrue   = 't'
	kindFalse  = 'f'
	kindNull   = 'n'
	kindObject = '{'
	kindArray  = '['
)

type dataField struct {
	key        string // a view of raw for plain keys; decoded for keys with escapes
	start, end int    // the value's bytes in raw
	kind       byte
	plain      bool // a string without escapes or non-ASCII bytes: its raw bytes are its value
	// Decoded on first use, per event.
	numOK  bool
	num    float64
	bndOK  bool
	lo, hi float64 // bounds of the number, before it is parsed
	natOK  bool
	nat    any
	celVal ref.Val
}

// manyFields: objects with more top-level fields than this get a name map instead of a scan.
const manyFields = 16

func (d *eventData) reset() {
	clear(d.fields) // drop references to the previous event's values
	d.fields = d.fields[:0]
	d.raw, d.own, d.full, d.byName = nil, nil, nil, nil
}

var errNotObject = errors.New("data must be a JSON object")

// scan validates in and records its top-level fields. Empty data and null are an empty object.
func (d *eventData) scan(in []byte, maxDepth int) error {
	d.reset()
	d.raw = in
	s := scanner{b: in, maxDepth: maxDepth}
	s.skipSpace()
	if s.i >= len(s.b) {
		return nil
	}
	if s.b[s.i] == 'n' {
		if err := s.literal("null"); err != nil {
			return err
		}
		return s.end()
	}
	if s.b[s.i] != '{' {
		return errNotObject
	}
	s.i++
	s.skipSpace()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return s.end()
	}
	for {
		s.skipSpace()
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			return s.errf("expected a string key")
		}
		ks := s.i
		plainKey, err := s.skipString()
		if err != nil {
			return err
		}
		var key string
		if plainKey {
			key = unsafe.String(unsafe.SliceData(in[ks+1:]), s.i-ks-2)
		} else {
			dec := jsonDecoder{b: in, i: ks, maxDepth: maxDepth}
			if key, err = dec.str(); err != nil {
				return err
			}
		}
		s.skipSpace()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return s.errf("expected ':'")
		}
		s.i++
		s.skipSpace()
		if s.i >= len(s.b) {
			return s.errf("unexpected end")
		}
		f := dataField{key: key, start: s.i}
		switch c := s.b[s.i]; {
		case c == '"':
			f.kind = kindString
			f.plain, err = s.skipString()
		case c == '{' || c == '[':
			f.kind = c
			err = s.skipComposite(1)
		case c == 't':
			f.kind = kindTrue
			err = s.literal("true")
		case c == 'f':
			f.kind = kindFalse
			err = s.literal("false")
		case c == 'n':
			f.kind = kindNull
			err = s.literal("null")
		case c == '-' || (c >= '0' && c <= '9'):
			f.kind = kindNumber
			err = s.skipNumber()
		default:
			err = s.errf("unexpected character %q", c)
		}
		if err != nil {
			return err
		}
		f.end = s.i
		d.fields = append(d.fields, f)
		s.skipSpace()
		if s.i >= len(s.b) {
			return s.errf("unexpected end in object")
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case '}':
			s.i++
			return s.end()
		default:
			return s.errf("expected ',' or '}'")
		}
	}
}

// field returns the top-level field named name (the last one when a key repeats, as
// encoding/json does), or nil.
func (d *eventData) field(name string) *dataField {
	if len(d.fields) > manyFields {
		if d.byName == nil {
			d.byName = make(map[string]int, len(d.fields))
			for i := range d.fields {
				d.byName[d.fields[i].key] = i
			}
		}
		if i, ok := d.byName[name]; ok {
			return &d.fields[i]
		}
		return nil
	}
	if name == "" {
		for i := len(d.fields) - 1; i >= 0; i-- {
			if d.fields[i].key == "" {
				return &d.fields[i]
			}
		}
		return nil
	}
	for i := len(d.fields) - 1; i >= 0; i-- {
		// The length and first byte rule out most keys before a full comparison.
		if k := d.fields[i].key; len(k) == len(name) && k[0] == name[0] && k == name {
			return &d.fields[i]
		}
	}
	return nil
}

// owned returns the private copy of the input that handed-out values point into.
func (d *eventData) owned() []byte {
	if d.own == nil {
		d.own = append(make([]byte, 0, len(d.raw)), d.raw...)
	}
	return d.own
}

// native returns the field's value in the shapes decodeData gives.
func (d *eventData) native(f *dataField) any {
	if f.natOK {
		return f.nat
	}
	switch f.kind {
	case kindString:
		if f.plain {
			own := d.owned()
			f.nat = unsafe.String(unsafe.SliceData(own[f.start+1:]), f.end-f.start-2)
		} else {
			dec := jsonDecoder{b: d.owned(), i: f.start}
			f.nat, _ = dec.str() // validated by scan
		}
	case kindNumber:
		f.nat = d.number(f)
	case kindTrue:
		f.nat = true
	case kindFalse:
		f.nat = false
	case kindNull:
		f.nat = nil
	default:
		dec := jsonDecoder{b: d.owned(), i: f.start, maxDepth: maxDataDepth}
		f.nat, _ = dec.value(0) // validated by scan
	}
	f.natOK = true
	return f.nat
}

func (d *eventData) number(f *dataField) float64 {
	if !f.numOK {
		s := d.raw[f.start:f.end]
		if v, ok := shortNumber(s); ok {
			f.num = v
		} else {
			f.num, _ = strconv.ParseFloat(unsafe.String(unsafe.SliceData(s), len(s)), 64) // validated by scan
		}
		f.numOK = true
	}
	return f.num
}

// pow10 are the powers of ten a float64 holds exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15}

// shortNumber parses a validated JSON number of at most 15 digits and no exponent, the common
// case, exactly as ParseFloat does: the digits make an integer below 2^53 and the division by
// an exact power of ten is correctly rounded. ok is false for other numbers.
func shortNumber(s []byte) (float64, bool) {
	neg := s[0] == '-'
	if neg {
		s = s[1:]
	}
	var m uint64
	digits, frac := 0, -1
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9':
			m = m*10 + uint64(c-'0')
			digits++
			if frac >= 0 {
				frac++
			}
		case c == '.':
			frac = 0
		default:
			return 0, false // an exponent
		}
	}
	if digits > 15 {
		return 0, false
	}
	v := float64(m)
	if frac > 0 {
		v /= pow10[frac]
	}
	if neg {
		v = -v
	}
	return v, true
}

// numberBounds brackets a number field without parsing it in full when its integer part is
// short and it has no exponent: lo <= value <= hi. Thresholds far from the value are decided
// on the bounds.
func (d *eventData) numberBounds(f *dataField) (lo, hi float64) {
	if f.numOK {
		return f.num, f.num
	}
	if f.bndOK {
		return f.lo, f.hi
	}
	s := d.raw[f.start:f.end]
	neg := s[0] == '-'
	if neg {
		s = s[1:]
	}
	var ip uint64
	i := 0
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		if i == 15 {
			v := d.number(f)
			return v, v
		}
		ip = ip*10 + uint64(s[i]-'0')
	}
	switch {
	case i == len(s):
		v := float64(ip) // an integer: exact
		if neg {
			v = -v
		}
		f.num, f.numOK = v, true
		return v, v
	case s[i] != '.':
		v := d.number(f) // an exponent
		return v, v
	}
	for j := i + 1; j < len(s); j++ {
		if s[j] < '0' || s[j] > '9' {
			v := d.number(f) // an exponent
			return v, v
		}
	}
	lo, hi = float64(ip), float64(ip+1)
	if neg {
		lo, hi = -hi, -lo
	}
	f.lo, f.hi, f.bndOK = lo, hi, true
	return lo, hi
}

// compareNumber answers data.name OP lit for a top-level number field, from its bounds when
// they decide; ok is false when the field is missing or not a number.
func (d *eventData) compareNumber(name, op string, lit float64) (triState, bool) {
	f := d.field(name)
	if f == nil || f.kind != kindNumber {
		return unknown, false
	}
	lo, hi := d.numberBounds(f)
	if lo != hi {
		switch op {
		case operators.Greater:
			if lo > lit {
				return yes, true
			} else if hi <= lit {
				return no, true
			}
		case operators.GreaterEquals:
			if lo >= lit {
				return yes, true
			} else if hi < lit {
				return no, true
			}
		case operators.Less:
			if hi < lit {
				return yes, true
			} else if lo >= lit {
				return no, true
			}
		case operators.LessEquals:
			if hi <= lit {
				return yes, true
			} else if lo > lit {
				return no, true
			}
		}
		lo = d.number(f)
	}
	return compareNum(op, lo, lit), true
}

// str returns a string field's value for comparison during this evaluation only: for plain
// strings it points into the caller's buffer.
func (d *eventData) str(f *dataField) string {
	if f.plain {
		return unsafe.String(unsafe.SliceData(d.raw[f.start+1:]), f.end-f.start-2)
	}
	return d.native(f).(string)
}

// cel returns the field's CEL value, as the CEL adapter would make of the decoded value.
func (d *eventData) cel(f *dataField) ref.Val {
	if f.celVal == nil {
		switch f.kind {
		case kindString:
			f.celVal = types.String(d.native(f).(string))
		case kindNumber:
			f.celVal = types.Double(d.number(f))
		case kindTrue:
			f.celVal = types.True
		case kindFalse:
			f.celVal = types.False
		case kindNull:
			f.celVal = types.NullValue
		default:
			f.celVal = d.adapter.NativeToValue(d.native(f))
		}
	}
	return f.celVal
}

// path reads data.a.b...; found is false when a step is missing or not an object.
func (d *eventData) path(p []string) (v any, found bool) {
	f := d.field(p[0])
	if f == nil {
		return nil, false
	}
	if len(p) == 1 {
		return d.native(f), true
	}
	if f.kind != kindObject {
		return nil, false
	}
	cur := d.native(f)
	for _, k := range p[1:] {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[k]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// rawComposite returns the JSON text of a top-level list or object field, nil for anything
// else. It is the caller's buffer: compare it, never keep it.
func (d *eventData) rawComposite(name string) []byte {
	if f := d.field(name); f != nil && (f.kind == kindObject || f.kind == kindArray) {
		return d.raw[f.start:f.end]
	}
	return nil
}

func (d *eventData) rawComposite1(p []string) []byte {
	if len(p) != 1 {
		return nil
	}
	return d.rawComposite(p[0])
}

// has answers has(data.a.b...) as CEL would: yes or no when every step before the last is an
// object; unknown otherwise (CEL's error or false depends on the step).
func (d *eventData) has(p []string) triState {
	f := d.field(p[0])
	if len(p) == 1 {
		return boolState(f != nil)
	}
	if f == nil || f.kind != kindObject {
		return unknown
	}
	m, _ := d.native(f).(map[string]any)
	for i, k := range p[1:] {
		v, ok := m[k]
		if i == len(p)-2 {
			return boolState(ok)
		}
		if m, ok = v.(map[string]any); !ok {
			return unknown
		}
	}
	return unknown
}

// object returns the whole data object, decoded once from the private copy.
func (d *eventData) object() map[string]any {
	if d.full == nil {
		if len(d.fields) == 0 {
			d.full = map[string]any{}
		} else {
			dec := jsonDecoder{b: d.owned(), maxDepth: maxDataDepth}
			dec.skipSpace()
			d.full, _ = dec.object(0) // validated by scan
		}
	}
	return d.full
}

// scalar is a field's value as prefilters and the literal index compare it: kind is one of the
// field kinds; s is set for strings and only valid during the evaluation.
type scalar struct {
	kind byte
	s    string
	f    float64
}

// scalarAt reads the scalar at path p; ok is false when the path is missing or holds an object
// or array (prefilters then leave the decision to CEL).
func (d *eventData) scalarAt(p []string) (sc scalar, ok bool) {
	if len(p) == 1 {
		f := d.field(p[0])
		if f == nil {
			return scalar{}, false
		}
		switch f.kind {
		case kindString:
			return scalar{kind: kindString, s: d.str(f)}, true
		case kindNumber:
			return scalar{kind: kindNumber, f: d.number(f)}, true
		case kindTrue, kindFalse, kindNull:
			return scalar{kind: f.kind}, true
		}
		return scalar{}, false
	}
	v, found := d.path(p)
	if !found {
		return scalar{}, false
	}
	switch x := v.(type) {
	case string:
		return scalar{kind: kindString, s: x}, true
	case float64:
		return scalar{kind: kindNumber, f: x}, true
	case bool:
		if x {
			return scalar{kind: kindTrue}, true
		}
		return scalar{kind: kindFalse}, true
	case nil:
		return scalar{kind: kindNull}, true
	}
	return scalar{}, false
}

// scanner validates JSON without building values; its grammar and limits are decodeData's
// (FuzzEventData checks that they accept the same inputs).
type scanner struct {
	b        []byte
	i        int
	maxDepth int
}

func (s *scanner) errf(format string, a ...any) error {
	return fmt.Errorf("invalid JSON at byte %d: %s", s.i, fmt.Sprintf(format, a...))
}

func (s *scanner) skipSpace() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) end() error {
	s.skipSpace()
	if s.i != len(s.b) {
		return s.errf("unexpected data after the object")
	}
	return nil
}

func (s *scanner) literal(lit string) error {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return s.errf("invalid literal")
	}
	s.i += len(lit)
	return nil
}

// strByte classifies string bytes: 0 ordinary ASCII, 1 the end or an escape, 2 a control
// character, 3 a byte of a multi-byte sequence.
var strByte = func() (t [256]byte) {
	for c := 0; c < 0x20; c++ {
		t[c] = 2
	}
	t['"'], t['\\'] = 1, 1
	for c := 0x80; c < 0x100; c++ {
		t[c] = 3
	}
	return t
}()

// skipString passes a string starting at its opening quote; plain reports no escapes and no
// bytes outside ASCII.
func (s *scanner) skipString() (plain bool, err error) {
	s.i++
	plain = true
	b := s.b
	for s.i < len(b) {
		// Eight ordinary bytes at a time.
		if s.i+8 <= len(b) && !specialByte(binary.LittleEndian.Uint64(b[s.i:])) {
			s.i += 8
			continue
		}
		switch strByte[b[s.i]] {
		case 0:
			s.i++
		case 3:
			plain = false
			s.i++
		case 2:
			return false, s.errf("control character in string")
		default:
			if b[s.i] == '"' {
				s.i++
				return plain, nil
			}
			plain = false
			s.i++ // backslash
			if s.i >= len(b) {
				return false, s.errf("unterminated string")
			}
			switch b[s.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i++
			case 'u':
				s.i++
				if len(b)-s.i < 4 || !isHex(b[s.i]) || !isHex(b[s.i+1]) || !isHex(b[s.i+2]) || !isHex(b[s.i+3]) {
					return false, s.errf("invalid \\u escape")
				}
				s.i += 4
			default:
				return false, s.errf("invalid escape")
			}
		}
	}
	return false, s.errf("unterminated string")
}

// specialByte reports whether any byte of w is a quote, a backslash, a control character or
// outside ASCII (the bytes strByte does not classify 0).
func specialByte(w uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	zero := func(v uint64) uint64 { return (v - ones) &^ v & highs }
	return (w&highs)|zero(w^(ones*'"'))|zero(w^(ones*'\\'))|((w-ones*0x20)&^w&highs) != 0
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func (s *scanner) digits() int {
	n := 0
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
		n++
	}
	return n
}

// skipNumber passes a JSON number; like decodeData it rejects one out of float64's range.
func (s *scanner) skipNumber() error {
	start := s.i
	if s.b[s.i] == '-' {
		s.i++
	}
	intStart := s.i
	n := s.digits()
	if n == 0 || (n > 1 && s.b[intStart] == '0') {
		return s.errf("invalid number")
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if s.digits() == 0 {
			return s.errf("invalid number")
		}
	}
	exp := false
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		exp = true
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if s.digits() == 0 {
			return s.errf("invalid number")
		}
	}
	// Without an exponent only a number of more than 308 integer digits overflows.
	if exp || n > 300 {
		t := s.b[start:s.i]
		if _, err := strconv.ParseFloat(unsafe.String(unsafe.SliceData(t), len(t)), 64); err != nil {
			return s.errf("number %s out of range", t)
		}
	}
	return nil
}

// skipComposite passes an object or array at the given nesting depth.
func (s *scanner) skipComposite(depth int) error {
	if depth > s.maxDepth {
		return errJSONDepth
	}
	obj := s.b[s.i] == '{'
	s.i++
	s.skipSpace()
	closing := byte(']')
	if obj {
		closing = '}'
	}
	if s.i < len(s.b) && s.b[s.i] == closing {
		s.i++
		return nil
	}
	for {
		if obj {
			s.skipSpace()
			if s.i >= len(s.b) || s.b[s.i] != '"' {
				return s.errf("expected a string key")
			}
			if _, err := s.skipString(); err != nil {
				return err
			}
			s.skipSpace()
			if s.i >= len(s.b) || s.b[s.i] != ':' {
				return s.errf("expected ':'")
			}
			s.i++
		}
		if err := s.skipValue(depth); err != nil {
			return err
		}
		s.skipSpace()
		if s.i >= len(s.b) {
			return s.errf("unexpected end")
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case closing:
			s.i++
			return nil
		default:
			return s.errf("expected ',' or %q", closing)
		}
	}
}

func (s *scanner) skipValue(depth int) error {
	s.skipSpace()
	if s.i >= len(s.b) {
		return s.errf("unexpected end")
	}
	switch c := s.b[s.i]; {
	case c == '{' || c == '[':
		return s.skipComposite(depth + 1)
	case c == '"':
		_, err := s.skipString()
		return err
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return s.skipNumber()
	default:
		return s.errf("unexpected character %q", c)
	}
}

// dataValue is the CEL value of the data variable: a map whose fields are decoded when a rule
// selects them. Whatever needs the whole map (iteration, size, equality, conversion) works on
// the object decoded in full, so it behaves as the map of the decoded data would.
type dataValue struct{ d *eventData }

var (
	_ traits.Mapper = dataValue{}
	_ ref.Val       = dataValue{}
)

func (v dataValue) whole() traits.Mapper {
	return v.d.adapter.NativeToValue(v.d.object()).(traits.Mapper)
}

// FindStringKey is the interpreter's fast path for data.name.
func (v dataValue) FindStringKey(name string) (any, bool) {
	f := v.d.field(name)
	if f == nil {
		return nil, false
	}
	return v.d.cel(f), true
}

func (v dataValue) Find(key ref.Val) (ref.Val, bool) {
	if s, ok := key.(types.String); ok {
		f := v.d.field(string(s))
		if f == nil {
			return nil, false
		}
		return v.d.cel(f), true
	}
	return v.whole().Find(key)
}

func (v dataValue) Get(key ref.Val) ref.Val {
	if val, found := v.Find(key); found {
		return val
	}
	return v.whole().Get(key)
}

func (v dataValue) Contains(key ref.Val) ref.Val {
	if _, ok := key.(types.String); ok {
		_, found := v.Find(key)
		return types.Bool(found)
	}
	return v.whole().Contains(key)
}

func (v dataValue) Size() ref.Val                               { return v.whole().Size() }
func (v dataValue) Iterator() traits.Iterator                   { return v.whole().Iterator() }
func (v dataValue) ConvertToNative(t reflect.Type) (any, error) { return v.whole().ConvertToNative(t) }
func (v dataValue) ConvertToType(t ref.Type) ref.Val            { return v.whole().ConvertToType(t) }
func (v dataValue) Equal(other ref.Val) ref.Val                 { return v.whole().Equal(other) }
func (v dataValue) Type() ref.Type                              { return types.MapType }
func (v dataValue) Value() any                                  { return v.d.object() }
func (v dataValue) IsZeroValue() bool                           { return len(v.d.fields) == 0 }
func (v dataValue) String() string                              { return fmt.Sprint(v.whole()) }

func (v dataValue) Fold(f traits.Folder) {
	w := v.whole()
	if fo, ok := w.(traits.Foldable); ok {
		fo.Fold(f)
		return
	}
	types.ToFoldableMap(w).Fold(f)
}
