package signing_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pipewarden/pipewarden/internal/signing"
)

func write(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func names(m *signing.Manifest) []string {
	var out []string
	for _, r := range m.Resources {
		out = append(out, r.Name)
	}
	return out
}

func sum(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func TestComputeManifest(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string
		opts  signing.Options
		want  []string
	}{
		{
			// Python compares paths element by element: "a/b" before "a-b" although '/' > '-'.
			name:  "files in OMS path order",
			files: map[string]string{"a/b": "1", "a-b": "2", "a.txt": "3", "a0": "4", "B": "5"},
			want:  []string{"B", "a/b", "a-b", "a.txt", "a0"},
		},
		{
			name:  "git paths and ignore paths left out",
			files: map[string]string{".git/HEAD": "x", ".github/ci.yml": "x", ".gitignore": "x", ".gitattributes": "x", "model.sig": "x", "logs/a": "x", "logsX": "x", "w.bin": "x"},
			opts:  signing.Options{IgnorePaths: []string{"model.sig", "logs"}},
			want:  []string{"logsX", "w.bin"},
		},
		{
			name:  "shards ordered by offset as numbers, empty file has none",
			files: map[string]string{"f": strings.Repeat("z", 20), "empty": ""},
			opts:  signing.Options{Method: signing.MethodShards, ShardSize: 8},
			want:  []string{"f:0:8", "f:8:16", "f:16:20"},
		},
		{
			name:  "only restricts to the named files",
			files: map[string]string{"a": "1", "b": "2", "d/c": "3"},
			opts:  signing.Options{Only: map[string]bool{"d/c": true, "missing": true}},
			want:  []string{"d/c"},
		},
		{
			name:  "an empty model has no resources",
			files: map[string]string{},
			want:  nil,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "m")
			if err := os.Mkdir(root, 0o755); err != nil {
				t.Fatal(err)
			}
			write(t, root, c.files)
			m, err := signing.ComputeManifest(context.Background(), root, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := names(m); !slices.Equal(got, c.want) {
				t.Fatalf("resources %q, want %q", got, c.want)
			}
			if m.ModelName != "m" {
				t.Errorf("model name %q, want m", m.ModelName)
			}
		})
	}
}

