package modelscan

import (
	"archive/tar"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"strings"

	"github.com/pipewarden/pipewarden/internal/finding"
)

// torchZip handles PyTorch's ZIP layout: <prefix>/data.pkl names its storages by persistent id,
// and each storage is the raw member <prefix>/data/<key>. Storage members are bounds-checked
// against what the pickle declares and not parsed; every other member is scanned. It returns
// the entries it has dealt with, or nil when the archive is not a PyTorch one.
func (j *job) torchZip(ra io.ReaderAt, all []*zipEntry, depth int) map[*zipEntry]bool {
	byName := map[string]*zipEntry{}
	for _, e := range all {
		if e.dataOff >= 0 && !e.hidden && e.name == e.lname {
			byName[e.name] = e
		}
	}
	var done map[*zipEntry]bool
	for _, e := range all {
		if e.dataOff < 0 || !(e.name == "data.pkl" || strings.HasSuffix(e.name, "/data.pkl")) {
			continue
		}
		if done == nil {
			done = map[*zipEntry]bool{}
		}
		done[e] = true
		prefix := strings.TrimSuffix(e.name, "data.pkl")
		pids := j.scanTorchPickle(ra, e, depth)
		j.push(e.name)
		for _, p := range pids {
			kind, _ := p.item(0)
			typ, _ := p.item(1)
			key, _ := p.item(2)
			numel, _ := p.item(4)
			if !kind.hasText() || kind.s != "storage" || !key.hasText() {
				j.add(RuleTorchStorage, finding.High, "unexpected persistent id", map[string]any{"id": p.describe()})
				continue
			}
			m, ok := byName[prefix+"data/"+key.s]
			if !ok {
				j.add(RuleTorchStorage, finding.High, "storage record missing", map[string]any{"key": key.s})
				continue
			}
			elem := int64(1)
			if typ.k == kGlobal {
				if s, ok := torchStorageSize[typ.s[strings.LastIndexByte(typ.s, '.')+1:]]; ok {
					elem = s
				}
			}
			if numel.k == kInt {
				hi, need := bits.Mul64(uint64(numel.n), uint64(elem))
				if numel.n < 0 || hi != 0 || need > m.usize {
					j.add(RuleTorchStorage, finding.High, "storage record smaller than declared", map[string]any{
						"key": key.s, "declared_elements": numel.n, "element_size": elem, "record_bytes": m.usize})
				}
			}
			done[m] = true
		}
		j.pop()
	}
	return done
}

// scanTorchPickle walks data.pkl collecting persistent ids, with the same checks as any member.
func (j *job) scanTorchPickle(ra io.ReaderAt, e *zipEntry, depth int) []value {
	j.push(e.name)
	defer j.pop()
	src, err := j.memberSource(ra, e)
	if err != nil {
		j.inconclusive("zip entry", err)
		return nil
	}
	rc, err := src.stream()
	if err != nil {
		j.inconclusive("zip entry", err)
		return nil
	}
	defer rc.Close()
	var pids []value
	w := newPickleWalker(j, newByteReader(rc, src.size), depth+1)
	defer w.release()
	w.persist = &pids
	j.walkStacked(w, 0, true)
	if err := j.checkCRC(src, e); err != nil {
		if errors.Is(err, errLimit) {
			j.inconclusive("zip entry", err)
		} else {
			j.add(RuleZipCRC, finding.High, "zip entry CRC does not match its content", map[string]any{"reason": err.Error()})
		}
	}
	return pids
}

// scanTar scans a tar archive. PyTorch's oldest format is a tar of sys_info, pickle, storages
// and tensors, where storages and tensors interleave pickles with raw records.
func (j *job) scanTar(src *source, depth int) {
	rc, err := src.stream()
	if err != nil {
		j.inconclusive("tar archive", err)
		return
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for n := 0; ; n++ {
		if n >= j.s.lim.MaxMembers {
			j.inconclusive("tar archive", limitErr("more than %d members", j.s.lim.MaxMembers))
			return
		}
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			j.inconclusive("tar archive", err)
			return
		}
		if h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeRegA {
			continue
		}
		if h.Size > j.s.lim.MaxInMemory {
			j.push(h.Name)
			j.inconclusive("tar member", limitErr("member of %d bytes", h.Size))
			j.pop()
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			j.push(h.Name)
			j.inconclusive("tar member", err)
			j.pop()
			continue
		}
		j.push(h.Name)
		switch h.Name {
		case "storages", "tensors":
			j.torchTarRecords(h.Name, b, depth)
		default:
			j.scan(&source{name: h.Name, ra: strings.NewReader(string(b)), size: int64(len(b))}, depth+1, h.Name == "pickle" || h.Name == "sys_info" || modelName(h.Name))
		}
		j.pop()
	}
}

// torchTarRecords walks the storages or tensors member of a tar-format PyTorch file: a pickled
// count, then per record a pickled tuple followed by raw bytes.
func (j *job) torchTarRecords(kind string, b []byte, depth int) {
	r := newByteReader(strings.NewReader(string(b)), int64(len(b)))
	w := newPickleWalker(j, r, depth+1)
	defer w.release()
	count, err := w.walkOne()
	if err != nil || count.k != kInt || count.n < 0 || count.n > int64(j.s.lim.MaxStorageCount) {
		j.inconclusive("legacy PyTorch "+kind, fmt.Errorf("record count: %v", errOr(err, "not a small integer")))
		return
	}
	for i := int64(0); i < count.n; i++ {
		args, err := w.walkOne()
		if err != nil {
			j.inconclusive("legacy PyTorch "+kind, err)
			return
		}
		if kind == "storages" {
			typ, _ := args.item(2)
			elem := int64(0)
			if typ.k == kGlobal {
				elem = torchStorageSize[typ.s[strings.LastIndexByte(typ.s, '.')+1:]]
			}
			hdr, err := r.next(8)
			if err != nil || elem == 0 {
				j.inconclusive("legacy PyTorch storages", fmt.Errorf("record %d: %v", i, errOr(err, "unknown storage type")))
				return
			}
			numel := binary.LittleEndian.Uint64(hdr)
			hi, lo := bits.Mul64(numel, uint64(elem))
			if hi != 0 || lo > uint64(r.remaining()) {
				j.inconclusive("legacy PyTorch storages", fmt.Errorf("record %d claims %d elements: %w", i, numel, errTruncated))
				return
			}
			_ = r.skip(int64(lo))
			continue
		}
		hdr, err := r.next(8)
		if err != nil {
			j.inconclusive("legacy PyTorch tensors", err)
			return
		}
		ndim := int64(int32(binary.LittleEndian.Uint32(hdr)))
		if ndim < 0 || ndim > 64 {
			j.inconclusive("legacy PyTorch tensors", fmt.Errorf("record %d has %d dimensions", i, ndim))
			return
		}
		if err := r.skip(16*ndim + 8); err != nil {
			j.inconclusive("legacy PyTorch tensors", err)
			return
		}
	}
	if !r.atEOF() {
		j.add(RuleTrailingData, finding.Medium, "data after the legacy PyTorch records", map[string]any{"offset": r.off})
		j.walkStacked(w, 1, true)
	}
}

func errOr(err error, s string) string {
	if err != nil {
		return err.Error()
	}
	return s
}
