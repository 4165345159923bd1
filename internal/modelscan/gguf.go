package modelscan

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"sort"
	"strings"

	"github.com/pipewarden/pipewarden/internal/finding"
)

// ggmlBlock is the block size (elements) and bytes per block of each GGML tensor type.
var ggmlBlock = map[uint32][2]uint64{
	0: {1, 4}, 1: {1, 2}, 2: {32, 18}, 3: {32, 20}, 6: {32, 22}, 7: {32, 24}, 8: {32, 34}, 9: {32, 36},
	10: {256, 84}, 11: {256, 110}, 12: {256, 144}, 13: {256, 176}, 14: {256, 210}, 15: {256, 292},
	16: {256, 66}, 17: {256, 74}, 18: {256, 98}, 19: {256, 50}, 20: {32, 18}, 21: {256, 110}, 22: {256, 82},
	23: {256, 136}, 24: {1, 1}, 25: {1, 2}, 26: {1, 4}, 27: {1, 8}, 28: {1, 8}, 29: {256, 56}, 30: {1, 2},
	34: {256, 54}, 35: {256, 66}, 39: {32, 17},
}

// templateMarkers are Jinja template-injection markers: ways out of the sandbox to Python
// objects. Benign chat templates use none of them.
var templateMarkers = []string{"__class__", "__mro__", "__subclasses__", "__globals__", "__builtins__",
	"__import__", "__init__", "__base__", "__dict__", "__getattribute__", ".mro(", "|attr", "attr(", "popen",
	"subprocess", "os.system", "eval(", "exec(", "import os", "lipsum", "cycler", "joiner", "get_flashed_messages",
	"url_for", "request.environ", "self._TemplateReference", "namespace.__"}

type ggufTensor struct {
	name        string
	off, nbytes uint64
}

// scanGGUF checks a GGUF header: version, counts, every metadata value's length against the
// file, tensor shapes, types and offsets, and chat templates for injection markers.
func (j *job) scanGGUF(src *source) {
	rc, err := src.stream()
	if err != nil {
		j.inconclusive("gguf file", err)
		return
	}
	defer rc.Close()
	r := newByteReader(rc, src.size)
	bad := func(msg string, ev map[string]any) { j.add(RuleGGUFMalformed, finding.High, "gguf: "+msg, ev) }
	if err := j.ggufHeader(r, src.size, bad); err != nil {
		if isLimitOrTrunc(err) {
			j.inconclusive("gguf header", err)
		} else {
			bad("header is malformed", map[string]any{"reason": err.Error()})
		}
	}
}

func isLimitOrTrunc(err error) bool {
	return err != nil && (strings.Contains(err.Error(), errLimit.Error()) || strings.Contains(err.Error(), errTruncated.Error()))
}

