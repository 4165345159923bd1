package app_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pipewarden/pipewarden/internal/config"
)

const fixtures = "../../../shared/fixtures"

// TestWatchedModelTamperAndRollback: approve a model over the API, change a file, see the event
// and the critical finding, roll back, get the approved bytes back; drop a malicious pickle into
// the directory and see the scanner's finding.
func TestWatchedModelTamperAndRollback(t *testing.T) {
	modelDir := filepath.Join(t.TempDir(), "fraud")
	os.MkdirAll(modelDir, 0o755)
	weights := filepath.Join(modelDir, "weights.bin")
	os.WriteFile(weights, []byte("approved weights"), 0o644)
	os.WriteFile(filepath.Join(modelDir, "config.json"), []byte(`{"layers":3}`), 0o644)
	h := start(t, func(c *config.Config) {
		c.Models.Watch = []config.ModelWatch{{Name: "fraud", Path: modelDir}}
		c.Models.ScanInterval = 50 * time.Millisecond
		c.Models.Rescan = time.Hour
	}, nil)
	code, _, body := h.do("POST", "/v1/models/fraud/approvals", h.token, "application/json", `{"path":"`+modelDir+`"}`)
	if code != 201 {
		t.Fatalf("approve = %d %v", code, body)
	}
	_, _, body = h.do("GET", "/v1/models", h.token, "", "")
	if !strings.Contains(toJSON(body), `"fraud"`) {
		t.Errorf("GET /v1/models = %v", body)
	}
	time.Sleep(200 * time.Millisecond) // let the watcher settle on the approved state
	os.WriteFile(weights, []byte("TAMPERED weights"), 0o644)
	items := waitFindings(t, h, "?rule=modelwatch.unapproved-change", func(it []any) bool { return len(it) >= 1 })
	f := items[0].(map[string]any)
	if f["severity"] != "critical" || !strings.Contains(toJSON(f), "weights.bin") {
		t.Errorf("finding must be critical and name the file: %v", f)
	}
	_, _, ev := h.do("GET", "/v1/events?type=pipewarden.model.artifact", h.token, "", "")
	if !strings.Contains(toJSON(ev), `"changed"`) {
		t.Errorf("no model.artifact changed event: %v", ev)
	}
	code, _, body = h.do("POST", "/v1/models/fraud/rollback", h.token, "application/json", "")
	if code != 200 {
		t.Fatalf("rollback = %d %v", code, body)
	}
	if b, _ := os.ReadFile(weights); string(b) != "approved weights" {
		t.Errorf("rollback did not restore the approved bytes: %q", b)
	}
	mal, err := os.ReadFile(filepath.Join(fixtures, "models/picklescan/malicious1_v4.pkl"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(modelDir, "extra.pkl"), mal, 0o644)
	waitFindings(t, h, "?severity=critical&subject=", func(it []any) bool {
		for _, x := range it {
			if strings.HasPrefix(x.(map[string]any)["rule"].(string), "modelscan.") {
				return true
			}
		}
		return false
	})
}