func TestShardDigestsAndRoot(t *testing.T) {
	root := t.TempDir()
	write(t, root, map[string]string{"w": "0123456789abcdefXYZ"})
	m, err := signing.ComputeManifest(context.Background(), root, signing.Options{Method: signing.MethodShards, ShardSize: 8, Workers: 3, BufferSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	want := [][]byte{sum("01234567"), sum("89abcdef"), sum("XYZ")}
	var concat []byte
	for i, r := range m.Resources {
		if string(r.Digest) != string(want[i]) || r.Algorithm != "sha256-sharded-8" {
			t.Errorf("shard %s: %x %s", r.Name, r.Digest, r.Algorithm)
		}
		concat = append(concat, want[i]...)
	}
	if got, want := fmt.Sprintf("%x", m.RootDigest()), fmt.Sprintf("%x", sum(string(concat))); got != want {
		t.Fatalf("root digest %s, want %s", got, want)
	}
}

func TestSingleFileModel(t *testing.T) {
	p := filepath.Join(t.TempDir(), "model.gguf")
	if err := os.WriteFile(p, []byte("GGUF"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := signing.ComputeManifest(context.Background(), p, signing.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Resources) != 1 || m.Resources[0].Name != "." || string(m.Resources[0].Digest) != string(sum("GGUF")) || m.ModelName != "model.gguf" {
		t.Fatalf("single-file manifest %+v", m)
	}
}

func TestSymlinks(t *testing.T) {
	root := t.TempDir()
	write(t, root, map[string]string{"real/w.bin": "weights", "cfg": "c"})
	if err := os.Symlink("real", filepath.Join(root, "linkdir")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("cfg", filepath.Join(root, "cfg.link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(".", filepath.Join(root, "real", "loop")); err != nil {
		t.Fatal(err)
	}

	m, err := signing.ComputeManifest(context.Background(), root, signing.Options{})
	var te *signing.TreeError
	if !errors.As(err, &te) {
		t.Fatalf("symlinks not refused: %v", err)
	}
	var refused []string
	for _, p := range te.Problems {
		refused = append(refused, p.Name)
	}
	if want := []string{"cfg.link", "linkdir", "real/loop"}; !slices.Equal(refused, want) {
		t.Fatalf("refused %q, want %q", refused, want)
	}
	if got := names(m); !slices.Equal(got, []string{"cfg", "real/w.bin"}) {
		t.Fatalf("manifest of the rest %q", got)
	}

	m, err = signing.ComputeManifest(context.Background(), root, signing.Options{AllowSymlinks: true})
	if !errors.As(err, &te) || len(te.Problems) != 2 || te.Problems[0].Name != "linkdir/loop" ||
		te.Problems[1].Name != "real/loop" || te.Problems[1].Reason != "symbolic link loop" {
		t.Fatalf("allowed symlinks: want the loop reported under both names, got %v", err)
	}
	if got, want := names(m), []string{"cfg", "cfg.link", "linkdir/w.bin", "real/w.bin"}; !slices.Equal(got, want) {
		t.Fatalf("followed symlinks %q, want %q", got, want)
	}
}

func TestUnreadableFileIsAProblem(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads files whatever their mode")
	}
	root := t.TempDir()
	write(t, root, map[string]string{"ok": "1", "secret": "2"})
	if err := os.Chmod(filepath.Join(root, "secret"), 0); err != nil {
		t.Fatal(err)
	}
	m, err := signing.ComputeManifest(context.Background(), root, signing.Options{})
	var te *signing.TreeError
	if !errors.As(err, &te) || te.Problems[0].Name != "secret" || !slices.Equal(names(m), []string{"ok"}) {
		t.Fatalf("err %v manifest %v", err, names(m))
	}
}

func TestSpecialFileIsAProblem(t *testing.T) {
	root := t.TempDir()
	write(t, root, map[string]string{"ok": "1"})
	l, err := netListenUnix(filepath.Join(root, "sock"))
	if err != nil {
		t.Skipf("cannot make a socket: %v", err)
	}
	defer l.Close()
	_, err = signing.ComputeManifest(context.Background(), root, signing.Options{})
	var te *signing.TreeError
	if !errors.As(err, &te) || te.Problems[0].Name != "sock" || !strings.Contains(te.Problems[0].Reason, "not a regular file") {
		t.Fatalf("socket not reported: %v", err)
	}
}

func TestModelPathErrors(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, path string
		opts       signing.Options
		want       string
	}{
		{"missing", filepath.Join(dir, "nope"), signing.Options{}, "no such file"},
		{"symlinked root refused", link, signing.Options{}, "is a symbolic link"},
		{"bad method", dir, signing.Options{Method: "tensors"}, "serialization"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := signing.ComputeManifest(context.Background(), c.path, c.opts)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want %q", err, c.want)
			}
		})
	}
}

func TestCancel(t *testing.T) {
	root := t.TempDir()
	write(t, root, map[string]string{"a": strings.Repeat("x", 1<<20)})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := signing.ComputeManifest(ctx, root, signing.Options{BufferSize: 1024}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
}

func TestResolveIgnorePaths(t *testing.T) {
	base := t.TempDir()
	model := filepath.Join(base, "model")
	write(t, model, map[string]string{"a/b": "x"})
	link := filepath.Join(base, "alias")
	if err := os.Symlink(model, link); err != nil {
		t.Fatal(err)
	}
	t.Chdir(base)
	got, err := signing.ResolveIgnorePaths(link, []string{"model/a", filepath.Join(model, "model.sig"), "elsewhere.sig", "model/not/yet"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "model.sig", "not/yet"}; !slices.Equal(got, want) {
		t.Fatalf("resolved %q, want %q", got, want)
	}
}

func TestDiff(t *testing.T) {
	mk := func(method string, rs ...string) *signing.Manifest {
		m := &signing.Manifest{Serialization: signing.Serialization{Method: method}}
		for _, r := range rs {
			name, body, _ := strings.Cut(r, "=")
			m.Resources = append(m.Resources, signing.Resource{Name: name, Digest: sum(body)})
		}
		return m
	}
	d := signing.Diff(mk("files", "a=1", "b=2", "c=3"), mk("files", "a=1", "b=X", "d=4"))
	if !slices.Equal(d.Missing, []string{"c"}) || !slices.Equal(d.Extra, []string{"d"}) || len(d.Changed) != 1 || d.Changed[0].File != "b" {
		t.Fatalf("files diff %+v", d)
	}
	d = signing.Diff(mk("shards", "w:0:8=1", "w:8:10=2", "x:0:1=3"), mk("shards", "w:0:8=1", "w:8:16=2", "x:0:1=3"))
	if len(d.Changed) != 1 || d.Changed[0].File != "w" || len(d.Changed[0].Expected) != 1 || len(d.Changed[0].Actual) != 1 || d.Missing != nil {
		t.Fatalf("shards diff %+v", d)
	}
	if !signing.Diff(mk("files", "a=1"), mk("files", "a=1")).Empty() {
		t.Fatal("equal manifests differ")
	}
}
