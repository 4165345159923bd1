package gateway_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pipewarden/pipewarden/internal/event"
	"github.com/pipewarden/pipewarden/internal/finding"
	"github.com/pipewarden/pipewarden/internal/gateway"
)

// upstream echoes what it received, as a KServe server would answer, and streams SSE on
// /stream.
type upstream struct {
	mu      sync.Mutex
	headers []http.Header
	bodies  []string
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	u.mu.Lock()
	u.headers = append(u.headers, r.Header.Clone())
	u.bodies = append(u.bodies, string(b))
	u.mu.Unlock()
	if r.URL.Path == "/stream" {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			fmt.Fprintf(w, "data: %d\n\n", i)
			w.(http.Flusher).Flush()
			time.Sleep(20 * time.Millisecond)
		}
		return
	}
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"outputs":[{"name":"p","shape":[1,2],"datatype":"FP32","data":[0.2,0.8]}]}`)
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func newClock() *clock               { return &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }
func body(x ...float64) string {
	b, _ := json.Marshal(x)
	return `{"inputs":[{"name":"x","shape":[1,` + fmt.Sprint(len(x)) + `],"datatype":"FP32","data":` + string(b) + `}]}`
}
func newGateway(t *testing.T, o gateway.Options) *gateway.Gateway {
	t.Helper()
	g, err := gateway.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

func routeTo(t *testing.T, h http.Handler) gateway.Route {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	return gateway.Route{Name: "m", Upstream: u, Features: 2}
}

func do(t *testing.T, g http.Handler, key, path, b string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest("POST", path, strings.NewReader(b))
	r.Header.Set("Content-Type", "application/json")
	if key != "" {
		r.Header.Set("X-API-Key", key)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	g.ServeHTTP(w, r)
	return w
}

// inlineCheckCase is one request of the inline-check sequence both front ends are held to.
type inlineCheckCase struct {
	name, key, body string
	status          int
	errSubstr       string
}

// inlineCheckCases is that sequence, in order, for a gateway with ClientRate 1, ClientBurst 2,
// BodyBytes 200 and the key "bad" blocked: two requests of k1 reach the upstream.
func inlineCheckCases() []inlineCheckCase {
	return []inlineCheckCase{
		{"forwarded", "k1", body(1, 2), 200, `"outputs"`},
		{"blocked client", "bad", body(1, 2), 403, "client blocked"},
		{"body too large", "k2", body(make([]float64, 100)...), 413, "body larger"},
		{"wrong feature count", "k3", body(1, 2, 3), 400, "3 features"},
		{"shape does not match data", "k4", `{"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[1,2]}]}`, 400, "does not match"},
		{"unparseable with a schema", "k5", `{"inputs":[`, 400, "schema"},
		{"burst left", "k1", body(1, 2), 200, ""},
		{"rate limited", "k1", body(1, 2), 429, "rate limit"},
	}
}

