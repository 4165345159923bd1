package rules_test

import (
	"log/slog"
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

func TestDbgRate(t *testing.T) {
	rs, err := rules.Load(t.Context(), rules.LoadOptions{Sources: []rules.Source{{Name: "g", Data: []byte(generatedRules(200, 7))}, {Name: "o", Data: []byte(onlySingle)}}})
	if err != nil { t.Fatal(err) }
	e, _ := rules.NewEngine(rs, rules.EngineOptions{})
	evs := eventMix(1<<14, 11)
	n := 0
	for _, ev := range evs { n += len(e.Evaluate(ev)) }
	t.Logf("firings per event %.3f", float64(n)/float64(len(evs)))
	for _, s := range e.Stats() { if s.Matches > 100 || s.Errors > 0 { t.Logf("%s m=%d e=%d ev=%d", s.ID, s.Matches, s.Errors, s.Evaluations) } }
}

func TestDbgVol(t *testing.T) {
	rs, _ := rules.Load(t.Context(), rules.LoadOptions{})
	e, _ := rules.NewEngine(rs, rules.EngineOptions{Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	evs := readEvents(t, "testdata/defaults/inference_volume_spike.jsonl"); t.Log(len(evs)); n := 0; for _, ev := range evs { if ev.Type != "pipewarden.inference.request" { n++ } }; t.Log(n); rules.Replay(e, evs)
	for _, s := range e.Stats() { if s.Evaluations > 0 { t.Logf("%+v", s) } }
}
