package protocol

import (
	"encoding/binary"
	"math"
	"strconv"
	"unsafe"
)

// pow10 holds the powers of ten that float64 represents exactly; with a mantissa below 2^53 one
// multiplication or division by them rounds correctly (Clinger's fast path).
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12,
	1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// number reads one JSON number starting at s.i and advances past it. Numbers whose decimal
// mantissa fits in 53 bits with a small exponent are converted exactly in place; the others go to
// strconv.ParseFloat, which rounds correctly too, so the result always equals encoding/json's.
func (s *scanner) number() (float64, error) {
	b, i := s.b, s.i
	start := i
	neg := false
	if i < len(b) && b[i] == '-' {
		neg = true
		i++
	}
	if i >= len(b) {
		return 0, s.failAt(i, "truncated number")
	}
	if i >= len(b) || b[i]-'0' > 9 {
		if neg && s.nonFinite && hasPrefix(b[i:], "Infinity") {
			s.i = i + len("Infinity")
			return math.Inf(-1), nil
		}
		return 0, s.failAt(i, "invalid number")
	}
	// Digits go into mant while it has room (19 digits); a dropped non-zero digit makes the
	// mantissa inexact, so the conversion goes to strconv.
	var mant uint64
	exp := 0
	exact := true
	if b[i] == '0' {
		i++
	} else {
		for ; i < len(b); i++ {
			c := b[i] - '0'
			if c > 9 {
				break
			}
			if mant < 1e18 {
				mant = mant*10 + uint64(c)
			} else {
				exp++
				exact = exact && c == 0
			}
		}
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || b[i]-'0' > 9 {
			return 0, s.failAt(i, "invalid number: digit expected after '.'")
		}
		for i+8 <= len(b) && mant < 1e10 {
			v := binary.LittleEndian.Uint64(b[i:])
			if !eightDigits(v) {
				break
			}
			mant = mant*1e8 + parseEight(v)
			exp -= 8
			i += 8
		}
		for ; i < len(b); i++ {
			c := b[i] - '0'
			if c > 9 {
				break
			}
			if mant < 1e18 {
				mant = mant*10 + uint64(c)
				exp--
			} else {
				exact = exact && c == 0
			}
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		eneg := false
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			eneg = b[i] == '-'
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return 0, s.failAt(i, "invalid number: digit expected in exponent")
		}
		e := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			if e < 100000 {
				e = e*10 + int(b[i]-'0')
			}
			i++
		}
		if eneg {
			e = -e
		}
		exp += e
	}
	s.i = i
	if exact && mant < 1<<53 && exp >= -22 && exp <= 22 {
		f := float64(mant)
		if exp < 0 {
			f /= pow10[-exp]
		} else {
			f *= pow10[exp]
		}
		if neg {
			f = -f
		}
		return f, nil
	}
	if exact {
		if f, ok := eiselLemire(mant, exp, neg); ok {
			return f, nil
		}
	}
	text := b[start:i]
	// The slice is valid JSON number syntax and ParseFloat keeps no reference to it.
	f, err := strconv.ParseFloat(unsafe.String(unsafe.SliceData(text), len(text)), 64)
	if err != nil && !math.IsInf(f, 0) {
		return 0, s.failAt(start, "invalid number")
	}
	return f, nil
}

func hasPrefix(b []byte, p string) bool {
	return len(b) >= len(p) && string(b[:len(p)]) == p
}

// eightDigits reports whether the eight bytes of v (little-endian) are all ASCII digits.
func eightDigits(v uint64) bool {
	return (v&0xF0F0F0F0F0F0F0F0)|(((v+0x0606060606060606)&0xF0F0F0F0F0F0F0F0)>>4) == 0x3333333333333333
}

// parseEight converts eight ASCII digits (little-endian in v) with three multiplications
// (SWAR, as in Lemire's fast_float).
func parseEight(v uint64) uint64 {
	const mask = 0x000000FF000000FF
	const mul1 = 0x000F424000000064 // 100 + (1000000 << 32)
	const mul2 = 0x0000271000000001 // 1 + (10000 << 32)
	v -= 0x3030303030303030
	v = v*10 + v>>8
	return ((v&mask)*mul1 + ((v>>16)&mask)*mul2) >> 32
}
