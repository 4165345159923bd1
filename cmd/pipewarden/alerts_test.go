package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pipewarden/pipewarden/internal/alert"
	"github.com/pipewarden/pipewarden/internal/finding"
	"github.com/pipewarden/pipewarden/internal/store"
)

func TestAlertsTune(t *testing.T) {
	srv, p, st := alertDaemon(t)
	t.Setenv("PIPEWARDEN_TOKEN", "sekret")
	ctx := context.Background()
	code, out, errOut := runMain(t, "alerts", "tune", "--server", srv.URL)
	if code != 0 || out != "" || !strings.Contains(errOut, "nothing to propose") {
		t.Fatalf("tune without feedback: %d %q %q", code, out, errOut)
	}
	for i := 0; i < 2; i++ {
		f := finding.Finding{Rule: "model_unsigned_change", Severity: finding.High, Title: "unsigned", Confidence: 1,
			Subject: finding.Subject{Kind: "model", Name: "sandbox"}, Time: time.Now(),
			Evidence: map[string]any{"event": map[string]any{"subject": ""}, "data": map[string]any{"model": "sandbox", "actor": "ci"}}}
		p.Handle(ctx, []finding.Finding{f})
		page, err := st.ListAlerts(ctx, store.AlertQuery{State: store.AlertFiring})
		if err != nil || len(page.Items) != 1 {
			t.Fatalf("firing alerts: %+v %v", page.Items, err)
		}
		id := page.Items[0].ID
		if _, err := p.Transition(ctx, id, alert.ActionFalsePositive, "alice", "sandbox is unsigned by design"); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "tune.yaml")
	code, _, errOut = runMain(t, "alerts", "tune", "--server", srv.URL, "--min", "2", "--out", path)
	if code != 0 || !strings.Contains(errOut, "precision 0.00") || !strings.Contains(errOut, "wrote 1 proposal") {
		t.Fatalf("tune: %d %q", code, errOut)
	}
	code, out, _ = runMain(t, "alerts", "tune", "--server", srv.URL, "--min", "2")
	if code != 0 || !strings.Contains(out, "- rule: model_unsigned_change") || !strings.Contains(out, "fields: [data.model]") || !strings.Contains(out, "values: [[sandbox]]") {
		t.Fatalf("tune yaml: %d\n%s", code, out)
	}
	if code, _, errOut := runMain(t, "alerts", "tune", "--server", srv.URL, "--min", "0"); code != 2 || !strings.Contains(errOut, "--min") {
		t.Errorf("--min 0: %d %q", code, errOut)
	}
}
