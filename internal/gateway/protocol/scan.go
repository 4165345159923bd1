package protocol

import (
	"fmt"
	"math"
	"unicode/utf8"
)

// SyntaxError is a malformed body; Offset is the byte where parsing stopped.
type SyntaxError struct {
	Offset int
	Msg    string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("%s at byte %d", e.Msg, e.Offset) }

// scanner walks a JSON document without building it. It keeps only the numbers the protocol
// needs and skips everything else, validating as it goes.
type scanner struct {
	b         []byte
	i         int
	depth     int
	maxDepth  int
	maxValues int
	nonFinite bool // accept NaN, Infinity, -Infinity tokens (TF Serving)
	err       error
}

func (s *scanner) failAt(i int, msg string) error { return &SyntaxError{Offset: i, Msg: msg} }
func (s *scanner) fail(msg string) error          { return s.failAt(s.i, msg) }

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) peek() byte {
	s.ws()
	if s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

func (s *scanner) expect(c byte) error {
	if s.peek() != c {
		return s.fail(fmt.Sprintf("%q expected", c))
	}
	s.i++
	return nil
}

func (s *scanner) enter() error {
	s.depth++
	if s.depth > s.maxDepth {
		return s.fail("nesting too deep")
	}
	return nil
}

// end reports an error unless only white space is left.
func (s *scanner) end() error {
	s.ws()
	if s.i != len(s.b) {
		return s.fail("unexpected data after the document")
	}
	return nil
}

// object calls member for each key; member must consume the value.
func (s *scanner) object(member func(key []byte) error) error {
	if err := s.expect('{'); err != nil {
		return err
	}
	if err := s.enter(); err != nil {
		return err
	}
	if s.peek() == '}' {
		s.i++
		s.depth--
		return nil
	}
	for {
		if s.peek() != '"' {
			return s.fail("object key expected")
		}
		key, err := s.str()
		if err != nil {
			return err
		}
		if err := s.expect(':'); err != nil {
			return err
		}
		s.ws()
		if err := member(key); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			s.depth--
			return nil
		default:
			return s.fail("',' or '}' expected in object")
		}
	}
}

// array calls elem for each element; elem must consume it.
func (s *scanner) array(elem func(idx int) error) error {
	if err := s.expect('['); err != nil {
		return err
	}
	if err := s.enter(); err != nil {
		return err
	}
	if s.peek() == ']' {
		s.i++
		s.depth--
		return nil
	}
	for idx := 0; ; idx++ {
		s.ws()
		if err := elem(idx); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			s.depth--
			return nil
		default:
			return s.fail("',' or ']' expected in array")
		}
	}
}

// str reads a string and returns its contents, unescaped only when it holds escapes (keys and
// short values; long strings are only validated and returned raw).
func (s *scanner) str() ([]byte, error) {
	if err := s.expect('"'); err != nil {
		return nil, err
	}
	start := s.i
	escaped := false
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			raw := s.b[start:s.i]
			s.i++
			if escaped {
				return unescape(raw), nil
			}
			return raw, nil
		case c == '\\':
			escaped = true
			if s.i+1 >= len(s.b) {
				return nil, s.fail("truncated escape")
			}
			switch s.b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if s.i+6 > len(s.b) || !isHex4(s.b[s.i+2:s.i+6]) {
					return nil, s.fail("invalid \\u escape")
				}
				s.i += 6
			default:
				return nil, s.fail("invalid escape")
			}
		case c < 0x20:
			return nil, s.fail("control character in string")
		case c < utf8.RuneSelf:
			s.i++
		default:
			r, n := utf8.DecodeRune(s.b[s.i:])
			if r == utf8.RuneError && n == 1 {
				return nil, s.fail("invalid UTF-8 in string")
			}
			s.i += n
		}
	}
	return nil, s.fail("unterminated string")
}

func isHex4(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// unescape decodes JSON escapes; the input was validated by str.
func unescape(raw []byte) []byte {
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' {
			out = append(out, raw[i])
			continue
		}
		i++
		switch raw[i] {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			var r rune
			for _, c := range raw[i+1 : i+5] {
				r = r<<4 | rune(hexVal(c))
			}
			i += 4
			if utf16Surrogate(r) && i+6 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
				var r2 rune
				for _, c := range raw[i+3 : i+7] {
					r2 = r2<<4 | rune(hexVal(c))
				}
				if r >= 0xD800 && r < 0xDC00 && r2 >= 0xDC00 && r2 < 0xE000 {
					r = (r-0xD800)<<10 | (r2 - 0xDC00) + 0x10000
					i += 6
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			out = append(out, raw[i])
		}
	}
	return out
}

