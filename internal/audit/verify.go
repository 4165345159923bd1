package audit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Problem kinds named by verification.
const (
	ProblemModified     = "modified"                 // a record's bytes changed after it was appended
	ProblemDeleted      = "deleted"                  // a record is missing; later ones moved down
	ProblemInserted     = "inserted"                 // a record appeared that was never appended there
	ProblemReordered    = "reordered"                // records changed places
	ProblemCorrupt      = "corrupt"                  // a record cannot be read at all
	ProblemTruncated    = "truncated"                // the log ends before what a checkpoint covers
	ProblemRollback     = "rollback"                 // the log is older than what a witness saw
	ProblemMismatch     = "checkpoint-mismatch"      // a signed checkpoint does not match the records
	ProblemRewritten    = "rewritten"                // a witnessed checkpoint does not match the records
	ProblemFork         = "fork"                     // the log and a witness signed different trees of one size
	ProblemSignature    = "bad-signature"            // a checkpoint is not signed by the trusted key
	ProblemKeyChanged   = "key-changed"              // the log's key is not the trusted key
	ProblemInconsistent = "inconsistent-checkpoints" // checkpoints go backwards
	ProblemUnverified   = "unverified"               // records no trusted checkpoint vouches for
	ProblemHashStore    = "hash-store"               // the stored hashes (used for proofs) are damaged
	ProblemProof        = "bad-proof"                // a served or bundled proof does not verify
	ProblemManifest     = "manifest"                 // a bundle's signed manifest does not match it
)

// Problem is one disagreement found by verification.
type Problem struct {
	Index      int64  // the first record index concerned, -1 when it is about the log as a whole
	Kind       string // one of the Problem* constants
	RecordKind Kind   // the kind of the record at Index, when known
	Detail     string
}

func (p Problem) String() string {
	where := "log"
	if p.Index >= 0 {
		where = fmt.Sprintf("index %d", p.Index)
		if p.RecordKind != "" {
			where += fmt.Sprintf(" (%s record)", p.RecordKind)
		}
	}
	return fmt.Sprintf("%s: %s: %s", where, p.Kind, p.Detail)
}

// Result is what verification found.
type Result struct {
	Source      string
	Origin      string
	Key         string // the verifier key checkpoints were checked with
	KeySource   string // "pinned" (--key), "witness" or "log" (the log's own key: trust on first use)
	Records     int64  // records read
	Checkpoints int    // checkpoints that verified with the key
	Latest      *Checkpoint
	Witnessed   int // witnessed checkpoints compared with the records
	Problems    []Problem
	Notes       []string
}

// OK is true when nothing disagrees.
func (r *Result) OK() bool { return len(r.Problems) == 0 }

// FirstIndex is the first record index where the log and its checkpoints disagree, or -1.
func (r *Result) FirstIndex() int64 {
	first := int64(-1)
	for _, p := range r.Problems {
		if p.Index >= 0 && (first < 0 || p.Index < first) {
			first = p.Index
		}
	}
	return first
}

func (r *Result) add(index int64, kind, format string, a ...any) {
	r.Problems = append(r.Problems, Problem{Index: index, Kind: kind, Detail: fmt.Sprintf(format, a...)})
}

func (r *Result) sort() {
	slices.SortStableFunc(r.Problems, func(a, b Problem) int {
		switch {
		case a.Index == b.Index:
			return 0
		case a.Index < 0:
			return -1
		case b.Index < 0:
			return 1
		case a.Index < b.Index:
			return -1
		}
		return 1
	})
}

// VerifyOptions say what to trust.
type VerifyOptions struct {
	// Key pins the verifier key (as printed by 'pipewarden audit key'); it wins over Witness.
	Key string
	// Witness holds the checkpoints a witness saw (ReadWitness); its first line pins a key.
	Witness *WitnessState
}

