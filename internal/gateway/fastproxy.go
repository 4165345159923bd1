package gateway

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// forward sends a checked request to the route's upstream on a pooled connection and relays
// the response, rewritten as httputil.ReverseProxy would: hop-by-hop headers dropped,
// X-Forwarded-For, -Host and -Proto set, Host kept. It says whether the client connection
// stays open.
func (c *fastConn) forward(rt *route, client string, start time.Time, v *checked) bool {
	g, t, h := c.s.g, c.s.up, &c.req
	var body []byte
	if v.body != nil {
		body = v.body.Bytes()
	}
	var u *upConn
	for attempt := 0; ; attempt++ {
		var reused bool
		var err error
		u, reused, err = t.get(context.Background(), rt.upHost)
		if err == nil {
			c.setUp(u)
			err = c.exchange(u, rt, body)
			if err == nil {
				break
			}
			c.setUp(nil)
			u.nc.Close()
		}
		// As the upstream transport does: a request that failed on a pooled connection before
		// any answer is sent again, once, if it is idempotent.
		if reused && attempt == 0 && errors.Is(err, errStaleConn) && idempotent(string(h.method), h.idempotencyKey) {
			continue
		}
		g.opts.Logger.Warn("upstream error", "route", rt.Name, "err", err)
		c.writeAnswer(&answer{status: http.StatusBadGateway, body: map[string]any{"error": "upstream unavailable"}}, h.close)
		g.account(rt, client, start, http.StatusBadGateway, v, nil)
		return !h.close
	}
	rh := &c.resp
	var capture *bytes.Buffer
	if captures(v, rh.status, string(rh.contentType)) {
		capture = new(bytes.Buffer)
	}
	keep, upKeep, err := c.relay(u, capture)
	c.setUp(nil)
	if err == nil && upKeep && u.br.Buffered() == 0 {
		t.put(rt.upHost, u)
	} else {
		u.nc.Close()
	}
	if err != nil {
		g.opts.Logger.Warn("relaying response", "route", rt.Name, "err", err)
		keep = false
	}
	var resp []byte
	if capture != nil {
		resp = capture.Bytes()
	}
	g.account(rt, client, start, rh.status, v, resp)
	return keep
}

// exchange writes the request on u and reads the final response head into c.resp. Failures
// before the first byte of the answer are errStaleConn.
func (c *fastConn) exchange(u *upConn, rt *route, body []byte) error {
	h := &c.req
	w := u.bw
	w.Write(h.method)
	w.WriteByte(' ')
	w.Write(h.target)
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.Write(h.host)
	w.WriteString("\r\n")
	for _, f := range h.fields {
		if fieldIs(f.name, "Host") || fieldIs(f.name, "Content-Length") || fieldIs(f.name, "Forwarded") ||
			fieldIs(f.name, "X-Forwarded-For") || fieldIs(f.name, "X-Forwarded-Host") || fieldIs(f.name, "X-Forwarded-Proto") ||
			isHopByHop(f.name, h.connTokens) {
			continue
		}
		w.Write(f.name)
		w.WriteString(": ")
		w.Write(f.value)
		w.WriteString("\r\n")
	}
	if h.teTrailers {
		w.WriteString("Te: trailers\r\n")
	}
	w.WriteString("X-Forwarded-For: ")
	w.WriteString(c.remoteIP)
	w.WriteString("\r\nX-Forwarded-Host: ")
	w.Write(h.host)
	w.WriteString("\r\nX-Forwarded-Proto: http\r\n")
	// As net/http's request writer: a length for any body, and 0 for the methods that expect one.
	if m := string(h.method); len(body) > 0 || m == "POST" || m == "PUT" || m == "PATCH" {
		w.WriteString("Content-Length: ")
		w.WriteString(strconv.Itoa(len(body)))
		w.WriteString("\r\n")
	}
	w.WriteString("\r\n")
	w.Write(body)
	if err := w.Flush(); err != nil {
		return staleError{err}
	}
	for {
		if _, err := u.br.Peek(1); err != nil {
			return staleError{err}
		}
		var err error
		u.head, err = readHead(u.br, u.head[:0], maxResponseHead)
		if err != nil {
			return fmt.Errorf("read response head: %w", err)
		}
		if err := parseResponseHead(u.head, 1024, &c.resp); err != nil {
			return err
		}
		// 1xx answers (100 Continue, 103 Early Hints) precede the real one; a 101 was not
		// asked for (upgrades are handed off).
		if c.resp.status == http.StatusSwitchingProtocols {
			return errors.New("unexpected 101 Switching Protocols")
		}
		if c.resp.status >= 200 {
			return nil
		}
	}
}

const maxResponseHead = 1 << 20