func utf16Surrogate(r rune) bool { return r >= 0xD800 && r < 0xE000 }

func hexVal(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

// skip consumes any value.
func (s *scanner) skip() error {
	switch c := s.peek(); c {
	case '{':
		return s.object(func([]byte) error { return s.skip() })
	case '[':
		return s.array(func(int) error { return s.skip() })
	case '"':
		_, err := s.str()
		return err
	case 't':
		return s.lit("true")
	case 'f':
		return s.lit("false")
	case 'n':
		return s.lit("null")
	case 'N', 'I':
		_, err := s.nonFiniteToken()
		return err
	default:
		_, err := s.number()
		return err
	}
}

func (s *scanner) lit(w string) error {
	if !hasPrefix(s.b[s.i:], w) {
		return s.fail("invalid literal")
	}
	s.i += len(w)
	return nil
}

func (s *scanner) nonFiniteToken() (float64, error) {
	if s.nonFinite {
		if hasPrefix(s.b[s.i:], "NaN") {
			s.i += 3
			return math.NaN(), nil
		}
		if hasPrefix(s.b[s.i:], "Infinity") {
			s.i += 8
			return math.Inf(1), nil
		}
	}
	return 0, s.fail("invalid value")
}

// flatten appends every number of a value (nested arrays of numbers, booleans as 0/1, null as
// NaN) to out. Strings and objects are opaque: they are counted in *opaque and fed to the hash
// (TF Serving {"b64": ...} inputs, BYTES tensors).
func (s *scanner) flatten(out []float64, op *opaqueSum) ([]float64, error) {
	switch c := s.peek(); {
	case c == '[':
		return s.flattenArray(out, op)
	case c == '-' || (c >= '0' && c <= '9'):
		if len(out) >= s.maxValues {
			return out, s.fail("too many values")
		}
		f, err := s.number()
		return append(out, f), err
	case c == 't':
		return append(out, 1), s.lit("true")
	case c == 'f':
		return append(out, 0), s.lit("false")
	case c == 'n':
		if err := s.lit("null"); err != nil {
			return out, err
		}
		return append(out, math.NaN()), nil
	case c == 'N' || c == 'I':
		f, err := s.nonFiniteToken()
		return append(out, f), err
	case c == '"':
		v, err := s.str()
		op.add(v)
		return out, err
	case c == '{':
		// Named members ({"b64": ...} in TF Serving, records in MLflow): numbers in member
		// order, strings hashed.
		err := s.object(func([]byte) error {
			var err error
			out, err = s.flatten(out, op)
			return err
		})
		return out, err
	default:
		return out, s.fail("value expected")
	}
}

// flattenArray is flatten's loop over an array, written out because arrays of numbers are the
// bulk of every tensor body.
func (s *scanner) flattenArray(out []float64, op *opaqueSum) ([]float64, error) {
	s.i++ // '['
	if err := s.enter(); err != nil {
		return out, err
	}
	if s.peek() == ']' {
		s.i++
		s.depth--
		return out, nil
	}
	for {
		if s.i < len(s.b) && (s.b[s.i]-'0' <= 9 || s.b[s.i] == '-') {
			if len(out) >= s.maxValues {
				return out, s.fail("too many values")
			}
			f, err := s.number()
			if err != nil {
				return out, err
			}
			out = append(out, f)
		} else {
			var err error
			if out, err = s.flatten(out, op); err != nil {
				return out, err
			}
		}
		var c byte
		if s.i < len(s.b) {
			c = s.b[s.i]
		}
		if c != ',' && c != ']' {
			c = s.peek()
		}
		switch c {
		case ',':
			s.i++
			if s.i < len(s.b) && s.b[s.i] == ' ' {
				s.i++
			}
			s.ws()
		case ']':
			s.i++
			s.depth--
			return out, nil
		default:
			return out, s.fail("',' or ']' expected in array")
		}
	}
}
