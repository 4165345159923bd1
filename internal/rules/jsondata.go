package rules

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// decodeData decodes an event's data object into the shapes encoding/json gives to any
// (map[string]any, []any, string, float64, bool, nil) in one pass. It exists because data is
// decoded once per event on the hot path and encoding/json's two passes and reflection cost more
// than every rule together; FuzzDecodeData checks it against encoding/json.
//
// Strings without escapes share one private copy of the input, so the result stays valid however
// the caller reuses its buffer.
func decodeData(in []byte, maxDepth int) (map[string]any, error) {
	buf := make([]byte, len(in))
	copy(buf, in)
	d := jsonDecoder{b: buf, maxDepth: maxDepth}
	d.skipSpace()
	if d.i < len(d.b) && d.b[d.i] == 'n' {
		if err := d.literal("null"); err != nil {
			return nil, err
		}
		d.skipSpace()
		if d.i != len(d.b) {
			return nil, d.errf("unexpected data after null")
		}
		return map[string]any{}, nil
	}
	if d.i >= len(d.b) {
		return map[string]any{}, nil
	}
	if d.b[d.i] != '{' {
		return nil, d.errf("data must be a JSON object")
	}
	v, err := d.object(0)
	if err != nil {
		return nil, err
	}
	d.skipSpace()
	if d.i != len(d.b) {
		return nil, d.errf("unexpected data after the object")
	}
	return v, nil
}

type jsonDecoder struct {
	b        []byte
	i        int
	maxDepth int
}

var errJSONDepth = errors.New("JSON nested too deep")

func (d *jsonDecoder) errf(format string, a ...any) error {
	return fmt.Errorf("invalid JSON at byte %d: %s", d.i, fmt.Sprintf(format, a...))
}

func (d *jsonDecoder) skipSpace() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *jsonDecoder) value(depth int) (any, error) {
	d.skipSpace()
	if d.i >= len(d.b) {
		return nil, d.errf("unexpected end")
	}
	switch c := d.b[d.i]; {
	case c == '{':
		return d.object(depth + 1)
	case c == '[':
		return d.array(depth + 1)
	case c == '"':
		return d.str()
	case c == 't':
		return true, d.literal("true")
	case c == 'f':
		return false, d.literal("false")
	case c == 'n':
		return nil, d.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return d.number()
	default:
		return nil, d.errf("unexpected character %q", c)
	}
}

func (d *jsonDecoder) literal(s string) error {
	if len(d.b)-d.i < len(s) || string(d.b[d.i:d.i+len(s)]) != s {
		return d.errf("invalid literal")
	}
	d.i += len(s)
	return nil
}

func (d *jsonDecoder) object(depth int) (map[string]any, error) {
	if depth > d.maxDepth {
		return nil, errJSONDepth
	}
	d.i++ // '{'
	m := make(map[string]any, 8)
	d.skipSpace()
	if d.i < len(d.b) && d.b[d.i] == '}' {
		d.i++
		return m, nil
	}
	for {
		d.skipSpace()
		if d.i >= len(d.b) || d.b[d.i] != '"' {
			return nil, d.errf("expected a string key")
		}
		k, err := d.str()
		if err != nil {
			return nil, err
		}
		d.skipSpace()
		if d.i >= len(d.b) || d.b[d.i] != ':' {
			return nil, d.errf("expected ':'")
		}
		d.i++
		v, err := d.value(depth)
		if err != nil {
			return nil, err
		}
		m[k] = v // the last of duplicate keys wins, as in encoding/json
		d.skipSpace()
		if d.i >= len(d.b) {
			return nil, d.errf("unexpected end in object")
		}
		switch d.b[d.i] {
		case ',':
			d.i++
		case '}':
			d.i++
			return m, nil
		default:
			return nil, d.errf("expected ',' or '}'")
		}
	}
}

