package modelscan

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
	"strconv"
	"strings"

	"github.com/pipewarden/pipewarden/internal/finding"
)

// scanNpy checks a NumPy .npy file: the header literal, the data size it implies, and, for
// object arrays, the pickle that follows the header.
func (j *job) scanNpy(src *source, depth int) {
	rc, err := src.stream()
	if err != nil {
		j.inconclusive("npy file", err)
		return
	}
	defer rc.Close()
	r := newByteReader(rc, src.size)
	pre, err := r.next(8)
	if err != nil {
		j.inconclusive("npy header", err)
		return
	}
	var hlen int64
	switch pre[6] {
	case 1:
		b, err := r.next(2)
		if err != nil {
			j.inconclusive("npy header", err)
			return
		}
		hlen = int64(binary.LittleEndian.Uint16(b))
	case 2, 3:
		b, err := r.next(4)
		if err != nil {
			j.inconclusive("npy header", err)
			return
		}
		hlen = int64(binary.LittleEndian.Uint32(b))
	default:
		j.add(RuleNumpyMalformed, finding.High, "unknown npy format version", map[string]any{"version": int(pre[6])})
		j.inconclusive("npy file", fmt.Errorf("format version %d", pre[6]))
		return
	}
	if hlen > j.s.lim.MaxHeaderBytes || hlen > readBuf {
		j.inconclusive("npy header", limitErr("header of %d bytes", hlen))
		return
	}
	hb, err := r.next(int(hlen))
	if err != nil {
		j.inconclusive("npy header", err)
		return
	}
	hdr, err := parsePyLiteral(string(hb))
	if err != nil {
		j.add(RuleNumpyMalformed, finding.High, "npy header is not a valid literal", map[string]any{"reason": err.Error()})
		j.inconclusive("npy header", err)
		return
	}
	d, _ := hdr.(map[string]any)
	descr, shape := d["descr"], d["shape"]
	if d == nil || descr == nil || shape == nil {
		j.add(RuleNumpyMalformed, finding.High, "npy header lacks descr or shape", nil)
		j.inconclusive("npy header", fmt.Errorf("missing descr or shape"))
		return
	}
	if descrHasObject(descr) {
		j.add(RuleNumpyObject, finding.Medium, "NumPy object array holds a pickle", map[string]any{"descr": fmt.Sprint(descr)})
		w := newPickleWalker(j, r, depth+1)
		defer w.release()
		j.walkStacked(w, 0, true)
		return
	}
	item, err := descrTotal(descr)
	if err != nil {
		j.inconclusive("npy header", err)
		return
	}
	n := uint64(1)
	dims, ok := shape.([]any)
	if !ok {
		j.add(RuleNumpyMalformed, finding.High, "npy shape is not a tuple", nil)
		return
	}
	for _, x := range dims {
		v, ok := x.(int64)
		if !ok || v < 0 {
			j.add(RuleNumpyMalformed, finding.High, "npy shape has a bad dimension", map[string]any{"shape": fmt.Sprint(dims)})
			return
		}
		hi, lo := bits.Mul64(n, uint64(v))
		if hi != 0 {
			j.add(RuleNumpyMalformed, finding.High, "npy shape overflows", nil)
			return
		}
		n = lo
	}
	hi, need := bits.Mul64(n, uint64(item))
	have := r.remaining()
	switch {
	case src.size < 0:
		if err := r.skip(int64(need)); err != nil || hi != 0 {
			j.add(RuleNumpyMalformed, finding.High, "npy data shorter than its header declares", nil)
			return
		}
		if !r.atEOF() {
			j.add(RuleTrailingData, finding.Medium, "data after the npy array", nil)
		}
	case hi != 0 || need > uint64(have):
		j.add(RuleNumpyMalformed, finding.High, "npy data shorter than its header declares", map[string]any{"declared": need, "present": have})
	case need < uint64(have):
		j.add(RuleTrailingData, finding.Medium, "data after the npy array", map[string]any{"bytes": uint64(have) - need})
	}
}

func descrHasObject(d any) bool {
	switch v := d.(type) {
	case string:
		return isObjectDescr(v)
	case []any:
		for _, x := range v {
			if descrHasObject(x) {
				return true
			}
		}
	}
	return false
}

