package detect

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/pipewarden/pipewarden/internal/dataset/changepoint"
	"github.com/pipewarden/pipewarden/internal/finding"
	"github.com/pipewarden/pipewarden/internal/gateway/lru"
)

// Detector names, for Config.Disable.
const (
	PRADA      = "prada"
	Blacklight = "blacklight"
	Drift      = "drift"
	Pattern    = "pattern"
	Endpoint   = "endpoint"
)

// Rule ids of the findings.
const (
	RuleExtraction    = "gateway.extraction.prada"
	RuleQueryAttack   = "gateway.query_attack.blacklight"
	RuleLinked        = "gateway.query_attack.linked_clients"
	RuleOOD           = "gateway.input.out_of_distribution"
	RuleSweep         = "gateway.pattern.sweep"
	RuleSignSteps     = "gateway.pattern.sign_steps"
	RuleCoverage      = "gateway.pattern.coverage"
	RuleErrors        = "gateway.pattern.errors"
	RuleRate          = "gateway.volume.rate"
	RuleEndpointDrift = "gateway.endpoint.drift"
)

// Config tunes the detectors; DefaultConfig is conservative.
type Config struct {
	MaxClients int              `yaml:"max_clients"` // per-endpoint client states kept (LRU)
	Every      int              `yaml:"every"`       // run the statistical tests every this many queries of a client
	Cooldown   int              `yaml:"cooldown"`    // queries of a client between two findings of one rule
	Disable    []string         `yaml:"disable"`     // detector names to switch off
	PRADA      PRADAConfig      `yaml:"prada"`
	Blacklight BlacklightConfig `yaml:"blacklight"`
	Drift      DriftConfig      `yaml:"drift"`
	Pattern    PatternConfig    `yaml:"pattern"`
}

// PRADAConfig: the alarm is W < Delta on the last Window minimum distances, after MinQueries,
// in Persist consecutive evaluations (natural traffic dips below Delta now and then; synthetic
// queries stay there).
type PRADAConfig struct {
	Delta      float64 `yaml:"delta"`
	MinQueries int     `yaml:"min_queries"`
	Window     int     `yaml:"window"`
	Persist    int     `yaml:"persist"`
	MaxPoints  int     `yaml:"max_points"` // growing-set points kept per class
	// Duplicate is the radius, in standard deviations per feature (× √d), under which a query
	// counts as a repeat of an earlier one and is left out.
	Duplicate float64 `yaml:"duplicate"`
}

// BlacklightConfig: features quantised in Step standard deviations at Rounds salted offsets,
// windows of Window features, the TopN largest hashes as fingerprint; two queries match when
// they share at least Match of their fingerprint. A client alarms when its queries match on
// average at least MinMatches of its previous History queries, over its last Recent queries.
type BlacklightConfig struct {
	Step       float64 `yaml:"step"`
	Rounds     int     `yaml:"rounds"`
	Window     int     `yaml:"window"`
	TopN       int     `yaml:"top_n"`
	Match      float64 `yaml:"match"`
	History    int     `yaml:"history"`
	Recent     int     `yaml:"recent"`
	MinMatches float64 `yaml:"min_matches"`
	Index      int     `yaml:"index"`    // queries kept in the endpoint's index, for linking
	LinkMin    int     `yaml:"link_min"` // cross-client matches before two clients are reported linked
}

// DriftConfig: a client alarms when at least OODRate of its last Window queries are out of the
// baseline's distribution.
type DriftConfig struct {
	Window     int     `yaml:"window"`
	MinQueries int     `yaml:"min_queries"`
	OODRate    float64 `yaml:"ood_rate"`
	MaxSample  int     `yaml:"max_sample"` // baseline rows used for nearest-neighbour distances
}

