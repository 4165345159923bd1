package slack_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pipewarden/pipewarden/internal/notify"
	"github.com/pipewarden/pipewarden/internal/notify/slack"
)

func TestRender(t *testing.T) {
	m := &notify.Message{Status: "firing", CommonLabels: map[string]string{"rule": "deploy_without_approval"}}
	for i := 0; i < 12; i++ {
		m.Alerts = append(m.Alerts, notify.Alert{Status: "firing", GeneratorURL: "https://pw.example/alerts/a1",
			Labels:      map[string]string{"severity": "critical", "subject_kind": "endpoint", "subject": "fraud-api", "rule": "deploy_without_approval"},
			Annotations: map[string]string{"summary": "endpoint <!channel> changed", "count": "3", "runbook": "Roll back"}})
	}
	p := slack.Render(m, 10)
	b, _ := json.Marshal(p)
	s := string(b)
	if p.Blocks[0].Type != "header" || !strings.Contains(p.Text, "deploy_without_approval") {
		t.Errorf("header: %+v", p.Blocks[0])
	}
	for _, want := range []string{"*Severity*\\ncritical", "endpoint fraud-api", "https://pw.example/alerts/a1", "and 2 more", "Runbook: Roll back"} {
		if !strings.Contains(s, want) {
			t.Errorf("message lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "<!channel>") {
		t.Error("alert text must not be able to mention a channel")
	}
}

func TestNotify(t *testing.T) {
	var got slack.Payload
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &got)
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	m := &notify.Message{Status: "resolved", Alerts: []notify.Alert{{Status: "resolved", Labels: map[string]string{"severity": "high"}, Annotations: map[string]string{}}}}
	if err := slack.New(slack.Config{URL: srv.URL}, nil).Notify(context.Background(), "k", m); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got.Text, "[RESOLVED]") {
		t.Errorf("text = %q", got.Text)
	}
}
