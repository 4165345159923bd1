package alert_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/pipewarden/pipewarden/internal/alert"
	"github.com/pipewarden/pipewarden/internal/finding"
	"github.com/pipewarden/pipewarden/internal/notify"
	"github.com/pipewarden/pipewarden/internal/notify/file"
	"github.com/pipewarden/pipewarden/internal/store"
)

var fileStub = file.Config{Path: "unused.jsonl"}

func TestDedupHundredFindingsOneAlertOneNotificationPerGroupInterval(t *testing.T) {
	h := newHarness(t, defaultTestConfig())
	ctx := context.Background()
	f := fnd("model_unsigned_change", finding.High, "model", "fraud", t0)
	h.p.Handle(ctx, repeat(f, 100))

	as := h.alerts("")
	if len(as) != 1 || as[0].Count != 100 || as[0].State != store.AlertFiring {
		t.Fatalf("100 identical findings must make 1 firing alert with count 100: %+v", as)
	}
	if s := h.stats(); s.Suppressed["deduplicated"] != 99 || s.Alerts != 1 || s.Findings != 100 {
		t.Errorf("stats = %+v; want 99 deduplicated, 1 alert", s)
	}
	// group_wait (30s): nothing before it, one notification at it.
	h.advance(29*time.Second, time.Second)
	if n := len(h.recv.all()); n != 0 {
		t.Fatalf("%d notifications before group_wait", n)
	}
	h.advance(time.Second, time.Second)
	got := h.recv.all()
	if len(got) != 1 || len(got[0].msg.Alerts) != 1 || got[0].msg.Alerts[0].Annotations["count"] != "100" || got[0].msg.Version != "4" {
		t.Fatalf("after group_wait: %+v", got)
	}
	// The same finding keeps coming for an hour: the alert's set does not change, so no
	// notification until repeat_interval.
	for i := 0; i < 60; i++ {
		h.clk.Add(time.Minute)
		h.p.Handle(ctx, repeat(fnd("model_unsigned_change", finding.High, "model", "fraud", h.clk.Now()), 10))
		h.tick()
	}
	if n := len(h.recv.all()); n != 1 {
		t.Fatalf("repeats of one alert must not notify again before repeat_interval: %d notifications", n)
	}
	if as := h.alerts(""); len(as) != 1 || as[0].Count != 700 {
		t.Fatalf("alert after repeats: %+v", as)
	}
	// A new alert joins the group every minute: one notification per group_interval (5m).
	start := h.clk.Now()
	for i := 0; i < 30; i++ {
		h.clk.Add(time.Minute)
		h.p.Handle(ctx, []finding.Finding{fnd("model_unsigned_change", finding.High, "model", "fraud", h.clk.Now(), "group", fmt.Sprint(i))})
		h.tick()
	}
	got = h.recv.all()[1:]
	if len(got) < 5 || len(got) > 7 {
		t.Fatalf("30 minutes of new alerts in one group: %d notifications, want one per 5m group_interval", len(got))
	}
	last := got[0].at
	for _, s := range got[1:] {
		if s.at.Sub(last) < 5*time.Minute {
			t.Errorf("notifications %s apart, less than group_interval", s.at.Sub(last))
		}
		last = s.at
	}
	if got[0].at.Sub(start) > 5*time.Minute+time.Minute {
		t.Errorf("first new alert notified after %s", got[0].at.Sub(start))
	}
	if n := len(got[len(got)-1].msg.Alerts); n < 25 {
		t.Errorf("the last notification lists %d alerts; want the whole group", n)
	}
}

func TestRepeatInterval(t *testing.T) {
	cfg := defaultTestConfig()
	cfg.AutoResolve.After = -1
	h := newHarness(t, cfg)
	h.p.Handle(context.Background(), []finding.Finding{fnd("r", finding.High, "model", "m", t0)})
	h.advance(4*time.Hour+10*time.Minute, time.Minute)
	got := h.recv.all()
	if len(got) != 2 || got[1].at.Sub(got[0].at) < 4*time.Hour || got[0].key == got[1].key {
		t.Fatalf("want the first notification and one repeat after 4h with a new key: %+v", got)
	}
}