func TestInlineChecks(t *testing.T) {
	up := &upstream{}
	c := newClock()
	g := newGateway(t, gateway.Options{Routes: []gateway.Route{routeTo(t, up)}, Now: c.now,
		Limits: gateway.Limits{ClientRate: 1, ClientBurst: 2, BodyBytes: 200}})
	if _, err := g.Blocks().Add(gateway.Block{Client: gateway.ClientID("key", "bad"), Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range inlineCheckCases() {
		t.Run(tc.name, func(t *testing.T) {
			w := do(t, g, tc.key, "/v2/models/m/infer", tc.body)
			if w.Code != tc.status || !strings.Contains(w.Body.String(), tc.errSubstr) {
				t.Fatalf("status %d body %s; want %d with %q", w.Code, w.Body, tc.status, tc.errSubstr)
			}
			if w.Code >= 400 && w.Header().Get("Content-Type") != "application/json" {
				t.Errorf("error is not JSON: %q", w.Header().Get("Content-Type"))
			}
			if w.Code == 429 && w.Header().Get("Retry-After") != "1" {
				t.Errorf("Retry-After = %q, want 1", w.Header().Get("Retry-After"))
			}
		})
	}
	c.add(2 * time.Second) // the bucket refills
	if w := do(t, g, "k1", "/x", body(1, 2)); w.Code != 200 {
		t.Fatalf("after refill: %d", w.Code)
	}
	up.mu.Lock()
	defer up.mu.Unlock()
	if len(up.bodies) != 3 || up.bodies[0] != body(1, 2) {
		t.Fatalf("upstream saw %d bodies (%q)", len(up.bodies), up.bodies)
	}
}

func TestShadowModeForwardsAndCounts(t *testing.T) {
	up := &upstream{}
	g := newGateway(t, gateway.Options{Routes: []gateway.Route{routeTo(t, up)}, Mode: gateway.Shadow,
		Limits: gateway.Limits{ClientRate: 0.001, ClientBurst: 1}})
	g.Blocks().Add(gateway.Block{Client: gateway.ClientID("key", "bad")})
	for _, b := range []string{body(1, 2), body(1, 2, 3), body(1, 2)} {
		if w := do(t, g, "bad", "/", b); w.Code != 200 {
			t.Fatalf("shadow mode answered %d", w.Code)
		}
	}
	cs := g.Clients()
	if len(cs) != 1 || cs[0].Shadow != 3 || cs[0].Blocked != 0 || cs[0].State != "blocked" {
		t.Fatalf("clients %+v", cs)
	}
}

func TestProxyKeepsTraceparentAndStreams(t *testing.T) {
	up := &upstream{}
	g := newGateway(t, gateway.Options{Routes: []gateway.Route{routeTo(t, up)}})
	front := httptest.NewServer(g)
	defer front.Close()
	req, _ := http.NewRequest("POST", front.URL+"/stream", strings.NewReader(body(1, 2)))
	req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	var got []string
	for sc.Scan() {
		if l := sc.Text(); l != "" {
			got = append(got, l)
		}
	}
	if strings.Join(got, ",") != "data: 0,data: 1,data: 2" {
		t.Fatalf("stream = %q", got)
	}
	up.mu.Lock()
	defer up.mu.Unlock()
	if tp := up.headers[0].Get("traceparent"); tp != "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" {
		t.Fatalf("traceparent = %q", tp)
	}
}

func TestClientIdentity(t *testing.T) {
	g := newGateway(t, gateway.Options{Routes: []gateway.Route{routeTo(t, &upstream{})}, ClientHeader: "X-Tenant-Key"})
	cert := &x509.Certificate{Subject: pkix.Name{CommonName: "svc-a", Organization: []string{"acme"}}}
	tests := []struct {
		name string
		prep func(r *http.Request)
		want string
	}{
		{"api key header", func(r *http.Request) { r.Header.Set("X-Tenant-Key", "secret-1") }, gateway.ClientID("key", "secret-1")},
		{"bearer token", func(r *http.Request) { r.Header.Set("Authorization", "Bearer tok") }, gateway.ClientID("bearer", "tok")},
		{"mtls subject", func(r *http.Request) { r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}} }, "mtls:CN=svc-a,O=acme"},
		{"source ip", func(r *http.Request) { r.RemoteAddr = "198.51.100.7:5555" }, "ip:198.51.100.7"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", strings.NewReader(body(1, 2)))
			tc.prep(r)
			g.ServeHTTP(httptest.NewRecorder(), r)
			for _, c := range g.Clients() {
				if c.Client == tc.want {
					return
				}
			}
			t.Fatalf("no client %q in %+v", tc.want, g.Clients())
		})
	}
	if strings.Contains(gateway.ClientID("key", "secret-1"), "secret") {
		t.Fatal("client ids must not contain the key")
	}
}

func TestBlocksExpireAndPersist(t *testing.T) {
	dir := t.TempDir()
	c := newClock()
	o := gateway.Options{Routes: []gateway.Route{routeTo(t, &upstream{})}, Now: c.now, DataDir: dir}
	g := newGateway(t, o)
	if _, err := g.Blocks().Add(gateway.Block{Client: "ip:192.0.2.1", Until: c.now().Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	g.Blocks().Add(gateway.Block{Client: "ip:192.0.2.2"})
	if _, err := g.Blocks().Add(gateway.Block{Client: "x", Until: c.now()}); err == nil {
		t.Fatal("a block ending now must be refused")
	}
	g.Close()
	g2 := newGateway(t, o)
	if n := len(g2.Blocks().List()); n != 2 {
		t.Fatalf("%d blocks after restart, want 2", n)
	}
	c.add(2 * time.Minute)
	if _, ok := g2.Blocks().Active("ip:192.0.2.1"); ok {
		t.Fatal("block did not expire")
	}
	if l := g2.Blocks().List(); len(l) != 1 || l[0].Client != "ip:192.0.2.2" {
		t.Fatalf("list %+v", l)
	}
	if ok, _ := g2.Blocks().Remove("ip:192.0.2.2"); !ok {
		t.Fatal("remove")
	}
}

func TestAdminHandler(t *testing.T) {
	g := newGateway(t, gateway.Options{Routes: []gateway.Route{routeTo(t, &upstream{})}})
	h := gateway.AdminHandler(g)
	call := func(method, target, b string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(method, target, strings.NewReader(b)))
		return w
	}
	tests := []struct {
		name, method, target, body string
		status                     int
		substr                     string
	}{
		{"add", "POST", "/v1/gateway/blocks", `{"client":"key:abc","ttl":"2h","reason":"scraping"}`, 201, `"until"`},
		{"list", "GET", "/v1/gateway/blocks", "", 200, `"client":"key:abc"`},
		{"bad ttl", "POST", "/v1/gateway/blocks", `{"client":"key:abc","ttl":"soon"}`, 400, "ttl"},
		{"unknown field", "POST", "/v1/gateway/blocks", `{"client":"key:abc","tll":"1h"}`, 400, "tll"},
		{"no client", "POST", "/v1/gateway/blocks", `{"reason":"x"}`, 400, "client is required"},
		{"clients", "GET", "/v1/gateway/clients", "", 200, `"gateway"`},
		{"delete", "DELETE", "/v1/gateway/blocks?client=key:abc", "", 204, ""},
		{"delete again", "DELETE", "/v1/gateway/blocks?client=key:abc", "", 404, "not blocked"},
		{"delete without client", "DELETE", "/v1/gateway/blocks", "", 400, "client"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := call(tc.method, tc.target, tc.body)
			if w.Code != tc.status || !strings.Contains(w.Body.String(), tc.substr) {
				t.Fatalf("%d %s; want %d with %q", w.Code, w.Body, tc.status, tc.substr)
			}
		})
	}
}

