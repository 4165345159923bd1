package audit_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/pipewarden/pipewarden/internal/audit"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// clock returns a Now that advances one second per call.
func clock() func() time.Time {
	t := t0
	return func() time.Time { t = t.Add(time.Second); return t }
}

func openLog(t testing.TB, dir string, opts audit.Options) *audit.Log {
	t.Helper()
	if opts.Now == nil {
		opts.Now = clock()
	}
	if opts.CheckpointInterval == 0 {
		opts.CheckpointInterval = -1
	}
	l, err := audit.Open(dir, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return l
}

// sampleRecords returns n records of mixed kinds, deterministic in i.
func sampleRecords(from, n int) []audit.Record {
	kinds := []audit.Kind{audit.KindEvent, audit.KindFinding, audit.KindAlert, audit.KindAction}
	out := make([]audit.Record, n)
	for i := range out {
		k := from + i
		out[i] = audit.Record{
			Kind: kinds[k%len(kinds)], Actor: "ingest-ci", Action: "test", Subject: fmt.Sprintf("model/m%d", k%7),
			Time: t0.Add(time.Duration(k) * time.Millisecond),
			Data: map[string]any{"n": k, "digest": fmt.Sprintf("sha256:%064x", k), "tags": []any{"a", k % 3}},
		}
	}
	return out
}

func appendN(t testing.TB, l *audit.Log, from, n, batch int) {
	t.Helper()
	for i := from; i < from+n; i += batch {
		if err := l.Append(context.Background(), sampleRecords(i, min(batch, from+n-i))...); err != nil {
			t.Fatalf("Append at %d: %v", i, err)
		}
	}
}

func TestAppendProofsAndReopen(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, audit.Options{CheckpointEvery: 100})
	appendN(t, l, 0, 1000, 37)
	if got := l.Size(); got != 1000 {
		t.Fatalf("Size = %d, want 1000", got)
	}
	cp, ok := l.Latest()
	if !ok || cp.Size < 900 {
		t.Fatalf("latest checkpoint = %+v %v", cp, ok)
	}
	// Every record is provable against every tree size that contains it, and every pair of
	// sizes is consistent.
	for _, size := range []int64{1, 2, 3, 64, 65, 999, 1000} {
		root, err := l.TreeHash(size)
		if err != nil {
			t.Fatal(err)
		}
		entries, err := l.Entries(0, size)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			p, err := l.InclusionProof(e.Index, size)
			if err != nil {
				t.Fatal(err)
			}
			if err := tlog.CheckRecord(p, size, root, e.Index, tlog.RecordHash(e.Raw)); err != nil {
				t.Fatalf("record %d in tree %d: %v", e.Index, size, err)
			}
			if _, err := e.Record(); err != nil {
				t.Fatalf("record %d: %v", e.Index, err)
			}
		}
		for _, to := range []int64{size, 1000} {
			p, err := l.ConsistencyProof(size, to)
			if err != nil {
				t.Fatal(err)
			}
			toRoot, _ := l.TreeHash(to)
			if err := tlog.CheckTree(p, to, toRoot, size, root); err != nil {
				t.Fatalf("consistency %d -> %d: %v", size, to, err)
			}
		}
	}
	root, _ := l.TreeHash(1000)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, dir, audit.Options{})
	defer l.Close()
	if l.Size() != 1000 {
		t.Fatalf("after reopen Size = %d", l.Size())
	}
	if cp, _ := l.Latest(); cp.Size != 1000 || cp.Hash != root {
		t.Fatalf("after reopen latest = %d %x, want 1000 %x", cp.Size, cp.Hash, root)
	}
	appendN(t, l, 1000, 10, 10)
	if r, _ := l.TreeHash(1000); r != root {
		t.Fatal("appending changed an older tree hash")
	}
}

func TestKeyFilePermissions(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, audit.Options{})
	defer l.Close()
	st, err := os.Stat(filepath.Join(dir, "key"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key mode = %v, want 0600", st.Mode().Perm())
	}
	pub, err := audit.ReadPublicKey(dir)
	if err != nil || pub != l.PublicKey() {
		t.Errorf("ReadPublicKey = %q, %v; want %q", pub, err, l.PublicKey())
	}
}
