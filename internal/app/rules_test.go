package app_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pipewarden/pipewarden/internal/app"
	"github.com/pipewarden/pipewarden/internal/config"
	"github.com/pipewarden/pipewarden/internal/store/sqlite"
)

func waitFindings(t *testing.T, h *harness, query string, want func([]any) bool) []any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var items []any
	for time.Now().Before(deadline) {
		_, _, body := h.do("GET", "/v1/findings"+query, h.token, "", "")
		items, _ = body["items"].([]any)
		if want(items) {
			return items
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("findings never matched; last: %v", items)
	return nil
}

func TestDefaultRuleFindingIsServed(t *testing.T) {
	h := start(t, nil, nil)
	if code, _, b := h.do("POST", "/v1/events", h.token, ce, evJSON("esc-1", "pipewarden.access.change")); code != 202 {
		t.Fatal(code, b)
	}
	items := waitFindings(t, h, "?rule=access_admin_escalation", func(it []any) bool { return len(it) == 1 })
	f := items[0].(map[string]any)
	if f["severity"] != "high" || !strings.Contains(f["title"].(string), "bob") {
		t.Errorf("finding = %v", f)
	}
	if ids, _ := f["event_ids"].([]any); len(ids) != 1 || ids[0] != "esc-1" {
		t.Errorf("finding must name the event it rests on: %v", f["event_ids"])
	}
	if atlas, _ := f["atlas"].([]any); len(atlas) == 0 || atlas[0] != "AML.T0012" {
		t.Errorf("finding must carry ATLAS tags: %v", f["atlas"])
	}
	_, _, body := h.do("GET", "/v1/rules", h.token, "", "")
	rules, _ := body["rules"].([]any)
	found := false
	for _, r := range rules {
		m := r.(map[string]any)
		if m["id"] == "access_admin_escalation" {
			found = true
			if m["matches"] != float64(1) {
				t.Errorf("GET /v1/rules matches = %v, want 1", m["matches"])
			}
		}
	}
	if !found {
		t.Errorf("GET /v1/rules does not list the default rules: %d rules", len(rules))
	}
}

const userRule = `- rule: big_batch
  desc: A batch larger than a million rows.
  condition: data.rows > 1000000
  match: pipewarden.data.batch
  output: 'dataset %data.dataset sent %data.rows rows'
  severity: medium
  tags: [AML.T0020]
`

func TestBrokenRuleFileStopsStartWithLine(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "bad.yaml")
	os.WriteFile(f, []byte(userRule+"- rule: broken\n  condition: data.rows >>> 1\n  match: pipewarden.data.batch\n  output: x\n  severity: low\n"), 0o600)
	cfg := config.Default()
	cfg.Listen, cfg.DataDir = "127.0.0.1:0", t.TempDir()
	cfg.Rules.Files = []string{f}
	_, err := app.New(context.Background(), app.Options{Config: cfg})
	if err == nil || !strings.Contains(err.Error(), "bad.yaml:") || !strings.Contains(err.Error(), "broken") {
		t.Fatalf("want an error naming bad.yaml:<line> and the rule, got %v", err)
	}
}

func TestReloadKeepsRunningRulesOnError(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "user.yaml")
	os.WriteFile(f, []byte(userRule), 0o600)
	h := start(t, func(c *config.Config) { c.Rules.Files = []string{f}; c.Rules.WatchInterval = 0 }, nil)
	os.WriteFile(f, []byte(userRule+"- rule: broken\n  condition: data.rows >>> 1\n  match: pipewarden.data.batch\n  output: x\n  severity: low\n"), 0o600)
	code, _, body := h.do("POST", "/v1/rules/reload", h.token, "", "")
	if code != 422 || !strings.Contains(body["error"].(string), "user.yaml:") {
		t.Fatalf("reload of a broken file = %d %v; want 422 naming the file and line", code, body)
	}
	// The previous ruleset still fires.
	big := `{"specversion":"1.0","id":"big-1","source":"//t","type":"pipewarden.data.batch","data":{"dataset":"d","source":"s3://x","rows":5000000,"schema":[{"name":"a","type":"int"}],"digest":"sha256:1"}}`
	if code, _, b := h.do("POST", "/v1/events", h.token, ce, big); code != 202 {
		t.Fatal(code, b)
	}
	waitFindings(t, h, "?rule=big_batch", func(it []any) bool { return len(it) == 1 })
	// A viewer may not reload.
	secret, hash := app.NewToken()
	_ = hash
	if code, _, _ := h.do("POST", "/v1/rules/reload", secret, "", ""); code != 401 {
		t.Errorf("unknown token reload = %d", code)
	}
}

