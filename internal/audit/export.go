package audit

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// ExportOptions select what an evidence bundle covers.
type ExportOptions struct {
	From, To time.Time // records with From <= time < To; zero means unbounded
	Out      string    // the bundle directory; must not exist or be empty
	Now      func() time.Time
}

// ExportResult says what was written.
type ExportResult struct {
	Out         string
	First, Next int64 // record indexes [First, Next)
	TreeSize    int64 // the checkpoint every inclusion proof is against
	Uncovered   int64 // records in the period after the last checkpoint, left out
	Result      *Result
}

// Files of a bundle (docs/audit.md).
const (
	bundleManifest    = "manifest"
	bundleInclusion   = "inclusion.jsonl"
	bundleConsistency = "consistency.jsonl"
	bundleReport      = "report.html"
	bundleVerify      = "VERIFY.txt"
	bundleHeader      = "pipewarden audit bundle v1"
)

// bundleHashed are the files the signed manifest names with their SHA-256.
var bundleHashed = []string{recordsFile, checkpointsFile, bundleInclusion, bundleConsistency, pubKeyFile, bundleReport, bundleVerify}

// proofLine is one line of inclusion.jsonl or consistency.jsonl.
type proofLine struct {
	Index *int64   `json:"index,omitempty"`
	From  int64    `json:"from,omitempty"`
	To    int64    `json:"to,omitempty"`
	Proof []string `json:"proof"`
}

// Export writes an evidence bundle for a period from the log in dir (a log or data directory),
// read-only, while a daemon may be appending: it covers what the last checkpoint covers. The
// bundle holds the records, the checkpoints, an inclusion proof of every record, consistency
// proofs between the checkpoints, the public key, an HTML report and VERIFY.txt, under a
// manifest signed with the log's key; it is verified before Export returns.
func Export(dir string, o ExportOptions) (*ExportResult, error) {
	dir = LogDir(dir)
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.To.IsZero() {
		o.To = o.Now()
	}
	kb, err := os.ReadFile(filepath.Join(dir, keyFile))
	if err != nil {
		return nil, fmt.Errorf("read the log's key (export signs the bundle with it): %w", err)
	}
	signer, err := note.NewSigner(strings.TrimSpace(string(kb)))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, keyFile), err)
	}
	vkey, err := verifierFromSigner(strings.TrimSpace(string(kb)))
	if err != nil {
		return nil, err
	}
	v, _ := note.NewVerifier(vkey)
	cpb, err := os.ReadFile(filepath.Join(dir, checkpointsFile))
	if err != nil {
		return nil, err
	}
	chk := &Result{Key: vkey}
	cps, err := readCheckpointLines(chk, bytes.NewReader(cpb), v, "checkpoints")
	if err != nil {
		return nil, err
	}
	if len(chk.Problems) > 0 {
		return nil, fmt.Errorf("the log's checkpoints do not verify (%s): run 'pipewarden audit verify'", chk.Problems[0])
	}
	if len(cps) == 0 {
		return nil, errors.New("the log has no checkpoint yet: nothing can be proven")
	}
	top := cps[len(cps)-1]
	rf, err := os.Open(filepath.Join(dir, recordsFile))
	if err != nil {
		return nil, err
	}
	defer rf.Close()
	hf, err := os.Open(filepath.Join(dir, hashesFile))
	if err != nil {
		return nil, err
	}
	defer hf.Close()
	hr := fileHashReader{hf, tlog.StoredHashCount(top.Size)}
	if root, err := tlog.TreeHash(top.Size, hr); err != nil || root != top.Hash {
		return nil, fmt.Errorf("the stored hashes do not match the last checkpoint: run 'pipewarden audit verify'")
	}

	// Find the period: the first and last record inside it, and everything between.
	first, next, uncovered := int64(-1), int64(-1), int64(0)
	var startOff, endOff int64
	fr := newFrameReader(rf, 0)
	for i := int64(0); ; i++ {
		payload, off, err := fr.next()
		if err == io.EOF || errors.Is(err, errTorn) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("record %d: %w: run 'pipewarden audit verify'", i, err)
		}
		_, _, ts, ok := recordFields(payload)
		t, terr := time.Parse(time.RFC3339Nano, ts)
		if !ok || terr != nil {
			return nil, fmt.Errorf("record %d: unreadable time: run 'pipewarden audit verify'", i)
		}
		if (o.From.IsZero() || !t.Before(o.From)) && t.Before(o.To) {
			if i >= top.Size {
				uncovered++
				continue
			}
			if first < 0 {
				first, startOff = i, off
			}
			next, endOff = i+1, fr.off
		}
	}
	if first < 0 {
		return nil, fmt.Errorf("no checkpointed audit records between %s and %s", fmtTime(o.From), fmtTime(o.To))
	}
	if err := makeEmptyDir(o.Out); err != nil {
		return nil, err
	}
	write := func(name string, b []byte) error {
		return os.WriteFile(filepath.Join(o.Out, name), b, 0o644)
	}
	// Records, verbatim.
	recBytes := make([]byte, endOff-startOff)
	if _, err := rf.ReadAt(recBytes, startOff); err != nil {
		return nil, err
	}
	if err := write(recordsFile, recBytes); err != nil {
		return nil, err
	}
	// Inclusion proofs against the last checkpoint.
	var inc bytes.Buffer
	for i := first; i < next; i++ {
		p, err := tlog.ProveRecord(top.Size, i, hr)
		if err != nil {
			return nil, err
		}
		idx := i
		writeLine(&inc, proofLine{Index: &idx, Proof: hashes64(p)})
	}
	// The checkpoints from the last one before the period on, and proofs that each extends the
	// one before it.
	var keep []Checkpoint
	for i, c := range cps {
		if c.Size > first || i+1 < len(cps) && cps[i+1].Size > first {
			keep = append(keep, c)
		}
	}
	var cpOut, cons bytes.Buffer
	for i, c := range keep {
		cpOut.Write(marshalNoteLine(noteLine{Note: string(c.Note)}))
		if i > 0 && keep[i-1].Size < c.Size {
			p, err := tlog.ProveTree(c.Size, keep[i-1].Size, fileHashReader{hf, tlog.StoredHashCount(c.Size)})
			if err != nil {
				return nil, err
			}
			writeLine(&cons, proofLine{From: keep[i-1].Size, To: c.Size, Proof: hashes64(p)})
		}
	}
	for name, b := range map[string][]byte{bundleInclusion: inc.Bytes(), bundleConsistency: cons.Bytes(),
		checkpointsFile: cpOut.Bytes(), pubKeyFile: []byte(vkey + "\n")} {
		if err := write(name, b); err != nil {
			return nil, err
		}
	}
	// The report, from the records themselves.
	entries, err := parseFrames(recBytes, first)
	if err != nil {
		return nil, err
	}
	rep := buildReport(entries, reportMeta{
		Origin: v.Name(), Key: vkey, From: o.From, To: o.To, Generated: o.Now(), First: first, Next: next,
		Checkpoint: top, Uncovered: uncovered,
	})
	var html bytes.Buffer
	if err := renderReport(&html, rep); err != nil {
		return nil, err
	}
	if err := write(bundleReport, html.Bytes()); err != nil {
		return nil, err
	}
	if err := write(bundleVerify, []byte(verifyText(vkey, first, next, top))); err != nil {
		return nil, err
	}
	// The manifest, signed.
	var m strings.Builder
	fmt.Fprintf(&m, "%s\norigin %s\nperiod %s %s\nrecords %d %d\ntree %d %s\n", bundleHeader, v.Name(), fmtTime(o.From), fmtTime(o.To), first, next, top.Size, b64(top.Hash))
	for _, name := range bundleHashed {
		b, err := os.ReadFile(filepath.Join(o.Out, name))
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(b)
		fmt.Fprintf(&m, "sha256 %s %s\n", hex.EncodeToString(sum[:]), name)
	}
	signed, err := note.Sign(&note.Note{Text: m.String()}, signer)
	if err != nil {
		return nil, err
	}
	if err := write(bundleManifest, signed); err != nil {
		return nil, err
	}
	res, err := VerifyBundle(o.Out, VerifyOptions{Key: vkey})
	if err != nil {
		return nil, fmt.Errorf("verify the bundle just written: %w", err)
	}
	if !res.OK() {
		return nil, fmt.Errorf("the bundle just written does not verify: %s", res.Problems[0])
	}
	return &ExportResult{Out: o.Out, First: first, Next: next, TreeSize: top.Size, Uncovered: uncovered, Result: res}, nil
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func writeLine(b *bytes.Buffer, v any) {
	j, _ := json.Marshal(v)
	b.Write(j)
	b.WriteByte('\n')
}

