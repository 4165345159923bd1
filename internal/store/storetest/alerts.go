package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/pipewarden/pipewarden/internal/finding"
	"github.com/pipewarden/pipewarden/internal/store"
)

func alertDetail(id, fp, rule, state string, prio float64) store.AlertDetail {
	return store.AlertDetail{
		Alert: store.Alert{ID: id, Fingerprint: fp, Rule: rule, Severity: finding.High, Title: "t " + id,
			Subject: finding.Subject{Kind: "model", Name: "m"}, Labels: map[string]string{"rule": rule},
			State: state, Count: 1, Priority: prio, FirstSeen: t0, LastSeen: t0},
		Findings: []finding.Finding{{ID: "f-" + id, Rule: rule, Severity: finding.High, Title: "x", Evidence: map[string]any{"k": "v"}}},
		EventIDs: []string{"e1"},
		Events:   []store.AlertEvent{{Time: t0, Actor: "pipewarden", Action: "created"}},
	}
}

func testAlertsSaveGet(t *testing.T, open Opener) {
	s, _ := mustOpen(t, open)
	ctx := context.Background()
	as := []store.AlertDetail{
		alertDetail("a1", "fp1", "r1", store.AlertFiring, 10),
		alertDetail("a2", "fp2", "r1", store.AlertAcknowledged, 50),
		alertDetail("a3", "fp3", "r2", store.AlertResolved, 90),
	}
	if err := s.SaveAlerts(ctx, as); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetAlert(ctx, "a1")
	if err != nil || got.Fingerprint != "fp1" || len(got.Findings) != 1 || got.Findings[0].Evidence["k"] != "v" || got.Events[0].Action != "created" {
		t.Fatalf("GetAlert = %+v, %v", got, err)
	}
	if _, err := s.GetAlert(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown alert: %v, want ErrNotFound", err)
	}
	// Replacing by id changes state, count and priority.
	as[0].State, as[0].Count, as[0].Priority = store.AlertResolved, 7, 99
	if err := s.SaveAlerts(ctx, as[:1]); err != nil {
		t.Fatal(err)
	}
	open_, err := s.OpenAlerts(ctx)
	if err != nil || len(open_) != 1 || open_[0].ID != "a2" {
		t.Fatalf("OpenAlerts = %+v, %v; want only a2", open_, err)
	}
	p, err := s.ListAlerts(ctx, store.AlertQuery{})
	if err != nil || len(p.Items) != 3 || p.Items[0].ID != "a1" || p.Items[0].Count != 7 || p.Items[2].ID != "a2" {
		t.Fatalf("ListAlerts by priority = %+v, %v", p.Items, err)
	}
	if p, _ := s.ListAlerts(ctx, store.AlertQuery{State: store.AlertResolved}); len(p.Items) != 2 {
		t.Errorf("state filter: %+v", p.Items)
	}
}

