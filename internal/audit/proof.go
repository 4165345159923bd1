package audit

import (
	"fmt"
	"io"

	"golang.org/x/mod/sumdb/tlog"
)

// Entries returns the records with indexes [from, to), which must be acknowledged.
func (l *Log) Entries(from, to int64) ([]Entry, error) {
	size := l.size.Load()
	if from < 0 || to < from || to > size {
		return nil, fmt.Errorf("entries [%d, %d): out of range (log size %d)", from, to, size)
	}
	if from == to {
		return nil, nil
	}
	start, err := readOffset(l.offsets, from)
	if err != nil {
		return nil, err
	}
	fr := newFrameReader(io.NewSectionReader(l.records, start, 1<<62), start)
	out := make([]Entry, 0, to-from)
	for i := from; i < to; i++ {
		payload, _, err := fr.next()
		if err != nil {
			return nil, fmt.Errorf("read record %d: %w", i, err)
		}
		out = append(out, Entry{Index: i, Raw: append([]byte(nil), payload...)})
	}
	return out, nil
}

func (l *Log) reader(size int64) (tlog.HashReader, error) {
	if n := l.size.Load(); size < 1 || size > n {
		return nil, fmt.Errorf("tree size %d: out of range (log size %d)", size, n)
	}
	return fileHashReader{l.hashes, tlog.StoredHashCount(size)}, nil
}

// TreeHash returns the root hash of the tree of the first size records.
func (l *Log) TreeHash(size int64) (tlog.Hash, error) {
	r, err := l.reader(size)
	if err != nil {
		return tlog.Hash{}, err
	}
	return tlog.TreeHash(size, r)
}

// InclusionProof proves record index is in the tree of the first size records (RFC 6962
// audit path; check with tlog.CheckRecord).
func (l *Log) InclusionProof(index, size int64) (tlog.RecordProof, error) {
	r, err := l.reader(size)
	if err != nil {
		return nil, err
	}
	if index < 0 || index >= size {
		return nil, fmt.Errorf("index %d: out of range for tree size %d", index, size)
	}
	return tlog.ProveRecord(size, index, r)
}

// ConsistencyProof proves the tree of size from is a prefix of the tree of size to (RFC 6962;
// check with tlog.CheckTree).
func (l *Log) ConsistencyProof(from, to int64) (tlog.TreeProof, error) {
	r, err := l.reader(to)
	if err != nil {
		return nil, err
	}
	if from < 1 || from > to {
		return nil, fmt.Errorf("consistency from size %d to %d: want 1 <= from <= to", from, to)
	}
	return tlog.ProveTree(to, from, r)
}
