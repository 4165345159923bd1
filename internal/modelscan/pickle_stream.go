package modelscan

import (
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"

	"github.com/pipewarden/pipewarden/internal/finding"
)

// torchMagic is PyTorch's legacy-format magic number 0x1950a86a20f9469cfc6c as the
// little-endian bytes of the LONG1 that opens a legacy file.
const torchMagic = "\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"

// scanPickleStream walks every pickle stacked in r. strict says the content is known to be a
// pickle (it opened with PROTO, or the name or container says so); otherwise a stream that
// fails before any import is taken for something else and false is returned.
func (j *job) scanPickleStream(r *byteReader, strict bool, depth int) (isPickle bool) {
	w := newPickleWalker(j, r, depth)
	defer w.release()
	return j.walkStacked(w, 0, strict)
}

// walkStacked walks pickles until the end of the stream; first counts the pickles already
// walked from it.
func (j *job) walkStacked(w *pickleWalker, first int, strict bool) bool {
	r := w.r
	for n := first; ; n++ {
		w.sawCode = false
		v, err := w.walkOne()
		if err == nil {
			if n == 0 && v.k == kBigInt && v.s == torchMagic {
				j.torchLegacy(w)
				return true
			}
			if r.atEOF() {
				return true
			}
			continue
		}
		switch {
		case errors.Is(err, errLimit) || j.ctx.Err() != nil:
			j.inconclusive("pickle stream", err)
		case n == 0 && !strict && !w.sawCode:
			return false
		case n > 0 && !w.sawCode:
			j.add(RuleTrailingData, finding.Medium, "data after the last pickle", map[string]any{
				"offset": r.off, "reason": err.Error()})
		default:
			j.inconclusive("pickle stream", err)
		}
		return true
	}
}

func (r *byteReader) atEOF() bool {
	if r.size >= 0 {
		return r.off >= r.size
	}
	return r.fill(1) != nil
}

// torchLegacy walks the rest of a legacy PyTorch file: protocol version, system info, the
// model pickle, the storage-key list, then one raw record per storage, bounds-checked and
// skipped, then whatever follows as stacked pickles.
func (j *job) torchLegacy(w *pickleWalker) {
	var pids []value
	for i := 2; i <= 5; i++ {
		w.persist, w.capture = nil, false
		if i == 4 {
			w.persist = &pids
		}
		if i == 5 {
			w.capture = true
		}
		v, err := w.walkOne()
		if err != nil {
			j.inconclusive("legacy PyTorch pickle "+strconv.Itoa(i), err)
			return
		}
		if i < 5 {
			continue
		}
		if v.k != kList || v.c == nil || v.c.more {
			j.inconclusive("legacy PyTorch storage list", fmt.Errorf("storage-key pickle is not a list of keys"))
			return
		}
		w.capture = false
		if err := j.torchLegacyStorages(w, pids, v.c.items); err != nil {
			if errors.Is(err, errLimit) || errors.Is(err, errTruncated) {
				j.inconclusive("legacy PyTorch storages", err)
			} else {
				j.add(RuleTorchStorage, finding.High, "legacy PyTorch storage records do not match the model", map[string]any{"reason": err.Error()})
			}
			return
		}
	}
	if w.r.atEOF() {
		return
	}
	// Anything after the storages is never read by torch.load; scan it as what it may be.
	j.add(RuleTrailingData, finding.Medium, "data after the legacy PyTorch storages", map[string]any{"offset": w.r.off})
	j.walkStacked(w, 1, true)
}

