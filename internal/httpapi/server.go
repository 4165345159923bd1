// Package httpapi serves pipewarden's HTTP API: routes registered in one place, bearer-token
// auth with roles, JSON in and out, and request metrics.
package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pipewarden/pipewarden/internal/event"
	"github.com/pipewarden/pipewarden/internal/finding"
	"github.com/pipewarden/pipewarden/internal/store"
)

// ErrBackpressure is what an Ingester returns when consumers are behind; the API answers 429.
var ErrBackpressure = errors.New("consumers are behind")

// Ingester stores events durably and hands them to the consumers.
type Ingester interface {
	Ingest(ctx context.Context, evs []event.Event) error
}

// RoomChecker is implemented by an Ingester that can tell, before a request's body is read and
// decoded, that Ingest would answer ErrBackpressure whatever the events.
type RoomChecker interface {
	CheckRoom() error
}

// Reader is what the read endpoints need from the store.
type Reader interface {
	ListEvents(ctx context.Context, q store.EventQuery) (store.Page[store.StoredEvent], error)
	ListFindings(ctx context.Context, q store.FindingQuery) (store.Page[finding.Finding], error)
	ListAlerts(ctx context.Context, q store.AlertQuery) (store.Page[store.Alert], error)
	ListAssets(ctx context.Context, q store.AssetQuery) (store.Page[store.Asset], error)
}

// Authenticator maps a bearer token to its principal.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (Principal, error)
}

// Principal is who made a request.
type Principal struct {
	Name string
	Role string
}

// ErrUnauthenticated is returned by an Authenticator for an unknown token.
var ErrUnauthenticated = errors.New("unknown token")

// Options wire a Server.
type Options struct {
	Decoder  *event.Decoder
	Ingester Ingester
	Reader   Reader
	Auth     Authenticator
	// Ready reports whether the daemon can take traffic (store reachable, not draining).
	Ready func(ctx context.Context) error
	// Gatherer serves /metrics; Registerer receives the API's own metrics.
	Gatherer   prometheus.Gatherer
	Registerer prometheus.Registerer
	// MetricsAccess is loopback, public or token.
	MetricsAccess string
	Logger        *slog.Logger
	Now           func() time.Time
	// Rules serves GET /v1/rules and POST /v1/rules/reload; nil answers 503.
	Rules RulesAPI
	// AuditAPI, when set, is told about every state-changing request (not GET, not event
	// ingestion, which is audited per event) after it is handled.
	AuditAPI func(ctx context.Context, p Principal, pattern, path string, status int, remote string)
	// Mounts are routes served by other components (alerting, gateway, audit, models), registered
	// here so they share auth, metrics and the route list.
	Mounts []Mount
}

// Mount is a route served by another component.
type Mount struct {
	Pattern string   // "METHOD /path", stdlib ServeMux syntax
	Roles   []string // nil: open
	Handler http.Handler
}

// RulesAPI is what the rules routes need.
type RulesAPI interface {
	// ListRules returns the JSON body of GET /v1/rules.
	ListRules(ctx context.Context) (any, error)
	// ReloadRules reloads rule files; the error names file, line and rule.
	ReloadRules(ctx context.Context) (any, error)
}

// Role sets for mounted routes.
var (
	ReadRoles    = []string{store.RoleViewer, store.RoleResponder, store.RoleAdmin}
	RespondRoles = []string{store.RoleResponder, store.RoleAdmin}
	AdminRoles   = []string{store.RoleAdmin}
	IngestRoles  = []string{store.RoleIngest, store.RoleAdmin}
)

// Server is the API's http.Handler.
type Server struct {
	opts     Options
	log      *slog.Logger
	mux      *http.ServeMux
	routes   []string
	latency  *prometheus.HistogramVec
	received *prometheus.CounterVec
	rejected *prometheus.CounterVec
}

