package modelwatch_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/pipewarden/pipewarden/internal/modelwatch"
)

func TestRollbackRestoresApprovedBytesAndQuarantinesTampered(t *testing.T) {
	for _, tc := range []struct {
		name    string
		inPlace bool
	}{
		{"directory exchange", false},
		{"file by file (mount point)", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newManager(t, 0)
			if tc.inPlace {
				modelwatch.RollBackInPlace(m)
			}
			testRollback(t, m)
		})
	}
}

func testRollback(t *testing.T, m *modelwatch.Manager) {
	dir := newModel(t)
	put(t, filepath.Join(dir, "runs", "log.txt"), []byte("kept"))
	if err := os.Chmod(filepath.Join(dir, "config.json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Approve(t.Context(), modelwatch.ApproveRequest{Name: "fraud", Path: dir, IgnorePaths: []string{"runs"}}); err != nil {
		t.Fatal(err)
	}
	weights := filepath.Join(dir, "weights", "model.safetensors")
	approved, _ := os.ReadFile(weights)
	// Tamper: change, delete, add; and touch what is ignored.
	put(t, weights, []byte("poisoned weights"))
	os.Remove(filepath.Join(dir, "tokenizer.json"))
	put(t, filepath.Join(dir, "backdoor.pkl"), []byte("cos\nsystem\n"))
	put(t, filepath.Join(dir, ".git", "HEAD"), []byte("ref: refs/heads/evil\n"))

	res, err := m.Rollback(t.Context(), "fraud")
	if err != nil {
		t.Fatal(err)
	}
	if !res.Verified || res.AlreadyApproved || res.Version != 1 {
		t.Fatalf("result %+v", res)
	}
	if got, _ := os.ReadFile(weights); !bytes.Equal(got, approved) {
		t.Error("weights not restored to the approved bytes")
	}
	if _, err := os.Stat(filepath.Join(dir, "tokenizer.json")); err != nil {
		t.Error("missing file not restored:", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "backdoor.pkl")); !errors.Is(err, os.ErrNotExist) {
		t.Error("extra file left in the model:", err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "config.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("config.json mode: %v %v", fi.Mode(), err)
	}
	// Ignored paths are carried over, as they were.
	if b, _ := os.ReadFile(filepath.Join(dir, "runs", "log.txt")); string(b) != "kept" {
		t.Errorf("ignored runs/log.txt: %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, ".git", "HEAD")); string(b) != "ref: refs/heads/evil\n" {
		t.Errorf(".git/HEAD: %q", b)
	}
	// The tampered files are evidence in quarantine, with the record.
	want := []string{"backdoor.pkl", "weights/model.safetensors"}
	if !slices.Equal(res.Quarantined, want) {
		t.Errorf("quarantined %v, want %v", res.Quarantined, want)
	}
	if b, _ := os.ReadFile(filepath.Join(res.Quarantine, "tree", "weights", "model.safetensors")); string(b) != "poisoned weights" {
		t.Errorf("quarantined weights: %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(res.Quarantine, "tree", "backdoor.pkl")); string(b) != "cos\nsystem\n" {
		t.Errorf("quarantined extra file: %q", b)
	}
	if _, err := os.Stat(filepath.Join(res.Quarantine, "rollback.json")); err != nil {
		t.Error(err)
	}
	if filepath.Dir(res.Quarantine) != filepath.Join(m.Dir(), "quarantine") {
		t.Errorf("quarantine at %s", res.Quarantine)
	}
	// No staging directory is left beside the model.
	ents, _ := os.ReadDir(filepath.Dir(dir))
	if len(ents) != 1 {
		t.Errorf("beside the model: %v", ents)
	}

	// Idempotent: a second rollback finds nothing to do.
	again, err := m.Rollback(t.Context(), "fraud")
	if err != nil {
		t.Fatal(err)
	}
	if !again.AlreadyApproved || !again.Verified || again.Quarantine != "" {
		t.Fatalf("second rollback %+v", again)
	}
	qs, _ := os.ReadDir(filepath.Join(m.Dir(), "quarantine"))
	if len(qs) != 1 {
		t.Errorf("%d quarantine folders, want 1", len(qs))
	}
}

func TestRollbackRecreatesRemovedDirectory(t *testing.T) {
	m := newManager(t, 0)
	dir := newModel(t)
	a := approve(t, m, "fraud", dir)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	res, err := m.Rollback(t.Context(), "fraud")
	if err != nil {
		t.Fatal(err)
	}
	if !res.Verified || !res.Found.RootMissing || len(res.Found.Missing) != len(a.Files) {
		t.Fatalf("result %+v", res)
	}
}

func TestRollbackRefusesCorruptStoreAndUnknownModel(t *testing.T) {
	m := newManager(t, 0)
	if _, err := m.Rollback(t.Context(), "nope"); !errors.Is(err, modelwatch.ErrNotApproved) {
		t.Fatalf("unknown model: %v", err)
	}
	dir := newModel(t)
	a := approve(t, m, "fraud", dir)
	cfg := filepath.Join(dir, "config.json")
	put(t, cfg, []byte("tampered"))
	blob := filepath.Join(m.Dir(), "cas", "sha256", a.Files[0].SHA256)
	os.Chmod(blob, 0o644)
	put(t, blob, []byte("rotten"))
	if _, err := m.Rollback(t.Context(), "fraud"); err == nil {
		t.Fatal("rollback from a corrupt store succeeded")
	}
	// The model is left as it was, and nothing is left beside it.
	if b, _ := os.ReadFile(cfg); string(b) != "tampered" {
		t.Errorf("model touched by a failed rollback: %q", b)
	}
	if ents, _ := os.ReadDir(filepath.Dir(dir)); len(ents) != 1 {
		t.Errorf("beside the model: %v", ents)
	}
}
