package alert_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pipewarden/pipewarden/internal/alert"
	"github.com/pipewarden/pipewarden/internal/event"
	"github.com/pipewarden/pipewarden/internal/finding"
	"github.com/pipewarden/pipewarden/internal/rules"
)

func unsignedChange(t *testing.T, id, model string, at time.Time) event.Event {
	t.Helper()
	body := fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"//registry","type":"pipewarden.model.artifact","time":%q,
		"data":{"model":%q,"version":"8","digest":"sha256:aa","action":"changed","actor":"bob","signed":false,"path":"m/8"}}`,
		id, at.Format(time.RFC3339), model)
	evs, err := event.NewDecoder(event.Limits{}, nil).Decode([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return evs[0]
}

func engine(t *testing.T, extra string) *rules.Engine {
	t.Helper()
	opts := rules.LoadOptions{}
	if extra != "" {
		opts.Sources = []rules.Source{{Name: "tune.yaml", Data: []byte(extra)}}
	}
	rs, err := rules.Load(context.Background(), opts)
	if err != nil {
		t.Fatalf("load rules with %q: %v", extra, err)
	}
	e, err := rules.NewEngine(rs, rules.EngineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func findingsOf(e *rules.Engine, ev event.Event, rule string) []finding.Finding {
	var out []finding.Finding
	for _, f := range e.Evaluate(ev) {
		if f.Rule == rule {
			out = append(out, f)
		}
	}
	return out
}

// The feedback loop end to end: real rule findings, marked false positive three times, give an
// exception that the rules engine loads and that silences exactly that model.
func TestTuneProposesExceptionThatTheRulesEngineApplies(t *testing.T) {
	const rule = "model_unsigned_change"
	h := newHarness(t, defaultTestConfig())
	ctx := context.Background()
	eng := engine(t, "")
	for i := 0; i < 3; i++ {
		fs := findingsOf(eng, unsignedChange(t, fmt.Sprint("e", i), "sandbox-model", h.clk.Now()), rule)
		if len(fs) != 1 {
			t.Fatalf("the default rule must fire: %+v", fs)
		}
		h.p.Handle(ctx, fs)
		id := h.alerts("firing")[0].ID
		if _, err := h.p.Transition(ctx, id, alert.ActionFalsePositive, "alice", "sandbox models are never signed"); err != nil {
			t.Fatal(err)
		}
		h.clk.Add(time.Hour)
	}
	h.p.Handle(ctx, findingsOf(eng, unsignedChange(t, "x", "prod-model", h.clk.Now()), rule))

	fb, err := h.p.Feedback(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(fb.Rules) != 1 || fb.Rules[0].Alerts != 4 || fb.Rules[0].FalsePositives != 3 || fb.Rules[0].Precision != 0.25 {
		t.Errorf("rule feedback = %+v", fb.Rules)
	}
	if len(fb.Proposals) != 1 || fb.Proposals[0].Labels["subject"] != "sandbox-model" || fb.Proposals[0].FalsePositives != 3 {
		t.Fatalf("proposals = %+v", fb.Proposals)
	}
	if !strings.Contains(fb.YAML, "override: append") || !strings.Contains(fb.YAML, "sandbox-model") {
		t.Fatalf("yaml:\n%s", fb.YAML)
	}
	tuned := engine(t, fb.YAML)
	if fs := findingsOf(tuned, unsignedChange(t, "y", "sandbox-model", h.clk.Now()), rule); len(fs) != 0 {
		t.Errorf("the proposed exception must except the false-positive subject:\n%s", fb.YAML)
	}
	if fs := findingsOf(tuned, unsignedChange(t, "z", "prod-model", h.clk.Now()), rule); len(fs) != 1 {
		t.Errorf("the exception must not hide other subjects")
	}
	if more, _ := h.p.Feedback(ctx, 4); len(more.Proposals) != 0 || more.YAML != "" {
		t.Errorf("below the threshold nothing is proposed: %+v", more.Proposals)
	}
}
