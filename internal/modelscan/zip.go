package modelscan

import (
	"bytes"
	"compress/bzip2"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sort"
	"strings"

	"github.com/pipewarden/pipewarden/internal/finding"
)

// Our own ZIP reader: it reads both the central directory and every local header, because the
// readers that load models disagree (Python's zipfile trusts the central directory, streaming
// readers the local headers, PyTorch's miniz ignores some flag bits and CRCs). Every
// disagreement is a finding and every version of a member is scanned.

type zipEntry struct {
	name           string
	flags, method  uint16
	crc            uint32
	csize, usize   uint64
	headerOff      int64 // local header, adjusted for prefix data
	lname          string
	lflags, lmeth  uint16
	lcrc           uint32
	lcsize, lusize uint64
	dataOff        int64
	hidden         bool // found in a gap, not listed in the central directory
}

type zipDir struct {
	entries []*zipEntry
	cdStart int64
	cdEnd   int64
	concat  int64
}

var errZip = errors.New("malformed zip")

func zipErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errZip, fmt.Sprintf(format, a...))
}

// readerAtOf gives random access to src, loading a compressed member into memory when small
// enough.
func (j *job) readerAtOf(src *source) (io.ReaderAt, int64, error) {
	if src.ra != nil {
		return src.ra, src.size, nil
	}
	rc, err := src.stream()
	if err != nil {
		return nil, 0, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, j.s.lim.MaxInMemory+1))
	if err != nil {
		return nil, 0, err
	}
	if int64(len(b)) > j.s.lim.MaxInMemory {
		return nil, 0, limitErr("nested archive over %d bytes", j.s.lim.MaxInMemory)
	}
	return bytes.NewReader(b), int64(len(b)), nil
}

func (j *job) scanZip(src *source, depth int) string {
	return j.scanZipPrefix(src, depth, true)
}

func (j *job) scanZipPrefix(src *source, depth int, scanPrefix bool) string {
	ra, size, err := j.readerAtOf(src)
	if err != nil {
		j.inconclusive("zip archive", err)
		return "zip"
	}
	dirs, err := findZipDirs(ra, size, j.s.lim.MaxMembers)
	if err != nil {
		j.inconclusive("zip archive", err)
		return "zip"
	}
	if len(dirs) > 1 {
		j.add(RuleZipHidden, finding.High, "zip archive has several central directories", map[string]any{"directories": len(dirs)})
	}
	var all []*zipEntry
	seenHeader := map[int64]bool{}
	for _, d := range dirs {
		if d.concat > 0 && scanPrefix {
			j.add(RuleZipPrefix, finding.Medium, "data before the zip archive", map[string]any{"bytes": d.concat})
			j.push("(prefix)")
			j.scan(&source{name: "prefix", ra: io.NewSectionReader(ra, 0, d.concat), size: d.concat}, depth+1, false)
			j.pop()
		}
		for _, e := range d.entries {
			if !seenHeader[e.headerOff] {
				seenHeader[e.headerOff] = true
				all = append(all, e)
			}
		}
	}
	for _, e := range all {
		if err := readLocal(ra, size, e); err != nil {
			j.push(e.name)
			j.inconclusive("zip entry", err)
			j.pop()
			e.dataOff = -1
			continue
		}
		j.compareHeaders(e)
	}
	all = append(all, j.hiddenEntries(ra, size, dirs, all)...)
	j.checkDuplicates(all)
	format := "zip"
	storages := j.torchZip(ra, all, depth)
	if storages != nil {
		format = "zip/pytorch"
	}
	for _, e := range all {
		if e.dataOff < 0 || storages[e] || strings.HasSuffix(e.name, "/") && e.usize == 0 {
			continue
		}
		if err := j.checkTime(); err != nil {
			j.inconclusive("zip archive", err)
			break
		}
		j.scanZipMember(ra, e, depth, false)
	}
	return format
}

