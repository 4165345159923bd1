package gateway_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pipewarden/pipewarden/internal/gateway"
)

// front serves g on a loopback listener with the gateway's front end; std serves every
// connection with net/http.
type front struct {
	srv  *gateway.Server
	addr string
	url  string
}

func serveFront(t *testing.T, g *gateway.Gateway, std bool) *front {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := gateway.NewServer(g, gateway.ServerOptions{StandardOnly: std, ReadHeaderTimeout: 5 * time.Second})
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; err != http.ErrServerClosed {
			t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
		}
	})
	return &front{srv: s, addr: ln.Addr().String(), url: "http://" + ln.Addr().String()}
}

// bothFronts runs fn against the fast front end and against net/http alone, each with a
// gateway of its own; on the fast front end every request must have taken the fast path.
func bothFronts(t *testing.T, mk func(t *testing.T) *gateway.Gateway, fn func(t *testing.T, f *front, g *gateway.Gateway)) {
	for _, std := range []bool{false, true} {
		name := map[bool]string{false: "fast", true: "net/http"}[std]
		t.Run(name, func(t *testing.T) {
			g := mk(t)
			f := serveFront(t, g, std)
			fn(t, f, g)
			fast, handed := f.srv.Counts()
			if !std && (fast == 0 || handed != 0) {
				t.Fatalf("fast front end: %d fast requests, %d hand-offs; want all fast", fast, handed)
			}
			if std && fast != 0 {
				t.Fatalf("net/http front end served %d fast requests", fast)
			}
		})
	}
}

func send(t *testing.T, c *http.Client, method, url, key, b string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(out)
}

// TestFrontEndsInlineChecks is TestInlineChecks over HTTP, through both front ends.
func TestFrontEndsInlineChecks(t *testing.T) {
	var up *upstream
	c := newClock()
	mk := func(t *testing.T) *gateway.Gateway {
		up = &upstream{}
		g := newGateway(t, gateway.Options{Routes: []gateway.Route{routeTo(t, up)}, Now: c.now,
			Limits: gateway.Limits{ClientRate: 1, ClientBurst: 2, BodyBytes: 200}})
		if _, err := g.Blocks().Add(gateway.Block{Client: gateway.ClientID("key", "bad"), Reason: "test"}); err != nil {
			t.Fatal(err)
		}
		return g
	}
	bothFronts(t, mk, func(t *testing.T, f *front, g *gateway.Gateway) {
		client := &http.Client{}
		defer client.CloseIdleConnections()
		for _, tc := range inlineCheckCases() {
			resp, got := send(t, client, "POST", f.url+"/v2/models/m/infer", tc.key, tc.body)
			if resp.StatusCode != tc.status || !strings.Contains(got, tc.errSubstr) {
				t.Fatalf("%s: status %d body %s; want %d with %q", tc.name, resp.StatusCode, got, tc.status, tc.errSubstr)
			}
			if resp.StatusCode >= 400 {
				var m map[string]any
				if resp.Header.Get("Content-Type") != "application/json" || json.Unmarshal([]byte(got), &m) != nil || m["error"] == nil {
					t.Errorf("%s: error is not a JSON error: %q %q", tc.name, resp.Header.Get("Content-Type"), got)
				}
			}
			if resp.StatusCode == 429 && resp.Header.Get("Retry-After") != "1" {
				t.Errorf("Retry-After = %q, want 1", resp.Header.Get("Retry-After"))
			}
		}
		up.mu.Lock()
		defer up.mu.Unlock()
		if len(up.bodies) != 2 || up.bodies[0] != body(1, 2) {
			t.Fatalf("upstream saw %d bodies (%q)", len(up.bodies), up.bodies)
		}
		var k1 *gateway.ClientStats
		for _, cs := range g.Clients() {
			if cs.Client == gateway.ClientID("key", "k1") {
				k1 = &cs
			}
		}
		if k1 == nil || k1.Forwarded != 2 || k1.Limited != 1 {
			t.Fatalf("client k1 %+v", k1)
		}
	})
}

// TestFrontEndsShadowMode: in shadow mode nothing is stopped, on either front end.
func TestFrontEndsShadowMode(t *testing.T) {
	mk := func(t *testing.T) *gateway.Gateway {
		g := newGateway(t, gateway.Options{Routes: []gateway.Route{routeTo(t, &upstream{})}, Mode: gateway.Shadow,
			Limits: gateway.Limits{ClientRate: 0.001, ClientBurst: 1}})
		g.Blocks().Add(gateway.Block{Client: gateway.ClientID("key", "bad")})
		return g
	}
	bothFronts(t, mk, func(t *testing.T, f *front, g *gateway.Gateway) {
		for _, b := range []string{body(1, 2), body(1, 2, 3), body(1, 2)} {
			if resp, got := send(t, http.DefaultClient, "POST", f.url+"/", "bad", b); resp.StatusCode != 200 {
				t.Fatalf("shadow mode answered %d %s", resp.StatusCode, got)
			}
		}
		cs := g.Clients()
		if len(cs) != 1 || cs[0].Shadow != 3 || cs[0].Blocked != 0 {
			t.Fatalf("clients %+v", cs)
		}
	})
}

