package gateway

import (
	"bufio"
	"bytes"
	"net/http"
	"strings"
	"testing"
)

func parseRaw(raw string) (headVerdict, *requestHead, error) {
	head, err := readHead(bufio.NewReaderSize(strings.NewReader(raw), 16), nil, 64<<10)
	if err != nil {
		return headBad, nil, err
	}
	h := &requestHead{}
	v, _ := parseRequestHead(head, "X-API-Key", 64, h)
	return v, h, nil
}

func TestParseRequestHead(t *testing.T) {
	tests := []struct {
		name, raw string
		want      headVerdict
		length    int64
	}{
		{"plain", "POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n", headFast, 12},
		{"no body", "GET /healthz?x=1 HTTP/1.1\r\nhost: x:80\r\n\r\n", headFast, 0},
		{"same length twice", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\n", headFast, 3},
		{"OWS around values", "POST / HTTP/1.1\r\nHost:x\r\nContent-Length: \t7 \r\n\r\n", headFast, 7},
		{"HTTP/1.0", "GET / HTTP/1.0\r\n\r\n", headHandOff, 0},
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\n", headHandOff, 0},
		{"chunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", headHandOff, 0},
		{"expect", "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n", headHandOff, 0},
		{"upgrade", "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n", headHandOff, 0},
		{"connect", "CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n", headHandOff, 0},
		{"absolute form", "GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n", headHandOff, 0},
		{"asterisk", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", headHandOff, 0},
		{"escaped path", "GET /a%2Fb HTTP/1.1\r\nHost: x\r\n\r\n", headHandOff, 0},
		{"leading empty line", "\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", headHandOff, 0},
		{"CL and TE", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", headBad, 0},
		{"differing CL", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", headBad, 0},
		{"CL list", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3,3\r\n\r\n", headBad, 0},
		{"negative CL", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", headBad, 0},
		{"huge CL", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n", headBad, 0},
		{"empty CL", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: \r\n\r\n", headBad, 0},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n", headBad, 0},
		{"bare LF", "GET / HTTP/1.1\r\nHost: x\n\r\n", headBad, 0},
		{"no colon", "GET / HTTP/1.1\r\nHost: x\r\nnocolon\r\n\r\n", headBad, 0},
		{"empty name", "GET / HTTP/1.1\r\nHost: x\r\n: v\r\n\r\n", headBad, 0},
		{"bad host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", headBad, 0},
		{"lower-case version", "GET / http/1.1\r\nHost: x\r\n\r\n", headBad, 0},
		{"bad method", "G(T / HTTP/1.1\r\nHost: x\r\n\r\n", headBad, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, h, err := parseRaw(tc.raw)
			if err != nil {
				t.Fatal(err)
			}
			if v != tc.want {
				t.Fatalf("verdict %d, want %d", v, tc.want)
			}
			if v == headFast && h.contentLength != tc.length {
				t.Fatalf("length %d, want %d", h.contentLength, tc.length)
			}
		})
	}
}

// FuzzRequestHead: the parser never panics, and what it accepts for the fast path net/http
// reads the same way: same method, target, host, body length, header values, and no other
// framing.
func FuzzRequestHead(f *testing.F) {
	for _, s := range []string{
		"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\nX-API-Key: k\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nConnection: close, X-A\r\nX-A: 1\r\nTE: trailers\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n",
		"GET / HTTP/1.0\r\n\r\n",
		"GET /a?b=%20 HTTP/1.1\r\nHost: [::1]:80\r\nX: a\r\n b\r\n\r\n",
		"GET / HTTP/1.1\nHost: x\n\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		head, err := readHead(bufio.NewReaderSize(bytes.NewReader(raw), 16), nil, 4<<10)
		if err != nil {
			return
		}
		var h requestHead
		if v, _ := parseRequestHead(head, "X-API-Key", 64, &h); v != headFast {
			return
		}
		r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
		if err != nil {
			t.Fatalf("accepted %q, net/http refuses it: %v", head, err)
		}
		if r.Method != string(h.method) || r.RequestURI != string(h.target) || r.Host != string(h.host) || r.URL.Path != string(h.path) {
			t.Fatalf("%q: net/http reads %s %s host %q path %q", head, r.Method, r.RequestURI, r.Host, r.URL.Path)
		}
		if len(r.TransferEncoding) > 0 || r.Header.Get("Expect") != "" || r.Header.Get("Upgrade") != "" || r.ProtoMinor != 1 {
			t.Fatalf("%q: accepted with other framing (%v)", head, r.TransferEncoding)
		}
		want := r.ContentLength
		if want < 0 {
			want = 0
		}
		if h.contentLength != want {
			t.Fatalf("%q: length %d, net/http %d", head, h.contentLength, r.ContentLength)
		}
		for _, fl := range h.fields {
			found := false
			for _, v := range r.Header.Values(string(fl.name)) {
				found = found || v == string(fl.value)
			}
			if !found && !fieldIs(fl.name, "Host") {
				t.Fatalf("%q: field %q: %q, net/http has %q", head, fl.name, fl.value, r.Header.Values(string(fl.name)))
			}
		}
		if h.close != r.Close {
			t.Fatalf("%q: close %v, net/http %v", head, h.close, r.Close)
		}
	})
}
