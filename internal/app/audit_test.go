package app_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pipewarden/pipewarden/internal/app"
	"github.com/pipewarden/pipewarden/internal/audit"
	"github.com/pipewarden/pipewarden/internal/config"
	"github.com/pipewarden/pipewarden/internal/event"
)

// TestEveryStateChangeIsAudited: events, findings, token creation, rule reloads and
// state-changing API calls all leave records; retention deletes events but not audit records;
// the log verifies after a restart.
func TestEveryStateChangeIsAudited(t *testing.T) {
	dir := t.TempDir()
	witness := filepath.Join(t.TempDir(), "witness")
	alertsFile := filepath.Join(t.TempDir(), "alerts.jsonl")
	cfg, err := config.Load([]byte("alerting:\n  route:\n    receiver: log\n    group_wait: 10ms\n  receivers:\n    - name: log\n      file:\n        path: " + alertsFile + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen, cfg.DataDir = "127.0.0.1:0", dir
	cfg.Audit.WitnessFile = witness
	cfg.Audit.CheckpointInterval = 50 * time.Millisecond
	now := time.Now()
	var a *app.App
	a, err = app.New(context.Background(), app.Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, app: a, base: "http://" + a.Addr(), dir: dir}
	tok, _ := readToken(dir)
	h.token = tok
	batch := "[" + evJSON("au1", "pipewarden.access.change") + "," + evJSON("au2", "pipewarden.data.batch") + "]"
	if code, _, b := h.do("POST", "/v1/events", h.token, ce, batch); code != 202 {
		t.Fatal(code, b)
	}
	waitFindings(t, h, "?rule=access_admin_escalation", func(it []any) bool { return len(it) == 1 })
	if code, _, _ := h.do("POST", "/v1/rules/reload", h.token, "", ""); code != 200 {
		t.Fatalf("reload = %d", code)
	}
	// Wait until the tailer has audited both events.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, _, body := h.do("GET", "/v1/audit/entries?from=0&to=1000", h.token, "", "")
		if s := toJSON(body); strings.Contains(s, `"au1"`) && strings.Contains(s, `"au2"`) && strings.Contains(s, `access_admin_escalation`) && strings.Contains(s, "POST /v1/rules/reload") &&
			strings.Contains(s, `"kind":"notification"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit log lacks the expected records: %v", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, _, cp := h.do("GET", "/v1/audit/checkpoint", h.token, "", "")
	if cp["note"] == nil {
		t.Errorf("no signed checkpoint served: %v", cp)
	}
	// Retention deletes the events; audit records stay.
	if n, err := a.Store().DeleteEventsBefore(context.Background(), now.Add(time.Hour)); err != nil || n != 2 {
		t.Fatalf("retention = %d, %v", n, err)
	}
	if err := a.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	res, err := audit.VerifyDir(filepath.Join(dir, "audit"), audit.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() {
		t.Fatalf("audit log does not verify: %+v", res.Problems)
	}
	var kinds = map[string]int{}
	l, err := audit.Open(filepath.Join(dir, "audit"), audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	es, _ := l.Entries(0, l.Size())
	for _, e := range es {
		r, err := e.Record()
		if err != nil {
			t.Fatal(err)
		}
		kinds[string(r.Kind)]++
	}
	for _, k := range []string{"event", "finding", "alert", "notification", "token", "config", "api"} {
		if kinds[k] == 0 {
			t.Errorf("no %s record in the audit log: %v", k, kinds)
		}
	}
	if kinds["event"] != 2 {
		t.Errorf("event records = %d, want exactly 2", kinds["event"])
	}
}

// TestAuditCatchesUpAfterCrash: events committed but never handed to the audit consumer (a crash
// between the two) are audited when the daemon starts.
func TestAuditCatchesUpAfterCrash(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Listen, cfg.DataDir = "127.0.0.1:0", dir
	a, err := app.New(context.Background(), app.Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	// Stored, as the writer does before the bus hands events on.
	d := event.NewDecoder(event.Limits{}, nil)
	evs, _ := d.Decode([]byte("[" + evJSON("crash-1", "pipewarden.access.auth") + "," + evJSON("crash-2", "pipewarden.access.auth") + "]"))
	if _, err := a.Store().AppendEvents(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, app: a, base: "http://" + a.Addr(), dir: dir}
	h.token, _ = readToken(dir)
	_, _, body := h.do("GET", "/v1/audit/entries?from=0&to=100", h.token, "", "")
	s := toJSON(body)
	if !strings.Contains(s, "crash-1") || !strings.Contains(s, "crash-2") {
		t.Fatalf("events stored before start were not audited: %s", s)
	}
	a.Stop(context.Background())
	if n := strings.Count(s, `"crash-1"`); n != 1 {
		t.Errorf("crash-1 audited %d times", n)
	}
}

// TestAuditNoDuplicatesWithStaleCursor: the saved position lags the log (it is saved about once a
// second); after a crash the log itself says what was audited, so nothing is audited twice.
func TestAuditNoDuplicatesWithStaleCursor(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Listen, cfg.DataDir = "127.0.0.1:0", dir
	h := start(t, func(c *config.Config) { *c = *cfg }, nil)
	if code, _, b := h.do("POST", "/v1/events", h.token, ce, "["+evJSON("st-1", "pipewarden.access.auth")+","+evJSON("st-2", "pipewarden.access.auth")+"]"); code != 202 {
		t.Fatal(code, b)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, _, body := h.do("GET", "/v1/audit/entries?from=0&to=100", h.token, "", "")
		if strings.Contains(toJSON(body), "st-2") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("events never audited")
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.app.Stop(context.Background())
	// Roll the saved position back, as if the daemon had crashed before saving it.
	st, err := app.OpenStore(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	st.PutState(context.Background(), "audit.events.cursor", []byte(""))
	st.Close()
	a, err := app.New(context.Background(), app.Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	h2 := &harness{t: t, app: a, base: "http://" + a.Addr(), dir: dir, token: h.token}
	_, _, body := h2.do("GET", "/v1/audit/entries?from=0&to=100", h.token, "", "")
	a.Stop(context.Background())
	if n := strings.Count(toJSON(body), `"st-1"`); n != 1 {
		t.Errorf("st-1 audited %d times after a restart with a stale position, want 1", n)
	}
}