// recorder is an upstream that keeps the requests it got.
type recorder struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	io.Copy(io.Discard, req.Body)
	r.mu.Lock()
	r.reqs = append(r.reqs, req)
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Keep-Alive", "timeout=5")
	w.Header().Set("Connection", "X-Upstream-Hop")
	w.Header().Set("X-Upstream-Hop", "secret")
	w.Header().Set("X-Model", "m1")
	io.WriteString(w, `{"outputs":[]}`)
}

// TestFrontEndsRewriteLikeReverseProxy: what the model server receives, and what the client
// receives back, are the same on both front ends.
func TestFrontEndsRewriteLikeReverseProxy(t *testing.T) {
	var rec *recorder
	mk := func(t *testing.T) *gateway.Gateway {
		rec = &recorder{}
		return newGateway(t, gateway.Options{Routes: []gateway.Route{routeTo(t, rec)}})
	}
	type seen struct {
		host, uri, xff, xfh, xfp, trace, hop, ka, custom, via, te string
		cl                                                        int64
		respHop, respKA, respModel                                string
	}
	var got []seen
	bothFronts(t, mk, func(t *testing.T, f *front, g *gateway.Gateway) {
		conn, err := net.Dial("tcp", f.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		b := body(1, 2)
		fmt.Fprintf(conn, "POST /v2/models/m/infer?x=1&y=%%20 HTTP/1.1\r\nHost: models.example:8080\r\nContent-Type: application/json\r\n"+
			"traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\nX-Forwarded-For: 203.0.113.9\r\n"+
			"Connection: keep-alive, X-Hop\r\nX-Hop: drop me\r\nKeep-Alive: timeout=9\r\nTE: trailers, deflate\r\nX-Custom: a\r\nX-Custom: b\r\n"+
			"Content-Length: %d\r\n\r\n%s", len(b), b)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(resp.Body)
		rec.mu.Lock()
		defer rec.mu.Unlock()
		if len(rec.reqs) != 1 {
			t.Fatalf("upstream saw %d requests", len(rec.reqs))
		}
		r := rec.reqs[0]
		got = append(got, seen{host: r.Host, uri: r.RequestURI, xff: r.Header.Get("X-Forwarded-For"), xfh: r.Header.Get("X-Forwarded-Host"),
			xfp: r.Header.Get("X-Forwarded-Proto"), trace: r.Header.Get("Traceparent"), hop: r.Header.Get("X-Hop"),
			ka: r.Header.Get("Keep-Alive"), custom: strings.Join(r.Header["X-Custom"], ","), te: r.Header.Get("Te"), cl: r.ContentLength,
			respHop: resp.Header.Get("X-Upstream-Hop"), respKA: resp.Header.Get("Keep-Alive"), respModel: resp.Header.Get("X-Model")})
	})
	want := seen{host: "models.example:8080", uri: "/v2/models/m/infer?x=1&y=%20", xff: "127.0.0.1", xfh: "models.example:8080",
		xfp: "http", trace: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", custom: "a,b", te: "trailers",
		cl: int64(len(body(1, 2))), respModel: "m1"}
	if len(got) != 2 || got[0] != want || got[1] != want {
		t.Fatalf("upstream saw\n%+v\nwant (both front ends)\n%+v", got, want)
	}
}

// TestFastPathKeepAlive: one client connection carries many requests, and the model server
// sees one pooled connection.
func TestFastPathKeepAlive(t *testing.T) {
	var upConns sync.Map
	up := &upstream{}
	srv := httpServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upConns.Store(r.RemoteAddr, true)
		up.ServeHTTP(w, r)
	}))
	u, _ := url.Parse(srv)
	g := newGateway(t, gateway.Options{Routes: []gateway.Route{{Name: "m", Upstream: u, Features: 2}}})
	f := serveFront(t, g, false)
	conn, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	for i := range 5 {
		b := body(float64(i), 2)
		fmt.Fprintf(conn, "POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nX-API-Key: k\r\nContent-Length: %d\r\n\r\n%s", len(b), b)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		out, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || !strings.Contains(string(out), "outputs") || resp.Close {
			t.Fatalf("request %d: %d %q close=%v", i, resp.StatusCode, out, resp.Close)
		}
	}
	n := 0
	upConns.Range(func(any, any) bool { n++; return true })
	if fast, handed := f.srv.Counts(); fast != 5 || handed != 0 || n != 1 {
		t.Fatalf("%d fast requests, %d hand-offs, %d upstream connections; want 5, 0, 1", fast, handed, n)
	}
	// Connection: close is honoured.
	fmt.Fprintf(conn, "GET /v2/models/m HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil || !resp.Close {
		t.Fatalf("close: %v %+v", err, resp)
	}
	io.ReadAll(resp.Body)
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("after Connection: close the connection stays open (%v)", err)
	}
}

func httpServer(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &http.Server{Handler: h}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return "http://" + ln.Addr().String()
}
