package gate_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pipewarden/pipewarden/internal/event"
	"github.com/pipewarden/pipewarden/internal/gate"
)

func TestDeploymentStatus(t *testing.T) {
	tests := []struct {
		name       string
		code       int
		body       string
		wantPaused bool
		wantKnown  bool
		wantReason string
		wantErr    string
	}{
		{"not paused", 200, `{"paused": false}`, false, true, "", ""},
		{"paused with reason", 200, `{"paused": true, "reason": "critical alert modelscan on fraud-model", "since": "2025-06-01T10:00:00Z"}`, true, true, "critical alert modelscan on fraud-model", ""},
		{"route missing", 404, `{"error": "no route for GET /v1/deployments/status"}`, false, false, "", ""},
		{"unauthorized", 401, `{"error": "missing bearer token"}`, false, false, "", "401 Unauthorized: missing bearer token (give a token"},
		{"server error", 500, `oops`, false, false, "", "500 Internal Server Error"},
		{"not json", 200, `paused`, false, false, "", "not a JSON object"},
		{"no paused field", 200, `{"status": "ok"}`, false, false, "", `no boolean "paused"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodGet || r.URL.Path != "/v1/deployments/status" {
					t.Errorf("request %s %s", r.Method, r.URL.Path)
				}
				if got := r.Header.Get("Authorization"); got != "Bearer s3cret" {
					t.Errorf("Authorization %q", got)
				}
				w.WriteHeader(tc.code)
				io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			c, err := gate.NewClient(srv.URL+"/", "s3cret", srv.Client())
			if err != nil {
				t.Fatal(err)
			}
			st, err := c.DeploymentStatus(context.Background())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if st.Paused != tc.wantPaused || st.Known != tc.wantKnown || st.Reason != tc.wantReason {
				t.Errorf("status %+v", st)
			}
		})
	}
}

func TestDeploymentStatusUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	c, err := gate.NewClient(url, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeploymentStatus(context.Background()); err == nil || !strings.Contains(err.Error(), url) {
		t.Errorf("error %v, want one naming %s", err, url)
	}
}

func TestNewClientRejectsBadURLs(t *testing.T) {
	for _, u := range []string{"", "localhost:7700", "ftp://host", "http://", "://x"} {
		if _, err := gate.NewClient(u, "", nil); err == nil {
			t.Errorf("NewClient(%q) accepted", u)
		}
	}
}

// The events the gate sends are valid for the daemon: they pass the same decoder and
// vocabulary checks as POST /v1/events.
func TestPostEventIsAcceptedByTheEventDecoder(t *testing.T) {
	dec := event.NewDecoder(event.DefaultLimits(), time.Now)
	var got []event.Event
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/events" {
			t.Errorf("request %s %s", r.Method, r.URL.Path)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/cloudevents+json" {
			t.Errorf("Content-Type %q", ct)
		}
		b, _ := io.ReadAll(r.Body)
		evs, err := dec.Decode(b)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
			return
		}
		got = append(got, evs...)
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	c, err := gate.NewClient(srv.URL, "t", srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	deploy, err := gate.DeployChange("fraud-scoring", "sha256:"+strings.Repeat("ab", 32), "ci-bot", false, now, map[string]any{"verdict": "fail"})
	if err != nil {
		t.Fatal(err)
	}
	depsEv, err := gate.NewEvent(gate.TypeDepsChange, "/pipewarden/deps-check", "fraud", now, map[string]any{
		"project": "fraud", "lockfile": "requirements.txt", "added": []any{}, "removed": []any{},
		"changed": []map[string]string{{"name": "numpy", "from": "1.26.4", "to": "1.26.0", "kind": "downgraded"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range []gate.Event{deploy, depsEv} {
		if err := c.PostEvent(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != 2 {
		t.Fatalf("%d events stored", len(got))
	}
	d, err := got[0].DataMap()
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Type != gate.TypeDeployChange || d["approved"] != false || d["endpoint"] != "fraud-scoring" || d["actor"] != "ci-bot" || d["verdict"] != "fail" {
		t.Errorf("deploy event %s %v", got[0].Type, d)
	}
	if !got[0].Time.Equal(now) || got[0].ID == "" || got[0].ID == got[1].ID {
		t.Errorf("event ids/time: %q %q %v", got[0].ID, got[1].ID, got[0].Time)
	}

	// A rejected event is an error carrying the daemon's reason.
	bad, _ := gate.NewEvent(gate.TypeDeployChange, "/pipewarden/check", "x", now, map[string]any{"endpoint": "x"})
	err = c.PostEvent(context.Background(), bad)
	if err == nil || !strings.Contains(err.Error(), "400") || !strings.Contains(err.Error(), "model_digest") {
		t.Errorf("error %v, want a 400 naming the missing field", err)
	}
}