// trust picks the key checkpoints are checked with and reports a replaced log key.
func trust(res *Result, opts VerifyOptions, logKey string) (note.Verifier, error) {
	switch {
	case opts.Key != "":
		res.Key, res.KeySource = opts.Key, "pinned"
	case opts.Witness != nil && opts.Witness.Key != "":
		res.Key, res.KeySource = opts.Witness.Key, "witness"
	case logKey != "":
		res.Key, res.KeySource = logKey, "log"
		res.Notes = append(res.Notes, "the key was taken from the log itself: pin it with --key or check against a witness (--witness), or a rewritten log with a new key verifies too")
	default:
		return nil, errors.New("no key to verify checkpoints with: give --key")
	}
	v, err := note.NewVerifier(res.Key)
	if err != nil {
		return nil, fmt.Errorf("verifier key %q: %w", res.Key, err)
	}
	if logKey != "" && logKey != res.Key {
		res.add(-1, ProblemKeyChanged, "the log's key %s is not the %s key %s: the key was replaced", keyName(logKey), res.KeySource, keyName(res.Key))
	}
	if opts.Witness != nil && opts.Witness.Key != "" && opts.Witness.Key != res.Key {
		res.add(-1, ProblemKeyChanged, "the witness pins key %s, not the %s key %s", keyName(opts.Witness.Key), res.KeySource, keyName(res.Key))
	}
	res.Origin = v.Name()
	return v, nil
}

// keyName shortens a verifier key to name+hash for messages.
func keyName(vkey string) string {
	if parts := strings.SplitN(vkey, "+", 3); len(parts) == 3 {
		return parts[0] + "+" + parts[1]
	}
	return vkey
}

// readCheckpointLines reads a checkpoints file, verifying each with v. Bad lines become
// problems; verified checkpoints are returned in file order.
func readCheckpointLines(res *Result, r io.Reader, v note.Verifier, what string) ([]Checkpoint, error) {
	var out []Checkpoint
	var unsigned []string
	br := bufio.NewReaderSize(r, 64<<10)
	for lineNo := 1; ; lineNo++ {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return out, fmt.Errorf("%s line %d is too long", what, lineNo)
		}
		if err == io.EOF {
			if len(line) > 0 {
				res.Notes = append(res.Notes, fmt.Sprintf("%s: a line cut short at the end (an unfinished write) was ignored", what))
			}
			break
		}
		if err != nil {
			return out, err
		}
		line = bytes.TrimSuffix(line, []byte("\n"))
		if len(line) == 0 {
			continue
		}
		nl, err := parseNoteLine(line)
		if err != nil || nl.Note == "" {
			res.add(-1, ProblemCorrupt, "%s line %d is not a checkpoint", what, lineNo)
			continue
		}
		c, err := openCheckpoint([]byte(nl.Note), v)
		switch {
		case errors.Is(err, ErrUnknownKey):
			unsigned = append(unsigned, fmt.Sprintf("line %d%s", lineNo, claimedSize([]byte(nl.Note))))
			continue
		case err != nil:
			res.add(-1, ProblemSignature, "%s line %d%s: %v", what, lineNo, claimedSize([]byte(nl.Note)), err)
			continue
		}
		if n := len(out); n > 0 {
			prev := out[n-1]
			if c.Size < prev.Size || c.Size == prev.Size && c.Hash != prev.Hash {
				res.add(prev.Size, ProblemInconsistent, "%s line %d (size %d) does not extend the checkpoint before it (size %d)", what, lineNo, c.Size, prev.Size)
			}
		}
		out = append(out, c)
	}
	if len(unsigned) > 0 {
		res.add(-1, ProblemSignature, "%d %s not signed by the trusted key %s (%s)", len(unsigned), plural(len(unsigned), "checkpoint is", "checkpoints are"), keyName(res.Key), strings.Join(firstN(unsigned, 5), ", "))
	}
	return out, nil
}