// findZipDirs finds every end-of-central-directory record in the tail and parses the
// directory each one points to. The last one is the one Python uses.
func findZipDirs(ra io.ReaderAt, size int64, maxMembers int) ([]zipDir, error) {
	tail := int64(65535 + 22 + 20)
	if tail > size {
		tail = size
	}
	buf := make([]byte, tail)
	if _, err := ra.ReadAt(buf, size-tail); err != nil && err != io.EOF {
		return nil, err
	}
	var dirs []zipDir
	var lastErr error
	for i := len(buf) - 22; i >= 0; i-- {
		if buf[i] != 'P' || !bytes.HasPrefix(buf[i:], []byte("PK\x05\x06")) {
			continue
		}
		eocdOff := size - tail + int64(i)
		d, err := parseZipDir(ra, size, eocdOff, buf[i:], maxMembers)
		if err != nil {
			lastErr = err
			continue
		}
		dirs = append(dirs, d)
	}
	if len(dirs) == 0 {
		if lastErr == nil {
			lastErr = zipErr("no end of central directory record")
		}
		return nil, lastErr
	}
	return dirs, nil
}

func parseZipDir(ra io.ReaderAt, size, eocdOff int64, rec []byte, maxMembers int) (zipDir, error) {
	if len(rec) < 22 {
		return zipDir{}, zipErr("short end record")
	}
	count := uint64(binary.LittleEndian.Uint16(rec[10:]))
	cdSize := uint64(binary.LittleEndian.Uint32(rec[12:]))
	cdOff := uint64(binary.LittleEndian.Uint32(rec[16:]))
	endOfDir := eocdOff
	if eocdOff >= 20 {
		loc := make([]byte, 20)
		if _, err := ra.ReadAt(loc, eocdOff-20); err == nil && bytes.HasPrefix(loc, []byte("PK\x06\x07")) {
			off64 := int64(binary.LittleEndian.Uint64(loc[8:]))
			// Adjust for prefix data the same way as for the classic record.
			rec64 := make([]byte, 56)
			at := eocdOff - 20 - 56
			if at >= 0 {
				if _, err := ra.ReadAt(rec64, at); err == nil && bytes.HasPrefix(rec64, []byte("PK\x06\x06")) {
					count = binary.LittleEndian.Uint64(rec64[32:])
					cdSize = binary.LittleEndian.Uint64(rec64[40:])
					cdOff = binary.LittleEndian.Uint64(rec64[48:])
					endOfDir = at
					_ = off64
				}
			}
		}
	}
	if count > uint64(maxMembers) {
		return zipDir{}, limitErr("zip with %d entries", count)
	}
	concat := endOfDir - int64(cdSize) - int64(cdOff)
	if cdSize > uint64(size) || cdOff > uint64(size) || concat < 0 {
		return zipDir{}, zipErr("central directory outside the file")
	}
	start := int64(cdOff) + concat
	cd := make([]byte, cdSize)
	if _, err := ra.ReadAt(cd, start); err != nil && err != io.EOF {
		return zipDir{}, err
	}
	d := zipDir{cdStart: start, cdEnd: start + int64(cdSize), concat: concat}
	p := cd
	for n := uint64(0); n < count; n++ {
		if len(p) < 46 || !bytes.HasPrefix(p, []byte("PK\x01\x02")) {
			return zipDir{}, zipErr("central directory entry %d is malformed", n)
		}
		e := &zipEntry{
			flags:  binary.LittleEndian.Uint16(p[8:]),
			method: binary.LittleEndian.Uint16(p[10:]),
			crc:    binary.LittleEndian.Uint32(p[16:]),
			csize:  uint64(binary.LittleEndian.Uint32(p[20:])),
			usize:  uint64(binary.LittleEndian.Uint32(p[24:])),
		}
		nl, xl, cl := int(binary.LittleEndian.Uint16(p[28:])), int(binary.LittleEndian.Uint16(p[30:])), int(binary.LittleEndian.Uint16(p[32:]))
		off := uint64(binary.LittleEndian.Uint32(p[42:]))
		if len(p) < 46+nl+xl+cl {
			return zipDir{}, zipErr("central directory entry %d is truncated", n)
		}
		e.name = string(p[46 : 46+nl])
		e.usize, e.csize, off = zip64Extra(p[46+nl:46+nl+xl], e.usize, e.csize, off)
		e.headerOff = int64(off) + concat
		if off > uint64(size) || e.headerOff > size {
			return zipDir{}, zipErr("entry %q points outside the file", e.name)
		}
		d.entries = append(d.entries, e)
		p = p[46+nl+xl+cl:]
	}
	return d, nil
}

