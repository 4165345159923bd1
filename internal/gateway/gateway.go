// Package gateway is pipewarden's inference proxy: a reverse proxy in front of model endpoints
// (KServe / Triton, TF Serving, MLflow, OpenAI-compatible, TorchServe) that names every client,
// applies cheap inline checks (block list, token-bucket rate limits, body size, input shape),
// feeds each request to asynchronous extraction and probing detectors through a bounded queue,
// escalates abusive clients from throttling to blocking, and reports aggregated events and
// findings to the daemon.
package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pipewarden/pipewarden/internal/finding"
	"github.com/pipewarden/pipewarden/internal/gateway/detect"
	"github.com/pipewarden/pipewarden/internal/gateway/protocol"
)

// Mode says whether the gateway acts on what it decides.
type Mode string

// Modes.
const (
	Enforce Mode = "enforce" // block and limit
	Shadow  Mode = "shadow"  // only record what would have been blocked or limited
)

// OnError says what the gateway does when it fails itself (a bug, a panic in a check).
type OnError string

// Fault policies.
const (
	FailOpen   OnError = "fail_open"   // forward the request unchecked
	FailClosed OnError = "fail_closed" // answer 503
)

// Route is one proxied endpoint.
type Route struct {
	Name       string           // endpoint name in events and findings; default the upstream URL
	PathPrefix string           // requests under this path go to Upstream; default "/"
	Upstream   *url.URL         // model server
	Protocol   protocol.Kind    // how request bodies are read
	Features   int              // declared features per row; 0 = not checked
	MaxRows    int              // declared batch size limit; 0 = not checked
	Baseline   *detect.Baseline // training baseline for drift; nil = none
}

// Limits are the inline limits.
type Limits struct {
	BodyBytes   int64   // largest request body; default 4 MiB
	ClientRate  float64 // requests per second per client; 0 = unlimited
	ClientBurst int     // token bucket size; default 2 × rate, at least 1
	GlobalRate  float64 // requests per second for all clients; 0 = unlimited
	GlobalBurst int
	MaxClients  int // client states kept (LRU); default 100,000
}

// Escalation turns findings into restrictions: a client finding at or above At throttles the
// client (its rate × ThrottleFactor) for ThrottleTTL; another while throttled, or one at or
// above BlockAt, blocks it for BlockTTL.
type Escalation struct {
	At             finding.Severity
	BlockAt        finding.Severity
	ThrottleFactor float64
	ThrottleRate   float64 // requests per second when throttled and no client rate is set
	ThrottleTTL    time.Duration
	BlockTTL       time.Duration
	Off            bool
}

// Options configure a Gateway; zero values take the documented defaults.
type Options struct {
	Routes       []Route
	Mode         Mode
	OnError      OnError
	ClientHeader string // API key header; default X-API-Key
	Limits       Limits
	Detect       detect.Config
	Escalation   Escalation
	QueueSize    int           // samples waiting for the detectors; default 4096
	MaxRows      int           // rows of one request fed to the detectors; default 16
	DetectorCPU  float64       // share of one core the detectors may use; default 0.2, 1 = no limit
	Interval     time.Duration // event aggregation interval; default 10 s
	SampleRate   float64       // share of requests also reported one by one with features
	Name         string        // instance name, in event sources; default "gateway"
	DataDir      string        // state file and secret; "" keeps state in memory
	Secret       []byte        // detector secret; default read or created in DataDir
	Reporter     Reporter      // where events and findings go; nil = nowhere
	Logger       *slog.Logger
	Now          func() time.Time
	Transport    http.RoundTripper
	// Synchronous runs the detectors inside the request (evaluations and tests only: it puts
	// their cost on the request path).
	Synchronous bool
}