// relay writes the response head and copies its body to the client, flushing whenever the
// upstream has nothing more buffered, so streams (SSE, chunked) pass as they come. It says
// whether the client connection and the upstream connection can carry another request.
func (c *fastConn) relay(u *upConn, capture *bytes.Buffer) (keep, upKeep bool, err error) {
	h, rh, w := &c.req, &c.resp, c.bw
	noBody := bodyless(h.method, rh.status)
	closeDelimited := !noBody && !rh.chunked && rh.contentLength < 0
	keep = !h.close && !closeDelimited && !c.s.closing.Load()
	upKeep = !rh.close && !closeDelimited
	w.Write(statusLinePrefix)
	w.WriteString(strconv.Itoa(rh.status))
	w.WriteByte(' ')
	if rh.reason != nil {
		w.Write(rh.reason)
	} else {
		w.WriteString(http.StatusText(rh.status))
	}
	w.WriteString("\r\n")
	for _, f := range rh.fields {
		if isHopByHop(f.name, rh.connTokens) && !(rh.chunked && fieldIs(f.name, "Trailer")) || fieldIs(f.name, "Content-Length") {
			continue
		}
		w.Write(f.name)
		w.WriteString(": ")
		w.Write(f.value)
		w.WriteString("\r\n")
	}
	if !rh.date {
		w.WriteString("Date: ")
		w.Write(c.s.date.get(time.Now()))
		w.WriteString("\r\n")
	}
	switch {
	case rh.contentLength >= 0:
		w.WriteString("Content-Length: ")
		w.WriteString(strconv.FormatInt(rh.contentLength, 10))
		w.WriteString("\r\n")
	case rh.chunked && !noBody:
		w.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if !keep {
		w.WriteString("Connection: close\r\n")
	}
	w.WriteString("\r\n")
	switch {
	case noBody:
	case rh.chunked:
		err = relayChunked(u.br, w, capture)
	case rh.contentLength >= 0:
		err = copyBody(u.br, w, rh.contentLength, capture)
	default:
		err = copyBody(u.br, w, -1, capture)
	}
	if ferr := w.Flush(); err == nil && ferr != nil {
		err = ferr
		keep = false
	}
	if err != nil {
		upKeep, keep = false, false
	}
	return keep, upKeep, err
}

// copyBody copies n bytes (n < 0: up to EOF) from r to w, flushing w before any read that
// would wait, and keeps up to maxCapture of them in capture.
func copyBody(r *bufio.Reader, w *bufio.Writer, n int64, capture *bytes.Buffer) error {
	for n != 0 {
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return err
			}
			if _, err := r.Peek(1); err != nil {
				if n < 0 && err == io.EOF {
					return nil
				}
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return err
			}
		}
		p, _ := r.Peek(r.Buffered())
		if n >= 0 && int64(len(p)) > n {
			p = p[:n]
		}
		if _, err := w.Write(p); err != nil {
			return err
		}
		capturePart(capture, p)
		r.Discard(len(p))
		if n > 0 {
			n -= int64(len(p))
		}
	}
	return nil
}

func capturePart(capture *bytes.Buffer, p []byte) {
	if capture != nil {
		if room := maxCapture - capture.Len(); room > 0 {
			capture.Write(p[:min(len(p), room)])
		}
	}
}

var errBadChunk = errors.New("malformed chunked response from upstream")

// relayChunked copies a chunked body from r to w chunk by chunk, trailer fields included,
// flushing w whenever r would wait.
func relayChunked(r *bufio.Reader, w *bufio.Writer, capture *bytes.Buffer) error {
	line := func() ([]byte, error) {
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return nil, err
			}
		}
		l, err := r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			return nil, errBadChunk
		}
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if len(l) < 2 || l[len(l)-2] != '\r' {
			return nil, errBadChunk
		}
		return l[:len(l)-2], nil
	}
	for {
		l, err := line()
		if err != nil {
			return err
		}
		if i := bytes.IndexByte(l, ';'); i >= 0 {
			l = l[:i] // chunk extensions are dropped, as net/http does
		}
		l = trimOWS(l)
		size, ok := parseHex(l)
		if !ok {
			return errBadChunk
		}
		if size == 0 {
			w.WriteString("0\r\n")
			for {
				t, err := line()
				if err != nil {
					return err
				}
				if len(t) > 0 {
					if c := bytes.IndexByte(t, ':'); c < 1 || !isToken(t[:c]) {
						return errBadChunk
					}
				}
				w.Write(t)
				w.WriteString("\r\n")
				if len(t) == 0 {
					return nil
				}
			}
		}
		w.WriteString(strconv.FormatInt(size, 16))
		w.WriteString("\r\n")
		if err := copyBody(r, w, size, capture); err != nil {
			return err
		}
		if l, err := line(); err != nil || len(l) != 0 {
			return errBadChunk
		}
		w.WriteString("\r\n")
	}
}

func parseHex(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 15 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		switch {
		case '0' <= c && c <= '9':
			n = n<<4 | int64(c-'0')
		case 'a' <= c && c <= 'f':
			n = n<<4 | int64(c-'a'+10)
		case 'A' <= c && c <= 'F':
			n = n<<4 | int64(c-'A'+10)
		default:
			return 0, false
		}
	}
	return n, true
}

// fastRoute reports whether the fast path can forward to u itself (plain HTTP, no path or
// query to join, no proxy from the environment), and the address to dial.
func fastRoute(u *url.URL) (host string, ok bool) {
	if u.Scheme != "http" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawPath != "" || u.RawQuery != "" || u.ForceQuery {
		return "", false
	}
	if p, err := http.ProxyFromEnvironment(&http.Request{URL: u}); err != nil || p != nil {
		return "", false
	}
	host = u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "80")
	}
	return host, true
}
