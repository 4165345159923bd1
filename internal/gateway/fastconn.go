package gateway

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// fastConn is one client connection on the fast path.
type fastConn struct {
	s        *Server
	nc       net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	remoteIP string
	ipClient string // the client's name when it gives no key or token
	state    atomic.Int32
	head     []byte
	req      requestHead
	body     bodyReader
	resp     responseHead

	linger bool // unread request bytes may remain: close gently so the answer is not lost

	mu sync.Mutex // up, for abort
	up *upConn    // the upstream connection of the request in flight
}

// serve reads and proxies requests until the connection ends or is handed to net/http.
func (c *fastConn) serve() {
	handedOff := false
	defer func() {
		c.s.forget(c)
		if !handedOff {
			if c.linger {
				c.closeGently()
			}
			c.nc.Close()
		}
	}()
	o := &c.s.opts
	for {
		c.nc.SetReadDeadline(time.Now().Add(o.IdleTimeout))
		if _, err := c.br.Peek(1); err != nil {
			return
		}
		if !c.state.CompareAndSwap(connIdle, connActive) {
			return
		}
		c.nc.SetReadDeadline(time.Now().Add(o.ReadHeaderTimeout))
		keep, handOff := c.serveRequest()
		if handOff {
			handedOff = true
			c.handOff()
			return
		}
		if !keep || c.s.closing.Load() || !c.state.CompareAndSwap(connActive, connIdle) {
			return
		}
	}
}

// handOff passes the connection to net/http with the bytes read so far of the current request.
func (c *fastConn) handOff() {
	buffered, _ := c.br.Peek(c.br.Buffered())
	replay := make([]byte, 0, len(c.head)+len(buffered))
	replay = append(append(replay, c.head...), buffered...)
	c.nc.SetReadDeadline(time.Time{})
	c.s.handOffs.Add(1)
	c.s.hand.give(&replayConn{Conn: c.nc, buf: replay})
}

// closeGently ends a connection on which the client may still be sending: closing with
// unread bytes would send a reset that can destroy the answer before the client reads it. As
// net/http does, it shuts the sending side and reads what comes for a moment.
func (c *fastConn) closeGently() {
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
		c.nc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		io.CopyN(io.Discard, c.nc, 256<<10)
	}
}

// abort closes the connection and the upstream connection of the request in flight.
func (c *fastConn) abort() {
	c.state.Store(connClosed)
	c.nc.Close()
	c.mu.Lock()
	if c.up != nil {
		c.up.nc.Close()
	}
	c.mu.Unlock()
}

func (c *fastConn) setUp(u *upConn) {
	c.mu.Lock()
	c.up = u
	c.mu.Unlock()
	if u != nil && c.state.Load() == connClosed {
		u.nc.Close()
	}
}

// serveRequest serves one request; it says whether the connection stays open, or goes to
// net/http with the request unread.
func (c *fastConn) serveRequest() (keep, handOff bool) {
	s, g := c.s, c.s.g
	var err error
	c.head, err = readHead(c.br, c.head[:0], s.opts.MaxHeaderBytes)
	if err != nil {
		if errors.Is(err, errHeadTooLarge) {
			c.linger = true
			c.writeAnswer(&answer{status: http.StatusRequestHeaderFieldsTooLarge, body: map[string]any{"error": "request head too large"}}, true)
		}
		return false, false // a timeout or a closed connection ends it quietly, as net/http does
	}
	h := &c.req
	switch verdict, msg := parseRequestHead(c.head, g.opts.ClientHeader, s.opts.MaxHeaderFields, h); verdict {
	case headHandOff:
		return false, true
	case headBad:
		c.linger = true
		c.writeAnswer(&answer{status: http.StatusBadRequest, body: map[string]any{"error": "bad request: " + msg}}, true)
		return false, false
	}
	path := string(h.path)
	rt := g.match(path)
	if rt != nil && !rt.fast || h.contentLength > g.opts.Limits.BodyBytes && g.opts.Mode == Shadow {
		// A route to an HTTPS upstream or through a proxy, or a body too large to hold that
		// shadow mode streams through: the general path.
		return false, true
	}
	s.fastRequests.Add(1)
	start := g.opts.Now()
	client := ""
	if rt != nil {
		if client = credential(string(h.key), string(h.authorization)); client == "" {
			client = c.ipClient
		}
	}
	c.body = bodyReader{br: c.br, n: h.contentLength}
	in := inbound{method: methodString(h.method), contentLength: h.contentLength,
		contentType: string(h.contentType), headerLength: string(h.headerLength)}
	if h.contentLength > 0 {
		in.body = &c.body
	}
	v := g.decide(&in, rt, path, client, start)
	keep = !h.close
	if v.answer != nil {
		// A body the checks did not read is skipped if it is small, else the connection ends.
		if c.body.n > 0 && (c.body.n > 256<<10 || c.body.skip() != nil) {
			keep = false
			c.linger = true
		}
		c.writeAnswer(v.answer, !keep)
		return keep, false
	}
	if c.body.err != nil {
		g.release(v)
		return false, false
	}
	if c.body.n > 0 {
		// The checks failed before reading the body (fail_open): read it now.
		if c.body.read > 0 || v.body != nil || c.body.n > g.opts.Limits.BodyBytes {
			g.release(v)
			return false, false
		}
		v.body = g.bufs.Get().(*bytes.Buffer)
		v.body.Reset()
		if _, err := v.body.ReadFrom(&c.body); err != nil {
			g.release(v)
			return false, false
		}
	}
	return c.forward(rt, client, start, v), false
}

// bodyReader reads a request's Content-Length body from the connection.
type bodyReader struct {
	br   *bufio.Reader
	n    int64 // left to read
	read int64
	err  error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	n, err := b.br.Read(p)
	b.n -= int64(n)
	b.read += int64(n)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	b.err = err
	return n, err
}

// skip discards the rest of the body.
func (b *bodyReader) skip() error {
	_, err := io.Copy(io.Discard, b)
	return err
}

// methodString returns the common methods without allocating.
func methodString(m []byte) string {
	switch string(m) {
	case "POST":
		return http.MethodPost
	case "GET":
		return http.MethodGet
	case "PUT":
		return http.MethodPut
	case "HEAD":
		return http.MethodHead
	}
	return string(m)
}

var statusLinePrefix = []byte("HTTP/1.1 ")

// writeAnswer sends one of the gateway's own JSON answers, as writeJSON would.
func (c *fastConn) writeAnswer(a *answer, close bool) {
	body, _ := json.Marshal(a.body)
	body = append(body, '\n')
	w := c.bw
	w.Write(statusLinePrefix)
	w.WriteString(strconv.Itoa(a.status))
	w.WriteByte(' ')
	w.WriteString(http.StatusText(a.status))
	w.WriteString("\r\nContent-Type: application/json\r\nDate: ")
	w.Write(c.s.date.get(time.Now()))
	w.WriteString("\r\nContent-Length: ")
	w.WriteString(strconv.Itoa(len(body)))
	if a.retryAfter > 0 {
		w.WriteString("\r\nRetry-After: ")
		w.WriteString(strconv.Itoa(a.retryAfter))
	}
	if close {
		w.WriteString("\r\nConnection: close")
	}
	w.WriteString("\r\n\r\n")
	w.Write(body)
	w.Flush()
}