func (o *Options) defaults() error {
	if o.Mode == "" {
		o.Mode = Enforce
	}
	if o.Mode != Enforce && o.Mode != Shadow {
		return fmt.Errorf("mode %q: want enforce or shadow", o.Mode)
	}
	if o.OnError == "" {
		o.OnError = FailOpen
	}
	if o.OnError != FailOpen && o.OnError != FailClosed {
		return fmt.Errorf("on_error %q: want fail_open or fail_closed", o.OnError)
	}
	if o.ClientHeader == "" {
		o.ClientHeader = "X-API-Key"
	}
	if o.Limits.BodyBytes <= 0 {
		o.Limits.BodyBytes = 4 << 20
	}
	if o.Limits.MaxClients <= 0 {
		o.Limits.MaxClients = 100000
	}
	if o.Limits.ClientBurst <= 0 {
		o.Limits.ClientBurst = max(1, int(math.Ceil(2*o.Limits.ClientRate)))
	}
	if o.Limits.GlobalBurst <= 0 {
		o.Limits.GlobalBurst = max(1, int(math.Ceil(2*o.Limits.GlobalRate)))
	}
	e := &o.Escalation
	if e.At == finding.Info {
		e.At = finding.High
	}
	if e.BlockAt == finding.Info {
		e.BlockAt = finding.Critical
	}
	if e.ThrottleFactor <= 0 || e.ThrottleFactor > 1 {
		e.ThrottleFactor = 0.1
	}
	if e.ThrottleRate <= 0 {
		e.ThrottleRate = 1
	}
	if e.ThrottleTTL <= 0 {
		e.ThrottleTTL = 15 * time.Minute
	}
	if e.BlockTTL <= 0 {
		e.BlockTTL = time.Hour
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 4096
	}
	if o.MaxRows <= 0 {
		o.MaxRows = 16
	}
	if o.DetectorCPU <= 0 {
		o.DetectorCPU = 0.2
	}
	if o.Interval <= 0 {
		o.Interval = 10 * time.Second
	}
	if o.Name == "" {
		o.Name = "gateway"
	}
	if o.Transport == nil {
		// The default transport keeps 2 idle connections per host: under concurrency every
		// other request would open a new connection to the model server.
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConns, t.MaxIdleConnsPerHost = 1024, 256
		o.Transport = newUpstreamTransport(t)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if len(o.Routes) == 0 {
		return errors.New("no routes: give at least one upstream")
	}
	for i := range o.Routes {
		r := &o.Routes[i]
		if r.Upstream == nil || r.Upstream.Scheme == "" || r.Upstream.Host == "" {
			return fmt.Errorf("route %d: upstream must be an absolute URL", i)
		}
		if r.PathPrefix == "" {
			r.PathPrefix = "/"
		}
		if r.Name == "" {
			r.Name = r.Upstream.String()
		}
		if r.Protocol == "" {
			r.Protocol = protocol.KServeV2
		}
		if _, err := protocol.ParseKind(string(r.Protocol)); err != nil {
			return fmt.Errorf("route %s: %w", r.Name, err)
		}
		if r.Baseline != nil && r.Features > 0 && r.Baseline.Dim() != r.Features {
			return fmt.Errorf("route %s: baseline has %d features, the route declares %d", r.Name, r.Baseline.Dim(), r.Features)
		}
	}
	return nil
}

// Gateway is the proxy. Create it with New, serve it with ServeHTTP, stop it with Close.
type Gateway struct {
	opts     Options
	routes   []*route
	blocks   *Blocks
	clients  *clientTable
	engine   *detect.Engine
	queue    chan *sample
	bufs     sync.Pool
	copyBufs *bufferPool

	dropped   atomic.Int64
	faults    atomic.Int64
	processed atomic.Int64
	detectNs  atomic.Int64

	agg    *aggregator
	stop   chan struct{}
	done   sync.WaitGroup
	engMu  sync.Mutex // the engine, for Synchronous mode
	closed atomic.Bool
}

type route struct {
	Route
	proxy  *httputil.ReverseProxy
	parser *protocol.Parser
	fast   bool   // the fast front end forwards to the upstream itself
	upHost string // the upstream's address, when fast
}

// New builds a gateway and starts its detector and reporting goroutines.
func New(opts Options) (*Gateway, error) {
	if err := opts.defaults(); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	secret := opts.Secret
	if secret == nil {
		var err error
		if secret, err = loadOrCreateSecret(opts.DataDir); err != nil {
			return nil, err
		}
	}
	eng, err := detect.NewEngine(opts.Detect, secret)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	blocks, err := openBlocks(opts.DataDir, opts.Now)
	if err != nil {
		return nil, err
	}
	g := &Gateway{
		opts: opts, blocks: blocks, engine: eng,
		clients: newClientTable(opts.Limits, opts.Escalation, opts.Now),
		queue:   make(chan *sample, opts.QueueSize),
		stop:    make(chan struct{}),
	}
	g.bufs.New = func() any { return new(bytes.Buffer) }
	g.copyBufs = &bufferPool{p: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}
	g.agg = newAggregator(g)
	blocks.onChange = func(b Block, added bool) {
		g.agg.addFinding(blockFinding(b, added, opts.Now()))
		opts.Logger.Warn("block list changed", "client", b.Client, "added", added, "source", b.Source, "rule", b.Rule)
	}
	for _, r := range opts.Routes {
		g.routes = append(g.routes, g.newRoute(r))
		if r.Baseline != nil {
			eng.SetBaseline(r.Name, r.Baseline)
		}
	}
	// Longest prefix first.
	for i := 1; i < len(g.routes); i++ {
		for j := i; j > 0 && len(g.routes[j].PathPrefix) > len(g.routes[j-1].PathPrefix); j-- {
			g.routes[j], g.routes[j-1] = g.routes[j-1], g.routes[j]
		}
	}
	g.done.Add(2)
	go g.detectLoop()
	go g.agg.loop()
	return g, nil
}

// Close stops the background goroutines after a last report.
func (g *Gateway) Close() error {
	if g.closed.Swap(true) {
		return nil
	}
	close(g.stop)
	g.done.Wait()
	return nil
}

// Mode is the gateway's mode.
func (g *Gateway) Mode() Mode { return g.opts.Mode }

// Blocks is the block list.
func (g *Gateway) Blocks() *Blocks { return g.blocks }

func (g *Gateway) newRoute(r Route) *route {
	target := r.Upstream
	rt := &route{Route: r, parser: protocol.NewParser(r.Protocol, protocol.Limits{})}
	rt.upHost, rt.fast = fastRoute(target)
	rt.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
			pr.Out.Host = pr.In.Host
		},
		Transport: g.opts.Transport,
		// FlushInterval 0: ReverseProxy flushes text/event-stream and unknown-length responses
		// as they come (SSE, chunked streams pass through untouched) and buffers the rest.
		BufferPool:     g.copyBufs,
		ModifyResponse: g.captureResponse,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if st, ok := r.Context().Value(stateKey{}).(*reqState); ok {
				st.status = http.StatusBadGateway
			}
			g.opts.Logger.Warn("upstream error", "route", rt.Name, "err", err)
			writeJSON(w, http.StatusBadGateway, map[string]any{"error": "upstream unavailable"})
		},
	}
	return rt
}

