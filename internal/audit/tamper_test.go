package audit_test

import (
	"bytes"
	"encoding/binary"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pipewarden/pipewarden/internal/audit"
)

// frames splits a records file (4-byte length, 4-byte CRC-32C, payload) into whole frames.
func frames(t *testing.T, b []byte) [][]byte {
	t.Helper()
	var out [][]byte
	for len(b) > 0 {
		n := int(binary.BigEndian.Uint32(b)) + 8
		out = append(out, b[:n])
		b = b[n:]
	}
	return out
}

func rewriteFrames(t *testing.T, dir string, edit func([][]byte) [][]byte) {
	t.Helper()
	path := filepath.Join(dir, "records")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fs := edit(frames(t, b))
	if err := os.WriteFile(path, bytes.Join(fs, nil), 0o600); err != nil {
		t.Fatal(err)
	}
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		info, _ := e.Info()
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, info.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
}

// buildLog writes 500 records in batches of 10, checkpoints every 50, witnessed in a file
// outside the log directory.
func buildLog(t *testing.T) (dir, witness string) {
	t.Helper()
	root := t.TempDir()
	dir, witness = filepath.Join(root, "data", "audit"), filepath.Join(root, "witness", "checkpoints")
	os.MkdirAll(filepath.Dir(witness), 0o700)
	l := openLog(t, dir, audit.Options{CheckpointEvery: 50, WitnessFile: witness})
	appendN(t, l, 0, 500, 10)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, witness
}

func readWitness(t *testing.T, path string) *audit.WitnessState {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ws, err := audit.ReadWitness(f)
	if err != nil {
		t.Fatal(err)
	}
	return &ws
}

func hasProblem(res *audit.Result, kind string, from, to int64) bool {
	for _, p := range res.Problems {
		if p.Kind == kind && p.Index >= from && p.Index <= to {
			return true
		}
	}
	return false
}

func TestVerifyDetectsTampering(t *testing.T) {
	tests := []struct {
		name    string
		tamper  func(t *testing.T, dir string)
		kind    string
		index   int64 // the first index verify must name (range [index, indexTo])
		indexTo int64
		alsoKey bool // a key-changed problem must be reported too
	}{
		{
			name: "one byte of a stored record changed",
			tamper: func(t *testing.T, dir string) {
				rewriteFrames(t, dir, func(fs [][]byte) [][]byte {
					i := bytes.Index(fs[123], []byte("ingest-ci"))
					fs[123][i] = 'I'
					return fs
				})
			},
			kind: audit.ProblemModified, index: 123, indexTo: 123,
		},
		{
			name: "one byte changed and the frame checksum fixed up",
			tamper: func(t *testing.T, dir string) {
				rewriteFrames(t, dir, func(fs [][]byte) [][]byte {
					i := bytes.Index(fs[77], []byte(`"test"`))
					fs[77][i+1] = 'b'
					binary.BigEndian.PutUint32(fs[77][4:], crc32c(fs[77][8:]))
					return fs
				})
			},
			kind: audit.ProblemModified, index: 77, indexTo: 77,
		},
		{
			name: "a record deleted",
			tamper: func(t *testing.T, dir string) {
				rewriteFrames(t, dir, func(fs [][]byte) [][]byte { return append(fs[:200:200], fs[201:]...) })
			},
			kind: audit.ProblemDeleted, index: 200, indexTo: 200,
		},
		{
			name: "two records swapped",
			tamper: func(t *testing.T, dir string) {
				rewriteFrames(t, dir, func(fs [][]byte) [][]byte { fs[100], fs[400] = fs[400], fs[100]; return fs })
			},
			kind: audit.ProblemReordered, index: 100, indexTo: 100,
		},
		{
			name: "two neighbours swapped",
			tamper: func(t *testing.T, dir string) {
				rewriteFrames(t, dir, func(fs [][]byte) [][]byte { fs[310], fs[311] = fs[311], fs[310]; return fs })
			},
			kind: audit.ProblemReordered, index: 310, indexTo: 310,
		},
		{
			name: "record changed and the stored hashes removed",
			tamper: func(t *testing.T, dir string) {
				rewriteFrames(t, dir, func(fs [][]byte) [][]byte {
					i := bytes.Index(fs[260], []byte(`"test"`))
					fs[260][i+1] = 'b'
					binary.BigEndian.PutUint32(fs[260][4:], crc32c(fs[260][8:]))
					return fs
				})
				os.Remove(filepath.Join(dir, "hashes"))
			},
			// Without the stored hashes the change is located between two checkpoints.
			kind: audit.ProblemMismatch, index: 250, indexTo: 260,
		},
		{
			name: "truncated and rewritten with new checkpoints signed by another key",
			tamper: func(t *testing.T, dir string) {
				rewriteFrames(t, dir, func(fs [][]byte) [][]byte { return fs[:275] })
				for _, f := range []string{"key", "key.pub", "checkpoints", "offsets", "hashes"} {
					os.Remove(filepath.Join(dir, f))
				}
				l := openLog(t, dir, audit.Options{CheckpointEvery: 50})
				appendN(t, l, 1000, 300, 10)
				l.Close()
			},
			kind: audit.ProblemRewritten, index: 250, indexTo: 275, alsoKey: true,
		},
		{
			name: "the last record cut off",
			tamper: func(t *testing.T, dir string) {
				rewriteFrames(t, dir, func(fs [][]byte) [][]byte { return fs[:499] })
			},
			kind: audit.ProblemTruncated, index: 499, indexTo: 499,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, witness := buildLog(t)
			if res, err := audit.VerifyDir(dir, audit.VerifyOptions{Witness: readWitness(t, witness)}); err != nil || !res.OK() {
				t.Fatalf("untouched log: %v %+v", err, res)
			}
			tc.tamper(t, dir)
			res, err := audit.VerifyDir(dir, audit.VerifyOptions{Witness: readWitness(t, witness)})
			if err != nil {
				t.Fatal(err)
			}
			if res.OK() {
				t.Fatalf("tampering not detected: %+v", res)
			}
			t.Log("\n" + problems(res))
			first := res.FirstIndex()
			if first < tc.index || first > tc.indexTo || !hasProblem(res, tc.kind, tc.index, tc.indexTo) {
				t.Errorf("want %s at index %d..%d first; got first index %d, problems:\n%s", tc.kind, tc.index, tc.indexTo, first, problems(res))
			}
			if tc.alsoKey && !hasProblem(res, audit.ProblemKeyChanged, -1, -1) {
				t.Errorf("want key-changed too; got:\n%s", problems(res))
			}
		})
	}
}

