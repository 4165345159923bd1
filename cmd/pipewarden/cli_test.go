package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runMain(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestVersion(t *testing.T) {
	code, out, _ := runMain(t, "version")
	if code != 0 || out != "pipewarden dev\n" {
		t.Errorf("version = %d %q", code, out)
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown command", []string{"frobnicate"}, "unknown command"},
		{"unknown flag", []string{"serve", "--nope"}, "unknown flag"},
		{"missing config", []string{"serve", "--config", "/nonexistent/pw.yaml"}, "/nonexistent/pw.yaml"},
		{"bad listen", []string{"serve", "--listen", "nowhere"}, "listen"},
		{"token without role", []string{"token", "create"}, "role"},
		{"token bad role", []string{"token", "create", "--role", "root"}, `"root"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runMain(t, tc.args...)
			if code != 2 {
				t.Errorf("exit = %d, want 2 (stderr %q)", code, stderr)
			}
			if !strings.Contains(stderr, tc.want) || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
				t.Errorf("stderr %q: want one line containing %q", stderr, tc.want)
			}
		})
	}
}

func TestConfigCommands(t *testing.T) {
	code, def, _ := runMain(t, "config", "default")
	if code != 0 || !strings.Contains(def, "listen: 127.0.0.1:7700") {
		t.Fatalf("config default = %d %q", code, def)
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte(def), 0o600)
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("listen: 127.0.0.1:1\nstore:\n  drvier: sqlite\n"), 0o600)
	if code, out, _ := runMain(t, "config", "validate", good); code != 0 || !strings.Contains(out, "ok") {
		t.Errorf("validate good = %d %q", code, out)
	}
	code, _, stderr := runMain(t, "config", "validate", good, bad)
	if code != 2 || !strings.Contains(stderr, "bad.yaml") || !strings.Contains(stderr, "line 3") {
		t.Errorf("validate bad = %d %q; want exit 2 naming the file and line", code, stderr)
	}
}

func TestTokenCreate(t *testing.T) {
	dir := t.TempDir()
	code, out, stderr := runMain(t, "token", "create", "--role", "ingest", "--name", "ci", "--data", dir)
	if code != 0 || !strings.HasPrefix(out, "pw_") {
		t.Fatalf("token create = %d %q %q", code, out, stderr)
	}
	code, out, _ = runMain(t, "token", "create", "--role", "viewer", "--hash-only")
	if code != 0 || !strings.Contains(out, "sha256: ") {
		t.Errorf("--hash-only = %d %q", code, out)
	}
}