func TestSilenceSuppressesAndCounts(t *testing.T) {
	h := newHarness(t, defaultTestConfig())
	ctx := context.Background()
	s, err := h.p.AddSilence(ctx, alert.SilenceRequest{Matchers: []string{`rule="noisy"`, `subject=~"stag.*"`}, Duration: "1h", Comment: "migration"}, "alice")
	if err != nil {
		t.Fatal(err)
	}
	h.p.Handle(ctx, repeat(fnd("noisy", finding.High, "dataset", "staging", t0), 5))
	h.p.Handle(ctx, []finding.Finding{fnd("noisy", finding.High, "dataset", "prod", t0)})
	h.advance(time.Minute, 10*time.Second)
	got := h.recv.all()
	if len(got) != 1 || got[0].msg.Alerts[0].Labels["subject"] != "prod" {
		t.Fatalf("only the unsilenced alert may be notified: %+v", got)
	}
	st := h.stats()
	if st.Suppressed["silenced"] != 5 || st.Silences != 1 {
		t.Errorf("stats = %+v; want 5 silenced findings, 1 active silence", st)
	}
	var silenced store.AlertDetail
	for _, a := range h.alerts("") {
		if a.Subject.Name == "staging" {
			silenced, _ = h.p.Alert(ctx, a.ID)
		}
	}
	if len(silenced.SilencedBy) != 1 || silenced.SilencedBy[0] != s.ID || silenced.Count != 5 {
		t.Errorf("silenced alert must be kept and say by what: %+v", silenced)
	}
	if s.CreatedBy != "alice" || len(h.audit) == 0 || h.audit[0].Kind != "silence.created" {
		t.Errorf("silence author and audit: %+v %+v", s, h.audit)
	}
	// Expiring it lets the alert through at the next flush.
	if _, err := h.p.ExpireSilence(ctx, s.ID, "alice"); err != nil {
		t.Fatal(err)
	}
	h.advance(6*time.Minute, time.Minute)
	got = h.recv.all()
	if len(got) != 2 || got[1].msg.Alerts[0].Labels["subject"] != "staging" {
		t.Fatalf("after expiry: %+v", got)
	}
	if vs, _ := h.p.Silences(ctx, "expired"); len(vs) != 1 {
		t.Errorf("expired silences: %+v", vs)
	}
}

