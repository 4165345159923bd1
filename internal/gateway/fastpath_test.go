package gateway_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pipewarden/pipewarden/internal/gateway"
)

// rawExchange sends raw bytes on a new connection and reads one response.
func rawExchange(t *testing.T, addr, raw string) (*http.Response, string, *bufio.Reader, net.Conn) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	for err == nil && resp.StatusCode == http.StatusContinue {
		resp, err = http.ReadResponse(br, nil)
	}
	if err != nil {
		t.Fatalf("reading the response to %q: %v", raw, err)
	}
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b), br, conn
}

// TestFastPathStreams: SSE events reach the client as the model server sends them, and a
// chunked response keeps the connection usable, trailers included.
func TestFastPathStreams(t *testing.T) {
	release := make(chan struct{})
	var finished atomic.Bool
	srv := httpServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		switch r.URL.Path {
		case "/sse":
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: first\n\n")
			w.(http.Flusher).Flush()
			// The second event waits until the client has the first (or for 3 s, when the
			// stream is buffered and the client cannot have it).
			select {
			case <-release:
			case <-time.After(3 * time.Second):
				finished.Store(true)
			}
			io.WriteString(w, "data: second\n\n")
		case "/chunked":
			w.Header().Set("Trailer", "X-Checksum")
			for i := range 3 {
				fmt.Fprintf(w, "part%d;", i)
				w.(http.Flusher).Flush()
			}
			w.Header().Set("X-Checksum", "abc")
		}
	}))
	u, _ := url.Parse(srv)
	g := newGateway(t, gateway.Options{Routes: []gateway.Route{{Name: "m", Upstream: u}}})
	f := serveFront(t, g, false)

	resp, err := http.Post(f.url+"/sse", "application/json", strings.NewReader(body(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	l, _ := br.ReadString('\n')
	if l != "data: first\n" || finished.Load() {
		t.Fatalf("first event %q; the model server had to finish first: %v (the stream is buffered)", l, finished.Load())
	}
	close(release)
	rest, _ := io.ReadAll(br)
	if string(rest) != "\ndata: second\n\n" {
		t.Fatalf("rest of the stream %q", rest)
	}

	conn, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cbr := bufio.NewReader(conn)
	for i := range 2 {
		io.WriteString(conn, "GET /chunked HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(cbr, nil)
		if err != nil {
			t.Fatalf("chunked response %d: %v", i, err)
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil || string(b) != "part0;part1;part2;" || len(resp.TransferEncoding) != 1 || resp.Trailer.Get("X-Checksum") != "abc" {
			t.Fatalf("chunked response %d: %q %v te=%v trailer=%v", i, b, err, resp.TransferEncoding, resp.Trailer)
		}
	}
	if fast, handed := f.srv.Counts(); fast != 3 || handed != 0 {
		t.Fatalf("%d fast, %d handed off; want 3 and 0", fast, handed)
	}
}

// TestFastPathCloseDelimitedAndErrors: a response that ends with the connection is relayed and
// then the client connection is closed; an unreachable model server is 502 with a JSON error.
func TestFastPathCloseDelimitedAndErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if _, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end")
				}
			}()
		}
	}()
	u, _ := url.Parse("http://" + ln.Addr().String())
	dead, _ := url.Parse("http://127.0.0.1:1")
	g := newGateway(t, gateway.Options{Routes: []gateway.Route{{Name: "m", Upstream: u}, {Name: "dead", PathPrefix: "/dead", Upstream: dead}}})
	f := serveFront(t, g, false)
	resp, b, br, _ := rawExchange(t, f.addr, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.StatusCode != 200 || b != "until the end" || !resp.Close {
		t.Fatalf("close-delimited: %d %q close=%v", resp.StatusCode, b, resp.Close)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("the connection stays open after a close-delimited body (%v)", err)
	}
	resp, b, _, _ = rawExchange(t, f.addr, "POST /dead HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
	if resp.StatusCode != 502 || !strings.Contains(b, "upstream unavailable") || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("dead upstream: %d %q", resp.StatusCode, b)
	}
}

