package audit_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pipewarden/pipewarden/internal/audit"
)

// pipelineRecords is a day of a small monitored pipeline, in the record shapes docs/audit.md
// defines: events from several stages, findings, an alert lifecycle, a response, a config
// reload and a token change.
func pipelineRecords() []audit.Record {
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	var rs []audit.Record
	ev := func(min int, typ, subject string) {
		rs = append(rs, audit.Record{Kind: audit.KindEvent, Actor: "ingest-ci", Action: "ingested", Subject: subject, Time: at(min),
			Data: map[string]any{"id": fmt.Sprintf("ev-%d", len(rs)), "type": typ, "source": "ci", "digest": fmt.Sprintf("sha256:%064x", len(rs))}})
	}
	for i := 0; i < 6; i++ {
		ev(i, "pipewarden.data.batch", "dataset/transactions")
		ev(i, "pipewarden.inference.request", "endpoint/fraud-v2")
	}
	ev(7, "pipewarden.model.artifact", "model/fraud")
	ev(8, "pipewarden.deps.change", "project/trainer")
	rs = append(rs,
		audit.Record{Kind: audit.KindFinding, Actor: "system", Action: "raised", Subject: "model/fraud", Time: at(10),
			Data: map[string]any{"id": "f-1", "rule": "model.unsigned_promotion", "severity": "critical", "stage": "model", "atlas": []any{"AML.T0018"}}},
		audit.Record{Kind: audit.KindFinding, Actor: "system", Action: "raised", Subject: "dataset/transactions", Time: at(11),
			Data: map[string]any{"id": "f-2", "rule": "data.label_flip", "severity": "high", "stage": "data"}},
		audit.Record{Kind: audit.KindFinding, Actor: "system", Action: "raised", Subject: "model/fraud", Time: at(12),
			Data: map[string]any{"id": "f-3", "rule": "model.unsigned_promotion", "severity": "critical", "stage": "model"}},
		audit.Record{Kind: audit.KindAlert, Actor: "system", Action: "firing", Subject: "alert-1", Time: at(10),
			Data: map[string]any{"rule": "model.unsigned_promotion", "severity": "critical", "stage": "model"}},
		audit.Record{Kind: audit.KindAction, Actor: "system", Action: "executed", Subject: "model/fraud", Time: at(10),
			Data: map[string]any{"id": "act-1", "type": "restore_model", "target": "model/fraud@v7", "result": "ok", "alert_id": "alert-1"}},
		audit.Record{Kind: audit.KindNotification, Actor: "system", Action: "sent", Subject: "alert-1", Time: at(10),
			Data: map[string]any{"alert_id": "alert-1", "receiver": "slack-secops", "status": "ok"}},
		audit.Record{Kind: audit.KindAlert, Actor: "alice", Action: "acknowledged", Subject: "alert-1", Time: at(14),
			Data: map[string]any{"previous": "firing"}},
		audit.Record{Kind: audit.KindAlert, Actor: "alice", Action: "resolved", Subject: "alert-1", Time: at(40),
			Data: map[string]any{"previous": "acknowledged"}},
		audit.Record{Kind: audit.KindConfig, Actor: "admin", Action: "reloaded", Subject: "rules", Time: at(50),
			Data: map[string]any{"digest": "sha256:" + strings.Repeat("ab", 32), "path": "/etc/pipewarden/rules.yaml"}},
		audit.Record{Kind: audit.KindToken, Actor: "admin", Action: "created", Subject: "token/ci-ingest", Time: at(51),
			Data: map[string]any{"role": "ingest"}},
	)
	return rs
}

