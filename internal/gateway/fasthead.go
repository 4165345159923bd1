package gateway

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// The fast front end's message heads (RFC 9112). Requests are parsed strictly: what could
// frame a body two ways (request smuggling) is refused with 400, and what is legal but unusual
// (other versions, absolute or asterisk targets, Transfer-Encoding, Expect, Upgrade) is handed
// to net/http untouched.

// field is one header line, both parts slices of the head buffer.
type field struct{ name, value []byte }

// headVerdict is what the front end does with a request head.
type headVerdict int

const (
	headFast    headVerdict = iota // proxy it on the fast path
	headHandOff                    // legal but not for the fast path: net/http serves the connection
	headBad                        // malformed or ambiguous: 400 and close
)

var (
	errHeadTooLarge = errors.New("message head too large")
	errBadHead      = errors.New("malformed message head")
)

// readHead appends a message head, from its first line to the empty line that ends it, from br
// to dst. A head larger than limit is errHeadTooLarge.
func readHead(br *bufio.Reader, dst []byte, limit int) ([]byte, error) {
	lineStart := len(dst)
	for {
		chunk, err := br.ReadSlice('\n')
		if len(dst)+len(chunk) > limit {
			return dst, errHeadTooLarge
		}
		dst = append(dst, chunk...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if err == io.EOF && len(dst) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return dst, err
		}
		line := dst[lineStart:]
		if len(line) == 1 || (len(line) == 2 && line[0] == '\r') {
			return dst, nil
		}
		lineStart = len(dst)
	}
}

// nextLine splits the first line off b, without its CRLF; a line ending in a bare LF or
// holding a CR elsewhere is malformed.
func nextLine(b []byte) (line, rest []byte, ok bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 1 || b[i-1] != '\r' {
		return nil, nil, false
	}
	line = b[:i-1]
	if bytes.IndexByte(line, '\r') >= 0 {
		return nil, nil, false
	}
	return line, b[i+1:], true
}

// parseFields reads header lines up to the empty line; it refuses obs-fold, whitespace before
// the colon, invalid names and control characters in values.
func parseFields(b []byte, fields []field, maxFields int) ([]field, bool) {
	for {
		line, rest, ok := nextLine(b)
		if !ok {
			return fields, false
		}
		if len(line) == 0 {
			return fields, len(rest) == 0
		}
		if len(fields) == maxFields {
			return fields, false
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 1 || !isToken(line[:colon]) {
			return fields, false
		}
		v := trimOWS(line[colon+1:])
		for _, c := range v {
			if c < ' ' && c != '\t' || c == 0x7f {
				return fields, false
			}
		}
		fields = append(fields, field{name: line[:colon], value: v})
		b = rest
	}
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// tokenChars are RFC 9110 tchar.
var tokenChars = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !tokenChars[c] {
			return false
		}
	}
	return true
}

// pathChars are the bytes an origin-form path keeps as they are when net/url re-escapes it
// (unreserved, sub-delims, ':', '@', '/'); a path with others (or '%') is handed off, so that
// the fast path forwards exactly what httputil.ReverseProxy would.
var pathChars = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "-._~!$&'()*+,;=:@/" {
		t[c] = true
	}
	return t
}()

// hostChars are the bytes net/http accepts in a Host header.
var hostChars = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!$%&'()*+,-.:;=[]_~" {
		t[c] = true
	}
	return t
}()

// requestHead is a parsed request head; its slices point into the head buffer.
type requestHead struct {
	method, target, path []byte
	host                 []byte
	fields               []field
	connTokens           [][]byte // names listed in Connection
	contentLength        int64
	close                bool   // Connection: close
	teTrailers           bool   // TE lists trailers
	key, authorization   []byte // first values, for the client's identity
	contentType          []byte
	headerLength         []byte // Inference-Header-Content-Length
	idempotencyKey       bool
}