func (d *jsonDecoder) array(depth int) ([]any, error) {
	if depth > d.maxDepth {
		return nil, errJSONDepth
	}
	d.i++ // '['
	out := []any{}
	d.skipSpace()
	if d.i < len(d.b) && d.b[d.i] == ']' {
		d.i++
		return out, nil
	}
	for {
		v, err := d.value(depth)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		d.skipSpace()
		if d.i >= len(d.b) {
			return nil, d.errf("unexpected end in array")
		}
		switch d.b[d.i] {
		case ',':
			d.i++
		case ']':
			d.i++
			return out, nil
		default:
			return nil, d.errf("expected ',' or ']'")
		}
	}
}

func (d *jsonDecoder) str() (string, error) {
	d.i++ // opening quote
	start := d.i
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			s := d.b[start:d.i]
			d.i++
			if !utf8.Valid(s) {
				return string([]rune(string(s))), nil // invalid bytes become U+FFFD, as in encoding/json
			}
			return unsafe.String(unsafe.SliceData(s), len(s)), nil
		case c == '\\':
			return d.strEscaped(start)
		case c < 0x20:
			return "", d.errf("control character in string")
		}
		d.i++
	}
	return "", d.errf("unterminated string")
}

// strEscaped finishes a string that has escapes, building a new one.
func (d *jsonDecoder) strEscaped(start int) (string, error) {
	out := make([]byte, 0, d.i-start+16)
	out = append(out, d.b[start:d.i]...)
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			if !utf8.Valid(out) {
				return string([]rune(string(out))), nil
			}
			return string(out), nil
		case c < 0x20:
			return "", d.errf("control character in string")
		case c != '\\':
			out = append(out, c)
			d.i++
			continue
		}
		d.i++
		if d.i >= len(d.b) {
			break
		}
		e := d.b[d.i]
		d.i++
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
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
			r, ok := d.hex4()
			if !ok {
				return "", d.errf("invalid \\u escape")
			}
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if d.i+1 < len(d.b) && d.b[d.i] == '\\' && d.b[d.i+1] == 'u' {
					save := d.i
					d.i += 2
					var ok2 bool
					if r2, ok2 = d.hex4(); !ok2 {
						return "", d.errf("invalid \\u escape")
					}
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						out = utf8.AppendRune(out, dec)
						continue
					}
					d.i = save // not a pair: the second escape stands alone
				}
				r = utf8.RuneError
			}
			out = utf8.AppendRune(out, r)
		default:
			return "", d.errf("invalid escape")
		}
	}
	return "", d.errf("unterminated string")
}

func (d *jsonDecoder) hex4() (rune, bool) {
	if d.i+4 > len(d.b) {
		return 0, false
	}
	var r rune
	for _, c := range d.b[d.i : d.i+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	d.i += 4
	return r, true
}

func (d *jsonDecoder) number() (any, error) {
	start := d.i
	if d.b[d.i] == '-' {
		d.i++
	}
	digits := func() int {
		n := 0
		for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
			d.i++
			n++
		}
		return n
	}
	intStart := d.i
	if n := digits(); n == 0 || (n > 1 && d.b[intStart] == '0') {
		return nil, d.errf("invalid number")
	}
	if d.i < len(d.b) && d.b[d.i] == '.' {
		d.i++
		if digits() == 0 {
			return nil, d.errf("invalid number")
		}
	}
	if d.i < len(d.b) && (d.b[d.i] == 'e' || d.b[d.i] == 'E') {
		d.i++
		if d.i < len(d.b) && (d.b[d.i] == '+' || d.b[d.i] == '-') {
			d.i++
		}
		if digits() == 0 {
			return nil, d.errf("invalid number")
		}
	}
	s := d.b[start:d.i]
	f, err := strconv.ParseFloat(unsafe.String(unsafe.SliceData(s), len(s)), 64)
	if err != nil {
		return nil, d.errf("number %s out of range", s)
	}
	return f, nil
}
