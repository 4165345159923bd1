package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pipewarden/pipewarden/internal/app"
	"github.com/pipewarden/pipewarden/internal/config"
	"github.com/pipewarden/pipewarden/internal/event"
	"github.com/pipewarden/pipewarden/internal/finding"
	"github.com/pipewarden/pipewarden/internal/store"
)

type harness struct {
	t     *testing.T
	app   *app.App
	base  string
	token string
	out   *bytes.Buffer
	dir   string
}

func start(t *testing.T, mutate func(*config.Config), before func(*app.App)) *harness {
	t.Helper()
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.Store.SQLite.Synchronous = "normal"
	if mutate != nil {
		mutate(cfg)
	}
	out := &bytes.Buffer{}
	a, err := app.New(context.Background(), app.Options{Config: cfg, Out: out, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if before != nil {
		before(a)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, app: a, base: "http://" + a.Addr(), out: out, dir: cfg.DataDir}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	if b, err := os.ReadFile(app.TokenFile(cfg.DataDir)); err == nil {
		h.token = strings.TrimSpace(string(b))
	}
	return h
}

func (h *harness) do(method, path, token, ctype string, body string) (int, http.Header, map[string]any) {
	h.t.Helper()
	req, _ := http.NewRequest(method, h.base+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, &m); err != nil {
			h.t.Fatalf("%s %s: response is not JSON: %s", method, path, b)
		}
	} else {
		m = map[string]any{"_raw": string(b)}
	}
	return resp.StatusCode, resp.Header, m
}

func evJSON(id, typ string) string {
	return fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"//test","type":%q,"subject":"s1","data":%s}`, id, typ, event.Examples()[typ])
}

const ce = "application/cloudevents+json"

func TestFirstStartCreatesAdminTokenFile(t *testing.T) {
	h := start(t, nil, nil)
	if h.token == "" || !strings.HasPrefix(h.token, "pw_") {
		t.Fatalf("no admin token written on first start: %q", h.token)
	}
	st, err := os.Stat(app.TokenFile(h.dir))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("admin.token mode = %v, %v; want 0600", st.Mode().Perm(), err)
	}
	if !strings.Contains(h.out.String(), app.TokenFile(h.dir)) {
		t.Errorf("the token path must be printed: %q", h.out.String())
	}
	if strings.Contains(h.out.String(), h.token) {
		t.Errorf("the token itself must never be printed")
	}
}

func TestRoundTrip(t *testing.T) {
	h := start(t, nil, nil)
	batch := "[" + evJSON("a1", "pipewarden.data.batch") + "," + evJSON("a2", "pipewarden.inference.request") + "]"
	code, _, body := h.do("POST", "/v1/events", h.token, "application/cloudevents-batch+json", batch)
	if code != http.StatusAccepted {
		t.Fatalf("POST = %d %v", code, body)
	}
	if fmt.Sprint(body["ids"]) != "[a1 a2]" {
		t.Errorf("ids = %v", body["ids"])
	}
	// The 202 means committed: readable at once.
	code, _, body = h.do("GET", "/v1/events?type=pipewarden.data.batch", h.token, "", "")
	items, _ := body["items"].([]any)
	if code != 200 || len(items) != 1 {
		t.Fatalf("GET events = %d %v", code, body)
	}
	ev := items[0].(map[string]any)["event"].(map[string]any)
	if ev["id"] != "a1" || ev["data"].(map[string]any)["dataset"] != "customers" {
		t.Errorf("event not served back as stored: %v", ev)
	}
	// Retrying the same batch stores nothing twice.
	if code, _, _ := h.do("POST", "/v1/events", h.token, "application/json", batch); code != http.StatusAccepted {
		t.Fatalf("retry = %d", code)
	}
	_, _, body = h.do("GET", "/v1/events", h.token, "", "")
	if n := len(body["items"].([]any)); n != 2 {
		t.Errorf("after retry: %d events, want 2", n)
	}
	_, _, body = h.do("GET", "/v1/assets?kind=endpoint", h.token, "", "")
	if items := body["items"].([]any); len(items) != 1 || items[0].(map[string]any)["name"] != "fraud-api" {
		t.Errorf("assets = %v", body)
	}
	code, _, body = h.do("GET", "/v1/alerts", h.token, "", "")
	if code != 200 || body["items"] == nil {
		t.Errorf("alerts route must exist with an empty list: %d %v", code, body)
	}
}

func TestPaginationOverHTTP(t *testing.T) {
	h := start(t, nil, nil)
	var evs []string
	for i := 0; i < 12; i++ {
		evs = append(evs, evJSON(fmt.Sprintf("p%02d", i), "pipewarden.access.auth"))
	}
	if code, _, b := h.do("POST", "/v1/events", h.token, ce, "["+strings.Join(evs, ",")+"]"); code != 202 {
		t.Fatal(code, b)
	}
	var got []string
	cursor := ""
	for pages := 0; pages < 10; pages++ {
		_, _, body := h.do("GET", "/v1/events?limit=5&cursor="+cursor, h.token, "", "")
		for _, it := range body["items"].([]any) {
			got = append(got, it.(map[string]any)["id"].(string))
		}
		next, _ := body["next"].(string)
		if next == "" {
			break
		}
		cursor = next
	}
	if len(got) != 12 || got[0] != "p00" || got[11] != "p11" {
		t.Errorf("paged ids = %v", got)
	}
}

func TestBadInput(t *testing.T) {
	h := start(t, func(c *config.Config) { c.Limits.MaxBodyBytes = 4096; c.Limits.MaxEventBytes = 2048 }, nil)
	tests := []struct {
		name, ctype, body string
		code              int
		want              string
	}{
		{"invalid json", ce, `{"specversion":`, 400, "invalid JSON"},
		{"unknown type", ce, evJSON("x", "pipewarden.data.batch")[:0] + `{"specversion":"1.0","id":"x","source":"s","type":"pipewarden.bogus","data":{}}`, 400, `unknown type "pipewarden.bogus"`},
		{"missing field", ce, `{"specversion":"1.0","id":"x","source":"s","type":"pipewarden.access.auth","data":{"principal":"p","result":"success"}}`, 400, "data.source_ip: is required"},
		{"one bad in batch", ce, "[" + evJSON("ok1", "pipewarden.access.auth") + `,{"specversion":"1.0","id":"bad","source":"s","type":"pipewarden.access.auth","data":{}}]`, 400, "event 1"},
		{"oversized body", ce, "[" + strings.Repeat(evJSON("big", "pipewarden.access.auth")+",", 40) + evJSON("big", "pipewarden.access.auth") + "]", 413, "exceeds the limit of 4096 bytes"},
		{"oversized event", ce, `{"specversion":"1.0","id":"x","source":"s","type":"pipewarden.access.auth","data":{"principal":"p","result":"success","source_ip":"1","pad":"` + strings.Repeat("x", 3000) + `"}}`, 413, "exceeds the limit of 2048 bytes"},
		{"wrong content type", "text/csv", evJSON("x", "pipewarden.access.auth"), 415, "Content-Type"},
		{"no content type", "", evJSON("x", "pipewarden.access.auth"), 415, "Content-Type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := h.do("POST", "/v1/events", h.token, tc.ctype, tc.body)
			if code != tc.code {
				t.Errorf("status = %d, want %d (%v)", code, tc.code, body)
			}
			if msg, _ := body["error"].(string); !strings.Contains(msg, tc.want) {
				t.Errorf("error %q does not contain %q", msg, tc.want)
			}
		})
	}
	// Nothing from the rejected requests was stored, not even the good event of the bad batch.
	_, _, body := h.do("GET", "/v1/events", h.token, "", "")
	if n := len(body["items"].([]any)); n != 0 {
		t.Errorf("%d events stored from rejected requests", n)
	}
	code, _, body := h.do("POST", "/v1/events", h.token, ce, "["+evJSON("ok1", "pipewarden.access.auth")+`,{"specversion":"1.0","id":"bad","source":"s","type":"pipewarden.access.auth","data":{}}]`)
	evs, _ := body["events"].([]any)
	if code != 400 || len(evs) != 1 || evs[0].(map[string]any)["index"] != float64(1) || evs[0].(map[string]any)["field"] != "data.principal" {
		t.Errorf("bad batch must name the event index and field: %d %v", code, body)
	}
	code, _, _ = h.do("GET", "/v1/events?since=yesterday", h.token, "", "")
	if code != 400 {
		t.Errorf("bad since = %d, want 400", code)
	}
	code, _, _ = h.do("GET", "/v1/events?cursor=zzz", h.token, "", "")
	if code != 400 {
		t.Errorf("bad cursor = %d, want 400", code)
	}
}

func TestAuth(t *testing.T) {
	ingestSecret, ingestHash := app.NewToken()
	viewerSecret, viewerHash := app.NewToken()
	h := start(t, func(c *config.Config) {
		c.Auth.Tokens = []config.Token{{Name: "ci", Role: "ingest", SHA256: ingestHash}, {Name: "dash", Role: "viewer", SHA256: viewerHash}}
	}, nil)
	if h.token != "" {
		t.Fatal("no admin token may be created when tokens are configured")
	}
	tests := []struct {
		name, method, path, token string
		code                      int
	}{
		{"no token", "GET", "/v1/events", "", 401},
		{"bad token", "GET", "/v1/events", "pw_nope", 401},
		{"viewer reads", "GET", "/v1/events", viewerSecret, 200},
		{"viewer cannot ingest", "POST", "/v1/events", viewerSecret, 403},
		{"ingest cannot read", "GET", "/v1/findings", ingestSecret, 403},
		{"ingest ingests", "POST", "/v1/events", ingestSecret, 202},
		{"healthz open", "GET", "/healthz", "", 200},
		{"readyz open", "GET", "/readyz", "", 200},
		{"metrics open on loopback", "GET", "/metrics", "", 200},
		{"unknown route", "GET", "/v1/nope", viewerSecret, 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, hdr, body := h.do(tc.method, tc.path, tc.token, ce, evJSON("auth-"+tc.name, "pipewarden.access.auth"))
			if code != tc.code {
				t.Errorf("%s %s = %d, want %d (%v)", tc.method, tc.path, code, tc.code, body)
			}
			if code == 401 && hdr.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if code >= 400 && body["error"] == nil {
				t.Errorf("error response without an error field: %v", body)
			}
		})
	}
}

func TestStoreTokenAndMetricsAccess(t *testing.T) {
	h := start(t, func(c *config.Config) { c.Metrics.Access = "token" }, nil)
	secret, hash := app.NewToken()
	if err := h.app.Store().CreateToken(context.Background(), store.Token{Name: "resp", Role: store.RoleResponder, Hash: hash}); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := h.do("GET", "/v1/alerts", secret, "", ""); code != 200 {
		t.Errorf("token from the store: %d", code)
	}
	if code, _, _ := h.do("GET", "/metrics", "", "", ""); code != 401 {
		t.Errorf("metrics.access=token without token = %d, want 401", code)
	}
	code, _, body := h.do("GET", "/metrics", h.token, "", "")
	if code != 200 || !strings.Contains(body["_raw"].(string), "pipewarden_http_request_duration_seconds") {
		t.Errorf("metrics with token = %d", code)
	}
}

func TestBackpressure429(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var consumed []string
	h := start(t, func(c *config.Config) { c.Bus.QueueSize = 3 }, func(a *app.App) {
		a.Events().Subscribe("slow", func(_ context.Context, evs []event.Event) {
			<-release
			mu.Lock()
			for _, e := range evs {
				consumed = append(consumed, e.ID)
			}
			mu.Unlock()
		})
	})
	var accepted []string
	var got429 bool
	for i := 0; i < 6; i++ {
		id := fmt.Sprintf("bp%d", i)
		code, hdr, body := h.do("POST", "/v1/events", h.token, ce, evJSON(id, "pipewarden.access.auth"))
		switch code {
		case 202:
			accepted = append(accepted, id)
		case 429:
			got429 = true
			if hdr.Get("Retry-After") == "" || body["error"] == nil {
				t.Errorf("429 needs Retry-After and an error: %v %v", hdr, body)
			}
		default:
			t.Fatalf("unexpected %d %v", code, body)
		}
	}
	if !got429 || len(accepted) != 3 {
		t.Fatalf("accepted %v, 429 seen %v; want 3 accepted then 429", accepted, got429)
	}
	// With a queue full the body is not even read: a request that would be a 400 is a 429 too.
	for _, path := range []string{"/v1/events", "/api/v1/lineage"} {
		if code, _, body := h.do("POST", path, h.token, ce, "not json"); code != 429 {
			t.Errorf("POST %s with a full queue: %d %v, want 429 before the body is read", path, code, body)
		}
	}
	_, _, body := h.do("GET", "/metrics", "", "", "")
	if !strings.Contains(body["_raw"].(string), `pipewarden_events_rejected_total{reason="backpressure"} 5`) {
		t.Errorf("refusals must be counted")
	}
	if !strings.Contains(body["_raw"].(string), `pipewarden_bus_refused_total{bus="events",subscriber="slow"} 5`) {
		t.Errorf("refusals must be counted against the subscriber that is behind")
	}
	if !strings.Contains(body["_raw"].(string), `pipewarden_bus_queue_depth{bus="events",subscriber="slow"} 3`) {
		t.Errorf("queue depth must be a metric")
	}
	// Refused events were not stored: the client retries them.
	_, _, body = h.do("GET", "/v1/events", h.token, "", "")
	if n := len(body["items"].([]any)); n != 3 {
		t.Errorf("stored %d, want only the 3 accepted", n)
	}
	close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.app.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(consumed) != fmt.Sprint(accepted) {
		t.Errorf("consumer got %v, want every accepted event %v (Stop must drain)", consumed, accepted)
	}
}

func TestFindingsFromDetectorsAreServed(t *testing.T) {
	h := start(t, nil, nil)
	f := finding.Finding{Rule: "test.rule", Severity: finding.High, Title: "something odd", Subject: finding.Subject{Kind: "model", Name: "m"}, Confidence: 0.9, ATLAS: []string{"AML.T0018"}}
	if err := h.app.PublishFindings([]finding.Finding{f}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		_, _, body := h.do("GET", "/v1/findings?severity=high", h.token, "", "")
		if items := body["items"].([]any); len(items) == 1 {
			it := items[0].(map[string]any)
			if it["rule"] != "test.rule" || it["severity"] != "high" {
				t.Errorf("finding = %v", it)
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("published finding never reached GET /v1/findings")
}

func TestRetentionDeletesOldEvents(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Listen, cfg.DataDir = "127.0.0.1:0", dir
	cfg.Store.Retention.Events = time.Hour
	cfg.Store.Retention.Interval = 20 * time.Millisecond
	a, err := app.New(context.Background(), app.Options{Config: cfg, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	d := event.NewDecoder(event.Limits{}, clock)
	evs, _ := d.Decode([]byte(evJSON("old", "pipewarden.access.auth")))
	if _, err := a.Store().AppendEvents(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(2 * time.Hour)
	mu.Unlock()
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer a.Stop(context.Background())
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		p, _ := a.Store().ListEvents(context.Background(), store.EventQuery{})
		if len(p.Items) == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("retention did not delete an event older than store.retention.events")
}

func TestRestartKeepsTokenAndEvents(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Listen, cfg.DataDir = "127.0.0.1:0", dir
	a, err := app.New(context.Background(), app.Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	tok1, _ := os.ReadFile(filepath.Join(dir, "admin.token"))
	a.Stop(context.Background())
	a, err = app.New(context.Background(), app.Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop(context.Background())
	tok2, _ := os.ReadFile(filepath.Join(dir, "admin.token"))
	if string(tok1) != string(tok2) || len(tok1) == 0 {
		t.Error("a restart must keep the existing admin token")
	}
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func readToken(dir string) (string, error) {
	b, err := os.ReadFile(app.TokenFile(dir))
	return strings.TrimSpace(string(b)), err
}

func TestOpenLineageIngestion(t *testing.T) {
	h := start(t, nil, nil)
	run := `{"eventType":"COMPLETE","eventTime":"2026-11-26T10:00:00Z","run":{"runId":"r-1"},"job":{"namespace":"etl","name":"load"},
"outputs":[{"namespace":"s3://lake","name":"customers","facets":{"schema":{"fields":[{"name":"id","type":"BIGINT"}]},"dataSource":{"name":"lake","uri":"s3://lake/customers"}},"outputFacets":{"outputStatistics":{"rowCount":10}}}]}`
	code, _, body := h.do("POST", "/api/v1/lineage", h.token, "application/json", run)
	if code != 202 || body["accepted"] != float64(1) {
		t.Fatalf("lineage = %d %v", code, body)
	}
	_, _, ev := h.do("GET", "/v1/events?type=pipewarden.data.batch", h.token, "", "")
	if s := toJSON(ev); !strings.Contains(s, "s3://lake/customers") {
		t.Errorf("converted batch event not stored: %s", s)
	}
	if code, _, _ := h.do("POST", "/api/v1/lineage", h.token, "application/json", `{"eventType":"COMPLETE"}`); code != 400 {
		t.Errorf("bad run event = %d, want 400", code)
	}
	_, _, assets := h.do("GET", "/v1/assets?kind=dataset", h.token, "", "")
	if !strings.Contains(toJSON(assets), `"customers"`) {
		t.Errorf("dataset asset not recorded: %v", assets)
	}
}
