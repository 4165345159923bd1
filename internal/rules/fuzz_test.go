package rules_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pipewarden/pipewarden/internal/event"
	"github.com/pipewarden/pipewarden/internal/rules"
)

// FuzzLoad feeds arbitrary rule files to the loader under tight limits. A file either loads or
// fails with located errors; nothing panics, and whatever loads can evaluate every example event.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(baseRule))
	f.Add([]byte(countRules))
	f.Add([]byte(historyRules))
	f.Add([]byte("- macro: a\n  condition: a\n- rule: r\n  desc: d\n  condition: a\n  severity: low\n"))
	f.Add([]byte("- list: l\n  items: [&x a, *x]\n"))
	f.Add([]byte("- rule: r\n  desc: '%{'\n  condition: \"'\"\n  severity: low\n"))
	lim := rules.Limits{MaxFileBytes: 64 << 10, MaxItems: 50, MaxConditionLen: 2048, MaxExpandedLen: 16 << 10,
		MaxListItems: 100, MaxYAMLDepth: 16, MaxMacroDepth: 8}
	var examples []event.Event
	for typ, data := range event.Examples() {
		examples = append(examples, event.Event{ID: typ, Source: "urn:fuzz", Type: typ, Time: time.Unix(1e9, 0), Data: []byte(data)})
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 64<<10 {
			return
		}
		start := time.Now()
		stall := time.AfterFunc(10*time.Second, func() { panic("rule file took over 10s to load and evaluate") })
		defer stall.Stop()
		rs, err := rules.Load(context.Background(), rules.LoadOptions{NoDefaults: true, Limits: lim,
			Sources: []rules.Source{{Name: "fuzz.yaml", Data: b}}})
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("load took %v", d)
		}
		if err != nil {
			for _, e := range rules.AsErrors(err) {
				if e.File == "" || strings.TrimSpace(e.Msg) == "" {
					t.Fatalf("unlocated error %#v", e)
				}
			}
			return
		}
		e, err := rules.NewEngine(rs, rules.EngineOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range examples {
			e.Evaluate(ev)
		}
		if _, err := e.Snapshot(); err != nil {
			t.Fatal(err)
		}
	})
}