// TestEventsAreValidCloudEvents: what the gateway reports passes the daemon's own decoder.
func TestEventsAreValidCloudEvents(t *testing.T) {
	var mu sync.Mutex
	var evs []event.Event
	var fs []finding.Finding
	rep := gateway.ReporterFunc(func(_ context.Context, e []event.Event, f []finding.Finding) {
		mu.Lock()
		evs, fs = append(evs, e...), append(fs, f...)
		mu.Unlock()
	})
	g := newGateway(t, gateway.Options{Routes: []gateway.Route{routeTo(t, &upstream{})}, Reporter: rep, SampleRate: 1,
		Synchronous: true, Interval: time.Hour})
	for i := range 5 {
		do(t, g, "k", "/", body(float64(i), 2))
	}
	do(t, g, "k", "/", body(1, 2, 3)) // rejected
	g.Blocks().Add(gateway.Block{Client: "key:zzz", Reason: "manual"})
	g.Flush()
	mu.Lock()
	defer mu.Unlock()
	if len(evs) != 6 { // one aggregate + five samples
		t.Fatalf("%d events", len(evs))
	}
	var raws []json.RawMessage
	for _, e := range evs {
		raws = append(raws, e.Raw)
	}
	batch, _ := json.Marshal(raws)
	dec := event.NewDecoder(event.DefaultLimits(), time.Now)
	got, err := dec.Decode(batch)
	if err != nil || len(got) != 6 {
		t.Fatalf("decoder: %v (%d events)", err, len(got))
	}
	var agg map[string]any
	for _, e := range got {
		d, _ := e.DataMap()
		if d["aggregated"] == true {
			agg = d
		}
	}
	if agg == nil || agg["count"] != float64(6) || agg["rejected"] != float64(1) || agg["status"] != float64(200) {
		t.Fatalf("aggregate %v", agg)
	}
	found := false
	for _, f := range fs {
		if f.Rule == "gateway.response.blocked" && f.Subject.Name == "key:zzz" {
			found = true
		}
	}
	if !found {
		t.Fatalf("no audit finding for the manual block: %+v", fs)
	}
}

func TestLimitsCapClientState(t *testing.T) {
	g := newGateway(t, gateway.Options{Routes: []gateway.Route{routeTo(t, &upstream{})}, Limits: gateway.Limits{MaxClients: 10}})
	for i := range 50 {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = fmt.Sprintf("192.0.2.%d:1", i)
		g.ServeHTTP(httptest.NewRecorder(), r)
	}
	if s := g.Stats(); s.Clients != 10 {
		t.Fatalf("%d clients kept, cap 10", s.Clients)
	}
}

func TestOptionsValidation(t *testing.T) {
	u, _ := url.Parse("http://127.0.0.1:1")
	for name, o := range map[string]gateway.Options{
		"no routes":    {},
		"bad mode":     {Routes: []gateway.Route{{Upstream: u}}, Mode: "audit"},
		"bad on_error": {Routes: []gateway.Route{{Upstream: u}}, OnError: "explode"},
		"relative":     {Routes: []gateway.Route{{Upstream: &url.URL{Path: "x"}}}},
	} {
		if _, err := gateway.New(o); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
}
