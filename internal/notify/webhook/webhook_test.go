package webhook_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/pipewarden/pipewarden/internal/notify"
	"github.com/pipewarden/pipewarden/internal/notify/webhook"
)

func msg(n int) *notify.Message {
	m := &notify.Message{Version: notify.Version, GroupKey: "0:{rule=\"r\"}", Status: "firing", Receiver: "hook",
		GroupLabels: map[string]string{"rule": "r"}, CommonLabels: map[string]string{"rule": "r"}, CommonAnnotations: map[string]string{}}
	for i := 0; i < n; i++ {
		m.Alerts = append(m.Alerts, notify.Alert{Status: "firing", Labels: map[string]string{"rule": "r"}, Annotations: map[string]string{"summary": "s"},
			StartsAt: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC), Fingerprint: "fp"})
	}
	return m
}

func TestWebhook(t *testing.T) {
	now := func() time.Time { return time.Unix(1790000000, 0) }
	tests := []struct {
		name       string
		cfg        webhook.Config
		status     int
		wantErr    bool
		permanent  bool
		wantSigned bool
		alerts     int
		truncated  int
	}{
		{name: "signed", cfg: webhook.Config{Secret: "k"}, status: 200, wantSigned: true, alerts: 3},
		{name: "unsigned", status: 204, alerts: 3},
		{name: "truncated", cfg: webhook.Config{MaxAlerts: 2}, status: 200, alerts: 2, truncated: 1},
		{name: "server error retries", status: 503, wantErr: true},
		{name: "rate limited retries", status: 429, wantErr: true},
		{name: "client error is permanent", status: 400, wantErr: true, permanent: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var body []byte
			var hdr http.Header
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ = io.ReadAll(r.Body)
				hdr = r.Header
				w.WriteHeader(tc.status)
			}))
			defer srv.Close()
			tc.cfg.URL = srv.URL
			err := webhook.New(tc.cfg, nil, now).Notify(context.Background(), "key-1", msg(3))
			if (err != nil) != tc.wantErr || notify.IsPermanent(err) != tc.permanent {
				t.Fatalf("err = %v (permanent %v)", err, notify.IsPermanent(err))
			}
			if tc.wantErr {
				return
			}
			if hdr.Get(webhook.HeaderIdempotency) != "key-1" || hdr.Get("Content-Type") != "application/json" {
				t.Errorf("headers: %v", hdr)
			}
			sig := hdr.Get(webhook.HeaderSignature)
			if tc.wantSigned {
				if hdr.Get(webhook.HeaderTimestamp) != "1790000000" || !webhook.Verify("k", "1790000000", body, sig) {
					t.Errorf("signature %q does not verify", sig)
				}
				if webhook.Verify("other", "1790000000", body, sig) || webhook.Verify("k", "1790000001", body, sig) {
					t.Error("signature verifies with the wrong secret or timestamp")
				}
			} else if sig != "" {
				t.Errorf("unsigned webhook sent a signature")
			}
			var m map[string]any
			if err := json.Unmarshal(body, &m); err != nil {
				t.Fatal(err)
			}
			// Alertmanager's webhook format, version 4.
			for _, k := range []string{"version", "groupKey", "truncatedAlerts", "status", "receiver", "groupLabels", "commonLabels", "commonAnnotations", "externalURL", "alerts"} {
				if _, ok := m[k]; !ok {
					t.Errorf("payload lacks %q", k)
				}
			}
			if m["version"] != "4" || len(m["alerts"].([]any)) != tc.alerts || int(m["truncatedAlerts"].(float64)) != tc.truncated {
				t.Errorf("payload = %v", m)
			}
			a := m["alerts"].([]any)[0].(map[string]any)
			for _, k := range []string{"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"} {
				if _, ok := a[k]; !ok {
					t.Errorf("alert lacks %q", k)
				}
			}
		})
	}
}
