package gateway

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Server serves the gateway's proxy listener. Plain HTTP/1.1 requests with a Content-Length
// body (or none) take a fast path: one goroutine per connection reads the request, runs the
// inline checks and exchanges it with the model server on a pooled connection, with no other
// goroutine involved. net/http and httputil.ReverseProxy (Gateway.ServeHTTP) serve everything
// else: TLS connections (mTLS identity, HTTP/2), HTTP/1.0, chunked request bodies, Expect,
// Upgrade, CONNECT and absolute or unusual targets. A connection is handed to net/http from
// the start of the request the fast path declined, and stays there.
type Server struct {
	g    *Gateway
	opts ServerOptions
	std  *http.Server
	hand *handOffListener
	up   *upstreamTransport // nil: the gateway has a custom transport, every request is handed off

	stdOnce sync.Once
	mu      sync.Mutex
	conns   map[*fastConn]struct{}
	lns     map[net.Listener]struct{}
	closing atomic.Bool
	date    dateCache

	fastRequests atomic.Int64 // requests served on the fast path
	handOffs     atomic.Int64 // connections given to net/http
}

// ServeHTTP serves one request with the gateway behind s (net/http's path), so that a Server
// can stand where an http.Handler is kept.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.g.ServeHTTP(w, r) }

// Counts returns how many requests the fast path served and how many connections went to
// net/http.
func (s *Server) Counts() (fast, handedOff int64) { return s.fastRequests.Load(), s.handOffs.Load() }

// ServerOptions configure a Server; zero values take the defaults.
type ServerOptions struct {
	ReadHeaderTimeout time.Duration // to read a request's head and body; default 10 s
	IdleTimeout       time.Duration // between requests on a connection; default 120 s
	MaxHeaderBytes    int           // request head; default 64 KiB
	MaxHeaderFields   int           // request header lines; default 256
	ErrorLog          *log.Logger   // net/http's errors; nil: its default
	// StandardOnly serves every connection with net/http (comparisons and tests).
	StandardOnly bool
}

// NewServer returns the front end of g's proxy listener.
func NewServer(g *Gateway, o ServerOptions) *Server {
	if o.ReadHeaderTimeout <= 0 {
		o.ReadHeaderTimeout = 10 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 120 * time.Second
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = 64 << 10
	}
	if o.MaxHeaderFields <= 0 {
		o.MaxHeaderFields = 256
	}
	s := &Server{g: g, opts: o, conns: map[*fastConn]struct{}{}, lns: map[net.Listener]struct{}{}}
	s.up, _ = g.opts.Transport.(*upstreamTransport)
	s.hand = newHandOffListener()
	s.std = &http.Server{Handler: g, ReadHeaderTimeout: o.ReadHeaderTimeout, IdleTimeout: o.IdleTimeout,
		MaxHeaderBytes: o.MaxHeaderBytes, ErrorLog: o.ErrorLog}
	return s
}

// Serve accepts connections on ln until Shutdown or Close; it then returns
// http.ErrServerClosed. A listener returning *tls.Conn (tls.NewListener) is served by net/http.
func (s *Server) Serve(ln net.Listener) error {
	s.stdOnce.Do(func() { go s.std.Serve(s.hand) })
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		ln.Close()
		return http.ErrServerClosed
	}
	s.lns[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.lns, ln)
		s.mu.Unlock()
	}()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return http.ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		if _, isTLS := nc.(*tls.Conn); isTLS || s.opts.StandardOnly || s.up == nil {
			s.handOffs.Add(1)
			s.hand.give(nc)
			continue
		}
		c := s.newConn(nc)
		if c == nil {
			nc.Close()
			continue
		}
		go c.serve()
	}
}

// Shutdown stops accepting, closes idle connections and waits for requests in flight to end,
// or for ctx; then it returns ctx's error and Close may end the rest.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closing.Store(true)
	s.closeListeners()
	stdErr := make(chan error, 1)
	go func() { stdErr <- s.std.Shutdown(ctx) }()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for s.closeIdle() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return <-stdErr
}

// Close closes the listeners and every connection at once, requests in flight included.
func (s *Server) Close() error {
	s.closing.Store(true)
	s.closeListeners()
	s.mu.Lock()
	for c := range s.conns {
		c.abort()
	}
	s.mu.Unlock()
	return s.std.Close()
}

func (s *Server) closeListeners() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ln := range s.lns {
		ln.Close()
	}
	s.hand.Close()
}

// closeIdle closes the connections waiting for a request and returns how many remain.
func (s *Server) closeIdle() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.state.CompareAndSwap(connIdle, connClosed) {
			c.nc.Close()
		}
	}
	return len(s.conns)
}

const (
	connIdle   int32 = iota // waiting for a request
	connActive              // reading, proxying or answering one
	connClosed              // closed by Shutdown or Close
)

func (s *Server) newConn(nc net.Conn) *fastConn {
	c := &fastConn{s: s, nc: nc, br: bufio.NewReaderSize(nc, 16<<10), bw: bufio.NewWriterSize(nc, 16<<10)}
	if tcp, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		c.remoteIP = tcp.IP.String()
	} else if host, _, err := net.SplitHostPort(nc.RemoteAddr().String()); err == nil {
		c.remoteIP = host
	} else {
		c.remoteIP = nc.RemoteAddr().String()
	}
	c.ipClient = "ip:" + c.remoteIP
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return nil
	}
	s.conns[c] = struct{}{}
	return c
}

func (s *Server) forget(c *fastConn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// handOffListener is the net.Listener net/http serves: connections the fast path hands over.
type handOffListener struct {
	ch     chan net.Conn
	done   chan struct{}
	once   sync.Once
	closed atomic.Bool
}

func newHandOffListener() *handOffListener {
	return &handOffListener{ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *handOffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *handOffListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *handOffListener) Addr() net.Addr { return handOffAddr{} }

// give passes nc to net/http; once the listener is closed, nc is closed instead.
func (l *handOffListener) give(nc net.Conn) {
	select {
	case l.ch <- nc:
	case <-l.done:
		nc.Close()
	}
}

type handOffAddr struct{}

func (handOffAddr) Network() string { return "handoff" }
func (handOffAddr) String() string  { return "handoff" }

// replayConn is a connection whose first reads return bytes the fast path had already read.
type replayConn struct {
	net.Conn
	buf []byte
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.buf) > 0 {
		n := copy(p, c.buf)
		c.buf = c.buf[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// dateCache formats the Date header once a second.
type dateCache struct {
	mu   sync.Mutex
	sec  int64
	text []byte
}

func (d *dateCache) get(now time.Time) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	if s := now.Unix(); s != d.sec || d.text == nil {
		d.sec = s
		d.text = now.UTC().AppendFormat(nil, http.TimeFormat)
	}
	return d.text
}