func TestVerifyDetectsRollbackOnlyWithWitness(t *testing.T) {
	root := t.TempDir()
	dir, witness, old := filepath.Join(root, "audit"), filepath.Join(root, "w"), filepath.Join(root, "old")
	l := openLog(t, dir, audit.Options{CheckpointEvery: 50, WitnessFile: witness})
	appendN(t, l, 0, 300, 10)
	l.Close()
	copyDir(t, dir, old) // the operator keeps a copy ...
	l = openLog(t, dir, audit.Options{CheckpointEvery: 50, WitnessFile: witness})
	appendN(t, l, 300, 200, 10)
	l.Close()
	os.RemoveAll(dir) // ... and later puts it back
	copyDir(t, old, dir)

	res, err := audit.VerifyDir(dir, audit.VerifyOptions{Witness: readWitness(t, witness)})
	if err != nil {
		t.Fatal(err)
	}
	if res.FirstIndex() != 300 || !hasProblem(res, audit.ProblemRollback, 300, 300) {
		t.Errorf("want rollback at 300; got:\n%s", problems(res))
	}
	// Without a witness the old copy is self-consistent: this is why witnesses exist.
	res, err = audit.VerifyDir(dir, audit.VerifyOptions{})
	if err != nil || !res.OK() {
		t.Errorf("without a witness: %v\n%s", err, problems(res))
	}
	// The daemon refuses to start on a rolled-back log when its witness saw more.
	if _, err := audit.Open(dir, audit.Options{WitnessFile: witness}); err == nil || !strings.Contains(err.Error(), "rolled back") {
		t.Errorf("Open of a rolled-back log = %v, want an error saying it was rolled back", err)
	}
}

func problems(res *audit.Result) string {
	var b strings.Builder
	for _, p := range res.Problems {
		b.WriteString("  " + p.String() + "\n")
	}
	return b.String()
}

func TestTornWriteRecovery(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, audit.Options{CheckpointEvery: 100})
	appendN(t, l, 0, 130, 10) // checkpoint at 100; 30 acknowledged records after it
	// A crash now: whatever Append acknowledged is on disk. Take the files as they are, without
	// Close, then lose the derived files' tails and add half a frame, as a crash mid-write would.
	crashed := filepath.Join(t.TempDir(), "crashed")
	copyDir(t, dir, crashed)
	l.Close()
	for name, keep := range map[string]int64{"offsets": 105 * 8, "hashes": 150 * 32} {
		if err := os.Truncate(filepath.Join(crashed, name), keep); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := os.ReadFile(filepath.Join(crashed, "records"))
	fs := frames(t, b)
	torn := append(bytes.Clone(b), fs[5][:len(fs[5])/2]...)
	os.WriteFile(filepath.Join(crashed, "records"), torn, 0o600)

	var logs bytes.Buffer
	l2, err := audit.Open(crashed, audit.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil)), CheckpointInterval: -1})
	if err != nil {
		t.Fatalf("reopen after crash: %v", err)
	}
	if l2.Size() != 130 {
		t.Errorf("after crash Size = %d, want the 130 acknowledged records", l2.Size())
	}
	if !strings.Contains(logs.String(), "cut short") {
		t.Errorf("the torn record was removed silently; log: %q", logs.String())
	}
	appendN(t, l2, 130, 20, 10)
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}
	res, err := audit.VerifyDir(crashed, audit.VerifyOptions{})
	if err != nil || !res.OK() || res.Records != 150 {
		t.Errorf("verify after recovery: %v records=%d\n%s", err, res.Records, problems(res))
	}
}
