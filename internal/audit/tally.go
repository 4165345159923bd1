package audit

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// tally is what verification learns about each record position: its leaf hash, the index it
// says it has, its kind; then it names where the records differ from what was hashed when they
// were appended (the stored hashes, else the records' own index fields) and from the
// checkpoints.
type tally struct {
	res     *Result
	leaves  []tlog.Hash
	self    []int64 // the "index" field, -1 when unreadable
	kinds   []Kind
	crcBad  map[int64]bool
	stored  []tlog.Hash // leaf hashes recorded at append time, when available
	deleted int64
	posOf   map[tlog.Hash]int64
}

func newTally(res *Result) *tally { return &tally{res: res, crcBad: map[int64]bool{}} }

// add records one position.
func (t *tally) add(payload []byte, crcBad bool) {
	p := int64(len(t.leaves))
	t.leaves = append(t.leaves, tlog.RecordHash(payload))
	idx, kind, ok := recordHeader(payload)
	if !ok {
		idx, kind = -1, ""
		if i, r, err := ParseRecord(payload); err == nil || errors.Is(err, ErrNotCanonical) {
			idx, kind = i, string(r.Kind)
		}
	}
	t.self = append(t.self, idx)
	t.kinds = append(t.kinds, Kind(kind))
	if crcBad {
		t.crcBad[p] = true
	}
	t.res.Records = p + 1
}

// readFrames reads a records file from its start.
func (t *tally) readFrames(r io.Reader) error {
	fr := newFrameReader(r, 0)
	for {
		payload, off, err := fr.next()
		var fe *frameError
		switch {
		case err == io.EOF:
			return nil
		case errors.Is(err, errTorn):
			t.res.Notes = append(t.res.Notes, fmt.Sprintf("the records file ends with a record cut short at byte %d (an unfinished write)", off))
			return nil
		case errors.As(err, &fe) && fe.Intact:
			t.add(payload, true)
		case errors.As(err, &fe):
			t.res.add(int64(len(t.leaves)), ProblemCorrupt, "%v: the records after it cannot be read", fe)
			return nil
		case err != nil:
			return fmt.Errorf("read records: %w", err)
		default:
			t.add(payload, false)
		}
	}
}

// is reports whether the record at position p is the one appended at index q.
func (t *tally) is(p, q int64) bool {
	if p < 0 || p >= int64(len(t.leaves)) || q < 0 {
		return false
	}
	if q < int64(len(t.stored)) {
		return t.leaves[p] == t.stored[q]
	}
	return t.self[p] == q && !t.crcBad[p]
}

func (t *tally) problem(index, pos int64, kind, format string, a ...any) {
	p := Problem{Index: index, Kind: kind, Detail: fmt.Sprintf(format, a...)}
	if pos >= 0 && pos < int64(len(t.kinds)) {
		p.RecordKind = t.kinds[pos]
	}
	t.res.Problems = append(t.res.Problems, p)
}

// classify walks the records and names each place they differ from what was appended.
func (t *tally) classify() {
	n := int64(len(t.leaves))
	var delta int64 // index = position + delta
	handled := map[int64]bool{}
	for p := int64(0); p < n; p++ {
		q := p + delta
		if handled[p] || t.is(p, q) {
			continue
		}
		switch {
		case t.is(p, q+1) && (p+1 >= n || t.is(p+1, q+2)):
			t.problem(q, -1, ProblemDeleted, "record %d is missing: the record now at position %d is record %d", q, p, q+1)
			delta++
			t.deleted++
		case t.swapped(p, q, delta) > p:
			j := t.swapped(p, q, delta)
			t.problem(q, p, ProblemReordered, "records %d and %d changed places", q, j+delta)
			handled[j] = true
		case p+1 < n && t.is(p+1, q):
			t.problem(q, p, ProblemInserted, "the record at position %d was never appended there: record %d follows it", p, q)
			delta--
		default:
			why := "its bytes differ from what was hashed when it was appended"
			if t.crcBad[p] {
				why += " (and from its frame checksum)"
			}
			t.problem(q, p, ProblemModified, "record %d was changed: %s", q, why)
		}
	}
}

// swapped finds the position j > p holding record q while p holds record j+delta.
func (t *tally) swapped(p, q, delta int64) int64 {
	var j int64 = -1
	if q < int64(len(t.stored)) {
		if t.posOf == nil {
			t.posOf = make(map[tlog.Hash]int64, len(t.leaves))
			for i, h := range t.leaves {
				if _, dup := t.posOf[h]; !dup {
					t.posOf[h] = int64(i)
				}
			}
		}
		if x, ok := t.posOf[t.stored[q]]; ok {
			j = x
		}
	} else {
		for x := p + 1; x < int64(len(t.self)); x++ {
			if t.self[x] == q {
				j = x
				break
			}
		}
	}
	if j > p && t.is(p, j+delta) {
		return j
	}
	return -1
}

