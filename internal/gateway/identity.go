package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/http"
	"strings"
)

// identify names the client of a request, in order of trust: API key header, bearer token,
// mTLS client certificate subject, source IP. Secrets are never written anywhere: keys and
// tokens appear as the first 16 hex digits of their SHA-256 ("key:…", "bearer:…"), which an
// operator can compute from a key to find its client.
func (g *Gateway) identify(r *http.Request) string {
	if k := r.Header.Get(g.opts.ClientHeader); k != "" {
		return "key:" + fingerprint(k)
	}
	if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		return "bearer:" + fingerprint(strings.TrimSpace(a[7:]))
	}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		return "mtls:" + r.TLS.PeerCertificates[0].Subject.String()
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "ip:" + host
}

// ClientID returns the client name the gateway uses for an API key or bearer token, so that an
// operator can block a key they hold.
func ClientID(kind, secret string) string { return kind + ":" + fingerprint(secret) }

func fingerprint(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:8])
}