// PatternConfig: sweeps (consecutive queries differing in one feature), coverage (queries in
// orthants the baseline never visits), errors and request rate.
type PatternConfig struct {
	Window       int     `yaml:"window"`
	MinQueries   int     `yaml:"min_queries"`
	SweepRate    float64 `yaml:"sweep_rate"`
	SignStepRate float64 `yaml:"sign_step_rate"`
	CoverageRate float64 `yaml:"coverage_rate"`
	ErrorRate    float64 `yaml:"error_rate"`
	MinErrors    int     `yaml:"min_errors"`
	PerMinute    int     `yaml:"per_minute"` // requests per minute of one client; 0 switches the rate finding off
}

// DefaultConfig returns the defaults documented in docs/gateway.md.
func DefaultConfig() Config {
	return Config{
		MaxClients: 10000, Every: 10, Cooldown: 30,
		PRADA:      PRADAConfig{Delta: 0.70, MinQueries: 50, Window: 200, Persist: 2, MaxPoints: 300, Duplicate: 0.25},
		Blacklight: BlacklightConfig{Step: 0.5, Rounds: 4, Window: 2, TopN: 20, Match: 0.6, History: 50, Recent: 50, MinMatches: 6, Index: 50000, LinkMin: 10},
		Drift:      DriftConfig{Window: 50, MinQueries: 30, OODRate: 0.2, MaxSample: 2000},
		Pattern:    PatternConfig{Window: 50, MinQueries: 30, SweepRate: 0.5, SignStepRate: 0.3, CoverageRate: 0.4, ErrorRate: 0.5, MinErrors: 20, PerMinute: 0},
	}
}

// Query is one instance of one request, as the detectors see it.
type Query struct {
	Client, Endpoint string
	Time             time.Time
	X                []float64 // features; read, never kept
	Class            int       // predicted class, -1 when unknown
	Status           int       // upstream HTTP status
}

// Engine runs the detectors. It is not safe for concurrent use: the gateway feeds it from one
// goroutine.
type Engine struct {
	cfg       Config
	off       map[string]bool
	k0, k1    uint64
	endpoints map[string]*endpointState
}

// NewEngine returns an engine; secret (at least 16 bytes, per deployment) keys the Blacklight
// hashes.
func NewEngine(cfg Config, secret []byte) (*Engine, error) {
	if len(secret) < 16 {
		return nil, fmt.Errorf("detector secret: %d bytes, need at least 16", len(secret))
	}
	cfg = cfg.withDefaults()
	e := &Engine{cfg: cfg, off: map[string]bool{}, endpoints: map[string]*endpointState{}}
	for _, n := range cfg.Disable {
		switch n {
		case PRADA, Blacklight, Drift, Pattern, Endpoint:
			e.off[n] = true
		default:
			return nil, fmt.Errorf("unknown detector %q (want %s, %s, %s, %s or %s)", n, PRADA, Blacklight, Drift, Pattern, Endpoint)
		}
	}
	e.k0, e.k1 = sipKey(secret)
	return e, nil
}

// SetBaseline gives an endpoint its training baseline (nil removes it).
func (e *Engine) SetBaseline(endpoint string, b *Baseline) {
	ep := e.endpoint(endpoint)
	if b != nil {
		b.prepare(e.cfg.Drift.MaxSample)
	}
	ep.base = b
	ep.cusum = nil
}

type endpointState struct {
	name    string
	base    *Baseline
	scale   welford
	clients *lru.Cache[string, *clientState]
	index   *blIndex
	cusum   []*changepoint.CUSUM
	n       int64
	lastEP  int64
	z       []float64
}

type clientState struct {
	id           string
	n            int64
	first, last  time.Time
	fired        map[string]int64
	prada        pradaState
	bl           blClient
	drift        driftState
	pat          patternState
	linked       map[string]int
	linkReported bool
}

func (e *Engine) endpoint(name string) *endpointState {
	ep, ok := e.endpoints[name]
	if !ok {
		ep = &endpointState{name: name, clients: lru.New[string, *clientState](e.cfg.MaxClients, nil)}
		ep.index = newBLIndex(e.cfg.Blacklight.Index)
		e.endpoints[name] = ep
	}
	return ep
}

// Clients is the number of client states kept across endpoints.
func (e *Engine) Clients() int {
	n := 0
	for _, ep := range e.endpoints {
		n += ep.clients.Len()
	}
	return n
}