// roots computes the tree hashes at the given sizes (each <= the number of records) in one pass.
func (t *tally) roots(sizes []int64) map[int64]tlog.Hash {
	want := slices.Clone(sizes)
	slices.Sort(want)
	want = slices.Compact(want)
	out := make(map[int64]tlog.Hash, len(want))
	var stack []tlog.Hash
	w := 0
	for w < len(want) && want[w] <= 0 {
		w++
	}
	for i, leaf := range t.leaves {
		if w == len(want) {
			break
		}
		h := leaf
		for k := uint64(i); k&1 == 1; k >>= 1 {
			h = tlog.NodeHash(stack[len(stack)-1], h)
			stack = stack[:len(stack)-1]
		}
		stack = append(stack, h)
		for w < len(want) && want[w] == int64(i+1) {
			r := stack[len(stack)-1]
			for j := len(stack) - 2; j >= 0; j-- {
				r = tlog.NodeHash(stack[j], r)
			}
			out[want[w]] = r
			w++
		}
	}
	return out
}

func (t *tally) root(size int64) tlog.Hash { return t.roots([]int64{size})[size] }

// firstProblemIn returns the first record-level problem index in [from, to), or -1.
func (t *tally) firstProblemIn(from, to int64) int64 {
	first := int64(-1)
	for _, p := range t.res.Problems {
		switch p.Kind {
		case ProblemModified, ProblemDeleted, ProblemInserted, ProblemReordered, ProblemCorrupt:
			if p.Index >= from && p.Index < to && (first < 0 || p.Index < first) {
				first = p.Index
			}
		}
	}
	return first
}

// compare checks the records against the log's checkpoints and the witness.
func (t *tally) compare(cps []Checkpoint, w *WitnessState) {
	res := t.res
	n := int64(len(t.leaves))
	var sizes []int64
	for _, c := range cps {
		if c.Size <= n {
			sizes = append(sizes, c.Size)
		}
	}
	var wcs []Checkpoint
	if w != nil {
		wcs = slices.Clone(w.Checkpoints)
		slices.SortStableFunc(wcs, func(a, b Checkpoint) int { return int(min(max(a.Size-b.Size, -1), 1)) })
		for _, c := range wcs {
			if c.Size <= n {
				sizes = append(sizes, c.Size)
			}
		}
		for _, b := range w.Bad {
			res.Notes = append(res.Notes, "witness "+b)
		}
	}
	roots := t.roots(sizes)
	res.Checkpoints = len(cps)
	var logMax int64
	for i := range cps {
		res.Latest = &cps[i]
		logMax = max(logMax, cps[i].Size)
	}
	if logMax > n+t.deleted {
		res.add(n, ProblemTruncated, "the log holds %d records but its checkpoint covers %d: records %d to %d are missing", n, logMax, n, logMax-1)
	}
	// Walk the log's and the witness's checkpoints together by size: the first disagreement
	// lies between the largest size that matched and the first that did not.
	type signed struct {
		Checkpoint
		witnessed bool
	}
	var all []signed
	for _, c := range cps {
		all = append(all, signed{c, false})
	}
	for _, c := range wcs {
		all = append(all, signed{c, true})
	}
	slices.SortStableFunc(all, func(a, b signed) int { return int(min(max(a.Size-b.Size, -1), 1)) })
	var good int64
	var rolled *Checkpoint
	for i := range all {
		c := all[i]
		if c.Size > n {
			if c.witnessed {
				rolled = &all[i].Checkpoint
			}
			continue
		}
		if c.witnessed {
			res.Witnessed++
		}
		if roots[c.Size] == c.Hash {
			good = max(good, c.Size)
			continue
		}
		if t.firstProblemIn(good, c.Size) >= 0 {
			continue
		}
		kind, how := ProblemMismatch, "signed"
		if c.witnessed {
			kind, how = ProblemRewritten, "the witness saw"
			for _, lc := range cps {
				if lc.Size == c.Size && lc.Hash != c.Hash {
					kind = ProblemFork
				}
			}
		}
		if !t.reported(good, kind) {
			res.add(good, kind, "records %d to %d do not match the checkpoint of size %d %s %s", good, c.Size-1, c.Size, how, when(c.Time))
		}
	}
	if rolled != nil && rolled.Size > n+t.deleted {
		res.add(n, ProblemRollback, "the log holds %d records but the witness saw a checkpoint of size %d %s: the log was rolled back or cut", n, rolled.Size, when(rolled.Time))
	}
	if n > 0 && len(cps) == 0 && res.Witnessed == 0 {
		res.add(0, ProblemUnverified, "no checkpoint signed by the trusted key covers any of the %d records", n)
	}
	if res.Latest != nil && n > res.Latest.Size {
		res.Notes = append(res.Notes, fmt.Sprintf("%d records after the last checkpoint (size %d) are not yet covered by a signature", n-res.Latest.Size, res.Latest.Size))
	}
	if w == nil {
		res.Notes = append(res.Notes, "no witness given (--witness): a rewrite of the whole directory, or a rollback to an older copy, cannot be detected without one")
	}
}

// reported says whether a problem of kind at index is already there (later checkpoints repeat
// the first disagreement; it is named once).
func (t *tally) reported(index int64, kind string) bool {
	for _, p := range t.res.Problems {
		if p.Index == index && p.Kind == kind {
			return true
		}
	}
	return false
}

func when(t time.Time) string {
	if t.IsZero() {
		return "(time unknown)"
	}
	return "at " + t.UTC().Format(time.RFC3339)
}
