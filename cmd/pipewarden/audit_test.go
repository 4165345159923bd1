package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pipewarden/pipewarden/internal/audit"
)

// auditData makes a data directory whose audit log holds n records, witnessed in a file.
func auditData(t *testing.T, n int) (data, witness, vkey string) {
	t.Helper()
	data = t.TempDir()
	witness = filepath.Join(t.TempDir(), "witness")
	l, err := audit.Open(filepath.Join(data, "audit"), audit.Options{CheckpointEvery: 20, CheckpointInterval: -1, WitnessFile: witness})
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < n; i += 10 {
		var recs []audit.Record
		for j := i; j < i+10 && j < n; j++ {
			recs = append(recs, audit.Record{Kind: audit.KindEvent, Actor: "ci", Action: "ingested", Subject: "dataset/d",
				Time: base.Add(time.Duration(j) * time.Hour), Data: map[string]any{"type": "pipewarden.data.batch", "id": fmt.Sprint(j)}})
		}
		if err := l.Append(context.Background(), recs...); err != nil {
			t.Fatal(err)
		}
	}
	vkey = l.PublicKey()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return data, witness, vkey
}

// flipByte changes one byte inside the record with the given id, as an editor would.
func flipByte(t *testing.T, records string, id int) {
	t.Helper()
	b, err := os.ReadFile(records)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte(fmt.Sprintf(`"id":"%d"`, id)))
	b[i+6] = 'X'
	os.WriteFile(records, b, 0o600)
}

func TestAuditVerifyData(t *testing.T) {
	data, witness, vkey := auditData(t, 100)
	code, out, stderr := runMain(t, "audit", "verify", "--data", data, "--witness", witness, "--key", vkey)
	if code != 0 || !strings.Contains(out, "verified: 100 records") || !strings.Contains(out, "no findings") {
		t.Fatalf("clean log = %d %q %q", code, out, stderr)
	}
	flipByte(t, filepath.Join(data, "audit", "records"), 42)
	code, out, _ = runMain(t, "audit", "verify", "--data", data, "--witness", witness)
	if code != 1 || !strings.Contains(out, "FAILED at index 42") || !strings.Contains(out, "index 42 (event record): modified") {
		t.Errorf("tampered log = %d %q", code, out)
	}
	code, out, _ = runMain(t, "audit", "verify", "--data", data, "--format", "json")
	var doc struct {
		Findings []struct {
			Rule     string         `json:"rule"`
			Severity string         `json:"severity"`
			Evidence map[string]any `json:"evidence"`
		} `json:"findings"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || code != 1 || len(doc.Findings) == 0 {
		t.Fatalf("json = %d %q %v", code, out, err)
	}
	if f := doc.Findings[0]; f.Rule != "audit.modified" || f.Severity != "critical" || f.Evidence["index"] != float64(42) {
		t.Errorf("first finding = %+v", f)
	}
}

func TestAuditKeyExportAndBundle(t *testing.T) {
	data, witness, vkey := auditData(t, 100)
	code, out, _ := runMain(t, "audit", "key", "--data", data)
	if code != 0 || strings.TrimSpace(out) != vkey {
		t.Fatalf("audit key = %d %q, want %q", code, out, vkey)
	}
	bundle := filepath.Join(t.TempDir(), "evidence")
	code, out, stderr := runMain(t, "audit", "export", "--data", data, "--from", "2025-03-02", "--to", "2025-03-03T00:00:00Z", "--out", bundle)
	if code != 0 || !strings.Contains(out, "records 24 to 47 (24)") {
		t.Fatalf("export = %d %q %q", code, out, stderr)
	}
	for _, f := range []string{"records", "checkpoints", "inclusion.jsonl", "consistency.jsonl", "key.pub", "manifest", "VERIFY.txt", "report.html"} {
		if _, err := os.Stat(filepath.Join(bundle, f)); err != nil {
			t.Errorf("bundle lacks %s", f)
		}
	}
	// Offline, with the binary alone: the data directory is gone.
	os.RemoveAll(data)
	if code, out, _ := runMain(t, "audit", "verify", "--bundle", bundle, "--key", vkey, "--witness", witness); code != 0 || !strings.Contains(out, "verified: 24 records") {
		t.Errorf("verify bundle = %d %q", code, out)
	}
	flipByte(t, filepath.Join(bundle, "records"), 30)
	code, out, _ = runMain(t, "audit", "verify", "--bundle", bundle, "--key", "@"+filepath.Join(bundle, "key.pub"))
	if code != 1 || !strings.Contains(out, "index 30") || !strings.Contains(out, "modified") {
		t.Errorf("tampered bundle = %d %q", code, out)
	}
}

func TestAuditUsageErrors(t *testing.T) {
	data, _, _ := auditData(t, 10)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"two sources", []string{"audit", "verify", "--data", data, "--bundle", data}, "one of --data"},
		{"missing data dir", []string{"audit", "verify", "--data", "/nonexistent/pw"}, "/nonexistent/pw"},
		{"bad key", []string{"audit", "verify", "--data", data, "--key", "nope"}, "--key"},
		{"missing key file", []string{"audit", "verify", "--data", data, "--key", "@/nonexistent/key"}, "/nonexistent/key"},
		{"missing witness", []string{"audit", "verify", "--data", data, "--witness", "/nonexistent/w"}, "/nonexistent/w"},
		{"bad format", []string{"audit", "verify", "--data", data, "--format", "xml"}, "--format"},
		{"key without log", []string{"audit", "key", "--data", t.TempDir()}, "no audit key"},
		{"export without out", []string{"audit", "export", "--data", data}, "out"},
		{"export bad from", []string{"audit", "export", "--data", data, "--from", "yesterday", "--out", t.TempDir()}, "--from"},
		{"export empty period", []string{"audit", "export", "--data", data, "--from", "2030-01-01", "--to", "2030-02-01", "--out", t.TempDir()}, "no checkpointed audit records"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runMain(t, tc.args...)
			if code != 2 || !strings.Contains(stderr, tc.want) || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
				t.Errorf("exit %d, stderr %q; want 2 and one line containing %q", code, stderr, tc.want)
			}
		})
	}
}