// Observe feeds one query and returns the findings it completes.
func (e *Engine) Observe(q Query) []finding.Finding {
	ep := e.endpoint(q.Endpoint)
	ep.n++
	cs := ep.clients.GetOrAdd(q.Client, func() *clientState {
		return &clientState{id: q.Client, first: q.Time, fired: map[string]int64{}}
	})
	cs.n++
	cs.last = q.Time
	var out []finding.Finding
	emit := func(a *alarm) {
		if a == nil {
			return
		}
		if last, ok := cs.fired[a.rule]; ok && cs.n-last < int64(e.cfg.Cooldown) {
			return
		}
		cs.fired[a.rule] = cs.n
		out = append(out, a.finding(q, cs))
	}
	if !e.off[Pattern] {
		emit(cs.pat.status(&e.cfg.Pattern, q))
	}
	d := len(q.X)
	if d == 0 || (ep.base != nil && ep.base.Dim() != d) {
		return out
	}
	z := ep.standardise(q.X)
	evaluate := cs.n%int64(e.cfg.Every) == 0
	if !e.off[Pattern] {
		emit(cs.pat.shape(&e.cfg.Pattern, ep.base, q.X, z, evaluate))
	}
	if !e.off[PRADA] {
		emit(cs.prada.observe(&e.cfg.PRADA, z, q.Class, evaluate))
	}
	if !e.off[Blacklight] {
		a, l := e.blacklight(ep, cs, z)
		emit(a)
		emit(l)
	}
	if !e.off[Drift] && ep.base != nil {
		emit(cs.drift.observe(&e.cfg.Drift, ep.base, q.X, z))
	}
	if !e.off[Endpoint] && ep.base != nil {
		if f := e.endpointDrift(ep, q); f != nil {
			out = append(out, *f)
		}
	}
	return out
}

// standardise maps x to standard units with the baseline, or with the endpoint's running
// moments when it has none.
func (ep *endpointState) standardise(x []float64) []float64 {
	if cap(ep.z) < len(x) {
		ep.z = make([]float64, len(x))
	}
	z := ep.z[:len(x)]
	if ep.base != nil {
		ep.base.standardise(x, z)
		return z
	}
	ep.scale.add(x)
	ep.scale.standardise(x, z)
	return z
}

// endpointDrift runs a two-sided CUSUM per feature on the endpoint's whole traffic.
func (e *Engine) endpointDrift(ep *endpointState, q Query) *finding.Finding {
	b := ep.base
	if ep.cusum == nil {
		for j := range b.Mean {
			ep.cusum = append(ep.cusum, changepoint.NewCUSUM(b.Mean[j], b.Std[j], 0.5, 8))
		}
	}
	var shifted []string
	for j, c := range ep.cusum {
		if c.Add(q.X[j]) && len(shifted) < 10 {
			shifted = append(shifted, b.name(j))
		}
	}
	if len(shifted) == 0 || ep.n-ep.lastEP < 1000 && ep.lastEP != 0 {
		return nil
	}
	ep.lastEP = ep.n
	return &finding.Finding{
		Rule: RuleEndpointDrift, Severity: finding.Medium,
		Title:   fmt.Sprintf("Inputs to %s drifted from the training baseline", ep.name),
		Subject: finding.Subject{Kind: "endpoint", Name: ep.name},
		Labels:  map[string]string{"endpoint": ep.name, "detector": Endpoint},
		Evidence: map[string]any{"features": shifted, "statistic": "two-sided CUSUM", "k": 0.5, "h": 8,
			"queries": ep.n, "last_request": q.Time},
		ATLAS: []string{"AML.T0043"}, OWASP: []string{"ML01"}, Confidence: 0.5, Time: q.Time,
	}
}

func (b *Baseline) name(j int) string {
	if j < len(b.Names) {
		return b.Names[j]
	}
	return fmt.Sprintf("feature_%d", j)
}

