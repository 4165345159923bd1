package pipewarden_test

import (
	"encoding/json"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestEveryPackageHasOneDocComment: each package says what it is, exactly once.
func TestEveryPackageHasOneDocComment(t *testing.T) {
	dirs := map[string][]string{}
	filepath.WalkDir(".", func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules") && p != "." {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
			dirs[filepath.Dir(p)] = append(dirs[filepath.Dir(p)], p)
		}
		return nil
	})
	if len(dirs) < 5 {
		t.Fatalf("found only %d packages; is the test running at the module root?", len(dirs))
	}
	for dir, files := range dirs {
		docs := 0
		for _, f := range files {
			af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.PackageClauseOnly|parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			if af.Doc != nil && strings.TrimSpace(af.Doc.Text()) != "" {
				docs++
			}
		}
		if docs != 1 {
			t.Errorf("package %s has %d package doc comments, want exactly 1", dir, docs)
		}
	}
}

// TestBinaryLinksNoTestOnlyModule: the shipped binary must not carry test servers or tools.
func TestBinaryLinksNoTestOnlyModule(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-json=ImportPath,Module", "./cmd/pipewarden").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	forbidden := []string{
		"github.com/nats-io/nats-server",
		"github.com/chromedp/",
		"github.com/google/go-cmp",
		"github.com/prometheus/client_golang/prometheus/testutil",
		"github.com/kylelemons/godebug",
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	n := 0
	for dec.More() {
		var p struct{ ImportPath string }
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		n++
		for _, f := range forbidden {
			if strings.HasPrefix(p.ImportPath, f) {
				t.Errorf("the pipewarden binary links test-only package %s", p.ImportPath)
			}
		}
		if strings.HasSuffix(p.ImportPath, "/storetest") {
			t.Errorf("the pipewarden binary links %s", p.ImportPath)
		}
	}
	if n < 50 {
		t.Fatalf("go list returned only %d packages", n)
	}
}
