package monitor

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// parseInference reads an inference event's endpoint and features. It handles the common shape
// (plain keys, plain strings, an array of numbers) in one pass without allocating more than the
// features, and hands anything else (escapes, nulls, odd values) to encoding/json, so the result
// is always what json.Unmarshal into inferenceData gives. The data was validated as JSON when the
// event was received.
func parseInference(b []byte) (inferenceData, error) {
	if d, ok := fastInference(b); ok {
		return d, nil
	}
	var d inferenceData
	err := json.Unmarshal(b, &d)
	return d, err
}

func fastInference(b []byte) (d inferenceData, ok bool) {
	i := ws(b, 0)
	if i >= len(b) || b[i] != '{' {
		return d, false
	}
	i = ws(b, i+1)
	if i < len(b) && b[i] == '}' {
		return d, ws(b, i+1) == len(b)
	}
	for {
		key, j, ok := plainString(b, i)
		if !ok {
			return d, false
		}
		i = ws(b, j)
		if i >= len(b) || b[i] != ':' {
			return d, false
		}
		i = ws(b, i+1)
		switch {
		case bytes.EqualFold(key, []byte("endpoint")):
			s, j, ok := plainString(b, i)
			if !ok {
				return d, false
			}
			d.Endpoint, i = string(s), j
		case bytes.EqualFold(key, []byte("features")):
			fs, j, ok := numberArray(b, i)
			if !ok {
				return d, false
			}
			d.Features, i = fs, j
		default:
			j, ok := skip(b, i, 0)
			if !ok {
				return d, false
			}
			i = j
		}
		i = ws(b, i)
		if i >= len(b) {
			return d, false
		}
		switch b[i] {
		case ',':
			i = ws(b, i+1)
		case '}':
			return d, ws(b, i+1) == len(b)
		default:
			return d, false
		}
	}
}

func ws(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// plainString reads a string without escapes or control characters at b[i].
func plainString(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, i, false
	}
	ascii := true
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			// encoding/json replaces invalid UTF-8 with U+FFFD; such strings take its path.
			if !ascii && !utf8.Valid(b[i+1:j]) {
				return nil, i, false
			}
			return b[i+1 : j], j + 1, true
		case c == '\\' || c < 0x20:
			return nil, i, false
		case c >= 0x80:
			ascii = false
		}
	}
	return nil, i, false
}

// numberArray reads an array of numbers at b[i].
func numberArray(b []byte, i int) ([]float64, int, bool) {
	if i >= len(b) || b[i] != '[' {
		return nil, i, false
	}
	i = ws(b, i+1)
	fs := make([]float64, 0, 16)
	if i < len(b) && b[i] == ']' {
		return fs, i + 1, true
	}
	for {
		j := i
		for j < len(b) && (b[j] == '-' || b[j] == '+' || b[j] == '.' || b[j] == 'e' || b[j] == 'E' || (b[j] >= '0' && b[j] <= '9')) {
			j++
		}
		if j == i || !jsonNumber(b[i:j]) {
			return nil, i, false
		}
		f, err := strconv.ParseFloat(string(b[i:j]), 64)
		if err != nil {
			return nil, i, false
		}
		fs = append(fs, f)
		i = ws(b, j)
		if i >= len(b) {
			return nil, i, false
		}
		switch b[i] {
		case ',':
			i = ws(b, i+1)
		case ']':
			return fs, i + 1, true
		default:
			return nil, i, false
		}
	}
}

// jsonNumber reports whether s is a number in JSON's grammar (strconv accepts more).
func jsonNumber(s []byte) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			return false
		}
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			return false
		}
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	return i == len(s)
}

// skip passes over any JSON value at b[i] made only of plain strings, numbers, literals,
// arrays and objects, nested at most 64 deep.
func skip(b []byte, i, depth int) (int, bool) {
	if i >= len(b) || depth > 64 {
		return i, false
	}
	switch c := b[i]; {
	case c == '"':
		_, j, ok := plainString(b, i)
		return j, ok
	case c == '{' || c == '[':
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		i = ws(b, i+1)
		if i < len(b) && b[i] == end {
			return i + 1, true
		}
		for {
			if c == '{' {
				_, j, ok := plainString(b, i)
				if !ok {
					return i, false
				}
				i = ws(b, j)
				if i >= len(b) || b[i] != ':' {
					return i, false
				}
				i = ws(b, i+1)
			}
			j, ok := skip(b, i, depth+1)
			if !ok {
				return i, false
			}
			i = ws(b, j)
			if i >= len(b) {
				return i, false
			}
			if b[i] == end {
				return i + 1, true
			}
			if b[i] != ',' {
				return i, false
			}
			i = ws(b, i+1)
		}
	case c == 't' && bytes.HasPrefix(b[i:], []byte("true")):
		return i + 4, true
	case c == 'f' && bytes.HasPrefix(b[i:], []byte("false")):
		return i + 5, true
	case c == 'n' && bytes.HasPrefix(b[i:], []byte("null")):
		return i + 4, true
	default:
		j := i
		for j < len(b) && (b[j] == '-' || b[j] == '+' || b[j] == '.' || b[j] == 'e' || b[j] == 'E' || (b[j] >= '0' && b[j] <= '9')) {
			j++
		}
		return j, j > i && jsonNumber(b[i:j])
	}
}
