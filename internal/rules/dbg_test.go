package rules_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/pipewarden/pipewarden/internal/rules"
)

func TestDbg(t *testing.T) {
	files, _ := filepath.Glob("testdata/defaults/*.jsonl")
	for _, f := range files {
		got := rules.Replay(newEngine(t, rules.LoadOptions{}), readEvents(t, f))
		os.Stdout.WriteString("== " + f + "\n")
		rules.FormatFirings(os.Stdout, got)
	}
	e := newEngine(t, rules.LoadOptions{})
	for _, s := range e.Stats() {
		_ = s
	}
}