// descrTotal is the item size of a dtype descr: a string, or a list of (name, descr[, shape]).
func descrTotal(d any) (int64, error) {
	switch v := d.(type) {
	case string:
		return descrSize(v)
	case []any:
		var total int64
		for _, f := range v {
			t, ok := f.([]any)
			if !ok || len(t) < 2 {
				return 0, fmt.Errorf("bad structured dtype field")
			}
			s, err := descrTotal(t[1])
			if err != nil {
				return 0, err
			}
			if len(t) > 2 {
				if sh, ok := t[2].([]any); ok {
					for _, x := range sh {
						if k, ok := x.(int64); ok && k >= 0 && k < 1<<31 {
							s *= k
						}
					}
				}
			}
			total += s
		}
		return total, nil
	}
	return 0, fmt.Errorf("unsupported dtype descr %v", d)
}

// parsePyLiteral parses the Python literal subset of .npy headers: dicts, tuples, lists,
// strings, integers, True, False and None.
func parsePyLiteral(s string) (any, error) {
	p := &litParser{s: s}
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.ws()
	if p.i != len(p.s) {
		return nil, fmt.Errorf("unexpected %q after literal", p.s[p.i:min(len(p.s), p.i+10)])
	}
	return v, nil
}

type litParser struct {
	s string
	i int
}

func (p *litParser) ws() {
	for p.i < len(p.s) && strings.IndexByte(" \t\n\r", p.s[p.i]) >= 0 {
		p.i++
	}
}

func (p *litParser) value(depth int) (any, error) {
	if depth > 32 {
		return nil, fmt.Errorf("literal nested too deep")
	}
	p.ws()
	if p.i >= len(p.s) {
		return nil, io.ErrUnexpectedEOF
	}
	switch c := p.s[p.i]; {
	case c == '{':
		p.i++
		m := map[string]any{}
		for {
			p.ws()
			if p.i < len(p.s) && p.s[p.i] == '}' {
				p.i++
				return m, nil
			}
			k, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			ks, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("dict key is not a string")
			}
			p.ws()
			if p.i >= len(p.s) || p.s[p.i] != ':' {
				return nil, fmt.Errorf("expected ':'")
			}
			p.i++
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			if _, dup := m[ks]; dup {
				return nil, fmt.Errorf("duplicate key %q", ks)
			}
			m[ks] = v
			p.ws()
			if p.i < len(p.s) && p.s[p.i] == ',' {
				p.i++
			}
		}
	case c == '(' || c == '[':
		end := byte(')')
		if c == '[' {
			end = ']'
		}
		p.i++
		var l []any
		for {
			p.ws()
			if p.i < len(p.s) && p.s[p.i] == end {
				p.i++
				if l == nil {
					l = []any{}
				}
				return l, nil
			}
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			l = append(l, v)
			p.ws()
			if p.i < len(p.s) && p.s[p.i] == ',' {
				p.i++
			} else if p.i >= len(p.s) || p.s[p.i] != end {
				return nil, fmt.Errorf("expected ',' or %q", end)
			}
		}
	case c == '\'' || c == '"':
		j := strings.IndexByte(p.s[p.i+1:], c)
		if j < 0 {
			return nil, fmt.Errorf("unterminated string")
		}
		v := p.s[p.i+1 : p.i+1+j]
		if strings.IndexByte(v, '\\') >= 0 {
			return nil, fmt.Errorf("escapes in header strings are not supported")
		}
		p.i += j + 2
		return v, nil
	default:
		j := p.i
		for j < len(p.s) && (p.s[j] == '-' || p.s[j] == '_' || p.s[j] >= '0' && p.s[j] <= '9' || p.s[j] >= 'A' && p.s[j] <= 'z') {
			j++
		}
		tok := p.s[p.i:j]
		p.i = j
		switch tok {
		case "True":
			return true, nil
		case "False":
			return false, nil
		case "None":
			return nil, nil
		}
		tok = strings.TrimSuffix(tok, "L")
		n, err := strconv.ParseInt(tok, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("unexpected token %q", tok)
		}
		return n, nil
	}
}