// zip64Extra reads the ZIP64 extended-information extra field, which holds the values whose
// classic fields are saturated.
func zip64Extra(extra []byte, usize, csize, off uint64) (uint64, uint64, uint64) {
	for len(extra) >= 4 {
		id, n := binary.LittleEndian.Uint16(extra), int(binary.LittleEndian.Uint16(extra[2:]))
		if len(extra) < 4+n {
			break
		}
		f := extra[4 : 4+n]
		if id == 1 {
			if usize == 0xffffffff && len(f) >= 8 {
				usize, f = binary.LittleEndian.Uint64(f), f[8:]
			}
			if csize == 0xffffffff && len(f) >= 8 {
				csize, f = binary.LittleEndian.Uint64(f), f[8:]
			}
			if off == 0xffffffff && len(f) >= 8 {
				off = binary.LittleEndian.Uint64(f)
			}
		}
		extra = extra[4+n:]
	}
	return usize, csize, off
}

func readLocal(ra io.ReaderAt, size int64, e *zipEntry) error {
	h := make([]byte, 30)
	if _, err := ra.ReadAt(h, e.headerOff); err != nil {
		return zipErr("local header of %q unreadable: %v", e.name, err)
	}
	if !bytes.HasPrefix(h, []byte("PK\x03\x04")) {
		return zipErr("bad local header magic for %q", e.name)
	}
	e.lflags = binary.LittleEndian.Uint16(h[6:])
	e.lmeth = binary.LittleEndian.Uint16(h[8:])
	e.lcrc = binary.LittleEndian.Uint32(h[14:])
	e.lcsize = uint64(binary.LittleEndian.Uint32(h[18:]))
	e.lusize = uint64(binary.LittleEndian.Uint32(h[22:]))
	nl, xl := int64(binary.LittleEndian.Uint16(h[26:])), int64(binary.LittleEndian.Uint16(h[28:]))
	nx := make([]byte, nl+xl)
	if _, err := ra.ReadAt(nx, e.headerOff+30); err != nil {
		return zipErr("local header of %q truncated", e.name)
	}
	e.lname = string(nx[:nl])
	e.lusize, e.lcsize, _ = zip64Extra(nx[nl:], e.lusize, e.lcsize, 0)
	e.dataOff = e.headerOff + 30 + nl + xl
	if e.hidden {
		e.name, e.flags, e.method, e.crc, e.csize, e.usize = e.lname, e.lflags, e.lmeth, e.lcrc, e.lcsize, e.lusize
	}
	if e.csize > uint64(size) || e.dataOff+int64(e.csize) > size {
		return zipErr("data of %q runs past the end of the file", e.name)
	}
	return nil
}

