package audit

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"golang.org/x/mod/sumdb/tlog"
)

// recover brings the log to a consistent state after a clean or unclean stop. The records file
// is the truth; everything after the last checkpoint is re-derived from it:
//   - a torn last checkpoint line is cut off;
//   - offsets and hashes past the last checkpoint are recomputed from the records;
//   - a frame cut short (or failing its checksum) at the end of the records file is a write that
//     was never acknowledged: it is truncated and the truncation logged.
//
// A log shorter than its last checkpoint, or whose tree does not match it, is an error: that is
// not a crash, it is damage or tampering, for 'pipewarden audit verify' to name.
func (l *Log) recover() error {
	cp, err := l.loadCheckpoints()
	if err != nil {
		return err
	}
	var cpSize int64
	if cp != nil {
		cpSize = cp.Size
	}
	offSize, err := fileSize(l.offsets)
	if err != nil {
		return err
	}
	nOff := min(offSize/8, cpSize)
	var scanFrom int64
	if nOff > 0 {
		last, err := readOffset(l.offsets, nOff-1)
		if err != nil {
			return err
		}
		end, err := frameEnd(l.records, last)
		if err != nil {
			return fmt.Errorf("record %d (offset %d): %w; run 'pipewarden audit verify'", nOff-1, last, err)
		}
		scanFrom = end
	}
	recSize, err := fileSize(l.records)
	if err != nil {
		return err
	}
	// Scan the frames after the last trusted offset, rewriting their offsets.
	fr := newFrameReader(io.NewSectionReader(l.records, scanFrom, recSize-scanFrom), scanFrom)
	ow := bufio.NewWriterSize(&offsetWriter{f: l.offsets, off: nOff * 8}, 64<<10)
	n := nOff
	for {
		_, off, err := fr.next()
		if err == io.EOF {
			break
		}
		var fe *frameError
		if errors.Is(err, errTorn) || errors.As(err, &fe) {
			l.log.Warn("audit log: removed a record cut short at the end (a write that was never acknowledged)",
				"index", n, "offset", off, "bytes", recSize-off, "reason", err)
			if err := l.records.Truncate(off); err != nil {
				return err
			}
			recSize = off
			break
		}
		if err != nil {
			return fmt.Errorf("read records: %w", err)
		}
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(off))
		ow.Write(b[:])
		n++
	}
	if err := ow.Flush(); err != nil {
		return fmt.Errorf("rewrite offsets: %w", err)
	}
	if err := l.offsets.Truncate(n * 8); err != nil {
		return err
	}
	if n < cpSize {
		return fmt.Errorf("the log holds %d records but its last checkpoint covers %d: records were removed; run 'pipewarden audit verify'", n, cpSize)
	}
	l.recEnd = recSize
	// Hashes: keep what the last checkpoint covers (and the file holds), recompute the rest.
	hashSize, err := fileSize(l.hashes)
	if err != nil {
		return err
	}
	have := hashSize / tlog.HashSize
	k := int64(sort.Search(int(cpSize)+1, func(k int) bool { return tlog.StoredHashCount(int64(k)) > have })) - 1
	if err := l.hashes.Truncate(tlog.StoredHashCount(k) * tlog.HashSize); err != nil {
		return err
	}
	l.n, l.pendingBase = 0, 0
	l.advance(k)
	if err := l.rehash(k, n); err != nil {
		return err
	}
	if cp != nil {
		root, err := tlog.TreeHash(cp.Size, fileHashReader{l.hashes, tlog.StoredHashCount(l.n)})
		if err != nil {
			return err
		}
		if root != cp.Hash {
			return fmt.Errorf("the records do not match the last checkpoint (size %d); run 'pipewarden audit verify'", cp.Size)
		}
	}
	l.sinceCP = n - cpSize
	return nil
}

// rehash recomputes the stored hashes of records [from, to) and writes them.
func (l *Log) rehash(from, to int64) error {
	if from == to {
		return nil
	}
	start, err := readOffset(l.offsets, from)
	if err != nil {
		return err
	}
	fr := newFrameReader(io.NewSectionReader(l.records, start, l.recEnd-start), start)
	for i := from; i < to; {
		l.pendingBase, l.pending = tlog.StoredHashCount(i), l.pending[:0]
		j := i
		for ; j < to && j-i < 4096; j++ {
			payload, _, err := fr.next()
			if err != nil {
				return fmt.Errorf("rehash record %d: %w", j, err)
			}
			if err := l.hashRecord(j, payload); err != nil {
				return err
			}
		}
		hb := l.hashBuf[:0]
		for _, h := range l.pending {
			hb = append(hb, h[:]...)
		}
		l.hashBuf = hb
		if _, err := l.hashes.WriteAt(hb, l.pendingBase*tlog.HashSize); err != nil {
			return err
		}
		l.advance(j)
		i = j
	}
	return nil
}

// loadCheckpoints finds the last checkpoint in the checkpoints file, cutting off a torn last
// line. Every line must verify with the log's key.
func (l *Log) loadCheckpoints() (*Checkpoint, error) {
	b, err := io.ReadAll(l.cps)
	if err != nil {
		return nil, err
	}
	end := bytes.LastIndexByte(b, '\n') + 1
	if end != len(b) {
		l.log.Warn("audit log: removed a checkpoint line cut short at the end", "bytes", len(b)-end)
		if err := l.cps.Truncate(int64(end)); err != nil {
			return nil, err
		}
	}
	l.cpEnd = int64(end)
	var last *Checkpoint
	for i, line := range bytes.Split(b[:end], []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		nl, err := parseNoteLine(line)
		if err != nil || nl.Note == "" {
			return nil, fmt.Errorf("checkpoints line %d: malformed; run 'pipewarden audit verify'", i+1)
		}
		c, err := openCheckpoint([]byte(nl.Note), l.verifier)
		if err != nil {
			return nil, fmt.Errorf("checkpoints line %d: %w; run 'pipewarden audit verify'", i+1, err)
		}
		if last != nil && c.Size < last.Size {
			return nil, fmt.Errorf("checkpoints line %d: size %d after %d; run 'pipewarden audit verify'", i+1, c.Size, last.Size)
		}
		last = &c
	}
	if last != nil {
		l.latest.Store(last)
	}
	return last, nil
}

func fileSize(f *os.File) (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

func readOffset(f *os.File, i int64) (int64, error) {
	var b [8]byte
	if _, err := f.ReadAt(b[:], i*8); err != nil {
		return 0, fmt.Errorf("read offset of record %d: %w", i, err)
	}
	return int64(binary.BigEndian.Uint64(b[:])), nil
}

// frameEnd checks the frame at off and returns where it ends.
func frameEnd(f *os.File, off int64) (int64, error) {
	fr := newFrameReader(io.NewSectionReader(f, off, MaxRecordSize+frameHeader), off)
	_, _, err := fr.next()
	if err != nil {
		return 0, err
	}
	return fr.off, nil
}

type offsetWriter struct {
	f   *os.File
	off int64
}

func (w *offsetWriter) Write(b []byte) (int, error) {
	n, err := w.f.WriteAt(b, w.off)
	w.off += int64(n)
	return n, err
}

// fileHashReader reads stored hashes from a hashes file holding count of them.
type fileHashReader struct {
	f     *os.File
	count int64
}

func (r fileHashReader) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, idx := range indexes {
		if idx < 0 || idx >= r.count {
			return nil, fmt.Errorf("stored hash %d out of range (%d stored)", idx, r.count)
		}
		h, err := readHashAt(r.f, idx)
		if err != nil {
			return nil, err
		}
		out[i] = h
	}
	return out, nil
}
