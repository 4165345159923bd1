package httpapi

import (
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"strings"
)

type principalKey struct{}

func withPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the authenticated principal of a request, if any.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// authorize checks the bearer token and role, writing 401 or 403 itself when it fails.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, roles []string) (Principal, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, found := strings.Cut(h, " ")
	if h == "" || !found || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="pipewarden"`)
		writeError(w, http.StatusUnauthorized, "missing bearer token: send 'Authorization: Bearer <token>'")
		return Principal{}, false
	}
	if s.opts.Auth == nil {
		writeError(w, http.StatusUnauthorized, "no authenticator configured")
		return Principal{}, false
	}
	p, err := s.opts.Auth.Authenticate(r.Context(), strings.TrimSpace(tok))
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="pipewarden", error="invalid_token"`)
		if errors.Is(err, ErrUnauthenticated) {
			writeError(w, http.StatusUnauthorized, "invalid token")
		} else {
			s.log.Error("authenticate", "err", err)
			writeError(w, http.StatusServiceUnavailable, "cannot check the token now")
		}
		return Principal{}, false
	}
	if !slices.Contains(roles, p.Role) {
		writeError(w, http.StatusForbidden, "role "+p.Role+" may not "+r.Method+" "+r.URL.Path+" (needs one of: "+strings.Join(roles, ", ")+")")
		return Principal{}, false
	}
	return p, true
}

func isLoopback(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