// alarm is a detector's conclusion before it becomes a finding.
type alarm struct {
	rule      string
	detector  string
	severity  finding.Severity
	title     string
	statistic float64
	threshold float64
	extra     map[string]any
	atlas     []string
	owasp     []string
	conf      float64
}

func (a *alarm) finding(q Query, cs *clientState) finding.Finding {
	ev := map[string]any{
		"statistic": round(a.statistic), "threshold": a.threshold, "queries": cs.n,
		"first_request": cs.first, "last_request": cs.last,
	}
	for k, v := range a.extra {
		ev[k] = v
	}
	return finding.Finding{
		Rule: a.rule, Severity: a.severity, Title: a.title,
		Subject:  finding.Subject{Kind: "client", Name: q.Client},
		Labels:   map[string]string{"endpoint": q.Endpoint, "client": q.Client, "detector": a.detector},
		Evidence: ev, ATLAS: a.atlas, OWASP: a.owasp, Confidence: a.conf, Time: q.Time,
	}
}

func round(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return math.Round(v*1e6) / 1e6
}

// welford keeps running means and variances per feature.
type welford struct {
	n        float64
	mean, m2 []float64
}

func (w *welford) add(x []float64) {
	if len(w.mean) != len(x) {
		w.n, w.mean, w.m2 = 0, make([]float64, len(x)), make([]float64, len(x))
	}
	w.n++
	for j, v := range x {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		d := v - w.mean[j]
		w.mean[j] += d / w.n
		w.m2[j] += d * (v - w.mean[j])
	}
}

func (w *welford) standardise(x, z []float64) {
	for j, v := range x {
		s := 1.0
		if w.n > 1 {
			if sd := math.Sqrt(w.m2[j] / (w.n - 1)); sd > 0 {
				s = sd
			}
		}
		z[j] = (v - w.mean[j]) / s
	}
}

func sortedKeys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// withDefaults fills every zero field from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	def := func(v *int, dv int) {
		if *v <= 0 {
			*v = dv
		}
	}
	deff := func(v *float64, dv float64) {
		if *v <= 0 {
			*v = dv
		}
	}
	def(&c.MaxClients, d.MaxClients)
	def(&c.Every, d.Every)
	def(&c.Cooldown, d.Cooldown)
	deff(&c.PRADA.Delta, d.PRADA.Delta)
	def(&c.PRADA.MinQueries, d.PRADA.MinQueries)
	def(&c.PRADA.Window, d.PRADA.Window)
	def(&c.PRADA.MaxPoints, d.PRADA.MaxPoints)
	def(&c.PRADA.Persist, d.PRADA.Persist)
	deff(&c.PRADA.Duplicate, d.PRADA.Duplicate)
	b := &c.Blacklight
	deff(&b.Step, d.Blacklight.Step)
	def(&b.Rounds, d.Blacklight.Rounds)
	def(&b.Window, d.Blacklight.Window)
	def(&b.TopN, d.Blacklight.TopN)
	deff(&b.Match, d.Blacklight.Match)
	def(&b.History, d.Blacklight.History)
	def(&b.Recent, d.Blacklight.Recent)
	deff(&b.MinMatches, d.Blacklight.MinMatches)
	def(&b.Index, d.Blacklight.Index)
	def(&b.LinkMin, d.Blacklight.LinkMin)
	def(&c.Drift.Window, d.Drift.Window)
	def(&c.Drift.MinQueries, d.Drift.MinQueries)
	deff(&c.Drift.OODRate, d.Drift.OODRate)
	def(&c.Drift.MaxSample, d.Drift.MaxSample)
	p := &c.Pattern
	def(&p.Window, d.Pattern.Window)
	def(&p.MinQueries, d.Pattern.MinQueries)
	deff(&p.SweepRate, d.Pattern.SweepRate)
	deff(&p.SignStepRate, d.Pattern.SignStepRate)
	deff(&p.CoverageRate, d.Pattern.CoverageRate)
	deff(&p.ErrorRate, d.Pattern.ErrorRate)
	def(&p.MinErrors, d.Pattern.MinErrors)
	return c
}
