package alertmanager_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/pipewarden/pipewarden/internal/alert"
	"github.com/pipewarden/pipewarden/internal/finding"
	"github.com/pipewarden/pipewarden/internal/notify"
	"github.com/pipewarden/pipewarden/internal/notify/alertmanager"
	"github.com/pipewarden/pipewarden/internal/store/sqlite"
)

func message(now time.Time) *notify.Message {
	return &notify.Message{Version: notify.Version, Status: "firing", Receiver: "am", GroupKey: "0:{}",
		Alerts: []notify.Alert{
			{Status: "firing", Labels: map[string]string{"rule": "model_unsigned_change", "severity": "high", "subject": "fraud", "subject_kind": "model", "group": ""},
				Annotations: map[string]string{"summary": "model fraud changed without a signature", "alert_id": "a1"}, StartsAt: now.Add(-time.Minute), Fingerprint: "f1"},
			{Status: "resolved", Labels: map[string]string{"rule": "deploy_without_approval", "severity": "high", "subject": "fraud-api", "bad-name": "x"},
				Annotations: map[string]string{"summary": "done"}, StartsAt: now.Add(-time.Hour), EndsAt: now.Add(-time.Second), Fingerprint: "f2"},
		}}
}

func TestConvert(t *testing.T) {
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	got := alertmanager.Convert(message(now), now, 10*time.Minute)
	if len(got) != 2 {
		t.Fatalf("%+v", got)
	}
	if _, ok := got[0].Labels["group"]; ok {
		t.Errorf("empty label values must be dropped: %v", got[0].Labels)
	}
	if !got[0].EndsAt.Equal(now.Add(10*time.Minute)) || !got[1].EndsAt.Equal(now.Add(-time.Second)) {
		t.Errorf("endsAt: firing %v resolved %v", got[0].EndsAt, got[1].EndsAt)
	}
	if got[1].Labels["bad_name"] != "x" {
		t.Errorf("invalid label names must be rewritten: %v", got[1].Labels)
	}
}

// TestRealAlertmanager pushes alerts to Debian's prometheus-alertmanager on a loopback port and
// reads them back through its API.
func TestRealAlertmanager(t *testing.T) {
	bin, err := exec.LookPath("prometheus-alertmanager")
	if err != nil {
		t.Skip("prometheus-alertmanager is not installed (apt-get install prometheus-alertmanager; .ci/packages does it in CI)")
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "am.yml")
	if err := os.WriteFile(cfg, []byte("route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--config.file="+cfg, "--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--cluster.listen-address=", "--log.level=warn")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = cmd.Wait() }()
	base := "http://" + addr
	ready := false
	for i := 0; i < 200 && !ready; i++ {
		if resp, err := http.Get(base + "/-/ready"); err == nil {
			resp.Body.Close()
			ready = resp.StatusCode == 200
		}
		if !ready {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if !ready {
		t.Fatal("alertmanager did not become ready")
	}
	now := time.Now()
	n := alertmanager.New(alertmanager.Config{URL: base, Resend: time.Hour}, nil, nil)
	if err := n.Notify(ctx, "k1", message(now)); err != nil {
		t.Fatalf("notify: %v", err)
	}
	if !listed(t, base, "model_unsigned_change", "fraud") {
		t.Fatal("alertmanager does not list our firing alert")
	}
	if listed(t, base, "deploy_without_approval", "fraud-api") {
		t.Error("a resolved alert must not be active in Alertmanager")
	}
	// End to end: findings through the alerting pipeline to the same Alertmanager.
	st, err := sqlite.Open(ctx, filepath.Join(dir, "pw.db"), sqlite.Options{Synchronous: "normal"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clock := now
	acfg := alert.DefaultConfig()
	acfg.Receivers = []alert.Receiver{{Name: "am", Alertmanager: &alertmanager.Config{URL: base, Resend: time.Hour}}}
	acfg.Route.Receiver = "am"
	p, err := alert.New(ctx, alert.Options{Config: acfg, Store: st, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	p.Handle(ctx, []finding.Finding{{Rule: "inference_extraction", Severity: finding.High, Title: "client key-9 extracts the model",
		Subject: finding.Subject{Kind: "client", Name: "key-9"}, Confidence: 0.9, Time: now, Labels: map[string]string{"stage": "inference"}}})
	clock = clock.Add(31 * time.Second)
	if err := p.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if s, _ := p.Stats(ctx); s.Outbox["delivered"] != 1 {
		t.Fatalf("pipeline outbox = %v; want the notification delivered to alertmanager", s.Outbox)
	}
	if !listed(t, base, "inference_extraction", "key-9") {
		t.Fatal("alertmanager does not list the pipeline's alert")
	}

	// A malformed request is refused by Alertmanager and reported as permanent.
	bad := &notify.Message{Alerts: []notify.Alert{{Status: "firing", Labels: map[string]string{}}}}
	if err := n.Notify(ctx, "k2", bad); err == nil || !notify.IsPermanent(err) {
		t.Errorf("an alert without labels: err = %v, want a permanent error", err)
	}
}

// listed reports whether Alertmanager lists an active alert with the rule and subject.
func listed(t *testing.T, base, rule, subject string) bool {
	t.Helper()
	resp, err := http.Get(base + "/api/v2/alerts?active=true&silenced=true&inhibited=true&unprocessed=true")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got []struct {
		Labels map[string]string `json:"labels"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	for _, a := range got {
		if a.Labels["rule"] == rule && a.Labels["subject"] == subject {
			return true
		}
	}
	return false
}
