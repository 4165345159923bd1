package modelscan

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/bits"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/pipewarden/pipewarden/internal/finding"
)

// safetensorsBits is the size in bits of each safetensors dtype.
var safetensorsBits = map[string]uint64{
	"BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "I16": 16, "U16": 16, "F16": 16,
	"BF16": 16, "I32": 32, "U32": 32, "F32": 32, "F64": 64, "I64": 64, "U64": 64, "C64": 64, "F4": 4,
	"F6_E2M3": 6, "F6_E3M2": 6,
}

// maxSafetensorsHeader is the cap the reference implementation enforces.
const maxSafetensorsHeader = 100_000_000

type stTensor struct {
	name       string
	begin, end uint64
}

// scanSafetensors validates a safetensors header completely: the declared length against the
// file and a hard cap, strict JSON, each tensor's dtype and shape against its byte range, and
// that the ranges tile the data buffer without overlap or holes.
func (j *job) scanSafetensors(src *source) {
	bad := func(title string, ev map[string]any) {
		j.add(RuleSafetensors, finding.High, "safetensors: "+title, ev)
	}
	ra, size, err := j.readerAtOf(src)
	if err != nil {
		j.inconclusive("safetensors file", err)
		return
	}
	var pre [8]byte
	if _, err := ra.ReadAt(pre[:], 0); err != nil {
		j.inconclusive("safetensors header", err)
		return
	}
	n := binary.LittleEndian.Uint64(pre[:])
	if n > maxSafetensorsHeader || int64(n) > j.s.lim.MaxHeaderBytes {
		bad("header length over the cap", map[string]any{"declared": n, "cap": maxSafetensorsHeader})
		return
	}
	if n+8 > uint64(size) {
		bad("header length past the end of the file", map[string]any{"declared": n, "file": size})
		return
	}
	hb := make([]byte, n)
	if _, err := ra.ReadAt(hb, 8); err != nil && err != io.EOF {
		j.inconclusive("safetensors header", err)
		return
	}
	dataLen := uint64(size) - 8 - n
	for _, p := range validateSafetensorsHeader(hb, dataLen) {
		if p.meta {
			j.add(RuleSafetensorsMeta, finding.Medium, "safetensors: "+p.msg, p.ev)
		} else {
			bad(p.msg, p.ev)
		}
	}
}

type stProblem struct {
	msg  string
	ev   map[string]any
	meta bool
}

// validateSafetensorsHeader returns every problem with a header whose data buffer holds dataLen
// bytes.
func validateSafetensorsHeader(hb []byte, dataLen uint64) []stProblem {
	var out []stProblem
	bad := func(msg string, ev map[string]any) { out = append(out, stProblem{msg: msg, ev: ev}) }
	if !utf8.Valid(hb) {
		bad("header is not UTF-8", nil)
		return out
	}
	if len(hb) == 0 || hb[0] != '{' {
		bad("header does not start with '{'", nil)
		return out
	}
	dec := json.NewDecoder(bytes.NewReader(hb))
	dec.UseNumber()
	entries, err := strictObject(dec, 0)
	if err != nil {
		bad("header is not strict JSON", map[string]any{"reason": err.Error()})
		return out
	}
	if rest := bytes.TrimRight(hb[dec.InputOffset():], " "); len(rest) > 0 {
		bad("bytes after the header JSON", map[string]any{"bytes": len(rest)})
	}
	var tensors []stTensor
	for _, kv := range entries {
		if kv.key == "__metadata__" {
			out = append(out, checkSTMetadata(kv.val)...)
			continue
		}
		t, problems := checkSTTensor(kv.key, kv.val)
		out = append(out, problems...)
		if len(problems) == 0 {
			tensors = append(tensors, t)
		}
	}
	sort.Slice(tensors, func(a, b int) bool { return tensors[a].begin < tensors[b].begin })
	pos := uint64(0)
	for _, t := range tensors {
		switch {
		case t.begin < pos:
			bad("tensor byte ranges overlap", map[string]any{"tensor": t.name, "begin": t.begin})
		case t.begin > pos:
			bad("hole in the data buffer", map[string]any{"tensor": t.name, "begin": t.begin, "expected": pos})
		}
		if t.end > pos {
			pos = t.end
		}
	}
	if pos > dataLen {
		bad("tensor data past the end of the file", map[string]any{"end": pos, "data": dataLen})
	} else if pos < dataLen && len(tensors) > 0 {
		bad("data buffer holds bytes no tensor uses", map[string]any{"unused": dataLen - pos})
	}
	return out
}

