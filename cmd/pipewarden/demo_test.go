package main

import (
	"strings"
	"testing"
)

// TestDemoRaisesAlertsForEveryAttack runs the demo end to end against its embedded daemon.
func TestDemoRaisesAlertsForEveryAttack(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole demo scenario")
	}
	code, out, stderr := runMain(t, "demo", "--data", t.TempDir())
	if code != 0 {
		t.Fatalf("demo exit %d: %s", code, stderr)
	}
	for _, rule := range []string{"deploy_unregistered_digest", "access_admin_escalation", "access_bruteforce_then_success",
		"data_source_never_seen", "model_unsigned_change", "infra_training_egress_not_allowed", "deps_change_in_ml_project", "inference_error_spike"} {
		if !strings.Contains(out, rule) {
			t.Errorf("demo output lacks an alert from %s:\n%s", rule, out)
		}
	}
	if !strings.Contains(out, "CRITICAL") {
		t.Errorf("demo must show a critical alert:\n%s", out)
	}
}
