package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// manifest is the signed statement of what a bundle holds.
type manifest struct {
	Origin      string
	First, Next int64
	TreeSize    int64
	TreeHash    tlog.Hash
	Files       map[string]string // name -> hex SHA-256
}

// parseManifest reads a manifest body (untrusted).
func parseManifest(text string) (manifest, error) {
	m := manifest{Files: map[string]string{}}
	if len(text) > maxNoteSize {
		return m, errors.New("manifest too long")
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) == 0 || lines[0] != bundleHeader {
		return m, fmt.Errorf("not a %q manifest", bundleHeader)
	}
	seen := map[string]bool{}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) == 0 {
			return m, errors.New("manifest: empty line")
		}
		if f[0] != "sha256" && seen[f[0]] {
			return m, fmt.Errorf("manifest: %s twice", f[0])
		}
		seen[f[0]] = true
		var err error
		switch {
		case f[0] == "origin" && len(f) == 2:
			m.Origin = f[1]
		case f[0] == "period" && len(f) == 3:
		case f[0] == "records" && len(f) == 3:
			m.First, err = strconv.ParseInt(f[1], 10, 64)
			if err == nil {
				m.Next, err = strconv.ParseInt(f[2], 10, 64)
			}
			if err == nil && (m.First < 0 || m.Next <= m.First) {
				err = errors.New("empty range")
			}
		case f[0] == "tree" && len(f) == 3:
			m.TreeSize, err = strconv.ParseInt(f[1], 10, 64)
			var h []byte
			if err == nil {
				h, err = base64.StdEncoding.DecodeString(f[2])
			}
			if err == nil && len(h) != tlog.HashSize {
				err = errors.New("bad hash")
			}
			copy(m.TreeHash[:], h)
		case f[0] == "sha256" && len(f) == 3 && len(f[1]) == 64:
			if _, dup := m.Files[f[2]]; dup {
				err = errors.New("file twice")
			}
			m.Files[f[2]] = f[1]
		default:
			err = errors.New("unknown line")
		}
		if err != nil {
			return m, fmt.Errorf("manifest line %q: %v", l, err)
		}
	}
	if m.Origin == "" || m.Next == 0 || m.TreeSize < m.Next {
		return m, errors.New("manifest: origin, records or tree missing or inconsistent")
	}
	return m, nil
}