func makeEmptyDir(dir string) error {
	if dir == "" {
		return errors.New("no output directory")
	}
	ents, err := os.ReadDir(dir)
	if err == nil && len(ents) > 0 {
		return fmt.Errorf("%s is not empty", dir)
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return os.MkdirAll(dir, 0o755)
}

// parseFrames decodes the records of a records file whose first record has index first.
func parseFrames(b []byte, first int64) ([]indexed, error) {
	var out []indexed
	fr := newFrameReader(bytes.NewReader(b), 0)
	for i := first; ; i++ {
		payload, _, err := fr.next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
		idx, r, err := ParseRecord(payload)
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
		out = append(out, indexed{idx, r})
	}
}

type indexed struct {
	Index int64
	Record
}

func verifyText(vkey string, first, next int64, top Checkpoint) string {
	return fmt.Sprintf(`pipewarden audit evidence bundle
================================

This directory holds audit records %d to %d of the log %s,
an inclusion proof of each against the signed checkpoint of size %d, the checkpoints
before and after them with consistency proofs, the log's public key, and report.html.

To verify it, offline, with the pipewarden binary alone:

    pipewarden audit verify --bundle . --key '%s'

Check the key against one you obtained independently (from the operator, from
'pipewarden audit key' run on the server, or from the first line of the witness file),
and add --witness FILE with the witness's checkpoints if you have them: without an
independent key or witness, a bundle only proves it is self-consistent.

Exit status 0 means every record is included in the signed tree, unchanged and in its
place, every checkpoint is signed by the key and extends the one before it, and no file
of the bundle was changed. Exit status 1 lists what disagrees, by record index.

Files: manifest (signed list of the files' SHA-256), records (length-prefixed canonical
JSON, see docs/audit.md), inclusion.jsonl, consistency.jsonl, checkpoints (C2SP signed
notes), key.pub, report.html.
`, first, next-1, keyName(vkey), top.Size, vkey)
}

// readLines reads a JSON-lines proof file with a bound on its size.
func readLines(path string, fn func(proofLine) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for n := 1; sc.Scan(); n++ {
		var l proofLine
		d := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		d.DisallowUnknownFields()
		if err := d.Decode(&l); err != nil {
			return fmt.Errorf("%s line %d: %w", filepath.Base(path), n, err)
		}
		if err := fn(l); err != nil {
			return fmt.Errorf("%s line %d: %w", filepath.Base(path), n, err)
		}
	}
	return sc.Err()
}
