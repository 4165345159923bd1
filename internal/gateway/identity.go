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
	if id := credential(r.Header.Get(g.opts.ClientHeader), r.Header.Get("Authorization")); id != "" {
		return id
	}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		return "mtls:" + r.TLS.PeerCertificates[0].Subject.String()
	}
	return sourceClient(r.RemoteAddr)
}

// credential names a client by its API key or bearer token, or returns "".
func credential(key, authorization string) string {
	if key != "" {
		return "key:" + fingerprint(key)
	}
	if a := authorization; len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		return "bearer:" + fingerprint(strings.TrimSpace(a[7:]))
	}
	return ""
}

// sourceClient names a client by the IP address of a remote address ("host:port").
func sourceClient(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
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