// New builds the server and registers every route.
func New(o Options) *Server {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Server{opts: o, log: o.Logger, mux: http.NewServeMux()}
	s.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "pipewarden_http_request_duration_seconds", Help: "HTTP request latency by route and status code.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}}, []string{"route", "code"})
	s.received = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pipewarden_events_received_total", Help: "Valid events received, by type (before storing)."}, []string{"type"})
	s.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pipewarden_events_rejected_total", Help: "Ingestion requests rejected, by reason."}, []string{"reason"})
	if o.Registerer != nil {
		o.Registerer.MustRegister(s.latency, s.received, s.rejected)
	}
	s.registerRoutes()
	return s
}

// registerRoutes is the one place routes are declared.
func (s *Server) registerRoutes() {
	ingest, read, admin := IngestRoles, ReadRoles, AdminRoles

	s.handle("POST /v1/events", ingest, s.postEvents)
	s.handle("GET /v1/events", read, s.getEvents)
	s.handle("POST /api/v1/lineage", ingest, s.postLineage)
	s.handle("GET /v1/findings", read, s.getFindings)
	s.handle("GET /v1/alerts", read, s.getAlerts)
	s.handle("GET /v1/assets", read, s.getAssets)
	s.handle("GET /v1/rules", read, s.getRules)
	s.handle("POST /v1/rules/reload", admin, s.reloadRules)
	for _, m := range s.opts.Mounts {
		s.handle(m.Pattern, m.Roles, m.Handler.ServeHTTP)
	}
	s.handle("GET /healthz", nil, s.healthz)
	s.handle("GET /readyz", nil, s.readyz)
	s.handle("GET /metrics", nil, s.metrics)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no route for "+r.Method+" "+r.URL.Path)
	})
}

// Routes lists the registered "METHOD /path" patterns, sorted (the OpenAPI test reads it).
func (s *Server) Routes() []string {
	out := append([]string(nil), s.routes...)
	sort.Strings(out)
	return out
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// handle registers a route with auth (roles == nil: open) and latency metrics.
func (s *Server) handle(pattern string, roles []string, h http.HandlerFunc) {
	s.routes = append(s.routes, pattern)
	_, path, _ := strings.Cut(pattern, " ")
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		defer func() {
			s.latency.WithLabelValues(path, statusLabel(rw.code)).Observe(time.Since(start).Seconds())
		}()
		if roles != nil {
			p, ok := s.authorize(rw, r, roles)
			if !ok {
				return
			}
			r = r.WithContext(withPrincipal(r.Context(), p))
			if s.opts.AuditAPI != nil && r.Method != http.MethodGet && pattern != "POST /v1/events" {
				defer func() { s.opts.AuditAPI(r.Context(), p, pattern, r.URL.Path, rw.code, r.RemoteAddr) }()
			}
		}
		h(rw, r)
	})
}

func (s *Server) getRules(w http.ResponseWriter, r *http.Request) {
	if s.opts.Rules == nil {
		writeError(w, http.StatusServiceUnavailable, "rules are not loaded")
		return
	}
	v, err := s.opts.Rules.ListRules(r.Context())
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) reloadRules(w http.ResponseWriter, r *http.Request) {
	if s.opts.Rules == nil {
		writeError(w, http.StatusServiceUnavailable, "rules are not loaded")
		return
	}
	v, err := s.opts.Rules.ReloadRules(r.Context())
	if err != nil {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"error": "reload failed; the previous rules keep running: " + err.Error(), "status": v})
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.opts.Ready != nil {
		if err := s.opts.Ready(r.Context()); err != nil {
			writeError(w, http.StatusServiceUnavailable, "not ready: "+err.Error())
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	switch s.opts.MetricsAccess {
	case "public":
	case "token":
		if _, ok := s.authorize(w, r, ReadRoles); !ok {
			return
		}
	default: // loopback
		if !isLoopback(r.RemoteAddr) {
			if _, ok := s.authorize(w, r, ReadRoles); !ok {
				return
			}
		}
	}
	if s.opts.Gatherer == nil {
		writeError(w, http.StatusNotFound, "metrics are not enabled")
		return
	}
	promhttp.HandlerFor(s.opts.Gatherer, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}