func TestSilenceValidation(t *testing.T) {
	h := newHarness(t, defaultTestConfig())
	tests := []struct {
		name string
		req  alert.SilenceRequest
	}{
		{"no matchers", alert.SilenceRequest{Comment: "x"}},
		{"matches everything", alert.SilenceRequest{Matchers: []string{`rule=~".*"`}, Comment: "x"}},
		{"no comment", alert.SilenceRequest{Matchers: []string{`rule="a"`}}},
		{"bad matcher", alert.SilenceRequest{Matchers: []string{`rule=="a"`}, Comment: "x"}},
		{"too long", alert.SilenceRequest{Matchers: []string{`rule="a"`}, Comment: "x", Duration: "10000h"}},
		{"ends before start", alert.SilenceRequest{Matchers: []string{`rule="a"`}, Comment: "x", EndsAt: t0.Add(-time.Hour)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := h.p.AddSilence(context.Background(), tc.req, "a"); !errors.Is(err, alert.ErrInvalid) {
				t.Errorf("err = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestInhibition(t *testing.T) {
	h := newHarness(t, defaultTestConfig())
	ctx := context.Background()
	h.p.Handle(ctx, []finding.Finding{
		fnd("deploy_unregistered_digest", finding.Critical, "endpoint", "fraud-api", t0),
		fnd("deploy_without_approval", finding.High, "endpoint", "fraud-api", t0),
		fnd("deploy_without_approval", finding.High, "endpoint", "other-api", t0),
	})
	h.p.Handle(ctx, []finding.Finding{fnd("deploy_without_approval", finding.High, "endpoint", "fraud-api", t0)})
	h.advance(40*time.Second, 10*time.Second)
	var subjects []string
	for _, s := range h.recv.all() {
		for _, a := range s.msg.Alerts {
			subjects = append(subjects, a.Labels["rule"]+"/"+a.Labels["subject"])
		}
	}
	want := map[string]bool{"deploy_unregistered_digest/fraud-api": true, "deploy_without_approval/other-api": true}
	if len(subjects) != 2 || !want[subjects[0]] || !want[subjects[1]] {
		t.Fatalf("notified %v; the high alert on fraud-api must be inhibited by the critical one", subjects)
	}
	if n := h.stats().Suppressed["inhibited"]; n != 2 {
		t.Errorf("inhibited findings = %d, want 2", n)
	}
	var crit, inhibited store.Alert
	for _, a := range h.alerts("") {
		switch {
		case a.Severity == finding.Critical:
			crit = a
		case a.Subject.Name == "fraud-api":
			inhibited = a
		}
	}
	d, _ := h.p.Alert(ctx, inhibited.ID)
	if len(d.InhibitedBy) != 1 || d.InhibitedBy[0] != crit.ID {
		t.Fatalf("inhibited_by = %v, want [%s]", d.InhibitedBy, crit.ID)
	}
	// Resolving the source releases the target at its group's next flush.
	if _, err := h.p.Transition(ctx, crit.ID, alert.ActionResolve, "bob", "fixed"); err != nil {
		t.Fatal(err)
	}
	h.advance(6*time.Minute, time.Minute)
	found := false
	for _, s := range h.recv.all()[2:] {
		for _, a := range s.msg.Alerts {
			if a.Labels["rule"] == "deploy_without_approval" && a.Labels["subject"] == "fraud-api" && a.Status == "firing" {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("the released alert was not notified: %+v", h.recv.all())
	}
}

func TestRestartBetweenFindingAndDeliveryDeliversOnce(t *testing.T) {
	dir := t.TempDir()
	clk := &clock{t: t0}
	recv := &capture{now: clk.Now}
	cfg := withFileStubs(defaultTestConfig())
	open := func() (*alert.Pipeline, func()) {
		st := openStore(t, dir+"/pw.db", clk.Now)
		p, err := alert.New(context.Background(), alert.Options{Config: cfg, Store: st, Now: clk.Now,
			Notifiers: map[string]notify.Notifier{"team": recv}})
		if err != nil {
			t.Fatal(err)
		}
		return p, func() { st.Close() }
	}
	ctx := context.Background()
	p, closeStore := open()
	p.Handle(ctx, repeat(fnd("r", finding.Critical, "model", "m", t0), 3))
	closeStore() // crash: the group was never flushed

	clk.Add(31 * time.Second)
	p, closeStore = open()
	recv.fail = errors.New("receiver down")
	if err := p.Tick(ctx); err != nil { // flushes into the outbox; delivery fails
		t.Fatal(err)
	}
	closeStore() // crash with the notification in the outbox

	recv.fail = nil
	for i := 0; i < 3; i++ {
		clk.Add(time.Minute)
		p, closeStore = open()
		for j := 0; j < 5; j++ {
			if err := p.Tick(ctx); err != nil {
				t.Fatal(err)
			}
		}
		closeStore()
	}
	got := recv.all()
	if len(got) != 1 || got[0].msg.Alerts[0].Annotations["count"] != "3" {
		t.Fatalf("want exactly one delivery across restarts, got %d: %+v", len(got), got)
	}
}

func TestRedeliveryKeepsIdempotencyKey(t *testing.T) {
	cfg := defaultTestConfig()
	cfg.Delivery.MinBackoff = time.Second
	h := newHarness(t, cfg)
	h.recv.fail = errors.New("503")
	h.p.Handle(context.Background(), []finding.Finding{fnd("r", finding.High, "model", "m", t0)})
	h.advance(31*time.Second, time.Second)
	h.recv.fail = nil
	h.advance(10*time.Second, time.Second)
	got := h.recv.all()
	if len(got) != 1 {
		t.Fatalf("retry after failure: %d deliveries", len(got))
	}
	st := h.stats()
	if st.Outbox["delivered"] != 1 || st.Outbox["pending"] != 0 {
		t.Errorf("outbox = %v", st.Outbox)
	}
}

func TestRoutingTreeWithContinue(t *testing.T) {
	cfg := defaultTestConfig()
	cfg.Receivers = []alert.Receiver{{Name: "team"}, {Name: "pager"}, {Name: "other"}}
	cfg.Route.Routes = []alert.Route{
		{Matchers: []string{`severity="critical"`}, Receiver: "pager", Continue: true},
		{Matchers: []string{`stage=~"data|training"`}, Receiver: "other"},
	}
	h := newHarness(t, cfg)
	h.p.Handle(context.Background(), []finding.Finding{
		fnd("a", finding.Critical, "dataset", "d1", t0, "stage", "data"),     // pager and other
		fnd("b", finding.Critical, "model", "m1", t0, "stage", "deploy"),     // pager only
		fnd("c", finding.Low, "dataset", "d2", t0, "stage", "training"),      // other
		fnd("d", finding.Medium, "endpoint", "e1", t0, "stage", "inference"), // team (root)
	})
	h.advance(31*time.Second, time.Second)
	byRule := map[string][]string{}
	for _, s := range h.recv.all() {
		for _, a := range s.msg.Alerts {
			byRule[a.Labels["rule"]] = append(byRule[a.Labels["rule"]], s.msg.Receiver)
		}
	}
	want := map[string]string{"a": "[other pager]", "b": "[pager]", "c": "[other]", "d": "[team]"}
	for r, w := range want {
		got := byRule[r]
		if len(got) == 2 && got[0] > got[1] {
			got[0], got[1] = got[1], got[0]
		}
		if fmt.Sprint(got) != w {
			t.Errorf("rule %s went to %v, want %s", r, got, w)
		}
	}
}

func TestLifecycle(t *testing.T) {
	h := newHarness(t, defaultTestConfig())
	ctx := context.Background()
	h.p.Handle(ctx, []finding.Finding{fnd("r", finding.High, "model", "m", t0)})
	h.advance(31*time.Second, time.Second)
	id := h.alerts("")[0].ID
	steps := []struct {
		name, action, comment, wantState string
		wantErr                          error
	}{
		{"ack", alert.ActionAck, "", store.AlertAcknowledged, nil},
		{"ack twice", alert.ActionAck, "", "", alert.ErrTransition},
		{"false positive needs a comment", alert.ActionFalsePositive, "", "", alert.ErrInvalid},
		{"resolve", alert.ActionResolve, "patched", store.AlertResolved, nil},
		{"resolve a resolved alert", alert.ActionResolve, "", "", alert.ErrTransition},
		{"false positive after resolve", alert.ActionFalsePositive, "expected retraining", store.AlertFalsePositive, nil},
		{"nothing after false positive", alert.ActionFalsePositive, "again", "", alert.ErrTransition},
	}
	for _, s := range steps {
		a, err := h.p.Transition(ctx, id, s.action, "bob", s.comment)
		if s.wantErr != nil {
			if !errors.Is(err, s.wantErr) {
				t.Errorf("%s: err = %v, want %v", s.name, err, s.wantErr)
			}
			continue
		}
		if err != nil || a.State != s.wantState {
			t.Fatalf("%s: state %s, err %v; want %s", s.name, a.State, err, s.wantState)
		}
	}
	if _, err := h.p.Transition(ctx, "nope", alert.ActionAck, "bob", ""); !errors.Is(err, alert.ErrNotFound) {
		t.Errorf("unknown alert: %v", err)
	}
	d, _ := h.p.Alert(ctx, id)
	var actions []string
	for _, ev := range d.Events {
		actions = append(actions, ev.Action+":"+ev.Actor)
	}
	if fmt.Sprint(actions) != "[created:pipewarden acknowledged:bob resolved:bob false_positive:bob]" || d.Comment != "expected retraining" {
		t.Errorf("history = %v, comment %q", actions, d.Comment)
	}
	// The resolution was notified to the group that named the alert.
	h.advance(6*time.Minute, time.Minute)
	got := h.recv.all()
	if len(got) != 2 || got[1].msg.Status != "resolved" {
		t.Fatalf("resolved notification: %+v", got)
	}
	// The fingerprint fires again: a new alert, with the recurrence raising its priority.
	h.p.Handle(ctx, []finding.Finding{fnd("r", finding.High, "model", "m", h.clk.Now())})
	firing := h.alerts(store.AlertFiring)
	if len(firing) != 1 || firing[0].ID == id {
		t.Fatalf("a new alert must open: %+v", firing)
	}
	nd, _ := h.p.Alert(ctx, firing[0].ID)
	if nd.Recurrence != 1 || nd.Priority <= d.Priority {
		t.Errorf("recurrence %d priority %v (first %v)", nd.Recurrence, nd.Priority, d.Priority)
	}
}

func TestAutoResolve(t *testing.T) {
	cfg := defaultTestConfig()
	cfg.AutoResolve = alert.AutoResolve{After: time.Hour, Rules: map[string]time.Duration{"slow": 3 * time.Hour}}
	h := newHarness(t, cfg)
	h.p.Handle(context.Background(), []finding.Finding{
		fnd("fast", finding.High, "model", "m", t0),
		fnd("slow", finding.High, "model", "m", t0),
		// A finding replayed from two days ago is quiet from when it arrived, not from its time.
		fnd("replayed", finding.High, "model", "m", t0.Add(-48*time.Hour)),
	})
	h.advance(time.Minute, time.Minute)
	if r := h.alerts(store.AlertResolved); len(r) != 0 {
		t.Fatalf("resolved at once: %+v", r)
	}
	h.advance(60*time.Minute, time.Minute)
	if r := h.alerts(store.AlertResolved); len(r) != 2 || r[0].Rule == "slow" || r[1].Rule == "slow" {
		t.Fatalf("after 1h: resolved %+v", r)
	}
	h.advance(2*time.Hour, 5*time.Minute)
	if r := h.alerts(store.AlertResolved); len(r) != 3 {
		t.Fatalf("after 3h: resolved %+v", r)
	}
	if s := h.stats(); s.AutoResolved != 3 || s.Open != 0 {
		t.Errorf("stats = %+v", s)
	}
}

func TestPriorityOrder(t *testing.T) {
	cfg := defaultTestConfig()
	cfg.Criticality = []alert.Criticality{{Kind: "model", Name: "fraud-*", Level: "critical"}, {Name: "sandbox*", Level: "low"}}
	cfg.InhibitRules = nil
	h := newHarness(t, cfg)
	h.p.Handle(context.Background(), []finding.Finding{
		fnd("r", finding.High, "model", "sandbox-1", t0),
		fnd("r", finding.High, "model", "fraud-v2", t0),
		fnd("r", finding.Critical, "model", "plain", t0),
		fnd("r", finding.Medium, "model", "plain2", t0),
	})
	var order []string
	for _, a := range h.alerts("") {
		order = append(order, a.Subject.Name)
	}
	if fmt.Sprint(order) != "[fraud-v2 plain plain2 sandbox-1]" {
		t.Errorf("alerts by priority: %v", order)
	}
}

func TestRateLimitCounted(t *testing.T) {
	cfg := defaultTestConfig()
	cfg.RateLimit = alert.RateLimit{NewAlertsPerRule: 3, Per: time.Minute}
	h := newHarness(t, cfg)
	var fs []finding.Finding
	for i := 0; i < 10; i++ {
		fs = append(fs, fnd("scan", finding.Low, "client", fmt.Sprint("c", i), t0))
	}
	fs = append(fs, finding.Finding{Rule: "", Title: "invalid"})
	h.p.Handle(context.Background(), fs)
	s := h.stats()
	if s.Alerts != 3 || s.Suppressed["rate_limited"] != 7 || s.Suppressed["invalid"] != 1 || s.Findings != 11 {
		t.Errorf("stats = %+v", s)
	}
}

// TestConcurrentUse drives the pipeline from several goroutines as the daemon does (the bus,
// the ticker, API requests); run with -race.
func TestConcurrentUse(t *testing.T) {
	h := newHarness(t, blockConfig(true, false), func(o *alert.Options) { o.Blocker = &blocker{} })
	ctx := context.Background()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 200; i++ {
			h.p.Handle(ctx, []finding.Finding{
				fnd("inference_extraction", finding.High, "client", fmt.Sprint("c", i%7), t0),
				fnd("r", finding.Critical, "model", fmt.Sprint("m", i%5), t0),
			})
		}
	}()
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
				h.clk.Add(time.Second)
				_ = h.p.Tick(ctx)
			}
		}
	}()
	for i := 0; i < 50; i++ {
		for _, a := range h.alerts("") {
			if d, err := h.p.Alert(ctx, a.ID); err == nil {
				_, _ = json.Marshal(d)
			}
			if i%10 == 0 {
				_, _ = h.p.Transition(ctx, a.ID, alert.ActionAck, "x", "")
			}
		}
		if i == 25 {
			_, _ = h.p.AddSilence(ctx, alert.SilenceRequest{Matchers: []string{`subject="c1"`}, Comment: "c"}, "x")
		}
		_, _ = h.p.Stats(ctx)
	}
	<-done
	close(stop)
	if s := h.stats(); s.Findings != 400 {
		t.Errorf("findings = %d", s.Findings)
	}
}