func exportBundle(t testing.TB) (bundle, vkey string) {
	t.Helper()
	dir := t.TempDir()
	l := openLog(t, dir, audit.Options{})
	if err := l.Append(context.Background(), sampleRecords(0, 40)...); err != nil { // before the period
		t.Fatal(err)
	}
	if err := l.Append(context.Background(), pipelineRecords()...); err != nil {
		t.Fatal(err)
	}
	vkey = l.PublicKey()
	l.Close()
	bundle = filepath.Join(t.TempDir(), "bundle")
	res, err := audit.Export(dir, audit.ExportOptions{From: t0.Add(-time.Second), To: t0.Add(24 * time.Hour), Out: bundle, Now: func() time.Time { return t0.Add(48 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	if res.First != 0 || res.Next != 64 || res.TreeSize != 64 {
		t.Fatalf("export covered [%d, %d) of %d; want [0, 64) of 64", res.First, res.Next, res.TreeSize)
	}
	return bundle, vkey
}

func TestExportPeriod(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, audit.Options{})
	recs := pipelineRecords()
	l.Append(context.Background(), recs...)
	l.Close()
	out := filepath.Join(t.TempDir(), "b")
	// Only the records from minute 10 to 45: the findings, the alert and its response.
	res, err := audit.Export(dir, audit.ExportOptions{From: t0.Add(10 * time.Minute), To: t0.Add(45 * time.Minute), Out: out})
	if err != nil {
		t.Fatal(err)
	}
	if res.First != 14 || res.Next != 22 {
		t.Errorf("period covers records [%d, %d), want [14, 22)", res.First, res.Next)
	}
	if _, err := audit.Export(dir, audit.ExportOptions{From: t0.Add(10 * time.Minute), To: t0.Add(45 * time.Minute), Out: out}); err == nil {
		t.Error("export into a non-empty directory succeeded")
	}
	if _, err := audit.Export(dir, audit.ExportOptions{From: t0.Add(48 * time.Hour), Out: filepath.Join(t.TempDir(), "x")}); err == nil || !strings.Contains(err.Error(), "no checkpointed audit records") {
		t.Errorf("export of an empty period = %v", err)
	}
}

func TestBundleVerifiesAndDetectsTampering(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(t *testing.T, dir string)
		kind   string
		index  int64
	}{
		{"untouched", func(*testing.T, string) {}, "", -1},
		{"record byte changed", func(t *testing.T, dir string) {
			rewriteFrames(t, dir, func(fs [][]byte) [][]byte {
				i := bytes.Index(fs[54], []byte("critical"))
				copy(fs[54][i:], "low\",\"x")
				binary32(fs[54])
				return fs
			})
		}, audit.ProblemModified, 54},
		{"record deleted", func(t *testing.T, dir string) {
			rewriteFrames(t, dir, func(fs [][]byte) [][]byte { return append(fs[:45:45], fs[46:]...) })
		}, audit.ProblemDeleted, 45},
		{"records swapped", func(t *testing.T, dir string) {
			rewriteFrames(t, dir, func(fs [][]byte) [][]byte { fs[41], fs[60] = fs[60], fs[41]; return fs })
		}, audit.ProblemReordered, 41},
		{"last record dropped", func(t *testing.T, dir string) {
			rewriteFrames(t, dir, func(fs [][]byte) [][]byte { return fs[:len(fs)-1] })
		}, audit.ProblemDeleted, 63},
		{"report edited", func(t *testing.T, dir string) {
			p := filepath.Join(dir, "report.html")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, bytes.Replace(b, []byte("critical"), []byte("low"), 1), 0o644)
		}, audit.ProblemManifest, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bundle, vkey := exportBundle(t)
			tc.tamper(t, bundle)
			res, err := audit.VerifyBundle(bundle, audit.VerifyOptions{Key: vkey})
			if err != nil {
				t.Fatal(err)
			}
			if tc.kind == "" {
				if !res.OK() || res.Records != 64 {
					t.Fatalf("untouched bundle: records=%d\n%s", res.Records, problems(res))
				}
				return
			}
			if !hasProblem(res, tc.kind, tc.index, tc.index) || tc.index >= 0 && res.FirstIndex() != tc.index {
				t.Errorf("want %s at %d first; got first %d:\n%s", tc.kind, tc.index, res.FirstIndex(), problems(res))
			}
		})
	}
}

func TestBundleWithAnotherKey(t *testing.T) {
	bundle, _ := exportBundle(t)
	other := t.TempDir()
	l := openLog(t, other, audit.Options{})
	k := l.PublicKey()
	l.Close()
	res, err := audit.VerifyBundle(bundle, audit.VerifyOptions{Key: k})
	if err != nil {
		t.Fatal(err)
	}
	if !hasProblem(res, audit.ProblemKeyChanged, -1, -1) || !hasProblem(res, audit.ProblemManifest, -1, -1) {
		t.Errorf("a bundle checked against another key passed:\n%s", problems(res))
	}
}

func binary32(frame []byte) {
	c := crc32c(frame[8:])
	frame[4], frame[5], frame[6], frame[7] = byte(c>>24), byte(c>>16), byte(c>>8), byte(c)
}

// FuzzBundleRecords replaces a genuine bundle's records file with fuzzed bytes: verification
// must never panic, and must pass only for the genuine bytes.
func FuzzBundleRecords(f *testing.F) {
	bundle, vkey := exportBundle(f)
	genuine, err := os.ReadFile(filepath.Join(bundle, "records"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(genuine)
	f.Add(genuine[:len(genuine)/2])
	f.Add(append(bytes.Clone(genuine[:100]), genuine[200:]...))
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		for _, name := range []string{"manifest", "checkpoints", "inclusion.jsonl", "consistency.jsonl", "key.pub", "report.html", "VERIFY.txt"} {
			data, _ := os.ReadFile(filepath.Join(bundle, name))
			os.WriteFile(filepath.Join(dir, name), data, 0o644)
		}
		os.WriteFile(filepath.Join(dir, "records"), b, 0o644)
		res, err := audit.VerifyBundle(dir, audit.VerifyOptions{Key: vkey})
		if err != nil {
			t.Fatal(err)
		}
		if res.OK() != bytes.Equal(b, genuine) {
			t.Fatalf("records of %d bytes: OK=%v, genuine=%v\n%s", len(b), res.OK(), bytes.Equal(b, genuine), problems(res))
		}
	})
}
