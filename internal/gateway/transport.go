package gateway

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// upstreamTransport is the RoundTripper behind the gateway's httputil.ReverseProxy for plain
// HTTP/1.1 model servers. http.Transport hands every request to a writer goroutine and every
// response to a reader goroutine of the connection; on a small machine each hand-off is a
// thread wake-up, which is most of what a reverse proxy adds at low concurrency. This transport
// writes the request and reads the response head in the calling goroutine, on a pooled
// keep-alive connection, and returns the connection to the pool once the body has been read to
// its end. Upgrades (WebSocket), HTTPS upstreams and requests that an environment proxy applies
// to go to the standard transport.
type upstreamTransport struct {
	std    *http.Transport
	dialer net.Dialer

	maxIdlePerHost int
	idleTimeout    time.Duration
	// peekAfter is how long a connection must have been idle before it is checked for a close
	// by the server: a connection used moments ago is taken as it is, which saves a system
	// call per request under steady traffic.
	peekAfter time.Duration

	mu   sync.Mutex
	idle map[string][]*upConn
}

type upConn struct {
	nc     net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	idleAt time.Time
	head   []byte // the fast path's response head buffer
}

func newUpstreamTransport(std *http.Transport) *upstreamTransport {
	return &upstreamTransport{
		std:            std,
		dialer:         net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second},
		maxIdlePerHost: max(std.MaxIdleConnsPerHost, 2),
		idleTimeout:    90 * time.Second,
		peekAfter:      250 * time.Millisecond,
		idle:           map[string][]*upConn{},
	}
}

// aLongTimeAgo is a deadline in the past: setting it unblocks any read or write at once.
var aLongTimeAgo = time.Unix(1, 0)

func (t *upstreamTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "http" || req.Header.Get("Upgrade") != "" || req.URL.Host == "" {
		return t.std.RoundTrip(req)
	}
	if p, err := http.ProxyFromEnvironment(req); err != nil || p != nil {
		return t.std.RoundTrip(req)
	}
	host := req.URL.Host
	if req.URL.Port() == "" {
		host = net.JoinHostPort(req.URL.Hostname(), "80")
	}
	for attempt := 0; ; attempt++ {
		c, reused, err := t.get(req.Context(), host)
		if err != nil {
			return nil, err
		}
		resp, err := t.exchange(req, c, host)
		if err == nil {
			return resp, nil
		}
		// A pooled connection that fails before any answer arrives may have been closed by
		// the server just as it was taken: an idempotent request is sent again, once, on a new
		// connection, as http.Transport does; others get the error (the upstream may have
		// acted on them).
		if !reused || attempt > 0 || !errors.Is(err, errStaleConn) || req.Context().Err() != nil || !idempotent(req.Method, req.Header.Get("Idempotency-Key") != "" || req.Header.Get("X-Idempotency-Key") != "") {
			return nil, err
		}
		if req.Body != nil && req.Body != http.NoBody {
			if req.GetBody == nil {
				return nil, err
			}
			body, gerr := req.GetBody()
			if gerr != nil {
				return nil, err
			}
			req = req.Clone(req.Context())
			req.Body = body
		}
	}
}

// idempotent reports whether a request may be sent twice: a safe method, or an idempotency
// key (Idempotency-Key or X-Idempotency-Key).
func idempotent(method string, hasKey bool) bool {
	switch method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return hasKey
}

// errStaleConn marks a failure on a connection before any byte of the response arrived.
var errStaleConn = errors.New("upstream closed the connection")

type staleError struct{ err error }

func (e staleError) Error() string        { return errStaleConn.Error() + ": " + e.err.Error() }
func (e staleError) Is(target error) bool { return target == errStaleConn }
func (e staleError) Unwrap() error        { return e.err }

// exchange writes req on c and reads the response head; the body reads from c.
func (t *upstreamTransport) exchange(req *http.Request, c *upConn, host string) (*http.Response, error) {
	ctx := req.Context()
	stop := context.AfterFunc(ctx, func() { c.nc.SetDeadline(aLongTimeAgo) })
	fail := func(err error) (*http.Response, error) {
		stop()
		c.nc.Close()
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		return nil, err
	}
	if err := req.Write(c.bw); err != nil {
		return fail(staleError{err})
	}
	if err := c.bw.Flush(); err != nil {
		return fail(staleError{err})
	}
	var resp *http.Response
	for {
		if _, err := c.br.Peek(1); err != nil {
			return fail(staleError{err})
		}
		r, err := http.ReadResponse(c.br, req)
		if err != nil {
			return fail(err)
		}
		// 1xx answers (100 Continue, 103 Early Hints) precede the real one; 101 is an
		// upgrade, never sent here (upgrades use the standard transport).
		if r.StatusCode >= 100 && r.StatusCode < 200 && r.StatusCode != http.StatusSwitchingProtocols {
			continue
		}
		resp = r
		break
	}
	keep := !resp.Close && !req.Close && resp.StatusCode != http.StatusSwitchingProtocols
	resp.Body = &upBody{rc: resp.Body, t: t, c: c, host: host, keep: keep, stop: stop}
	return resp, nil
}

// get returns an idle connection to host, or dials one.
func (t *upstreamTransport) get(ctx context.Context, host string) (*upConn, bool, error) {
	now := time.Now()
	t.mu.Lock()
	for {
		cs := t.idle[host]
		if len(cs) == 0 {
			break
		}
		c := cs[len(cs)-1]
		t.idle[host] = cs[:len(cs)-1]
		// A model server closes idle keep-alive connections after its own timeout (uvicorn:
		// 5 s, gunicorn 2 s); one it has closed is noticed here, before anything is sent on it.
		if idle := now.Sub(c.idleAt); idle > t.idleTimeout || idle >= t.peekAfter && !peerOpen(c.nc) {
			c.nc.Close()
			continue
		}
		t.mu.Unlock()
		return c, true, nil
	}
	t.mu.Unlock()
	nc, err := t.dialer.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, false, err
	}
	return &upConn{nc: nc, br: bufio.NewReaderSize(nc, 16<<10), bw: bufio.NewWriterSize(nc, 16<<10)}, false, nil
}

// put returns c to the pool, or closes it if the pool for host is full.
func (t *upstreamTransport) put(host string, c *upConn) {
	c.idleAt = time.Now()
	t.mu.Lock()
	if t.idle != nil && len(t.idle[host]) < t.maxIdlePerHost {
		t.idle[host] = append(t.idle[host], c)
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()
	c.nc.Close()
}

// CloseIdleConnections closes every pooled connection (and the standard transport's).
func (t *upstreamTransport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = map[string][]*upConn{}
	t.mu.Unlock()
	for _, cs := range idle {
		for _, c := range cs {
			c.nc.Close()
		}
	}
	t.std.CloseIdleConnections()
}

// upBody is a response body on a pooled connection: read to its end and closed, the
// connection goes back to the pool; closed early, it is closed.
type upBody struct {
	rc   io.ReadCloser
	t    *upstreamTransport
	c    *upConn
	host string
	keep bool
	eof  bool
	done bool
	stop func() bool
}

func (b *upBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, errors.New("read on closed response body")
	}
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

func (b *upBody) Close() error {
	if b.done {
		return nil
	}
	b.done = true
	err := b.rc.Close()
	// stop reports false once the context's cancellation has already poisoned the deadline.
	if b.stop() && b.eof && b.keep && b.c.br.Buffered() == 0 {
		b.t.put(b.host, b.c)
	} else {
		b.c.nc.Close()
	}
	return err
}