// compareHeaders reports every way the local header disagrees with the central one.
func (j *job) compareHeaders(e *zipEntry) {
	var diffs []string
	if e.lname != e.name {
		diffs = append(diffs, fmt.Sprintf("name %q vs %q", e.lname, e.name))
	}
	if e.lmeth != e.method {
		diffs = append(diffs, fmt.Sprintf("method %d vs %d", e.lmeth, e.method))
	}
	if e.lflags&^0x0808 != e.flags&^0x0808 {
		diffs = append(diffs, fmt.Sprintf("flags %#x vs %#x", e.lflags, e.flags))
	}
	if e.flags&8 == 0 && (e.lcrc != e.crc || e.lcsize != e.csize || e.lusize != e.usize) {
		diffs = append(diffs, "crc or sizes differ")
	}
	j.push(e.name)
	defer j.pop()
	if len(diffs) > 0 {
		j.add(RuleZipHeaderMismatch, finding.High, "zip local and central headers disagree", map[string]any{
			"differences": strings.Join(diffs, "; "), "local_name": e.lname, "central_name": e.name})
	}
	for _, f := range []uint16{e.flags, e.lflags} {
		if f&0x0001 != 0 {
			j.add(RuleZipFlags, finding.High, "zip entry is flagged encrypted", map[string]any{"flags": fmt.Sprintf("%#x", f)})
		}
		if f&0x0020 != 0 {
			j.add(RuleZipFlags, finding.High, "zip entry is flagged as compressed patched data", map[string]any{"flags": fmt.Sprintf("%#x", f)})
		}
		if f&0x0040 != 0 {
			j.add(RuleZipFlags, finding.High, "zip entry is flagged as strongly encrypted", map[string]any{"flags": fmt.Sprintf("%#x", f)})
		}
		if f&0x2000 != 0 {
			j.add(RuleZipFlags, finding.High, "zip entry flags a masked central directory", map[string]any{"flags": fmt.Sprintf("%#x", f)})
		}
	}
}

func (j *job) checkDuplicates(all []*zipEntry) {
	seen := map[string]int{}
	for _, e := range all {
		seen[e.name]++
	}
	// In directory order, so that the same archive always gives the same evidence.
	for _, e := range all {
		if n := seen[e.name]; n > 1 {
			j.add(RuleZipDuplicate, finding.High, "zip archive has duplicate entries", map[string]any{"name": e.name, "copies": n})
			seen[e.name] = 0
		}
	}
	sorted := append([]*zipEntry(nil), all...)
	sort.Slice(sorted, func(a, b int) bool { return sorted[a].headerOff < sorted[b].headerOff })
	for i := 1; i < len(sorted); i++ {
		p, e := sorted[i-1], sorted[i]
		if p.dataOff >= 0 && p.dataOff+int64(p.csize) > e.headerOff {
			j.add(RuleZipHeaderMismatch, finding.High, "zip entries overlap", map[string]any{"first": p.name, "second": e.name})
		}
	}
}

// hiddenEntries finds local headers in the gaps between listed entries and the directory.
func (j *job) hiddenEntries(ra io.ReaderAt, size int64, dirs []zipDir, listed []*zipEntry) []*zipEntry {
	type span struct{ a, b int64 }
	var covered []span
	for _, e := range listed {
		if e.dataOff < 0 {
			continue
		}
		end := e.dataOff + int64(e.csize)
		if e.flags&8 != 0 || e.lflags&8 != 0 {
			end += 24 // data descriptor, with or without signature, 32 or 64-bit sizes
		}
		covered = append(covered, span{e.headerOff, end})
	}
	for _, d := range dirs {
		covered = append(covered, span{d.cdStart, size}, span{0, d.concat})
	}
	sort.Slice(covered, func(a, b int) bool { return covered[a].a < covered[b].a })
	var hidden []*zipEntry
	pos := int64(0)
	check := func(a, b int64) {
		for a < b && len(hidden) < 1000 {
			n := b - a
			if n > 1<<20 {
				n = 1 << 20
			}
			buf := make([]byte, n+3)
			m, _ := ra.ReadAt(buf, a)
			buf = buf[:m]
			i := bytes.Index(buf, []byte("PK\x03\x04"))
			if i < 0 || int64(i) >= n {
				a += n
				continue
			}
			e := &zipEntry{headerOff: a + int64(i), hidden: true}
			if err := readLocal(ra, size, e); err == nil {
				hidden = append(hidden, e)
				j.push(e.name)
				j.add(RuleZipHidden, finding.High, "zip local entry missing from the central directory", map[string]any{"offset": e.headerOff})
				j.pop()
			}
			a += int64(i) + 4
		}
	}
	for _, c := range covered {
		if c.a > pos {
			check(pos, c.a)
		}
		if c.b > pos {
			pos = c.b
		}
	}
	return hidden
}