const errorsRule = `- rule: client_errors
  desc: Three error responses to one client within ten minutes.
  condition: data.status >= 500
  match: pipewarden.inference.request
  correlation: {type: event_count, group_by: data.client, timespan: 10m, threshold: 3}
  output: 'client %data.client drew %{corr.count} errors'
  severity: medium
  tags: [AML.T0015]
`

// Correlation state is saved at stop (in parts: this one is larger than one) and restored at
// start, so a window begun before a restart completes after it.
func TestRulesStateSurvivesRestart(t *testing.T) {
	dir, data := t.TempDir(), t.TempDir()
	f := filepath.Join(dir, "r.yaml")
	if err := os.WriteFile(f, []byte(errorsRule), 0o600); err != nil {
		t.Fatal(err)
	}
	mutate := func(c *config.Config) {
		c.DataDir = data
		c.Rules.Files, c.Rules.DisableDefaults, c.Rules.SnapshotInterval = []string{f}, true, 0
	}
	now := time.Now().UTC()
	req := func(id, client string, i int) string {
		return fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"//test","type":"pipewarden.inference.request","time":%q,"data":{"endpoint":"e","client":%q,"status":503,"latency_ms":1}}`,
			id, now.Add(time.Duration(i)*time.Millisecond).Format(time.RFC3339Nano), client)
	}
	// Two errors for "mallory", and one for each of 4,000 other clients: a state of several parts.
	var batch []string
	for i := range 4000 {
		batch = append(batch, req(fmt.Sprintf("other-%d", i), fmt.Sprintf("client-%05d-with-a-longer-name-to-fill-the-state", i), i))
	}
	batch = append(batch, req("m1", "mallory", 4000), req("m2", "mallory", 4001))
	h := start(t, mutate, nil)
	if code, _, b := h.do("POST", "/v1/events", h.token, "application/cloudevents-batch+json", "["+strings.Join(batch, ",")+"]"); code != 202 {
		t.Fatal(code, b)
	}
	waitFor(t, func() bool {
		_, _, body := h.do("GET", "/v1/rules", h.token, "", "")
		for _, r := range body["rules"].([]any) {
			if m := r.(map[string]any); m["id"] == "client_errors" {
				return m["evaluations"] == float64(4002)
			}
		}
		return false
	})
	if err := h.app.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	mutate(cfg)
	st, err := sqlite.Open(context.Background(), cfg.SQLitePath(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := st.GetState(context.Background(), "rules.snapshot")
	st.Close()
	if err != nil || !strings.Contains(string(manifest), `"parts":`) || strings.Contains(string(manifest), `"parts":1,`) {
		t.Fatalf("rules state saved as %.200q, %v; want a manifest of several parts", manifest, err)
	}
	h = start(t, mutate, nil)
	if code, _, b := h.do("POST", "/v1/events", h.token, ce, req("m3", "mallory", 4002)); code != 202 {
		t.Fatal(code, b)
	}
	items := waitFindings(t, h, "?rule=client_errors", func(it []any) bool { return len(it) == 1 })
	if ids, _ := items[0].(map[string]any)["event_ids"].([]any); fmt.Sprint(ids) != "[m1 m2 m3]" {
		t.Errorf("finding after restart rests on %v, want [m1 m2 m3] (two events from before the restart)", ids)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
