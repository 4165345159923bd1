package rules_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pipewarden/pipewarden/internal/event"
	"github.com/pipewarden/pipewarden/internal/rules"
)

func newEngine(t testing.TB, opts rules.LoadOptions) *rules.Engine {
	t.Helper()
	rs, err := rules.Load(context.Background(), opts)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	e, err := rules.NewEngine(rs, rules.EngineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func readEvents(t testing.TB, path string) []event.Event {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	evs, err := rules.ReadEvents(path, f, event.NewDecoder(event.Limits{}, func() time.Time { return time.Unix(0, 0) }))
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// TestDefaultRules replays testdata/defaults/RULE.jsonl through the default ruleset and checks
// RULE.expect.yaml exactly: every listed firing happens and nothing else fires.
func TestDefaultRules(t *testing.T) {
	files, _ := filepath.Glob("testdata/defaults/*.jsonl")
	if len(files) == 0 {
		t.Fatal("no default rule tests")
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".jsonl")
		t.Run(name, func(t *testing.T) {
			evs := readEvents(t, f)
			b, err := os.ReadFile(strings.TrimSuffix(f, ".jsonl") + ".expect.yaml")
			if err != nil {
				t.Fatal(err)
			}
			exp, err := rules.ParseExpectation(f, b)
			if err != nil {
				t.Fatal(err)
			}
			got := rules.Replay(newEngine(t, rules.LoadOptions{}), evs)
			for _, d := range rules.Diff(exp, evs, got) {
				t.Error(d)
			}
		})
	}
}

// TestDefaultRulesCovered requires, for every default rule, a test file named after it with at
// least one event that fires it and one near-miss ("miss-" event) that does not.
func TestDefaultRulesCovered(t *testing.T) {
	e := newEngine(t, rules.LoadOptions{})
	for _, s := range e.Stats() {
		base := filepath.Join("testdata", "defaults", s.ID)
		b, err := os.ReadFile(base + ".expect.yaml")
		if err != nil {
			t.Errorf("rule %s has no test: %v", s.ID, err)
			continue
		}
		exp, err := rules.ParseExpectation(base, b)
		if err != nil {
			t.Fatal(err)
		}
		fires, misses := 0, 0
		for id, rs := range exp {
			has := false
			for _, r := range rs {
				has = has || r == s.ID
			}
			switch {
			case has:
				fires++
			case strings.HasPrefix(id, "miss-"):
				misses++
			}
		}
		if fires == 0 || misses == 0 {
			t.Errorf("rule %s: %d firing events and %d near-misses in its test; want at least one of each", s.ID, fires, misses)
		}
		if len(s.ATLAS)+len(s.OWASP) == 0 {
			t.Errorf("rule %s carries no ATLAS or OWASP tag", s.ID)
		}
		if s.Desc == "" {
			t.Errorf("rule %s has no desc", s.ID)
		}
	}
}