func (j *job) torchLegacyStorages(w *pickleWalker, pids, keys []value) error {
	elem := map[string]int64{}
	for _, p := range pids {
		typ, _ := p.item(1)
		key, _ := p.item(2)
		if !key.hasText() || typ.k != kGlobal {
			continue
		}
		size, ok := torchStorageSize[strings.TrimPrefix(strings.TrimPrefix(typ.s, "torch.cuda."), "torch.")]
		if !ok {
			size, ok = torchStorageSize[typ.s[strings.LastIndexByte(typ.s, '.')+1:]]
		}
		if !ok {
			return fmt.Errorf("storage %s has unknown type %s", key.s, typ.s)
		}
		elem[key.s] = size
	}
	for _, k := range keys {
		if !k.hasText() {
			return fmt.Errorf("storage key is not a string")
		}
		size, ok := elem[k.s]
		if !ok {
			return fmt.Errorf("storage %q is not referenced by the model pickle", k.s)
		}
		b, err := w.r.next(8)
		if err != nil {
			return fmt.Errorf("storage %q: %w", k.s, err)
		}
		numel := int64(uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
			uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56)
		hi, lo := bits.Mul64(uint64(numel), uint64(size))
		if numel < 0 || hi != 0 || lo > uint64(w.r.remaining()) {
			return fmt.Errorf("storage %q claims %d elements, past the end of the file: %w", k.s, numel, errTruncated)
		}
		if err := w.r.skip(int64(lo)); err != nil {
			return err
		}
	}
	return nil
}

// joblibArray skips the raw array bytes joblib writes right after a NumpyArrayWrapper's BUILD,
// or walks the nested pickle it writes for object arrays.
func (w *pickleWalker) joblibArray(state value, off int64) error {
	shape, ok1 := state.dictGet("shape")
	dtype, ok2 := state.dictGet("dtype")
	if !ok1 || !ok2 || shape.k != kTuple || shape.c == nil || shape.c.more || dtype.k != kDtype {
		return limitErr("joblib array at offset %d without a known shape and dtype", off)
	}
	if a, ok := state.dictGet("numpy_array_alignment_bytes"); ok && a.k == kInt {
		pad, err := w.r.ReadByte()
		if err != nil {
			return err
		}
		if err := w.r.skip(int64(pad)); err != nil {
			return err
		}
	}
	if isObjectDescr(dtype.s) {
		if w.depth+1 > w.lim.MaxDepth {
			return limitErr("nested pickles deeper than %d", w.lim.MaxDepth)
		}
		sub := newPickleWalker(w.j, w.r, w.depth+1)
		defer sub.release()
		sub.ops = w.ops
		_, err := sub.walkOne()
		w.ops = sub.ops
		return err
	}
	size, err := descrSize(dtype.s)
	if err != nil {
		return limitErr("joblib array at offset %d: %v", off, err)
	}
	n := uint64(1)
	for _, d := range shape.c.items {
		if d.k != kInt || d.n < 0 {
			return limitErr("joblib array at offset %d: bad shape", off)
		}
		hi, lo := bits.Mul64(n, uint64(d.n))
		if hi != 0 {
			return parseErr(off, "joblib array shape overflows")
		}
		n = lo
	}
	hi, lo := bits.Mul64(n, uint64(size))
	if hi != 0 || lo > uint64(w.r.remaining()) {
		return fmt.Errorf("joblib array at offset %d claims %d bytes: %w", off, lo, errTruncated)
	}
	return w.r.skip(int64(lo))
}

func isObjectDescr(d string) bool {
	d = strings.TrimLeft(d, "<>|=")
	return d == "O" || strings.HasPrefix(d, "O")
}

// descrSize is the item size of a simple NumPy dtype string ("<f8", "u1", "U10", "V16").
func descrSize(d string) (int64, error) {
	d = strings.TrimLeft(d, "<>|=")
	if i := strings.IndexByte(d, '['); i >= 0 {
		d = d[:i]
	}
	if d == "" {
		return 0, fmt.Errorf("empty dtype")
	}
	kind, num := d[0], d[1:]
	if num == "" {
		switch kind {
		case '?', 'b', 'B':
			return 1, nil
		case 'e':
			return 2, nil
		case 'f', 'i', 'I', 'l', 'L':
			return 4, nil
		case 'd', 'q', 'Q':
			return 8, nil
		}
		return 0, fmt.Errorf("unknown dtype %q", d)
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > 1<<40 {
		return 0, fmt.Errorf("unknown dtype %q", d)
	}
	switch kind {
	case 'U':
		return 4 * n, nil
	case 'b', 'i', 'u', 'f', 'c', 'S', 'a', 'V', 'M', 'm':
		return n, nil
	}
	return 0, fmt.Errorf("unknown dtype %q", d)
}
