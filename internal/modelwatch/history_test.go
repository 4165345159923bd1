package modelwatch_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pipewarden/pipewarden/internal/modelwatch"
)

// validHistory is a real approvals file, written by Approve.
func validHistory(t testing.TB) []byte {
	t.Helper()
	m := newManager(t, 0)
	approve(t, m, "fraud", newModel(t))
	b, err := os.ReadFile(filepath.Join(m.Dir(), "approvals", "fraud.json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseHistoryRejectsTamperedFiles(t *testing.T) {
	base := validHistory(t)
	if _, err := modelwatch.ParseHistory(base); err != nil {
		t.Fatalf("valid file: %v", err)
	}
	edit := func(f func(h map[string]any, v map[string]any, files []any)) []byte {
		var h map[string]any
		json.Unmarshal(base, &h)
		v := h["versions"].([]any)[0].(map[string]any)
		f(h, v, v["files"].([]any))
		b, _ := json.Marshal(h)
		return b
	}
	file0 := func(files []any) map[string]any { return files[0].(map[string]any) }
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"traversal in a file name", edit(func(_, _ map[string]any, fs []any) { file0(fs)["name"] = "../../etc/cron.d/x" }), "file name"},
		{"absolute file name", edit(func(_, _ map[string]any, fs []any) { file0(fs)["name"] = "/etc/passwd" }), "file name"},
		{"unclean file name", edit(func(_, _ map[string]any, fs []any) { file0(fs)["name"] = "a//b" }), "file name"},
		{"digest of other files", edit(func(_, _ map[string]any, fs []any) { file0(fs)["sha256"] = strings.Repeat("0", 64) }), "does not match"},
		{"short digest", edit(func(_, _ map[string]any, fs []any) { file0(fs)["sha256"] = "abc" }), "64"},
		{"relative model path", edit(func(_, v map[string]any, _ []any) { v["path"] = "models/x" }), "absolute"},
		{"root as model path", edit(func(_, v map[string]any, _ []any) { v["path"] = "/" }), "root"},
		{"duplicate file", edit(func(_, v map[string]any, fs []any) { v["files"] = append(fs, fs[0]) }), "twice"},
		{"mode with type bits", edit(func(_, _ map[string]any, fs []any) { file0(fs)["mode"] = 1 << 31 }), "mode"},
		{"version out of sequence", edit(func(_, v map[string]any, _ []any) { v["version"] = 2 }), "numbered"},
		{"other model", edit(func(_, v map[string]any, _ []any) { v["model"] = "other" }), "names model"},
		{"bad model name", edit(func(h, _ map[string]any, _ []any) { h["model"] = "a/b" }), "model name"},
		{"unknown field", edit(func(h, _ map[string]any, _ []any) { h["extra"] = 1 }), "unknown field"},
		{"schema", edit(func(h, _ map[string]any, _ []any) { h["schema"] = 2 }), "schema"},
		{"deep nesting", []byte(strings.Repeat("[", 100)), "nested"},
		{"trailing data", append(append([]byte{}, base...), []byte(" {}")...), "after"},
		{"not JSON", []byte("approved"), "invalid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := modelwatch.ParseHistory(tc.in)
			if !errors.Is(err, modelwatch.ErrInvalidHistory) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want ErrInvalidHistory mentioning %q", err, tc.want)
			}
		})
	}
}

func FuzzParseHistory(f *testing.F) {
	f.Add(validHistory(f))
	f.Add([]byte(`{"schema":1,"model":"m","versions":[]}`))
	f.Add([]byte(`{"schema":1,"model":"m","versions":[{"model":"m","version":1,"path":"/m","approver":"a","time":"2026-01-01T00:00:00Z","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","files":[]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := modelwatch.ParseHistory(b)
		if err != nil {
			return
		}
		// Whatever parses names only files inside the model and encodes back to something that
		// parses to the same history.
		for _, v := range h.Versions {
			for _, fl := range v.Files {
				if strings.HasPrefix(fl.Name, "/") || fl.Name == ".." || strings.HasPrefix(fl.Name, "../") || strings.Contains(fl.Name, "/../") {
					t.Fatalf("accepted file name %q", fl.Name)
				}
			}
		}
		out, err := json.Marshal(h)
		if err != nil {
			t.Fatal(err)
		}
		h2, err := modelwatch.ParseHistory(out)
		if err != nil {
			t.Fatalf("re-encoded history does not parse: %v", err)
		}
		if len(h2.Versions) != len(h.Versions) || (h.Latest() != nil && h2.Latest().Digest != h.Latest().Digest) {
			t.Fatal("round trip changed the history")
		}
	})
}
