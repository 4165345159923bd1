package respond_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pipewarden/pipewarden/internal/notify/webhook"
	"github.com/pipewarden/pipewarden/internal/respond"
	"github.com/pipewarden/pipewarden/internal/store"
	"github.com/pipewarden/pipewarden/internal/store/sqlite"
)

var t0 = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

type restorer struct{ calls []string }

func (r *restorer) RestoreModel(ctx context.Context, model, reason string) (string, error) {
	r.calls = append(r.calls, model)
	if model == "broken" {
		return "", errors.New("no approved version")
	}
	return "v7", nil
}

func newRunner(t *testing.T, now *time.Time, cs ...respond.Config) (*respond.Runner, *sqlite.Store, *restorer) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "pw.db"), sqlite.Options{Synchronous: "normal"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for i := range cs {
		if err := cs[i].Validate(); err != nil {
			t.Fatal(err)
		}
	}
	m := &restorer{}
	return respond.New(respond.Options{Responses: cs, Store: st, State: st, Models: m, Now: func() time.Time { return *now }}), st, m
}

func alertFor(id, kind, subject string) respond.Alert {
	return respond.Alert{ID: id, Rule: "r", SubjectKind: kind, Subject: subject, Labels: map[string]string{}}
}

func TestRollbackIdempotentAndRateLimited(t *testing.T) {
	now := t0
	r, _, m := newRunner(t, &now, respond.Config{Name: "rb", Type: respond.RollbackModel, RateLimit: 2, Per: time.Hour})
	ctx := context.Background()
	tests := []struct {
		name, alert, subject, want string
	}{
		{"first", "a1", "fraud", store.ActionSucceeded},
		{"same alert again is the same action", "a1", "fraud", store.ActionSucceeded},
		{"restore fails", "a2", "broken", store.ActionFailed},
		{"over the limit", "a3", "fraud", store.ActionLimited},
	}
	for _, tc := range tests {
		acts := r.Trigger(ctx, alertFor(tc.alert, "model", tc.subject), []string{"rb"})
		if len(acts) != 1 || acts[0].Status != tc.want {
			t.Errorf("%s: %+v, want status %s", tc.name, acts, tc.want)
		}
	}
	if strings.Join(m.calls, ",") != "fraud,broken" {
		t.Errorf("restore calls = %v: a repeated trigger must not act twice, a limited one not at all", m.calls)
	}
	now = now.Add(time.Hour)
	if acts := r.Trigger(ctx, alertFor("a4", "model", "fraud"), []string{"rb"}); acts[0].Status != store.ActionSucceeded {
		t.Errorf("after the window: %+v", acts)
	}
}

func TestMissingTargetFails(t *testing.T) {
	now := t0
	r, _, _ := newRunner(t, &now, respond.Config{Name: "b", Type: respond.BlockClient})
	acts := r.Trigger(context.Background(), alertFor("a1", "model", "m"), []string{"b"})
	if len(acts) != 1 || acts[0].Status != store.ActionFailed || !strings.Contains(acts[0].Error, "client") {
		t.Errorf("block without a client: %+v", acts)
	}
	// block_client without a connected gateway fails instead of pretending.
	acts = r.Trigger(context.Background(), alertFor("a2", "client", "c"), []string{"b"})
	if acts[0].Status != store.ActionFailed || !strings.Contains(acts[0].Error, "gateway") {
		t.Errorf("no gateway: %+v", acts)
	}
}

func TestPauseDeployments(t *testing.T) {
	now := t0
	r, _, _ := newRunner(t, &now, respond.Config{Name: "pause", Type: respond.PauseDeployments, TTL: 2 * time.Hour})
	ctx := context.Background()
	if d, _ := r.Deployments(ctx); d.Paused {
		t.Fatal("paused before any action")
	}
	acts := r.Trigger(ctx, alertFor("a1", "model", "m"), []string{"pause"})
	if acts[0].Status != store.ActionSucceeded {
		t.Fatalf("%+v", acts)
	}
	d, err := r.Deployments(ctx)
	if err != nil || !d.Paused || d.AlertID != "a1" || !d.Until.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("status = %+v, %v", d, err)
	}
	now = t0.Add(2 * time.Hour)
	if d, _ := r.Deployments(ctx); d.Paused {
		t.Errorf("a pause must end at its TTL: %+v", d)
	}
	now = t0
	if err := r.ResumeDeployments(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if d, _ := r.Deployments(ctx); d.Paused {
		t.Errorf("resumed but still paused")
	}
}

func TestWebhookActionSigned(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if !webhook.Verify("s3cret", r.Header.Get(webhook.HeaderTimestamp), b, r.Header.Get(webhook.HeaderSignature)) {
			w.WriteHeader(401)
			return
		}
		var body map[string]any
		_ = json.Unmarshal(b, &body)
		got = append(got, body["alert_id"].(string)+"/"+r.Header.Get(webhook.HeaderIdempotency))
	}))
	defer srv.Close()
	now := t0
	r, _, _ := newRunner(t, &now, respond.Config{Name: "hook", Type: respond.Webhook, URL: srv.URL, Secret: "s3cret"})
	acts := r.Trigger(context.Background(), alertFor("a1", "model", "m"), []string{"hook"})
	if acts[0].Status != store.ActionSucceeded || len(got) != 1 || !strings.HasPrefix(got[0], "a1/") {
		t.Fatalf("webhook action = %+v, received %v", acts, got)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		c    respond.Config
	}{
		{"no name", respond.Config{Type: respond.BlockClient}},
		{"unknown type", respond.Config{Name: "x", Type: "reboot"}},
		{"webhook without url", respond.Config{Name: "x", Type: respond.Webhook}},
		{"negative ttl", respond.Config{Name: "x", Type: respond.BlockClient, TTL: -1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.c.Validate(); err == nil {
				t.Error("want an error")
			}
		})
	}
}

func TestResumeQueuedAfterCrash(t *testing.T) {
	now := t0
	r, st, m := newRunner(t, &now, respond.Config{Name: "rb", Type: respond.RollbackModel})
	ctx := context.Background()
	// A crash after the action was stored as queued and before it ran.
	a := store.Action{ID: "x1", Key: "k1", AlertID: "a1", Response: "rb", Type: respond.RollbackModel, Target: "fraud", Status: store.ActionQueued, CreatedAt: t0}
	if _, _, err := st.CreateAction(ctx, a); err != nil {
		t.Fatal(err)
	}
	got, err := r.Resume(ctx, st)
	if err != nil || len(got) != 1 || got[0].Status != store.ActionSucceeded || len(m.calls) != 1 {
		t.Fatalf("resume = %+v, %v; calls %v", got, err, m.calls)
	}
	if again, _ := r.Resume(ctx, st); len(again) != 0 {
		t.Errorf("a finished action must not run again: %+v", again)
	}
}