// VerifyBundle verifies an evidence bundle written by Export, offline: the manifest signature
// and file hashes, every checkpoint's signature and the consistency proofs between them,
// every record's inclusion proof, and, given a witness, the witnessed checkpoints.
func VerifyBundle(dir string, opts VerifyOptions) (*Result, error) {
	res := &Result{Source: dir}
	read := func(name string) ([]byte, error) { return os.ReadFile(filepath.Join(dir, name)) }
	var bundleKey string
	if b, err := read(pubKeyFile); err == nil {
		bundleKey = strings.TrimSpace(string(b))
	}
	v, err := trust(res, opts, bundleKey)
	if err != nil {
		return nil, err
	}
	if res.KeySource == "log" {
		res.KeySource = "bundle"
	}
	mb, err := read(bundleManifest)
	if err != nil {
		return nil, err
	}
	var m manifest
	n, err := note.Open(mb, note.VerifierList(v))
	if err != nil {
		res.add(-1, ProblemManifest, "the manifest is not signed by the trusted key %s: %v", keyName(res.Key), err)
		body, _, _ := bytes.Cut(mb, []byte("\n\n"))
		if m, err = parseManifest(string(body) + "\n"); err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(dir, bundleManifest), err)
		}
	} else if m, err = parseManifest(n.Text); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, bundleManifest), err)
	}
	for _, name := range bundleHashed {
		b, err := read(name)
		if err != nil {
			res.add(-1, ProblemManifest, "%s: %v", name, err)
			continue
		}
		sum := sha256.Sum256(b)
		if want, ok := m.Files[name]; !ok || want != hex.EncodeToString(sum[:]) {
			res.add(-1, ProblemManifest, "%s differs from the signed manifest", name)
		}
	}
	// Checkpoints: signed, extending each other, one of them the tree the proofs are against.
	cpf, err := os.Open(filepath.Join(dir, checkpointsFile))
	if err != nil {
		return nil, err
	}
	cps, err := readCheckpointLines(res, cpf, v, "checkpoints")
	cpf.Close()
	if err != nil {
		return nil, err
	}
	res.Checkpoints = len(cps)
	bySize := map[int64]Checkpoint{}
	for i, c := range cps {
		bySize[c.Size] = c
		res.Latest = &cps[i]
	}
	top, ok := bySize[m.TreeSize]
	if !ok || top.Hash != m.TreeHash {
		res.add(m.First, ProblemManifest, "no checkpoint signed by the trusted key matches the tree of size %d the manifest names", m.TreeSize)
		top = Checkpoint{Size: m.TreeSize, Hash: m.TreeHash}
	}
	proven := map[[2]int64]bool{}
	err = readLines(filepath.Join(dir, bundleConsistency), func(l proofLine) error {
		from, to := bySize[l.From], bySize[l.To]
		p, err := parseHashes64(l.Proof)
		if err == nil && (from.Size == 0 || to.Size == 0) {
			err = errors.New("names a checkpoint the bundle does not hold")
		}
		if err == nil {
			err = tlog.CheckTree(p, to.Size, to.Hash, from.Size, from.Hash)
		}
		if err != nil {
			res.add(l.From, ProblemInconsistent, "checkpoint of size %d does not provably extend size %d: %v", l.To, l.From, err)
			return nil
		}
		proven[[2]int64{l.From, l.To}] = true
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i := 1; i < len(cps); i++ {
		if a, b := cps[i-1].Size, cps[i].Size; a < b && !proven[[2]int64{a, b}] {
			res.add(a, ProblemInconsistent, "no valid consistency proof from checkpoint size %d to %d", a, b)
		}
	}
	// Records against their inclusion proofs.
	proofs := map[int64]tlog.RecordProof{}
	err = readLines(filepath.Join(dir, bundleInclusion), func(l proofLine) error {
		if l.Index == nil || *l.Index < m.First || *l.Index >= m.Next {
			return errors.New("index outside the manifest's range")
		}
		p, err := parseHashes64(l.Proof)
		if err != nil {
			return err
		}
		proofs[*l.Index] = p
		return nil
	})
	if err != nil {
		return nil, err
	}
	rf, err := os.Open(filepath.Join(dir, recordsFile))
	if err != nil {
		return nil, err
	}
	defer rf.Close()
	t := newTally(res)
	if err := t.readFrames(rf); err != nil {
		return nil, err
	}
	included := func(pos, index int64) bool {
		p, ok := proofs[index]
		return ok && pos >= 0 && pos < int64(len(t.leaves)) &&
			tlog.CheckRecord(p, top.Size, top.Hash, index, t.leaves[pos]) == nil
	}
	handled := map[int64]bool{}
	var delta int64
	count := int64(len(t.leaves))
	for pos := int64(0); pos < count; pos++ {
		e := m.First + pos + delta
		if handled[pos] || included(pos, e) {
			continue
		}
		q := t.self[pos]
		switch {
		case q == e+1 && included(pos, q):
			t.problem(e, -1, ProblemDeleted, "record %d is missing from the bundle: the record at its place is record %d", e, q)
			delta++
		case q != e && q >= m.First && q < m.Next && included(pos, q):
			t.problem(e, pos, ProblemReordered, "record %d is at the place of record %d", q, e)
			for j := pos + 1; j < count; j++ {
				if t.self[j] == e && included(j, e) {
					handled[j] = true
				}
			}
		default:
			t.problem(e, pos, ProblemModified, "record %d does not match its inclusion proof in the signed tree of size %d", e, top.Size)
		}
	}
	if got := m.First + count + delta; got < m.Next {
		res.add(got, ProblemDeleted, "the bundle ends at record %d; the manifest lists records up to %d", got-1, m.Next-1)
	}
	res.Records = count
	// The witness: a checkpoint of the same size must have the same root.
	if w := opts.Witness; w != nil {
		for _, c := range w.Checkpoints {
			bc, ok := bySize[c.Size]
			if !ok {
				continue
			}
			res.Witnessed++
			if bc.Hash != c.Hash {
				res.add(m.First, ProblemFork, "the witness saw a different tree of size %d %s than the bundle's checkpoint", c.Size, when(c.Time))
			}
		}
		if res.Witnessed == 0 {
			res.Notes = append(res.Notes, "none of the bundle's checkpoints is in the witness file")
		}
	} else {
		res.Notes = append(res.Notes, "no witness given (--witness): the bundle is checked against its own checkpoints only")
	}
	res.sort()
	return res, nil
}