// TestHandOff: what the fast path does not serve reaches net/http intact, from the start of
// the request, including after fast requests on the same connection.
func TestHandOff(t *testing.T) {
	up := &upstream{}
	srv := httpServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "echo" {
			c, brw, _ := w.(http.Hijacker).Hijack()
			defer c.Close()
			io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
			line, _ := brw.ReadString('\n')
			io.WriteString(c, "echo:"+line)
			return
		}
		up.ServeHTTP(w, r)
	}))
	u, _ := url.Parse(srv)
	g := newGateway(t, gateway.Options{Routes: []gateway.Route{{Name: "m", Upstream: u, Features: 2}}})
	f := serveFront(t, g, false)
	b := body(1, 2)
	chunked := fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(b), b)
	tests := []struct {
		name, raw string
		status    int
	}{
		{"chunked request body", "POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked, 200},
		{"expect 100-continue", fmt.Sprintf("POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n%s", len(b), b), 200},
		{"HTTP/1.0", fmt.Sprintf("POST /v2/models/m/infer HTTP/1.0\r\nContent-Length: %d\r\n\r\n%s", len(b), b), 200},
		{"absolute form", fmt.Sprintf("POST http://x/v2/models/m/infer HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(b), b), 200},
		{"escaped path", "GET /v2/models/%6D/ready HTTP/1.1\r\nHost: x\r\n\r\n", 200},
		{"wrong feature count, chunked", "POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
			fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(body(1, 2, 3)), body(1, 2, 3)), 400},
	}
	handed := int64(0)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, got, _, _ := rawExchange(t, f.addr, tc.raw)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d %q, want %d", resp.StatusCode, got, tc.status)
			}
			handed++
			if _, h := f.srv.Counts(); h != handed {
				t.Fatalf("%d hand-offs, want %d", h, handed)
			}
		})
	}
	// A fast request, then one to hand off, on one connection.
	conn, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	fmt.Fprintf(conn, "POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(b), b)
	fmt.Fprintf(conn, "POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n%s", chunked)
	for i := range 2 {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("pipelined response %d: %v", i, err)
		}
		if got, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || !strings.Contains(string(got), "outputs") {
			t.Fatalf("pipelined response %d: %d %q", i, resp.StatusCode, got)
		}
	}
	// Upgrade goes through net/http and ReverseProxy's protocol switch.
	io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %+v", err, resp)
	}
	io.WriteString(conn, "hello\n")
	if line, _ := br.ReadString('\n'); line != "echo:hello\n" {
		t.Fatalf("after the upgrade: %q", line)
	}
	up.mu.Lock()
	defer up.mu.Unlock()
	for i, got := range up.bodies {
		if got != b && got != body(1, 2, 3) && got != "" {
			t.Fatalf("upstream body %d = %q", i, got)
		}
	}
}

// TestSmugglingRejected: requests whose framing or head is malformed or ambiguous get 400,
// the connection is closed, and nothing reaches the model server.
func TestSmugglingRejected(t *testing.T) {
	up := &upstream{}
	g := newGateway(t, gateway.Options{Routes: []gateway.Route{routeTo(t, up)}})
	f := serveFront(t, g, false)
	tests := map[string]string{
		"content-length and transfer-encoding": "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"transfer-encoding and content-length": "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n",
		"differing content-lengths":            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 4\r\n\r\n{}{}",
		"content-length list":                  "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2, 2\r\n\r\n{}",
		"signed content-length":                "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +2\r\n\r\n{}",
		"obs-fold":                             "POST / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  folded\r\nContent-Length: 2\r\n\r\n{}",
		"bare LF":                              "POST / HTTP/1.1\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
		"bare LF in a field":                   "POST / HTTP/1.1\r\nHost: x\nContent-Length: 2\r\n\r\n{}",
		"space before colon":                   "POST / HTTP/1.1\r\nHost: x\r\nContent-Length : 2\r\n\r\n{}",
		"invalid field name":                   "POST / HTTP/1.1\r\nHost: x\r\nX(A): 1\r\nContent-Length: 2\r\n\r\n{}",
		"control character in value":           "POST / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\nContent-Length: 2\r\n\r\n{}",
		"bare CR":                              "POST / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\nContent-Length: 2\r\n\r\n{}",
		"no host":                              "POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
		"two hosts":                            "POST / HTTP/1.1\r\nHost: x\r\nHost: y\r\nContent-Length: 2\r\n\r\n{}",
		"double space in request line":         "POST  / HTTP/1.1\r\nHost: x\r\n\r\n",
		"bad version":                          "POST / HTTP/1.x\r\nHost: x\r\n\r\n",
		"no version":                           "POST /\r\nHost: x\r\n\r\n",
	}
	for name, raw := range tests {
		t.Run(name, func(t *testing.T) {
			resp, got, br, _ := rawExchange(t, f.addr, raw)
			if resp.StatusCode != 400 {
				t.Fatalf("status %d %q, want 400", resp.StatusCode, got)
			}
			if _, err := br.ReadByte(); err != io.EOF {
				t.Fatalf("the connection stays open after a malformed request (%v)", err)
			}
		})
	}
	up.mu.Lock()
	defer up.mu.Unlock()
	if len(up.bodies) != 0 {
		t.Fatalf("the model server got %d requests: %q", len(up.bodies), up.bodies)
	}
	if _, handed := f.srv.Counts(); handed != 0 {
		t.Fatalf("%d malformed requests handed to net/http", handed)
	}
	// A head over the limit is 431.
	resp, _, _, _ := rawExchange(t, f.addr, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("a", 70<<10)+"\r\n\r\n")
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("oversized head: %d", resp.StatusCode)
	}
}