func checkSTTensor(name string, raw any) (stTensor, []stProblem) {
	t := stTensor{name: name}
	var out []stProblem
	bad := func(msg string, ev map[string]any) {
		if ev == nil {
			ev = map[string]any{}
		}
		ev["tensor"] = name
		out = append(out, stProblem{msg: msg, ev: ev})
	}
	obj, ok := raw.([]kv)
	if !ok {
		bad("tensor entry is not an object", nil)
		return t, out
	}
	var dtype string
	var shape, offs []any
	for _, f := range obj {
		switch f.key {
		case "dtype":
			dtype, _ = f.val.(string)
		case "shape":
			shape, _ = f.val.([]any)
		case "data_offsets":
			offs, _ = f.val.([]any)
		default:
			bad("unknown field in tensor entry", map[string]any{"field": f.key})
		}
	}
	size, known := safetensorsBits[dtype]
	if !known {
		bad("unknown dtype", map[string]any{"dtype": dtype})
		return t, out
	}
	if shape == nil || len(offs) != 2 {
		bad("tensor entry lacks shape or data_offsets", nil)
		return t, out
	}
	var vals [2]uint64
	for i, o := range offs {
		u, ok := jsonUint(o)
		if !ok {
			bad("data_offsets are not unsigned integers", nil)
			return t, out
		}
		vals[i] = u
	}
	t.begin, t.end = vals[0], vals[1]
	if t.end < t.begin {
		bad("data_offsets end before they begin", map[string]any{"begin": t.begin, "end": t.end})
		return t, out
	}
	nbits := size
	for _, d := range shape {
		u, ok := jsonUint(d)
		if !ok {
			bad("shape has a non-integer dimension", nil)
			return t, out
		}
		hi, lo := bits.Mul64(nbits, u)
		if hi != 0 {
			bad("shape overflows", nil)
			return t, out
		}
		nbits = lo
	}
	if nbits%8 != 0 || nbits/8 != t.end-t.begin {
		bad("dtype and shape do not match the byte range", map[string]any{"dtype": dtype, "bits": nbits, "bytes": t.end - t.begin})
	}
	return t, out
}

// suspiciousMeta are markers of code or serialized objects in metadata values.
var suspiciousMeta = []string{"import ", "__import__", "eval(", "exec(", "os.system", "subprocess", "<script",
	"{{", "{%", "\x80\x02", "\x80\x03", "\x80\x04", "\x80\x05", "cos\nsystem", "cposix\nsystem", "builtins"}

func checkSTMetadata(raw any) []stProblem {
	obj, ok := raw.([]kv)
	if !ok {
		return []stProblem{{msg: "__metadata__ is not an object"}}
	}
	var out []stProblem
	for _, f := range obj {
		s, ok := f.val.(string)
		if !ok {
			out = append(out, stProblem{msg: "__metadata__ value is not a string", ev: map[string]any{"key": f.key}})
			continue
		}
		for _, m := range suspiciousMeta {
			if strings.Contains(s, m) {
				out = append(out, stProblem{meta: true, msg: "metadata value looks like code", ev: map[string]any{"key": f.key, "marker": fmt.Sprintf("%q", m)}})
				break
			}
		}
	}
	return out
}

func jsonUint(v any) (uint64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	var u uint64
	_, err := fmt.Sscan(n.String(), &u)
	return u, err == nil && !strings.ContainsAny(n.String(), ".eE-+")
}

type kv struct {
	key string
	val any
}

// strictObject decodes a JSON object keeping key order and rejecting duplicate keys, which
// different JSON parsers resolve differently.
func strictObject(dec *json.Decoder, depth int) ([]kv, error) {
	if depth > 16 {
		return nil, fmt.Errorf("JSON nested too deep")
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("expected an object")
	}
	var out []kv
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		k := tok.(string)
		if seen[k] {
			return nil, fmt.Errorf("duplicate key %q", k)
		}
		seen[k] = true
		v, err := strictValue(dec, depth+1)
		if err != nil {
			return nil, err
		}
		out = append(out, kv{k, v})
	}
	_, err = dec.Token()
	return out, err
}

func strictValue(dec *json.Decoder, depth int) (any, error) {
	if depth > 16 {
		return nil, fmt.Errorf("JSON nested too deep")
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			var out []kv
			seen := map[string]bool{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k := kt.(string)
				if seen[k] {
					return nil, fmt.Errorf("duplicate key %q", k)
				}
				seen[k] = true
				v, err := strictValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				out = append(out, kv{k, v})
			}
			_, err := dec.Token()
			if out == nil {
				out = []kv{}
			}
			return out, err
		case '[':
			out := []any{}
			for dec.More() {
				v, err := strictValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				out = append(out, v)
			}
			_, err := dec.Token()
			return out, err
		}
	}
	return tok, nil
}
