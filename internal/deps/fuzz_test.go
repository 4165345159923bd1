package deps_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pipewarden/pipewarden/internal/deps"
)

// fuzzParser feeds arbitrary bytes to the parser chosen by name and checks that it returns in
// bounded time, never panics, and that every package it returns has a normalized name and a
// location inside the file.
func fuzzParser(f *testing.F, name string, seeds ...string) {
	for _, s := range seeds {
		data, err := os.ReadFile(filepath.Join("testdata", s))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		start := time.Now()
		lf, err := deps.ParseLockfileData(name, data)
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("parsing %d bytes took %v", len(data), d)
		}
		lines := 1
		for _, b := range data {
			if b == '\n' {
				lines++
			}
		}
		for _, p := range lf.Packages {
			if p.Key != deps.Normalize(p.Key) {
				t.Errorf("key %q not normalized", p.Key)
			}
			if p.Location.Line < 0 || p.Location.Line > lines {
				t.Errorf("%s at line %d of %d", p.Name, p.Location.Line, lines)
			}
		}
		deps.Check(lf, deps.Options{Typosquats: fuzzSquats})
	})
}

var fuzzSquats = deps.DefaultTyposquats()

func FuzzRequirements(f *testing.F) {
	fuzzParser(f, "requirements.txt", "requirements.txt", "requirements-dev.txt", "requirements-loop.txt")
}
func FuzzPoetryLock(f *testing.F)  { fuzzParser(f, "poetry.lock", "poetry.lock") }
func FuzzPipfileLock(f *testing.F) { fuzzParser(f, "Pipfile.lock", "Pipfile.lock") }
func FuzzPDMLock(f *testing.F)     { fuzzParser(f, "pdm.lock", "pdm.lock") }
func FuzzUVLock(f *testing.F)      { fuzzParser(f, "uv.lock", "uv.lock") }
func FuzzPylock(f *testing.F)      { fuzzParser(f, "pylock.toml", "pylock.toml") }
func FuzzCondaEnv(f *testing.F)    { fuzzParser(f, "environment.yml", "environment.yml") }

// FuzzOSVRecord loads arbitrary bytes as an OSV record file and matches a version against it.
func FuzzOSVRecord(f *testing.F) {
	for _, s := range []string{fixtures + "/pypa/py/PYSEC-2022-42969.yaml", fixtures + "/github/GHSA-37q5-v5qm-c9v8.json"} {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, filepath.Ext(s))
	}
	f.Fuzz(func(t *testing.T, data []byte, ext string) {
		if ext != ".json" {
			ext = ".yaml"
		}
		path := filepath.Join(t.TempDir(), "rec"+ext)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		db, err := deps.LoadOSV(path)
		if err != nil {
			t.Fatal(err)
		}
		lf := &deps.Lockfile{Packages: []deps.Package{pkg("py", "1.11.0"), pkg("transformers", "4.0"), pkg("x", "not a version")}}
		deps.Check(lf, deps.Options{DB: db})
	})
}