func (j *job) ggufHeader(r *byteReader, size int64, bad func(string, map[string]any)) error {
	b, err := r.next(8)
	if err != nil {
		return err
	}
	version := binary.LittleEndian.Uint32(b[4:])
	if version < 1 || version > 3 {
		return fmt.Errorf("unknown version %d", version)
	}
	u64 := func() (uint64, error) {
		if version == 1 {
			b, err := r.next(4)
			if err != nil {
				return 0, err
			}
			return uint64(binary.LittleEndian.Uint32(b)), nil
		}
		b, err := r.next(8)
		if err != nil {
			return 0, err
		}
		return binary.LittleEndian.Uint64(b), nil
	}
	u32 := func() (uint32, error) {
		b, err := r.next(4)
		if err != nil {
			return 0, err
		}
		return binary.LittleEndian.Uint32(b), nil
	}
	str := func(keep int) (string, error) {
		n, err := u64()
		if err != nil {
			return "", err
		}
		if n > uint64(j.s.lim.MaxHeaderBytes) {
			return "", limitErr("gguf string of %d bytes", n)
		}
		if n > uint64(r.remaining()) {
			return "", fmt.Errorf("string of %d bytes: %w", n, errTruncated)
		}
		if n <= uint64(keep) && n <= readBuf {
			b, err := r.next(int(n))
			return string(b), err
		}
		return "", r.skip(int64(n))
	}
	nt, err := u64()
	if err != nil {
		return err
	}
	nkv, err := u64()
	if err != nil {
		return err
	}
	if nt > uint64(j.s.lim.MaxGGUFItems) || nkv > uint64(j.s.lim.MaxGGUFItems) {
		return limitErr("gguf with %d tensors and %d metadata entries", nt, nkv)
	}
	align := uint64(32)
	var value func(typ uint32, depth int, key string) error
	value = func(typ uint32, depth int, key string) error {
		switch typ {
		case 0, 1, 7:
			return r.skip(1)
		case 2, 3:
			return r.skip(2)
		case 4, 5, 6:
			if key == "general.alignment" && typ == 4 {
				v, err := u32()
				if err == nil {
					if v == 0 || v&(v-1) != 0 {
						bad("alignment is not a power of two", map[string]any{"alignment": v})
					} else {
						align = uint64(v)
					}
				}
				return err
			}
			return r.skip(4)
		case 10, 11, 12:
			return r.skip(8)
		case 8:
			keep := 0
			if strings.HasPrefix(key, "tokenizer.chat_template") {
				keep = 1 << 20
			}
			s, err := str(keep)
			if err == nil && keep > 0 {
				j.checkTemplate(key, s)
			}
			return err
		case 9:
			if depth > 4 {
				return limitErr("gguf arrays nested deeper than 4")
			}
			et, err := u32()
			if err != nil {
				return err
			}
			n, err := u64()
			if err != nil {
				return err
			}
			if n > uint64(r.remaining()) {
				return fmt.Errorf("array of %d items: %w", n, errTruncated)
			}
			for i := uint64(0); i < n; i++ {
				if err := value(et, depth+1, ""); err != nil {
					return err
				}
			}
			return nil
		}
		return fmt.Errorf("unknown metadata type %d for key %q", typ, key)
	}
	for i := uint64(0); i < nkv; i++ {
		key, err := str(4096)
		if err != nil {
			return err
		}
		typ, err := u32()
		if err != nil {
			return err
		}
		if err := value(typ, 0, key); err != nil {
			return err
		}
	}
	var tensors []ggufTensor
	for i := uint64(0); i < nt; i++ {
		name, err := str(256)
		if err != nil {
			return err
		}
		nd, err := u32()
		if err != nil {
			return err
		}
		if nd > 8 {
			return fmt.Errorf("tensor %q has %d dimensions", name, nd)
		}
		elems := uint64(1)
		for d := uint32(0); d < nd; d++ {
			x, err := u64()
			if err != nil {
				return err
			}
			hi, lo := bits.Mul64(elems, x)
			if hi != 0 {
				return fmt.Errorf("tensor %q shape overflows", name)
			}
			elems = lo
		}
		typ, err := u32()
		if err != nil {
			return err
		}
		off, err := u64()
		if err != nil {
			return err
		}
		t := ggufTensor{name: name, off: off}
		if blk, ok := ggmlBlock[typ]; ok {
			if elems%blk[0] != 0 {
				bad("tensor size is not a whole number of blocks", map[string]any{"tensor": name})
			}
			hi, lo := bits.Mul64(elems/blk[0], blk[1])
			if hi != 0 {
				return fmt.Errorf("tensor %q size overflows", name)
			}
			t.nbytes = lo
		} else {
			bad("unknown tensor type", map[string]any{"tensor": name, "type": typ})
		}
		tensors = append(tensors, t)
	}
	dataStart := (uint64(r.off) + align - 1) / align * align
	if size >= 0 {
		avail := uint64(0)
		if uint64(size) > dataStart {
			avail = uint64(size) - dataStart
		}
		sort.Slice(tensors, func(a, b int) bool { return tensors[a].off < tensors[b].off })
		end := uint64(0)
		for _, t := range tensors {
			if t.off%align != 0 {
				bad("tensor offset not aligned", map[string]any{"tensor": t.name, "offset": t.off})
			}
			if t.off < end {
				bad("tensors overlap", map[string]any{"tensor": t.name})
			}
			if t.off > avail || t.nbytes > avail-t.off {
				bad("tensor data past the end of the file", map[string]any{"tensor": t.name, "offset": t.off, "bytes": t.nbytes})
			}
			end = t.off + t.nbytes
		}
	}
	return nil
}

func (j *job) checkTemplate(key, s string) {
	low := strings.ToLower(s)
	for _, m := range templateMarkers {
		if strings.Contains(low, strings.ToLower(m)) {
			j.add(RuleGGUFTemplate, finding.Critical, "chat template holds a template-injection marker", map[string]any{
				"key": key, "marker": m})
			return
		}
	}
}
