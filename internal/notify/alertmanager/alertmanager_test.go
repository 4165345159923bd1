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

	"github.com/pipewarden/pipewarden/internal/notify"
	"github.com/pipewarden/pipewarden/internal/notify/alertmanager"
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
	resp, err := http.Get(base + "/api/v2/alerts?active=true&silenced=true&inhibited=true&unprocessed=true")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got []struct {
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
		Status      struct {
			State string `json:"state"`
		} `json:"status"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, a := range got {
		if a.Labels["rule"] == "model_unsigned_change" && a.Labels["subject"] == "fraud" && a.Annotations["alert_id"] == "a1" {
			found = true
		}
		if a.Labels["rule"] == "deploy_without_approval" {
			t.Errorf("a resolved alert must not be active in Alertmanager: %+v", a)
		}
	}
	if !found {
		t.Fatalf("alertmanager does not list our firing alert: %+v", got)
	}
	// A malformed request is refused by Alertmanager and reported as permanent.
	bad := &notify.Message{Alerts: []notify.Alert{{Status: "firing", Labels: map[string]string{}}}}
	if err := n.Notify(ctx, "k2", bad); err == nil || !notify.IsPermanent(err) {
		t.Errorf("an alert without labels: err = %v, want a permanent error", err)
	}
	t.Logf("alertmanager lists %d alert(s)", len(got))
}