func (g *Gateway) match(path string) *route {
	for _, r := range g.routes {
		if strings.HasPrefix(path, r.PathPrefix) {
			return r
		}
	}
	return nil
}

type stateKey struct{}

// reqState travels with the request to ModifyResponse.
type reqState struct {
	status  int
	capture bool
	resp    *bytes.Buffer
}

const maxCapture = 1 << 16 // response bytes kept to read the predicted class

// ServeHTTP proxies one request through the inline checks.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := g.opts.Now()
	rt := g.match(r.URL.Path)
	client := ""
	if rt != nil {
		client = g.identify(r)
	}
	in := inbound{method: r.Method, contentLength: r.ContentLength, body: r.Body,
		contentType: r.Header.Get("Content-Type"), headerLength: r.Header.Get("Inference-Header-Content-Length")}
	v := g.decide(&in, rt, r.URL.Path, client, start)
	if v.answer != nil {
		v.answer.writeTo(w)
		return
	}
	g.forward(w, r, rt, client, start, v)
}

// inbound is what the inline checks read of a request, whichever front end parsed it.
type inbound struct {
	method        string
	contentLength int64     // -1: unknown
	body          io.Reader // nil or http.NoBody: none
	contentType   string
	headerLength  string // Inference-Header-Content-Length
}

// answer is a response the gateway gives itself instead of forwarding.
type answer struct {
	status     int
	body       map[string]any
	retryAfter int // seconds; 0: no Retry-After
}

func (a *answer) writeTo(w http.ResponseWriter) {
	if a.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(a.retryAfter))
	}
	writeJSON(w, a.status, a.body)
}

