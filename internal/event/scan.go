package event

import (
	"encoding/json"
	"errors"
	"fmt"
)

// scanner is a single-pass JSON reader for ingestion: it validates syntax and depth while
// handing back the raw spans of the few values pipewarden reads, so a batch is read once
// instead of once per encoding/json.Unmarshal call.
type scanner struct {
	b        []byte
	i        int
	depth    int
	maxDepth int
}

var errDepth = errors.New("too deep")

type syntaxError struct {
	off int
	msg string
}

func (e *syntaxError) Error() string { return fmt.Sprintf("%s at byte %d", e.msg, e.off) }

func (s *scanner) fail(msg string) error { return &syntaxError{off: s.i, msg: msg} }

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
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// value skips one value, validating it; it returns the span [start, end).
func (s *scanner) value() (int, int, error) {
	s.ws()
	start := s.i
	if s.i >= len(s.b) {
		return 0, 0, s.fail("unexpected end of JSON input")
	}
	var err error
	switch c := s.b[s.i]; {
	case c == '{':
		err = s.object(func([]byte, bool) error { _, _, err := s.value(); return err })
	case c == '[':
		err = s.array(func(int) error { _, _, err := s.value(); return err })
	case c == '"':
		_, _, err = s.str()
	case c == '-' || (c >= '0' && c <= '9'):
		err = s.number()
	case c == 't':
		err = s.lit("true")
	case c == 'f':
		err = s.lit("false")
	case c == 'n':
		err = s.lit("null")
	default:
		err = s.fail(fmt.Sprintf("invalid character %q looking for beginning of value", c))
	}
	return start, s.i, err
}

func (s *scanner) lit(w string) error {
	if len(s.b)-s.i < len(w) || string(s.b[s.i:s.i+len(w)]) != w {
		return s.fail("invalid literal")
	}
	s.i += len(w)
	return nil
}

func (s *scanner) enter() error {
	s.depth++
	if s.depth > s.maxDepth {
		return errDepth
	}
	return nil
}

// object reads {...}, calling member for each key with the scanner positioned at the value;
// member must consume the value.
func (s *scanner) object(member func(key []byte, escaped bool) error) error {
	if err := s.enter(); err != nil {
		return err
	}
	s.i++ // {
	s.ws()
	if s.peek() == '}' {
		s.i++
		s.depth--
		return nil
	}
	for {
		s.ws()
		if s.peek() != '"' {
			return s.fail("expected a string key in object")
		}
		k, esc, err := s.str()
		if err != nil {
			return err
		}
		s.ws()
		if s.peek() != ':' {
			return s.fail("expected ':' after object key")
		}
		s.i++
		s.ws()
		if err := member(k, esc); err != nil {
			return err
		}
		s.ws()
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			s.depth--
			return nil
		default:
			return s.fail("expected ',' or '}' after object value")
		}
	}
}

// array reads [...], calling elem for each element with the scanner at it.
func (s *scanner) array(elem func(idx int) error) error {
	if err := s.enter(); err != nil {
		return err
	}
	s.i++ // [
	s.ws()
	if s.peek() == ']' {
		s.i++
		s.depth--
		return nil
	}
	for n := 0; ; n++ {
		s.ws()
		if err := elem(n); err != nil {
			return err
		}
		s.ws()
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			s.depth--
			return nil
		default:
			return s.fail("expected ',' or ']' after array element")
		}
	}
}

// str reads a string and returns its raw content (between the quotes) and whether it holds
// escapes (then unquote must be used to get the value).
func (s *scanner) str() ([]byte, bool, error) {
	s.i++ // opening quote
	start := s.i
	esc := false
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			raw := s.b[start:s.i]
			s.i++
			return raw, esc, nil
		case c == '\\':
			esc = true
			if s.i+1 >= len(s.b) {
				return nil, false, s.fail("unexpected end of string")
			}
			switch s.b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if s.i+6 > len(s.b) || !isHex4(s.b[s.i+2:s.i+6]) {
					return nil, false, s.fail("invalid \\u escape in string")
				}
				s.i += 6
			default:
				return nil, false, s.fail("invalid escape in string")
			}
		case c < 0x20:
			return nil, false, s.fail("invalid control character in string")
		default:
			s.i++
		}
	}
	return nil, false, s.fail("unexpected end of string")
}

func isHex4(b []byte) bool {
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func (s *scanner) digits() int {
	n := 0
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
		n++
	}
	return n
}

func (s *scanner) number() error {
	if s.peek() == '-' {
		s.i++
	}
	switch c := s.peek(); {
	case c == '0':
		s.i++
	case c >= '1' && c <= '9':
		s.digits()
	default:
		return s.fail("invalid number")
	}
	if s.peek() == '.' {
		s.i++
		if s.digits() == 0 {
			return s.fail("invalid number: digits expected after '.'")
		}
	}
	if c := s.peek(); c == 'e' || c == 'E' {
		s.i++
		if c := s.peek(); c == '+' || c == '-' {
			s.i++
		}
		if s.digits() == 0 {
			return s.fail("invalid number: digits expected in exponent")
		}
	}
	return nil
}

// unquote returns the Go string of a raw string span found by str.
func unquote(raw []byte, escaped bool) (string, bool) {
	if !escaped {
		return string(raw), true
	}
	q := make([]byte, 0, len(raw)+2)
	q = append(append(append(q, '"'), raw...), '"')
	var v string
	if err := json.Unmarshal(q, &v); err != nil {
		return "", false
	}
	return v, true
}
