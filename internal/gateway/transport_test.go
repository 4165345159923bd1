package gateway

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func newTestTransport() *upstreamTransport {
	std := http.DefaultTransport.(*http.Transport).Clone()
	std.MaxIdleConnsPerHost = 4
	t := newUpstreamTransport(std)
	t.peekAfter = 0 // every pooled connection is checked before use
	return t
}

func post(t *testing.T, tr http.RoundTripper, url, body string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// Requests share one keep-alive connection when each body is read to its end.
func TestUpstreamTransportReusesConnections(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "echo:%s", b)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	tr := newTestTransport()
	defer tr.CloseIdleConnections()
	for i := range 20 {
		_, got := post(t, tr, srv.URL+"/v2/models/m/infer", fmt.Sprint(i))
		if got != fmt.Sprintf("echo:%d", i) {
			t.Fatalf("request %d: %q", i, got)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for 20 sequential requests, want 1", n)
	}
	// A body closed before its end leaves the connection unusable: it is not pooled.
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	post(t, tr, srv.URL, "x")
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections after an unread body, want 2", n)
	}
}

// A pooled connection the upstream has closed (its keep-alive timeout) is noticed before it
// is used: a POST is never lost to it.
func TestUpstreamTransportSkipsConnectionsClosedByServer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	tr := newTestTransport()
	defer tr.CloseIdleConnections()
	post(t, tr, srv.URL, "a")
	srv.CloseClientConnections() // the server drops its idle connections
	deadline := time.Now().Add(2 * time.Second)
	for {
		tr.mu.Lock()
		var c *upConn
		for _, cs := range tr.idle {
			if len(cs) > 0 {
				c = cs[0]
			}
		}
		tr.mu.Unlock()
		if c == nil || !peerOpen(c.nc) || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, got := post(t, tr, srv.URL, "b"); got != "ok" {
		t.Fatalf("after the server closed idle connections: %q", got)
	}
}

// A raw upstream that answers once per connection and then closes without saying so: an
// idempotent request is retried on a new connection, a POST is not (the upstream may have
// acted on it), and the error says the connection was closed.
func TestUpstreamTransportRetriesOnlyIdempotent(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var served atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				io.Copy(io.Discard, req.Body)
				served.Add(1)
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				// Read the next request, then close without answering.
				if req, err := http.ReadRequest(br); err == nil {
					io.Copy(io.Discard, req.Body)
					served.Add(1)
				}
			}(c)
		}
	}()
	url := "http://" + ln.Addr().String()
	tr := newTestTransport()
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for i := range 2 {
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("GET %d: %v", i, err)
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	// POST on the pooled connection: the upstream reads it and hangs up.
	preq, _ := http.NewRequest(http.MethodPost, url, strings.NewReader("x"))
	before := served.Load()
	if _, err := tr.RoundTrip(preq); err == nil {
		t.Fatal("a POST the upstream dropped must fail, not be sent twice")
	}
	time.Sleep(50 * time.Millisecond)
	if n := served.Load() - before; n != 1 {
		t.Fatalf("the POST reached the upstream %d times, want 1", n)
	}
}

// 100 Continue before the real answer is skipped; cancelling the request's context aborts a
// response that never comes.
func TestUpstreamTransportInterimAndCancel(t *testing.T) {
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
			go func(c net.Conn) {
				defer c.Close()
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				io.Copy(io.Discard, req.Body)
				if req.URL.Path == "/hang" {
					io.Copy(io.Discard, br)
					return
				}
				io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\ndone")
			}(c)
		}
	}()
	tr := newTestTransport()
	defer tr.CloseIdleConnections()
	resp, body := post(t, tr, "http://"+ln.Addr().String()+"/", "x")
	if resp.StatusCode != http.StatusCreated || body != "done" {
		t.Fatalf("after 100 Continue: %d %q", resp.StatusCode, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+ln.Addr().String()+"/hang", strings.NewReader("x"))
	start := time.Now()
	if _, err := tr.RoundTrip(req); err == nil {
		t.Fatal("a hung upstream must fail when the context ends")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("cancel took %s", d)
	}
}