// checked is the outcome of the inline checks: an answer, or a request to forward.
type checked struct {
	answer *answer
	body   *bytes.Buffer
	req    *protocol.Request
	shadow outcome
}

// decide runs the inline checks under the on_error policy: a fault in them answers 503
// (fail_closed) or forwards what the checks had read (fail_open; the detectors skip it).
func (g *Gateway) decide(in *inbound, rt *route, path, client string, start time.Time) *checked {
	if rt == nil {
		return &checked{answer: &answer{status: http.StatusNotFound, body: map[string]any{"error": "no route for " + path}}}
	}
	v, err := g.check(in, rt, client, start)
	if err == nil {
		return v
	}
	g.faults.Add(1)
	g.opts.Logger.Error("gateway fault", "client", client, "route", rt.Name, "err", err)
	if g.opts.OnError == FailClosed {
		g.clients.record(client, rt.Name, http.StatusServiceUnavailable, start, g.opts.Now(), outcomeFault)
		g.release(v)
		return &checked{answer: &answer{status: http.StatusServiceUnavailable, body: map[string]any{"error": "gateway unavailable"}}}
	}
	v.answer, v.req = nil, nil
	return v
}

// check runs the inline checks; it returns an answer when it stops the request. A panic in a
// check is the gateway's own fault and becomes an error for the on_error policy.
func (g *Gateway) check(in *inbound, rt *route, client string, start time.Time) (v *checked, err error) {
	v = &checked{}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic in inline checks: %v", p)
		}
	}()
	enforce := g.opts.Mode == Enforce
	if b, ok := g.blocks.Active(client); ok {
		if enforce {
			v.answer = &answer{status: http.StatusForbidden, body: map[string]any{"error": "client blocked", "client": client,
				"reason": b.Reason, "until": b.Until}}
			g.clients.record(client, rt.Name, http.StatusForbidden, start, g.opts.Now(), outcomeBlocked)
			return v, nil
		}
		v.shadow = outcomeBlocked
	}
	if ok, retry := g.clients.allow(client, start); !ok {
		if enforce {
			secs := max(1, int(math.Ceil(retry.Seconds())))
			v.answer = &answer{status: http.StatusTooManyRequests, retryAfter: secs, body: map[string]any{"error": "rate limit exceeded",
				"client": client, "retry_after_seconds": secs}}
			g.clients.record(client, rt.Name, http.StatusTooManyRequests, start, g.opts.Now(), outcomeLimited)
			return v, nil
		}
		if v.shadow == outcomeNone {
			v.shadow = outcomeLimited
		}
	}
	if in.contentLength > g.opts.Limits.BodyBytes {
		return g.reject(rt, client, start, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", g.opts.Limits.BodyBytes), v)
	}
	if in.body != nil && in.body != http.NoBody {
		buf := g.bufs.Get().(*bytes.Buffer)
		buf.Reset()
		_, rerr := buf.ReadFrom(io.LimitReader(in.body, g.opts.Limits.BodyBytes+1))
		v.body = buf
		if rerr != nil {
			return g.reject(rt, client, start, http.StatusBadRequest, "cannot read request body", v)
		}
		if int64(buf.Len()) > g.opts.Limits.BodyBytes {
			return g.reject(rt, client, start, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", g.opts.Limits.BodyBytes), v)
		}
	}
	if in.method == http.MethodPost && v.body != nil && v.body.Len() > 0 {
		// Room for the numbers of a typical body, so the parser rarely grows the slice.
		req := &protocol.Request{Vals: make([]float64, 0, min(v.body.Len()/16+8, 1<<16))}
		hl := -1
		if s := in.headerLength; s != "" {
			if n, err := strconv.Atoi(s); err == nil && n >= 0 {
				hl = n
			} else {
				return g.reject(rt, client, start, http.StatusBadRequest, "invalid Inference-Header-Content-Length", v)
			}
		}
		perr := rt.parser.Parse(v.body.Bytes(), protocol.Meta{ContentType: in.contentType, HeaderLength: hl}, req)
		if msg := shapeProblem(rt, req, perr); msg != "" {
			return g.reject(rt, client, start, http.StatusBadRequest, msg, v)
		}
		if perr == nil {
			v.req = req
		}
	}
	return v, nil
}

// shapeProblem returns why a parsed request breaks the route's declared schema, or "".
func shapeProblem(rt *route, req *protocol.Request, perr error) string {
	var se *protocol.ShapeError
	if errors.As(perr, &se) {
		return se.Error()
	}
	if rt.Features == 0 && rt.MaxRows == 0 {
		return ""
	}
	if perr != nil {
		return "request does not match the endpoint's schema: " + perr.Error()
	}
	if rt.Features > 0 && req.Rows > 0 && req.Width != rt.Features {
		return fmt.Sprintf("request rows have %d features, the endpoint takes %d", req.Width, rt.Features)
	}
	if rt.MaxRows > 0 && req.Rows > rt.MaxRows {
		return fmt.Sprintf("request has %d rows, the endpoint takes at most %d", req.Rows, rt.MaxRows)
	}
	return ""
}

// reject answers a request the checks refuse (enforce) or lets it through (shadow).
func (g *Gateway) reject(rt *route, client string, start time.Time, status int, msg string, v *checked) (*checked, error) {
	if g.opts.Mode == Shadow {
		if v.shadow == outcomeNone {
			v.shadow = outcomeRejected
		}
		return v, nil
	}
	v.answer = &answer{status: status, body: map[string]any{"error": msg}}
	g.clients.record(client, rt.Name, status, start, g.opts.Now(), outcomeRejected)
	g.release(v)
	return v, nil
}

func (g *Gateway) release(v *checked) {
	if v.body != nil && v.body.Cap() <= 1<<20 {
		g.bufs.Put(v.body)
	}
	v.body = nil
}

func (g *Gateway) forward(w http.ResponseWriter, r *http.Request, rt *route, client string, start time.Time, v *checked) {
	st := &reqState{capture: v.req != nil && v.req.Rows > 0}
	if v.body != nil {
		body := v.body.Bytes()
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	r = r.WithContext(context.WithValue(r.Context(), stateKey{}, st))
	rt.proxy.ServeHTTP(w, r)
	var resp []byte
	if st.resp != nil {
		resp = st.resp.Bytes()
	}
	g.account(rt, client, start, st.status, v, resp)
}

// account records a forwarded request and hands its sample, with the start of the response
// when it was captured, to the detectors.
func (g *Gateway) account(rt *route, client string, start time.Time, status int, v *checked, resp []byte) {
	end := g.opts.Now()
	out := outcomeForwarded
	if v.shadow != outcomeNone {
		out = v.shadow | outcomeShadow
	}
	g.clients.record(client, rt.Name, status, start, end, out)
	if v.req != nil && v.req.Rows > 0 && v.req.Width > 0 {
		g.enqueue(&sample{client: client, route: rt, time: start, status: status, req: v.req,
			latency: end.Sub(start), resp: resp})
	}
	g.release(v)
}

// captures reports whether a response's body is kept for the class parser: a successful answer
// to a request the detectors will see, never a stream.
func captures(v *checked, status int, contentType string) bool {
	return v.req != nil && v.req.Rows > 0 && status == http.StatusOK && !strings.HasPrefix(contentType, "text/event-stream")
}

// captureResponse records the status and keeps the start of the body for the class parser;
// streams are never touched.
func (g *Gateway) captureResponse(resp *http.Response) error {
	st, ok := resp.Request.Context().Value(stateKey{}).(*reqState)
	if !ok {
		return nil
	}
	st.status = resp.StatusCode
	if !st.capture || resp.StatusCode != http.StatusOK || strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return nil
	}
	st.resp = new(bytes.Buffer)
	resp.Body = &teeBody{ReadCloser: resp.Body, buf: st.resp}
	return nil
}

type teeBody struct {
	io.ReadCloser
	buf *bytes.Buffer
}

func (t *teeBody) Read(p []byte) (int, error) {
	n, err := t.ReadCloser.Read(p)
	if room := maxCapture - t.buf.Len(); room > 0 && n > 0 {
		t.buf.Write(p[:min(n, room)])
	}
	return n, err
}

// bufferPool lends ReverseProxy its 32 KiB copy buffers.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte  { return *(b.p.Get().(*[]byte)) }
func (b *bufferPool) Put(x []byte) { b.p.Put(&x) }