func testAlertsOneOpenPerFingerprint(t *testing.T, open Opener) {
	s, _ := mustOpen(t, open)
	ctx := context.Background()
	if err := s.SaveAlerts(ctx, []store.AlertDetail{alertDetail("a1", "fp", "r", store.AlertResolved, 1), alertDetail("a2", "fp", "r", store.AlertFiring, 1)}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveAlerts(ctx, []store.AlertDetail{alertDetail("a3", "fp", "r", store.AlertFiring, 1)}); err == nil {
		t.Fatal("a second open alert with the same fingerprint must be refused")
	}
	if a, err := s.GetAlert(ctx, "a3"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a refused batch must store nothing: %+v %v", a, err)
	}
}

func testAlertsFeedback(t *testing.T, open Opener) {
	s, _ := mustOpen(t, open)
	ctx := context.Background()
	as := []store.AlertDetail{
		alertDetail("a1", "fp1", "r1", store.AlertFalsePositive, 1),
		alertDetail("a2", "fp1", "r1", store.AlertFalsePositive, 1),
		alertDetail("a3", "fp1", "r1", store.AlertResolved, 1),
		alertDetail("a4", "fp1", "r1", store.AlertFiring, 1),
		alertDetail("a5", "fp2", "r2", store.AlertResolved, 1),
	}
	if err := s.SaveAlerts(ctx, as); err != nil {
		t.Fatal(err)
	}
	fb, err := s.RuleFeedback(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []store.RuleFeedback{{Rule: "r1", Alerts: 4, FalsePositives: 2}, {Rule: "r2", Alerts: 1, FalsePositives: 0}}
	if fmt.Sprint(fb) != fmt.Sprint(want) {
		t.Errorf("RuleFeedback = %+v, want %+v", fb, want)
	}
	cc, err := s.ClosedCounts(ctx, []string{"fp1", "fp2", "fp3"})
	if err != nil || cc["fp1"] != 3 || cc["fp2"] != 1 || cc["fp3"] != 0 {
		t.Errorf("ClosedCounts = %v, %v", cc, err)
	}
}

func testSilences(t *testing.T, open Opener) {
	s, _ := mustOpen(t, open)
	ctx := context.Background()
	mk := func(id string, ends time.Time) store.Silence {
		return store.Silence{ID: id, Matchers: []store.Matcher{{Name: "rule", Value: "r", IsEqual: true}}, StartsAt: t0, EndsAt: ends,
			CreatedBy: "alice", Comment: "maintenance", CreatedAt: t0, UpdatedAt: t0}
	}
	for _, sl := range []store.Silence{mk("s1", t0.Add(time.Hour)), mk("s2", t0.Add(2*time.Hour))} {
		if err := s.PutSilence(ctx, sl); err != nil {
			t.Fatal(err)
		}
	}
	all, err := s.ListSilences(ctx, time.Time{})
	if err != nil || len(all) != 2 || all[0].Matchers[0].Value != "r" || all[0].CreatedBy != "alice" {
		t.Fatalf("ListSilences = %+v, %v", all, err)
	}
	// Expiring replaces the silence by id.
	if err := s.PutSilence(ctx, mk("s2", t0)); err != nil {
		t.Fatal(err)
	}
	live, _ := s.ListSilences(ctx, t0.Add(time.Minute))
	if len(live) != 1 || live[0].ID != "s1" {
		t.Errorf("silences ending after t0+1m = %+v, want s1", live)
	}
}

func testOutbox(t *testing.T, open Opener) {
	s, _ := mustOpen(t, open)
	ctx := context.Background()
	g := store.GroupState{Key: "g1", Route: "0", Labels: map[string]string{"rule": "r"}, Seq: 1, NextFlush: t0.Add(time.Minute)}
	n := func(key string) store.Notification {
		return store.Notification{Key: key, Receiver: "hook", GroupKey: "g1", Payload: json.RawMessage(`{"k":"` + key + `"}`), NextAt: t0, CreatedAt: t0}
	}
	if err := s.RecordFlush(ctx, []store.GroupState{g}, []store.Notification{n("k1"), n("k2")}); err != nil {
		t.Fatal(err)
	}
	// The same flush again (a crash before the state was known to be saved) enqueues nothing.
	g.Seq = 2
	if err := s.RecordFlush(ctx, []store.GroupState{g}, []store.Notification{n("k1")}); err != nil {
		t.Fatal(err)
	}
	gs, err := s.ListGroups(ctx)
	if err != nil || len(gs) != 1 || gs[0].Seq != 2 || gs[0].Labels["rule"] != "r" {
		t.Fatalf("ListGroups = %+v, %v", gs, err)
	}
	if got, _ := s.ClaimNotifications(ctx, t0.Add(-time.Second), time.Minute, 10); len(got) != 0 {
		t.Fatalf("nothing is due before next_at: %+v", got)
	}
	got, err := s.ClaimNotifications(ctx, t0, time.Minute, 10)
	if err != nil || len(got) != 2 || got[0].Key != "k1" || got[1].Key != "k2" || got[0].Attempts != 1 || string(got[0].Payload) != `{"k":"k1"}` {
		t.Fatalf("claim = %+v, %v", got, err)
	}
	if again, _ := s.ClaimNotifications(ctx, t0.Add(30*time.Second), time.Minute, 10); len(again) != 0 {
		t.Fatalf("leased notifications must not be claimed twice: %+v", again)
	}
	if err := s.FinishNotification(ctx, "k1", store.DeliveryResult{Delivered: true, At: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishNotification(ctx, "k2", store.DeliveryResult{RetryAt: t0.Add(10 * time.Second), Error: "503"}); err != nil {
		t.Fatal(err)
	}
	got, _ = s.ClaimNotifications(ctx, t0.Add(10*time.Second), time.Minute, 10)
	if len(got) != 1 || got[0].Key != "k2" || got[0].Attempts != 2 || got[0].LastError != "503" {
		t.Fatalf("retry claim = %+v", got)
	}
	if err := s.FinishNotification(ctx, "k2", store.DeliveryResult{Error: "gave up"}); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishNotification(ctx, "k1", store.DeliveryResult{Delivered: true}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("finishing a delivered notification again: %v, want ErrNotFound", err)
	}
	st, err := s.NotificationStats(ctx)
	if err != nil || st[store.NotificationDelivered] != 1 || st[store.NotificationFailed] != 1 || st[store.NotificationPending] != 0 {
		t.Errorf("stats = %v, %v", st, err)
	}
	// An expired lease (a crash during delivery) makes the notification due again.
	if err := s.RecordFlush(ctx, nil, []store.Notification{n("k3")}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.ClaimNotifications(ctx, t0, time.Minute, 10); len(got) != 1 {
		t.Fatalf("claim k3: %+v", got)
	}
	if got, _ := s.ClaimNotifications(ctx, t0.Add(2*time.Minute), time.Minute, 10); len(got) != 1 || got[0].Key != "k3" || got[0].Attempts != 2 {
		t.Fatalf("after the lease: %+v", got)
	}
	if err := s.RecordFlush(ctx, []store.GroupState{{Key: "g1", Deleted: true}}, nil); err != nil {
		t.Fatal(err)
	}
	if gs, _ := s.ListGroups(ctx); len(gs) != 0 {
		t.Errorf("deleted group still listed: %+v", gs)
	}
}

func testActions(t *testing.T, open Opener) {
	s, _ := mustOpen(t, open)
	ctx := context.Background()
	a := store.Action{ID: "act1", Key: "k", AlertID: "a1", Response: "block", Type: "block_client", Target: "c1",
		Status: store.ActionPending, CreatedAt: t0, UpdatedAt: t0}
	got, created, err := s.CreateAction(ctx, a)
	if err != nil || !created || got.ID != "act1" {
		t.Fatalf("CreateAction = %+v, %v, %v", got, created, err)
	}
	dup := a
	dup.ID = "act2"
	got, created, err = s.CreateAction(ctx, dup)
	if err != nil || created || got.ID != "act1" {
		t.Fatalf("same key must return the stored action: %+v, %v, %v", got, created, err)
	}
	a.Status, a.Result, a.ApprovedBy = store.ActionSucceeded, "blocked", "bob"
	if err := s.SaveAction(ctx, a); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetAction(ctx, "act1"); err != nil || got.Status != store.ActionSucceeded || got.ApprovedBy != "bob" {
		t.Fatalf("GetAction = %+v, %v", got, err)
	}
	if _, err := s.GetAction(ctx, "act2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("refused duplicate must not be stored: %v", err)
	}
	if err := s.SaveAction(ctx, store.Action{ID: "nope"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SaveAction of unknown id: %v", err)
	}
	b := store.Action{ID: "act3", Key: "k3", AlertID: "a1", Type: "webhook", Status: store.ActionPending, CreatedAt: t0}
	if _, _, err := s.CreateAction(ctx, b); err != nil {
		t.Fatal(err)
	}
	pend, err := s.ListActions(ctx, store.ActionPending)
	if err != nil || len(pend) != 1 || pend[0].ID != "act3" {
		t.Errorf("ListActions(pending) = %+v, %v", pend, err)
	}
	if all, _ := s.ListActions(ctx, ""); len(all) != 2 || all[0].ID != "act1" {
		t.Errorf("ListActions() = %+v", all)
	}
}