// claimedSize reads the size an unverifiable checkpoint claims, for messages.
func claimedSize(signed []byte) string {
	body, _, ok := bytes.Cut(signed, []byte("\n\n"))
	if !ok {
		return ""
	}
	c, err := parseCheckpointBody(string(body) + "\n")
	if err != nil {
		return ""
	}
	return fmt.Sprintf(" (claims size %d)", c.Size)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func firstN(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], "...")
	}
	return s
}

// VerifyDir verifies the log in dir (a log directory, or a data directory holding audit/)
// from its files alone: it recomputes the tree from the records file, checks every checkpoint
// signature, compares the tree with every checkpoint and witnessed checkpoint, and names where
// they disagree. An error means the directory could not be read; tampering is in the Result.
func VerifyDir(dir string, opts VerifyOptions) (*Result, error) {
	dir = LogDir(dir)
	res := &Result{Source: dir}
	f, err := os.Open(filepath.Join(dir, recordsFile))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	logKey, err := ReadPublicKey(dir)
	if err != nil && opts.Key == "" && (opts.Witness == nil || opts.Witness.Key == "") {
		return nil, fmt.Errorf("read the log's key: %w", err)
	}
	v, err := trust(res, opts, logKey)
	if err != nil {
		return nil, err
	}
	cpf, err := os.Open(filepath.Join(dir, checkpointsFile))
	if err != nil {
		return nil, err
	}
	cps, err := readCheckpointLines(res, cpf, v, "checkpoints")
	cpf.Close()
	if err != nil {
		return nil, err
	}
	t := newTally(res)
	if err := t.readFrames(f); err != nil {
		return nil, err
	}
	if hf, err := os.Open(filepath.Join(dir, hashesFile)); err == nil {
		t.stored, err = readStoredLeaves(hf)
		hf.Close()
		if err != nil {
			return nil, err
		}
	} else {
		res.Notes = append(res.Notes, "no stored hashes: differences are located between checkpoints only")
	}
	t.classify()
	t.compare(cps, opts.Witness)
	// The stored hashes serve proofs: check they agree with the records at the last checkpoint.
	if n := len(cps); n > 0 && cps[n-1].Size <= res.Records {
		last := cps[n-1]
		if hf, err := os.Open(filepath.Join(dir, hashesFile)); err == nil {
			st, _ := hf.Stat()
			if count := st.Size() / tlog.HashSize; count >= tlog.StoredHashCount(last.Size) {
				if root, err := tlog.TreeHash(last.Size, fileHashReader{hf, count}); err == nil && root != last.Hash && t.root(last.Size) == last.Hash {
					res.add(-1, ProblemHashStore, "the stored hashes give a different tree at size %d: proofs served from this directory would not verify (remove %s; the daemon rebuilds it)", last.Size, filepath.Join(dir, hashesFile))
				}
			}
			hf.Close()
		}
	}
	res.sort()
	return res, nil
}

// LogDir returns the log directory for dir: dir/audit when dir is a data directory.
func LogDir(dir string) string {
	if _, err := os.Stat(filepath.Join(dir, recordsFile)); err != nil {
		if _, err := os.Stat(filepath.Join(dir, "audit", recordsFile)); err == nil {
			return filepath.Join(dir, "audit")
		}
	}
	return dir
}

// readStoredLeaves reads the leaf hashes from a hashes file.
func readStoredLeaves(f *os.File) ([]tlog.Hash, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	count := st.Size() / tlog.HashSize
	br := bufio.NewReaderSize(f, 1<<20)
	var out []tlog.Hash
	var pos int64
	for i := int64(0); ; i++ {
		idx := tlog.StoredHashIndex(0, i)
		if idx >= count {
			break
		}
		if _, err := br.Discard(int((idx - pos) * tlog.HashSize)); err != nil {
			return nil, err
		}
		var h tlog.Hash
		if _, err := io.ReadFull(br, h[:]); err != nil {
			return nil, err
		}
		out = append(out, h)
		pos = idx + 1
	}
	return out, nil
}
