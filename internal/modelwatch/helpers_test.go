package modelwatch_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pipewarden/pipewarden/internal/event"
	"github.com/pipewarden/pipewarden/internal/finding"
	"github.com/pipewarden/pipewarden/internal/modelwatch"
	"github.com/pipewarden/pipewarden/internal/signing"
)

func put(t testing.TB, p string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// newModel writes a small model: a config, nested weights, a tokenizer and git metadata.
func newModel(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "fraud-model")
	put(t, filepath.Join(dir, "config.json"), []byte(`{"layers": 2}`))
	put(t, filepath.Join(dir, "weights", "model.safetensors"), bytes.Repeat([]byte{7, 1, 2}, 50000))
	put(t, filepath.Join(dir, "tokenizer.json"), []byte(`{"vocab": ["a", "b"]}`))
	put(t, filepath.Join(dir, ".git", "HEAD"), []byte("ref: refs/heads/main\n"))
	return dir
}

func newManager(t testing.TB, capBytes int64) *modelwatch.Manager {
	t.Helper()
	m, err := modelwatch.Open(modelwatch.Options{DataDir: t.TempDir(), CASMaxBytes: capBytes})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func approve(t testing.TB, m *modelwatch.Manager, name, dir string) *modelwatch.Approval {
	t.Helper()
	a, err := m.Approve(context.Background(), modelwatch.ApproveRequest{Name: name, Path: dir, Approver: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// report is one call of the watcher's reporter.
type report struct {
	events   []event.Event
	findings []finding.Finding
	at       time.Time
}

// chanReporter hands every report to the test.
func chanReporter() (modelwatch.Reporter, chan report) {
	c := make(chan report, 100)
	return modelwatch.ReporterFunc(func(_ context.Context, evs []event.Event, fs []finding.Finding) error {
		c <- report{evs, fs, time.Now()}
		return nil
	}), c
}

// startWatcher runs a watcher until the test ends.
func startWatcher(t testing.TB, o modelwatch.WatcherOptions) *modelwatch.Watcher {
	t.Helper()
	w, err := modelwatch.NewWatcher(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("watcher: %v", err)
		}
	})
	return w
}

// waitStatus polls until the watcher reports a checked state for the model.
func waitChecked(t testing.TB, w *modelwatch.Watcher, name string) modelwatch.ModelStatus {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, s := range w.Statuses() {
			if s.Name == name && s.State != "" {
				return s
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("model %s was never checked", name)
	return modelwatch.ModelStatus{}
}

func nextReport(t testing.TB, c chan report) report {
	t.Helper()
	select {
	case r := <-c:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no report within 10s")
		return report{}
	}
}

func noReport(t testing.TB, c chan report, wait time.Duration) {
	t.Helper()
	select {
	case r := <-c:
		t.Fatalf("unexpected report: %+v", r.findings)
	case <-time.After(wait):
	}
}

// keyPair makes a P-256 key and returns its verifier and signer.
func keyPair(t testing.TB) (signing.Verifier, signing.Signer) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	v, err := signing.NewKeyVerifier(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return v, signing.NewKeySigner(key)
}

func signModel(t testing.TB, dir string, s signing.Signer) []byte {
	t.Helper()
	sig, _, err := signing.SignDir(context.Background(), dir, s, signing.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return sig
}