// memberSource opens the data of e, decompressing with limits.
func (j *job) memberSource(ra io.ReaderAt, e *zipEntry) (*source, error) {
	raw := io.NewSectionReader(ra, e.dataOff, int64(e.csize))
	switch e.method {
	case 0:
		return &source{name: e.name, ra: raw, size: int64(e.csize)}, nil
	case 8, 12:
		lim := j.s.lim.MaxMemberBytes
		if r := int64(e.csize)*j.s.lim.MaxRatio + 4096; r < lim {
			lim = r
		}
		return &source{name: e.name, size: -1, open: func() (io.ReadCloser, error) {
			sr := io.NewSectionReader(ra, e.dataOff, int64(e.csize))
			if e.method == 8 {
				fr := flate.NewReader(sr)
				return struct {
					io.Reader
					io.Closer
				}{&limitReader{r: fr, n: lim}, fr}, nil
			}
			return io.NopCloser(&limitReader{r: bzip2.NewReader(sr), n: lim}), nil
		}}, nil
	}
	return nil, fmt.Errorf("compression method %d not supported", e.method)
}

func (j *job) scanZipMember(ra io.ReaderAt, e *zipEntry, depth int, strict bool) {
	name := e.name
	if e.hidden {
		name = "(hidden) " + name
	}
	j.push(name)
	defer j.pop()
	src, err := j.memberSource(ra, e)
	if err != nil {
		j.inconclusive("zip entry", err)
		return
	}
	encrypted := (e.flags|e.lflags)&0x0061 != 0
	strict = strict || encrypted || modelName(e.name) || modelName(e.lname) || strings.HasSuffix(e.name, ".pkl")
	j.scan(src, depth+1, strict)
	if encrypted {
		return // the CRC is of the plaintext
	}
	if err := j.checkCRC(src, e); err != nil {
		if errors.Is(err, errLimit) {
			j.inconclusive("zip entry", err)
		} else {
			j.add(RuleZipCRC, finding.High, "zip entry CRC does not match its content", map[string]any{"reason": err.Error()})
		}
	}
}

func (j *job) checkCRC(src *source, e *zipEntry) error {
	rc, err := src.stream()
	if err != nil {
		return err
	}
	defer rc.Close()
	h := crc32.NewIEEE()
	n, err := io.Copy(h, rc)
	if err != nil {
		return err
	}
	if uint64(n) != e.usize {
		return fmt.Errorf("size %d, header says %d", n, e.usize)
	}
	if h.Sum32() != e.crc {
		return fmt.Errorf("crc %08x, header says %08x", h.Sum32(), e.crc)
	}
	return nil
}

// zipPolyglot scans a ZIP archive found at the end of content that does not start as one.
func (j *job) zipPolyglot(src *source, depth int) {
	dirs, err := findZipDirs(src.ra, src.size, j.s.lim.MaxMembers)
	if err != nil {
		return
	}
	valid := false
	for _, d := range dirs {
		for _, e := range d.entries {
			c := *e
			if readLocal(src.ra, src.size, &c) == nil {
				valid = true
			}
		}
	}
	if !valid {
		return
	}
	j.add(RuleZipPrefix, finding.High, "zip archive appended to other content (polyglot)", nil)
	j.push("(appended zip)")
	j.scanZipPrefix(src, depth+1, false)
	j.pop()
}
