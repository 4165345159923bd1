package modelwatch_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pipewarden/pipewarden/internal/modelwatch"
	"github.com/pipewarden/pipewarden/internal/signing"
)

func casBlobs(t *testing.T, m *modelwatch.Manager) int {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(m.Dir(), "cas", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func TestApproveRecordsHistory(t *testing.T) {
	m := newManager(t, 0)
	dir := newModel(t)
	a1 := approve(t, m, "fraud", dir)
	if a1.Version != 1 || a1.Approver != "alice" || len(a1.Files) != 3 || !strings.HasPrefix(a1.Digest, "sha256:") {
		t.Fatalf("approval %+v", a1)
	}
	for _, f := range a1.Files {
		if strings.HasPrefix(f.Name, ".git") {
			t.Errorf("git metadata approved: %s", f.Name)
		}
	}
	put(t, filepath.Join(dir, "config.json"), []byte(`{"layers": 3}`))
	a2 := approve(t, m, "fraud", dir)
	if a2.Version != 2 || a2.Digest == a1.Digest {
		t.Fatalf("second approval %+v", a2)
	}
	h, err := m.History("fraud")
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Versions) != 2 || h.Latest().Digest != a2.Digest || h.Versions[0].Digest != a1.Digest {
		t.Fatalf("history %+v", h)
	}
	// The digest is the OMS root digest of the files, as `pipewarden sign` would sign.
	man, err := signing.ComputeManifest(t.Context(), dir, signing.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if want := "sha256:" + hexs(man.RootDigest()); a2.Digest != want {
		t.Errorf("digest %s, want %s", a2.Digest, want)
	}
	names, err := m.Models()
	if err != nil || len(names) != 1 || names[0] != "fraud" {
		t.Fatalf("models %v %v", names, err)
	}
	if _, err := m.Latest("other"); !errors.Is(err, modelwatch.ErrNotApproved) {
		t.Fatalf("unknown model: %v", err)
	}
}

func TestContentStoreDeduplicatesAndCaps(t *testing.T) {
	dir := newModel(t)
	m := newManager(t, 0)
	approve(t, m, "fraud", dir)
	if n := casBlobs(t, m); n != 3 {
		t.Fatalf("%d blobs after one approval, want 3", n)
	}
	// The same bytes under another name, another model and a new version cost nothing.
	put(t, filepath.Join(dir, "config-copy.json"), []byte(`{"layers": 2}`))
	approve(t, m, "fraud", dir)
	approve(t, m, "fraud-canary", dir)
	if n := casBlobs(t, m); n != 3 {
		t.Fatalf("%d blobs after approving identical content, want 3", n)
	}

	size := int64(0)
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() && !strings.Contains(p, ".git") && !strings.HasSuffix(p, "-copy.json") {
			size += fi.Size()
		}
		return nil
	})
	tests := []struct {
		name    string
		cap     int64
		wantErr bool
	}{
		{"exactly fits", size, false},
		{"one byte short", size - 1, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(filepath.Join(dir, "config-copy.json"))
			m := newManager(t, tc.cap)
			_, err := m.Approve(t.Context(), modelwatch.ApproveRequest{Name: "fraud", Path: dir})
			if tc.wantErr != (err != nil) {
				t.Fatalf("cap %d for %d bytes: %v", tc.cap, size, err)
			}
			if err == nil {
				return
			}
			if !errors.Is(err, modelwatch.ErrCASFull) || !strings.Contains(err.Error(), "cap") {
				t.Fatalf("error %v", err)
			}
			if _, err := m.Latest("fraud"); !errors.Is(err, modelwatch.ErrNotApproved) {
				t.Errorf("an approval over the cap was recorded: %v", err)
			}
			if n := casBlobs(t, m); n != 0 {
				t.Errorf("%d blobs stored by a refused approval", n)
			}
		})
	}
}

func TestApproveRefuses(t *testing.T) {
	verifier, signer := keyPair(t)
	other, _ := keyPair(t)
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) modelwatch.ApproveRequest
		want  string
	}{
		{"bad name", func(t *testing.T, dir string) modelwatch.ApproveRequest {
			return modelwatch.ApproveRequest{Name: "../etc", Path: dir}
		}, "model name"},
		{"missing directory", func(t *testing.T, dir string) modelwatch.ApproveRequest {
			return modelwatch.ApproveRequest{Name: "m", Path: dir + "-nope"}
		}, "no such file"},
		{"a file", func(t *testing.T, dir string) modelwatch.ApproveRequest {
			return modelwatch.ApproveRequest{Name: "m", Path: filepath.Join(dir, "config.json")}
		}, "not a directory"},
		{"symlink inside", func(t *testing.T, dir string) modelwatch.ApproveRequest {
			os.Symlink("/etc/passwd", filepath.Join(dir, "link"))
			return modelwatch.ApproveRequest{Name: "m", Path: dir}
		}, "link"},
		{"signature by another key", func(t *testing.T, dir string) modelwatch.ApproveRequest {
			return modelwatch.ApproveRequest{Name: "m", Path: dir, Signature: signModel(t, dir, signer), Verifier: other}
		}, "signature"},
		{"signature of other content", func(t *testing.T, dir string) modelwatch.ApproveRequest {
			sig := signModel(t, dir, signer)
			put(t, filepath.Join(dir, "config.json"), []byte("changed after signing"))
			return modelwatch.ApproveRequest{Name: "m", Path: dir, Signature: sig, Verifier: verifier}
		}, "config.json"},
		{"signature without trust", func(t *testing.T, dir string) modelwatch.ApproveRequest {
			return modelwatch.ApproveRequest{Name: "m", Path: dir, Signature: signModel(t, dir, signer)}
		}, "key or certificate"},
		{"ignore path outside", func(t *testing.T, dir string) modelwatch.ApproveRequest {
			return modelwatch.ApproveRequest{Name: "m", Path: dir, IgnorePaths: []string{"../x"}}
		}, "ignore path"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newManager(t, 0)
			dir := newModel(t)
			_, err := m.Approve(t.Context(), tc.setup(t, dir))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to mention %q", err, tc.want)
			}
			if names, _ := m.Models(); len(names) != 0 {
				t.Errorf("refused approval recorded: %v", names)
			}
		})
	}
}

func TestApproveSignedWithSignatureInsideModel(t *testing.T) {
	m := newManager(t, 0)
	dir := newModel(t)
	verifier, signer := keyPair(t)
	sigPath := filepath.Join(dir, "model.sig")
	sig := signModel(t, dir, signer)
	put(t, sigPath, sig)
	ignore, err := signing.ResolveIgnorePaths(dir, []string{sigPath})
	if err != nil {
		t.Fatal(err)
	}
	a, err := m.Approve(t.Context(), modelwatch.ApproveRequest{Name: "fraud", Path: dir, Signature: sig, Verifier: verifier, IgnorePaths: ignore})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Signature, sig) || a.Signer == "" || len(a.Files) != 3 {
		t.Fatalf("approval %+v", a)
	}
}

func hexs(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}