// parseRequestHead parses a head read by readHead, with at most maxFields header lines.
func parseRequestHead(head []byte, keyHeader string, maxFields int, h *requestHead) (headVerdict, string) {
	fields := h.fields[:0]
	tokens := h.connTokens[:0]
	*h = requestHead{fields: fields, connTokens: tokens, contentLength: -1}
	line, rest, ok := nextLine(head)
	if !ok {
		if len(head) > 0 && (head[0] == '\n' || head[0] == '\r') {
			return headHandOff, "" // empty lines before the request (net/http skips them after a POST)
		}
		return headBad, "malformed request line"
	}
	if len(line) == 0 {
		return headHandOff, ""
	}
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 < 0 {
		return headBad, "malformed request line"
	}
	sp2 := bytes.IndexByte(line[sp1+1:], ' ')
	if sp2 < 0 {
		return headBad, "malformed request line"
	}
	sp2 += sp1 + 1
	h.method, h.target = line[:sp1], line[sp1+1:sp2]
	version := line[sp2+1:]
	if !isToken(h.method) || len(h.target) == 0 {
		return headBad, "malformed request line"
	}
	if string(version) != "HTTP/1.1" {
		if len(version) == 8 && string(version[:5]) == "HTTP/" && isDigit(version[5]) && version[6] == '.' && isDigit(version[7]) {
			return headHandOff, "" // HTTP/1.0, HTTP/2.0 prior knowledge, ...: net/http answers
		}
		return headBad, "malformed request line"
	}
	if h.target[0] != '/' || string(h.method) == "CONNECT" {
		return headHandOff, "" // absolute form, asterisk form, CONNECT
	}
	h.path = h.target
	if q := bytes.IndexByte(h.target, '?'); q >= 0 {
		h.path = h.target[:q]
		for _, c := range h.target[q+1:] {
			if c <= ' ' || c >= 0x7f {
				return headHandOff, ""
			}
		}
	}
	for _, c := range h.path {
		if !pathChars[c] {
			return headHandOff, ""
		}
	}
	if h.fields, ok = parseFields(rest, fields, maxFields); !ok {
		if len(h.fields) == maxFields {
			return headBad, "too many header fields"
		}
		return headBad, "malformed header field"
	}
	hosts, lengths := 0, 0
	te, special := false, false
	for _, f := range h.fields {
		switch {
		case fieldIs(f.name, "Host"):
			hosts++
			h.host = f.value
		case fieldIs(f.name, "Content-Length"):
			n, ok := parseLength(f.value)
			if !ok || (lengths > 0 && n != h.contentLength) {
				return headBad, "invalid or conflicting Content-Length"
			}
			lengths++
			h.contentLength = n
		case fieldIs(f.name, "Transfer-Encoding"):
			te = true // a body in chunks is net/http's, after the framing checks below
		case fieldIs(f.name, "Expect"), fieldIs(f.name, "Upgrade"):
			special = true // 100-continue and protocol switches are net/http's
		case fieldIs(f.name, "Connection"):
			for t := range tokensOf(f.value) {
				if fieldIs(t, "close") {
					h.close = true
				}
				h.connTokens = append(h.connTokens, t)
			}
		case fieldIs(f.name, "TE"):
			for t := range tokensOf(f.value) {
				if fieldIs(t, "trailers") {
					h.teTrailers = true
				}
			}
		case fieldIs(f.name, keyHeader):
			if h.key == nil {
				h.key = f.value
			}
		case fieldIs(f.name, "Authorization"):
			if h.authorization == nil {
				h.authorization = f.value
			}
		case fieldIs(f.name, "Content-Type"):
			if h.contentType == nil {
				h.contentType = f.value
			}
		case fieldIs(f.name, "Inference-Header-Content-Length"):
			if h.headerLength == nil {
				h.headerLength = f.value
			}
		case fieldIs(f.name, "Idempotency-Key"), fieldIs(f.name, "X-Idempotency-Key"):
			h.idempotencyKey = h.idempotencyKey || len(f.value) > 0
		}
	}
	switch {
	case te && lengths > 0:
		return headBad, "both Content-Length and Transfer-Encoding"
	case hosts != 1:
		return headBad, "want exactly one Host header"
	case !validHost(h.host):
		return headBad, "malformed Host header"
	case te || special:
		return headHandOff, ""
	}
	if h.contentLength < 0 {
		h.contentLength = 0
	}
	return headFast, ""
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// parseLength parses a Content-Length value: decimal digits only, no sign, no list.
func parseLength(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func validHost(b []byte) bool {
	for _, c := range b {
		if !hostChars[c] {
			return false
		}
	}
	return true
}

// fieldIs compares a header name (or token) with a name, ignoring ASCII case.
func fieldIs(b []byte, name string) bool {
	if len(b) != len(name) {
		return false
	}
	for i := range len(b) {
		c, d := b[i], name[i]
		if c|0x20 != d|0x20 || (c|0x20 < 'a' || c|0x20 > 'z') && c != d {
			return false
		}
	}
	return true
}

// tokensOf yields the elements of a comma-separated list, without whitespace or empties.
func tokensOf(v []byte) func(func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for len(v) > 0 {
			var t []byte
			if i := bytes.IndexByte(v, ','); i >= 0 {
				t, v = v[:i], v[i+1:]
			} else {
				t, v = v, nil
			}
			if t = trimOWS(t); len(t) > 0 && !yield(t) {
				return
			}
		}
	}
}

// hopByHop are the headers a proxy does not forward (RFC 9110 7.6.1), besides those named in
// Connection.
var hopByHop = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func isHopByHop(name []byte, connTokens [][]byte) bool {
	for _, h := range hopByHop {
		if fieldIs(name, h) {
			return true
		}
	}
	for _, t := range connTokens {
		if bytes.EqualFold(name, t) {
			return true
		}
	}
	return false
}

// responseHead is a parsed response head from an upstream.
type responseHead struct {
	status        int
	reason        []byte
	fields        []field
	connTokens    [][]byte
	contentLength int64 // -1: none
	chunked       bool
	close         bool // the upstream closes the connection after this response
	contentType   []byte
	date          bool
}

// parseResponseHead parses an upstream's response head. It is as strict about framing as the
// request parser: the body must be delimited one way only.
func parseResponseHead(head []byte, maxFields int, h *responseHead) error {
	fields, tokens := h.fields[:0], h.connTokens[:0]
	*h = responseHead{fields: fields, connTokens: tokens, contentLength: -1}
	line, rest, ok := nextLine(head)
	if !ok || len(line) < 12 || string(line[:7]) != "HTTP/1." || (line[7] != '0' && line[7] != '1') || line[8] != ' ' ||
		!isDigit(line[9]) || !isDigit(line[10]) || !isDigit(line[11]) || (len(line) > 12 && line[12] != ' ') {
		return errBadHead
	}
	h.status = int(line[9]-'0')*100 + int(line[10]-'0')*10 + int(line[11]-'0')
	if h.status < 100 {
		return errBadHead
	}
	if len(line) > 13 {
		h.reason = line[13:]
	}
	keepAlive := false
	if h.fields, ok = parseFields(rest, fields, maxFields); !ok {
		return errBadHead
	}
	te := false
	for _, f := range h.fields {
		switch {
		case fieldIs(f.name, "Content-Length"):
			n, ok := parseLength(f.value)
			if !ok || (h.contentLength >= 0 && n != h.contentLength) {
				return errBadHead
			}
			h.contentLength = n
		case fieldIs(f.name, "Transfer-Encoding"):
			if te || !fieldIs(f.value, "chunked") {
				return errors.New("unsupported transfer coding from upstream")
			}
			te, h.chunked = true, true
		case fieldIs(f.name, "Connection"):
			for t := range tokensOf(f.value) {
				switch {
				case fieldIs(t, "close"):
					h.close = true
				case fieldIs(t, "keep-alive"):
					keepAlive = true
				}
				h.connTokens = append(h.connTokens, t)
			}
		case fieldIs(f.name, "Content-Type"):
			if h.contentType == nil {
				h.contentType = f.value
			}
		case fieldIs(f.name, "Date"):
			h.date = true
		}
	}
	if h.chunked {
		h.contentLength = -1 // Transfer-Encoding wins (RFC 9112 6.3)
	}
	if line[7] == '0' && !keepAlive {
		h.close = true
	}
	return nil
}

// bodyless reports whether a response to method with this status has no body whatever its
// headers say.
func bodyless(method []byte, status int) bool {
	return string(method) == "HEAD" || status == 204 || status == 304 || status < 200
}
