package alert_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pipewarden/pipewarden/internal/alert"
	"github.com/pipewarden/pipewarden/internal/finding"
	"github.com/pipewarden/pipewarden/internal/notify"
	"github.com/pipewarden/pipewarden/internal/store"
	"github.com/pipewarden/pipewarden/internal/store/sqlite"
)

var t0 = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// sent is one notification a capture receiver got.
type sent struct {
	at  time.Time
	key string
	msg notify.Message
}

// capture is a receiver that records what it is sent; fail makes it return an error.
type capture struct {
	mu   sync.Mutex
	now  func() time.Time
	got  []sent
	fail error
}

func (c *capture) Notify(ctx context.Context, key string, m *notify.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail != nil {
		return c.fail
	}
	c.got = append(c.got, sent{at: c.now(), key: key, msg: *m})
	return nil
}

func (c *capture) all() []sent {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]sent(nil), c.got...)
}

func openStore(t *testing.T, path string, now func() time.Time) *sqlite.Store {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "pw.db")
	}
	s, err := sqlite.Open(context.Background(), path, sqlite.Options{Now: now, Synchronous: "normal"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// harness is a pipeline on a fresh SQLite store with a fake clock and one capture receiver
// named "team".
type harness struct {
	t     *testing.T
	clk   *clock
	st    *sqlite.Store
	p     *alert.Pipeline
	recv  *capture
	audit []alert.AuditRecord
	mu    sync.Mutex
}

func defaultTestConfig() alert.Config {
	c := alert.DefaultConfig()
	c.Receivers = []alert.Receiver{{Name: "team", File: nil}}
	c.Route.Receiver = "team"
	return c
}

func newHarness(t *testing.T, cfg alert.Config, opts ...func(*alert.Options)) *harness {
	t.Helper()
	h := &harness{t: t, clk: &clock{t: t0}}
	h.recv = &capture{now: h.clk.Now}
	h.st = openStore(t, "", h.clk.Now)
	t.Cleanup(func() { h.st.Close() })
	h.p = h.start(cfg, opts...)
	return h
}

func (h *harness) start(cfg alert.Config, opts ...func(*alert.Options)) *alert.Pipeline {
	h.t.Helper()
	o := alert.Options{Config: withFileStubs(cfg), Store: h.st, Now: h.clk.Now,
		Notifiers: map[string]notify.Notifier{"team": h.recv, "pager": h.recv, "other": h.recv},
		Audit: func(ctx context.Context, r alert.AuditRecord) {
			h.mu.Lock()
			h.audit = append(h.audit, r)
			h.mu.Unlock()
		}}
	for _, f := range opts {
		f(&o)
	}
	p, err := alert.New(context.Background(), o)
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

// withFileStubs gives receivers without a kind a file kind so the configuration validates;
// the tests replace every receiver with a capture.
func withFileStubs(c alert.Config) alert.Config {
	rs := append([]alert.Receiver(nil), c.Receivers...)
	for i := range rs {
		if rs[i].Webhook == nil && rs[i].Slack == nil && rs[i].Alertmanager == nil && rs[i].File == nil {
			rs[i].File = &fileStub
		}
	}
	c.Receivers = rs
	return c
}

func (h *harness) tick() {
	h.t.Helper()
	if err := h.p.Tick(context.Background()); err != nil {
		h.t.Fatal(err)
	}
}

// advance moves the clock in steps, ticking after each.
func (h *harness) advance(d, step time.Duration) {
	h.t.Helper()
	for end := h.clk.Now().Add(d); h.clk.Now().Before(end); {
		h.clk.Add(step)
		h.tick()
	}
}

func (h *harness) alerts(state string) []store.Alert {
	h.t.Helper()
	p, err := h.st.ListAlerts(context.Background(), store.AlertQuery{State: state})
	if err != nil {
		h.t.Fatal(err)
	}
	return p.Items
}

func (h *harness) stats() alert.Stats {
	h.t.Helper()
	s, err := h.p.Stats(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

func fnd(rule string, sev finding.Severity, kind, subject string, at time.Time, labels ...string) finding.Finding {
	f := finding.Finding{Rule: rule, Severity: sev, Title: rule + " on " + subject, Subject: finding.Subject{Kind: kind, Name: subject},
		Confidence: 0.8, Time: at, EventIDs: []string{"ev-" + at.Format("150405.000")}, ATLAS: []string{"AML.T0018"},
		Labels: map[string]string{}}
	for i := 0; i+1 < len(labels); i += 2 {
		f.Labels[labels[i]] = labels[i+1]
	}
	return f
}

func repeat(f finding.Finding, n int) []finding.Finding {
	out := make([]finding.Finding, n)
	for i := range out {
		out[i] = f
	}
	return out
}
