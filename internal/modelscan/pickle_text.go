package modelscan

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// byteReader reads a pickle stream through its own buffer and counts its offset. Arguments
// that claim more bytes than the stream holds fail before anything is allocated.
type byteReader struct {
	src  io.Reader
	buf  []byte
	r, w int
	err  error // sticky error of src
	off  int64 // bytes consumed
	size int64 // bytes available from the start of the stream; -1 when unknown
}

const readBuf = 64 << 10

func newByteReader(r io.Reader, size int64) *byteReader {
	return &byteReader{src: r, buf: make([]byte, readBuf), size: size}
}

var errTruncated = errors.New("truncated")

func (r *byteReader) remaining() int64 {
	if r.size < 0 {
		return 1<<63 - 1
	}
	return r.size - r.off
}

// fill makes at least n bytes (n <= readBuf) available unless the source ends first.
func (r *byteReader) fill(n int) error {
	if r.w-r.r >= n {
		return nil
	}
	if r.r > 0 {
		copy(r.buf, r.buf[r.r:r.w])
		r.w -= r.r
		r.r = 0
	}
	for r.w < n && r.err == nil {
		m, err := r.src.Read(r.buf[r.w:])
		r.w += m
		if err != nil {
			r.err = err
		}
	}
	if r.w < n {
		return eofAsTruncated(r.err)
	}
	return nil
}

func (r *byteReader) ReadByte() (byte, error) {
	if r.r == r.w {
		if err := r.fill(1); err != nil {
			return 0, err
		}
	}
	b := r.buf[r.r]
	r.r++
	r.off++
	return b, nil
}

func eofAsTruncated(err error) error {
	if err == nil || err == io.EOF || err == io.ErrUnexpectedEOF {
		return errTruncated
	}
	return err
}

// next returns the next n bytes (n <= readBuf), valid until the next read.
func (r *byteReader) next(n int) ([]byte, error) {
	if r.w-r.r < n {
		if int64(n) > r.remaining() {
			return nil, errTruncated
		}
		if err := r.fill(n); err != nil {
			return nil, err
		}
	}
	b := r.buf[r.r : r.r+n]
	r.r += n
	r.off += int64(n)
	return b, nil
}

// skip discards n bytes, seeking when the source can.
func (r *byteReader) skip(n int64) error {
	if n < 0 || n > r.remaining() {
		return errTruncated
	}
	if b := int64(r.w - r.r); n <= b {
		r.r += int(n)
		r.off += n
		return nil
	}
	n -= int64(r.w - r.r)
	r.off += int64(r.w - r.r)
	r.r, r.w = 0, 0
	if sk, ok := r.src.(io.Seeker); ok && r.err == nil {
		if _, err := sk.Seek(n, io.SeekCurrent); err == nil {
			r.off += n
			return nil
		}
	}
	m, err := io.CopyN(io.Discard, r.src, n)
	r.off += m
	if err != nil {
		return eofAsTruncated(err)
	}
	return nil
}

// line reads up to and excluding '\n'. Lines longer than keep are consumed and returned
// truncated with full=false.
func (r *byteReader) line(keep int) (b []byte, full bool, err error) {
	var acc []byte
	total := 0
	for {
		if i := bytes.IndexByte(r.buf[r.r:r.w], '\n'); i >= 0 {
			chunk := r.buf[r.r : r.r+i]
			r.r += i + 1
			r.off += int64(i + 1)
			total += i
			if acc == nil && total <= keep {
				return chunk, true, nil
			}
			if len(acc) < keep {
				acc = append(acc, chunk[:min(len(chunk), keep-len(acc))]...)
			}
			return acc, total <= keep, nil
		}
		chunk := r.buf[r.r:r.w]
		if len(chunk) > 0 {
			if len(acc) < keep {
				acc = append(acc, chunk[:min(len(chunk), keep-len(acc))]...)
			}
			if acc == nil {
				acc = []byte{}
			}
			total += len(chunk)
			r.off += int64(len(chunk))
			r.r = r.w
		}
		if err := r.fill(1); err != nil {
			return nil, false, err
		}
	}
}

// decodeStringOpcode decodes the argument of the protocol-0 STRING opcode: a quoted Python
// bytes literal, unescaped like codecs.escape_decode.
func decodeStringOpcode(b []byte) ([]byte, error) {
	if len(b) < 2 || b[0] != b[len(b)-1] || (b[0] != '\'' && b[0] != '"') {
		return nil, fmt.Errorf("STRING argument is not quoted")
	}
	b = b[1 : len(b)-1]
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c != '\\' || i+1 >= len(b) {
			if c == '\\' {
				return nil, fmt.Errorf("trailing backslash in STRING")
			}
			out = append(out, c)
			continue
		}
		i++
		switch e := b[i]; e {
		case '\n':
		case '\\', '\'', '"':
			out = append(out, e)
		case 'a':
			out = append(out, 7)
		case 'b':
			out = append(out, 8)
		case 'f':
			out = append(out, 12)
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'v':
			out = append(out, 11)
		case 'x':
			if i+2 >= len(b) || hexVal(b[i+1]) < 0 || hexVal(b[i+2]) < 0 {
				return nil, fmt.Errorf("invalid \\x escape in STRING")
			}
			out = append(out, byte(hexVal(b[i+1])<<4|hexVal(b[i+2])))
			i += 2
		case '0', '1', '2', '3', '4', '5', '6', '7':
			v := int(e - '0')
			for k := 0; k < 2 && i+1 < len(b) && b[i+1] >= '0' && b[i+1] <= '7'; k++ {
				i++
				v = v*8 + int(b[i]-'0')
			}
			out = append(out, byte(v))
		default:
			out = append(out, '\\', e)
		}
	}
	return out, nil
}

func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// decodeRawUnicodeEscape decodes the argument of the protocol-0 UNICODE opcode
// (raw-unicode-escape: \uXXXX and \UXXXXXXXX escapes, other bytes are Latin-1).
func decodeRawUnicodeEscape(b []byte) (string, error) {
	var sb strings.Builder
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c == '\\' && i+1 < len(b) && (b[i+1] == 'u' || b[i+1] == 'U') {
			// An odd run of backslashes before u escapes; raw-unicode-escape only looks at one.
			n := 4
			if b[i+1] == 'U' {
				n = 8
			}
			if i+2+n > len(b) {
				return "", fmt.Errorf("truncated \\u escape in UNICODE")
			}
			v := 0
			for _, h := range b[i+2 : i+2+n] {
				if hexVal(h) < 0 {
					return "", fmt.Errorf("invalid \\u escape in UNICODE")
				}
				v = v<<4 | hexVal(h)
			}
			if v > utf8.MaxRune {
				return "", fmt.Errorf("\\U escape out of range in UNICODE")
			}
			sb.WriteRune(rune(v))
			i += 1 + n
			continue
		}
		sb.WriteRune(rune(c))
	}
	return sb.String(), nil
}

// asciiOnly reports whether b decodes under the unpickler's default ASCII encoding.
func asciiOnly(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}