// TestFastPathIdentity: clients are named as on net/http: key, bearer token, source IP; mTLS
// subjects on TLS listeners (which net/http serves).
func TestFastPathIdentity(t *testing.T) {
	g := newGateway(t, gateway.Options{Routes: []gateway.Route{routeTo(t, &upstream{})}, ClientHeader: "X-Tenant-Key"})
	f := serveFront(t, g, false)
	for _, raw := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\nx-tenant-key: secret-1\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nAuthorization: bearer  tok \r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Basic Zm9v\r\n\r\n",
	} {
		rawExchange(t, f.addr, raw)
	}
	// mTLS: a TLS listener in front of the same gateway.
	ca, caKey := newCert(t, "ca", nil, nil)
	leaf, leafKey := newCert(t, "svc-a", ca, caKey)
	srvCert, srvKey := newCert(t, "127.0.0.1", ca, caKey)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{srvCert.Raw}, PrivateKey: srvKey}},
		ClientCAs: pool, ClientAuth: tls.VerifyClientCertIfGiven})
	if err != nil {
		t.Fatal(err)
	}
	s := gateway.NewServer(g, gateway.ServerOptions{})
	go s.Serve(ln)
	defer s.Close()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool,
		Certificates: []tls.Certificate{{Certificate: [][]byte{leaf.Raw}, PrivateKey: leafKey}}}}}
	resp, got := send(t, client, "POST", "https://"+ln.Addr().String()+"/", "", body(1, 2))
	if resp.StatusCode != 200 {
		t.Fatalf("mTLS request: %d %s", resp.StatusCode, got)
	}
	want := map[string]bool{gateway.ClientID("key", "secret-1"): false, gateway.ClientID("bearer", "tok"): false,
		"ip:127.0.0.1": false, "mtls:CN=svc-a": false}
	for _, c := range g.Clients() {
		if _, ok := want[c.Client]; ok {
			want[c.Client] = true
		} else {
			t.Errorf("unexpected client %q", c.Client)
		}
	}
	for c, seen := range want {
		if !seen {
			t.Errorf("no client %q in %+v", c, g.Clients())
		}
	}
}

func newCert(t *testing.T, cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	if parent == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		parent, parentKey = tmpl, key
	} else if ip := net.ParseIP(cn); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}

// TestShutdown: Shutdown closes idle connections at once, lets a request in flight finish,
// and returns when it has; with a shorter bound it returns the context's error, and Close
// ends the request.
func TestShutdown(t *testing.T) {
	for _, bound := range []time.Duration{5 * time.Second, 100 * time.Millisecond} {
		t.Run(bound.String(), func(t *testing.T) {
			started := make(chan struct{}, 1)
			srv := httpServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				if r.URL.Path == "/slow" {
					started <- struct{}{}
					time.Sleep(500 * time.Millisecond)
				}
				io.WriteString(w, "done")
			}))
			u, _ := url.Parse(srv)
			g := newGateway(t, gateway.Options{Routes: []gateway.Route{{Name: "m", Upstream: u}}})
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			s := gateway.NewServer(g, gateway.ServerOptions{})
			served := make(chan error, 1)
			go func() { served <- s.Serve(ln) }()
			defer s.Close()
			_, _, idleBR, _ := rawExchange(t, ln.Addr().String(), "GET /fast HTTP/1.1\r\nHost: x\r\n\r\n")
			type result struct {
				status int
				body   string
				err    error
			}
			inflight := make(chan result, 1)
			go func() {
				resp, err := http.Get("http://" + ln.Addr().String() + "/slow")
				if err != nil {
					inflight <- result{err: err}
					return
				}
				b, err := io.ReadAll(resp.Body)
				inflight <- result{resp.StatusCode, string(b), err}
			}()
			<-started
			ctx, cancel := context.WithTimeout(context.Background(), bound)
			defer cancel()
			t0 := time.Now()
			shut := make(chan error, 1)
			go func() { shut <- s.Shutdown(ctx) }()
			if _, err := idleBR.ReadByte(); err != io.EOF {
				t.Fatalf("idle connection not closed by Shutdown (%v)", err)
			}
			if d := time.Since(t0); d > 300*time.Millisecond {
				t.Fatalf("idle connection closed after %s", d)
			}
			err = <-shut
			if bound > time.Second {
				r := <-inflight
				if err != nil || r.err != nil || r.status != 200 || r.body != "done" {
					t.Fatalf("Shutdown %v; request in flight %+v", err, r)
				}
			} else {
				if err != context.DeadlineExceeded {
					t.Fatalf("Shutdown with a short bound: %v", err)
				}
				s.Close()
				if r := <-inflight; r.err == nil && r.status == 200 {
					t.Fatalf("Close let the request in flight finish: %+v", r)
				}
			}
			if err := <-served; err != http.ErrServerClosed {
				t.Fatalf("Serve returned %v", err)
			}
		})
	}
}
