package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"math/bits"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"cel.dev/cel-go/interpreter"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pipewarden/pipewarden/internal/event"
	"github.com/pipewarden/pipewarden/internal/finding"
)

// EngineOptions configure an Engine.
type EngineOptions struct {
	Logger *slog.Logger
	// Registerer receives the engine's metrics; nil registers none. Never the default registry
	// unless the caller passes it.
	Registerer prometheus.Registerer
}

// Engine evaluates events against the current Ruleset. Evaluate is safe for concurrent use;
// correlation and history state is updated under per-rule locks, so for deterministic
// correlation the caller feeds one stream of events from one goroutine, in time order.
type Engine struct {
	rs        atomic.Pointer[Ruleset]
	pool      sync.Pool // of *evalScratch
	reference bool      // evaluate every rule in CEL on fully decoded data (tests)
	logger    *slog.Logger
	events    atomic.Uint64
	badEvents atomic.Uint64
	swaps     atomic.Uint64
	snapSize  atomic.Int64 // length of the last snapshot, to size the next one's buffer
}

// timingSample: one evaluation in timingSample is timed and the time scaled, because reading the
// clock around every evaluation would cost more than most rules.
const timingSample = 16

// NewEngine returns an engine running rs.
func NewEngine(rs *Ruleset, opts EngineOptions) (*Engine, error) {
	e := &Engine{logger: opts.Logger}
	if e.logger == nil {
		e.logger = slog.New(slog.DiscardHandler)
	}
	e.rs.Store(rs)
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(newCollector(e)); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// Ruleset returns the ruleset in use.
func (e *Engine) Ruleset() *Ruleset { return e.rs.Load() }

// Swap replaces the ruleset. Statistics of rules that keep their id, and the state of
// correlation rules and histories whose definitions did not change, carry over; a changed
// definition starts empty. A ruleset that failed to load never reaches Swap, so the previous one
// keeps running.
func (e *Engine) Swap(next *Ruleset) {
	prev := e.rs.Load()
	if prev != nil && prev != next {
		carryOver(prev, next)
	}
	e.rs.Store(next)
	e.swaps.Add(1)
}

func carryOver(prev, next *Ruleset) {
	old := map[string]*rule{}
	for _, r := range prev.rules {
		old[r.id] = r
	}
	for _, r := range next.rules {
		o, ok := old[r.id]
		if !ok {
			continue
		}
		r.st = o.st
		if r.corr != nil && o.corr != nil && r.corr.fp == o.corr.fp {
			r.corr.cs = o.corr.cs
		}
	}
	for name, h := range next.histories {
		if o, ok := prev.histories[name]; ok && o.fp == h.fp {
			h.hs = o.hs
		}
	}
}

// activation gives CEL the event's variables without building a map per event: data is the
// lazily decoded dataValue, event is built only when a rule reads it.
type activation struct {
	ev    event.Event
	data  *eventData
	evMap map[string]any
	corr  map[string]any
	frame *interpreter.ExecutionFrame
	// reference: the reference evaluation (tests): data is decoded in full into refData for
	// CEL, and no prefilter runs.
	reference bool
	refData   map[string]any
}

func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case "data":
		if a.reference {
			return a.refData, true
		}
		return dataValue{a.data}, true
	case "subject":
		return a.ev.Subject, true
	case "time":
		return a.ev.Time, true
	case "event":
		if a.evMap == nil {
			a.evMap = map[string]any{"id": a.ev.ID, "type": a.ev.Type, "source": a.ev.Source,
				"subject": a.ev.Subject, "time": a.ev.Time, "stage": a.ev.Stage()}
		}
		return a.evMap, true
	case "corr":
		if a.corr == nil {
			return map[string]any{}, true
		}
		return a.corr, true
	}
	return nil, false
}

func (a *activation) Parent() interpreter.Activation { return nil }

// object is the whole data object, for findings.
func (a *activation) object() map[string]any {
	if a.reference {
		return a.refData
	}
	return a.data.object()
}

// value reads a plain data path, the way CEL would.
func (a *activation) value(p []string) (any, bool) {
	if a.reference {
		var cur any = a.refData
		for _, f := range p {
			m, ok := cur.(map[string]any)
			if !ok {
				return nil, false
			}
			if cur, ok = m[f]; !ok {
				return nil, false
			}
		}
		return cur, true
	}
	return a.data.path(p)
}

// vars is what programs evaluate against: one execution frame for every program run on the
// event, made when the first one runs (most events need none).
func (a *activation) vars() any {
	if a.frame == nil {
		f, err := interpreter.NewExecutionFrame(a)
		if err != nil {
			return a // each program then makes its own frame
		}
		a.frame = f
	}
	return a.frame
}

// evalScratch is the working memory of one evaluation. Engines pool them, so an event whose
// rules need no decoded value allocates nothing.
type evalScratch struct {
	act  activation
	data eventData
	cand bitset
	key  []byte // group keys of correlation rules
}

func (e *Engine) scratch() *evalScratch {
	if sc, ok := e.pool.Get().(*evalScratch); ok {
		return sc
	}
	sc := &evalScratch{}
	sc.act.data = &sc.data
	return sc
}

func (e *Engine) release(sc *evalScratch) {
	if sc.act.frame != nil {
		sc.act.frame.Close()
	}
	sc.act = activation{data: &sc.data}
	sc.data.reset()
	e.pool.Put(sc)
}

// maxDataDepth bounds nesting when decoding event data (the event decoder's own limit is lower).
const maxDataDepth = 64

// Evaluate runs every enabled rule that can match ev's type and returns the findings, in rule
// order (single-event rules, then correlations). A rule that errors is counted and logged and
// does not fire; it never stops the others.
func (e *Engine) Evaluate(ev event.Event) []finding.Finding {
	rs := e.rs.Load()
	e.events.Add(1)
	b := rs.bucketFor(ev.Type)
	if len(b.single)+len(b.counts)+len(b.steps)+len(b.histories) == 0 {
		return nil
	}
	sc := e.scratch()
	defer e.release(sc)
	err := sc.data.scan(ev.Data, maxDataDepth)
	act := &sc.act
	if err == nil && e.reference {
		act.reference = true
		act.refData, err = decodeData(ev.Data, maxDataDepth)
	}
	if err != nil {
		n := e.badEvents.Add(1)
		if isPow2(n) {
			e.logger.Warn("rules: event data is not a JSON object; no rule ran", "event", ev.ID, "type", ev.Type, "err", err, "count", n)
		}
		return nil
	}
	sc.data.adapter = rs.adapter
	if ev.Time.IsZero() {
		ev.Time = rs.clock().UTC()
	}
	act.ev = ev
	var out []finding.Finding
	if n := len(b.single); n > 0 {
		if e.reference {
			for _, r := range b.single {
				if r.test(act, r.cond, e.logger) {
					out = append(out, r.finding(act, nil, nil))
				}
			}
		} else {
			if cap(sc.cand) < b.idx.words {
				sc.cand = make(bitset, b.idx.words)
			}
			cand := sc.cand[:b.idx.words]
			b.idx.candidates(&sc.data, cand)
			for w, word := range cand {
				for word != 0 {
					r := b.single[w*64+bits.TrailingZeros64(word)]
					word &= word - 1
					if r.test(act, r.cond, e.logger) {
						out = append(out, r.finding(act, nil, nil))
					}
				}
			}
		}
	}
	for _, r := range b.counts {
		if !r.test(act, r.cond, e.logger) {
			continue
		}
		key, err := groupKey(sc.key[:0], r.corr.groupBy, act)
		sc.key = key
		if err != nil {
			r.fail(act, err, e.logger)
			continue
		}
		var fv any
		if r.corr.field != nil {
			if fv, err = r.corr.field.value(act); err != nil {
				r.fail(act, err, e.logger)
				continue
			}
		}
		if res, fired := r.corr.observeCount(key, ev.Time, ev.ID, fv); fired {
			out = append(out, r.finding(act, res, groupVals(r.corr.groupBy, act)))
		}
	}
	if len(b.steps) > 0 {
		out = append(out, e.sequences(act, sc, b.steps)...)
	}
	for _, h := range b.histories {
		h.observe(act, e.logger)
	}
	return out
}

// sequences feeds the event to each sequence rule whose steps it matches.
func (e *Engine) sequences(act *activation, sc *evalScratch, steps []stepRef) []finding.Finding {
	var out []finding.Finding
	for i := 0; i < len(steps); {
		r := steps[i].r
		j := i
		var matched []int
		var stepGroup []*expr
		for ; j < len(steps) && steps[j].r == r; j++ {
			s := r.corr.steps[steps[j].idx]
			if r.test(act, s.cond, e.logger) {
				matched = append(matched, steps[j].idx)
				if s.groupBy != nil && stepGroup == nil {
					stepGroup = s.groupBy
				}
			}
		}
		i = j
		if len(matched) == 0 {
			continue
		}
		g := r.corr.groupBy
		if stepGroup != nil {
			g = stepGroup
		}
		key, err := groupKey(sc.key[:0], g, act)
		sc.key = key
		if err != nil {
			r.fail(act, err, e.logger)
			continue
		}
		if res, fired := r.corr.observeStep(key, act.ev.Time, act.ev.ID, matched); fired {
			out = append(out, r.finding(act, res, groupVals(g, act)))
		}
	}
	return out
}

// test evaluates cond for r, counting evaluations, matches, errors and (sampled) time.
func (r *rule) test(act *activation, cond *expr, logger *slog.Logger) bool {
	n := r.st.evals.Add(1)
	var start time.Time
	if n%timingSample == 0 {
		start = time.Now()
	}
	ok, err := r.eval(act, cond)
	if !start.IsZero() {
		r.st.evalNanos.Add(uint64(time.Since(start)) * timingSample)
	}
	if err != nil {
		r.fail(act, err, logger)
		return false
	}
	if ok && r.corr == nil {
		r.st.matches.Add(1)
	}
	return ok
}

func (r *rule) eval(act *activation, cond *expr) (bool, error) {
	if cond.constant != nil {
		return *cond.constant, nil
	}
	if cond.dec != nil && !act.reference {
		switch cond.dec.decide(act.data) {
		case yes:
			return true, nil
		case no:
			return false, nil
		}
	}
	v, err := cond.eval(act)
	if err != nil {
		return false, err
	}
	b, ok := v.Value().(bool)
	return ok && b, nil
}

func (r *rule) fail(act *activation, err error, logger *slog.Logger) {
	n := r.st.errors.Add(1)
	if isPow2(n) { // the 1st, 2nd, 4th, 8th... error: visible without flooding the log
		logger.Warn("rules: rule failed on an event", "rule", r.id, "event", act.ev.ID, "type", act.ev.Type, "err", err, "errors", n)
	}
}

func isPow2(n uint64) bool { return n != 0 && bits.OnesCount64(n) == 1 }

// observe records the event in a history when it passes the history's filter.
func (h *history) observe(act *activation, logger *slog.Logger) {
	if h.when != nil {
		ans := unknown
		if h.when.dec != nil && !act.reference {
			ans = h.when.dec.decide(act.data)
		}
		ok := ans == yes
		if ans == unknown {
			v, err := h.when.eval(act)
			ok = err == nil && v.Value() == true
		}
		if !ok {
			return
		}
	}
	k, err := h.key.value(act)
	if err != nil {
		return // events without the key are not recorded
	}
	if raw := act.rawComposite(h.value); raw != nil {
		h.recordRaw(keyString(k), raw, func() any { v, _ := h.value.value(act); return v }, act.ev.Time)
		return
	}
	v, err := h.value.value(act)
	if err != nil {
		return
	}
	h.record(keyString(k), v, act.ev.Time)
}

// rawComposite returns the JSON text of x's value when x is a plain path to a top-level list
// or object of the data; nil otherwise.
func (a *activation) rawComposite(x *expr) []byte {
	if a.reference || len(x.path) != 1 {
		return nil
	}
	return a.data.rawComposite(x.path[0])
}

// finding builds the finding of r for the current event; res is set for correlation rules.
func (r *rule) finding(act *activation, res *corrResult, groupVals []any) finding.Finding {
	ev := &act.ev
	f := finding.Finding{Rule: r.id, Severity: r.severity, ATLAS: r.atlas, OWASP: r.owasp,
		Confidence: r.confidence, Time: ev.Time}
	evidence := map[string]any{
		"event": map[string]any{"id": ev.ID, "type": ev.Type, "source": ev.Source, "subject": ev.Subject,
			"time": ev.Time.UTC().Format(time.RFC3339Nano)},
		"data": trimData(act.object()),
	}
	if res != nil {
		r.st.matches.Add(1)
		group := map[string]any{}
		g := r.corr.groupText
		for i, v := range groupVals {
			if i < len(g) {
				group[g[i]] = v
			}
		}
		act.corr = map[string]any{"count": int64(res.count), "group": group, "first": res.first, "last": res.last,
			"window": r.corr.timespan.String(), "type": r.corr.kind}
		if res.values != nil {
			act.corr["values"] = res.values
		}
		evidence["correlation"] = map[string]any{"type": r.corr.kind, "count": res.count, "group": group,
			"first": res.first.UTC().Format(time.RFC3339Nano), "last": res.last.UTC().Format(time.RFC3339Nano),
			"window": r.corr.timespan.String(), "values": res.values}
		f.EventIDs = res.ids
	} else {
		f.EventIDs = []string{ev.ID}
	}
	f.Title = r.output.render(act)
	f.Subject = r.subjectOf(act)
	for _, x := range r.evidence {
		if v, err := x.x.eval(act); err == nil {
			evidence[x.name] = native(v)
		}
	}
	f.Evidence = evidence
	f.Labels = map[string]string{"rule": r.id, "stage": ev.Stage(), "subject_kind": f.Subject.Kind, "subject": f.Subject.Name}
	if res != nil {
		f.Labels["group"] = res.group
	}
	h := sha256.New()
	h.Write([]byte(r.id))
	for _, id := range f.EventIDs {
		h.Write([]byte{0})
		h.Write([]byte(id))
	}
	f.ID = "rf-" + hex.EncodeToString(h.Sum(nil)[:12])
	act.corr = nil
	return f
}

func (r *rule) subjectOf(act *activation) finding.Subject {
	if r.subjName != nil {
		if v, err := r.subjName.eval(act); err == nil {
			return finding.Subject{Kind: r.subjKind, Name: display(native(v))}
		}
	}
	if len(act.ev.Assets) > 0 {
		a := act.ev.Assets[0]
		return finding.Subject{Kind: a.Kind, Name: a.Name}
	}
	if spec, ok := event.Lookup(act.ev.Type); ok {
		for _, fl := range spec.Fields {
			if fl.Asset != "" {
				if s, ok := act.object()[fl.Name].(string); ok {
					return finding.Subject{Kind: fl.Asset, Name: s}
				}
			}
		}
	}
	name := act.ev.Subject
	if name == "" {
		name = act.ev.Source
	}
	return finding.Subject{Kind: "event", Name: name}
}

// trimData keeps evidence readable: inline records and long arrays are summarised.
func trimData(d map[string]any) map[string]any {
	out := make(map[string]any, len(d))
	for k, v := range d {
		switch x := v.(type) {
		case []any:
			if len(x) > 50 || k == "records" {
				out[k] = map[string]any{"items": len(x), "omitted": true}
				continue
			}
		case string:
			if len(x) > 1024 {
				out[k] = x[:1024] + "..."
				continue
			}
		}
		out[k] = v
	}
	return out
}

// RuleStats describes one loaded rule for GET /v1/rules.
type RuleStats struct {
	ID       string   `json:"id"`
	Desc     string   `json:"desc,omitempty"`
	Severity string   `json:"severity"`
	Tags     []string `json:"tags,omitempty"`
	ATLAS    []string `json:"atlas,omitempty"`
	OWASP    []string `json:"owasp,omitempty"`
	Enabled  bool     `json:"enabled"`
	Kind     string   `json:"kind"` // single, event_count, value_count, sequence
	Match    []string `json:"match,omitempty"`
	File     string   `json:"file"`
	Line     int      `json:"line"`
	// Evaluations counts the events the rule was evaluated on: events of its types that the
	// literal and threshold index did not rule out.
	Evaluations uint64 `json:"evaluations"`
	Matches     uint64 `json:"matches"`
	Errors      uint64 `json:"errors"`
	// EvalTime is estimated from one evaluation in 16.
	EvalTime  time.Duration `json:"eval_time_ns"`
	StateKeys int           `json:"state_keys,omitempty"`
	Evictions uint64        `json:"state_evictions,omitempty"`
}

// Stats lists every rule of the current ruleset, sorted by id.
func (e *Engine) Stats() []RuleStats {
	rs := e.rs.Load()
	out := make([]RuleStats, 0, len(rs.rules))
	for _, r := range rs.rules {
		s := RuleStats{ID: r.id, Desc: r.desc, Severity: r.severity.String(), Tags: r.tags, ATLAS: r.atlas,
			OWASP: r.owasp, Enabled: r.enabled, Kind: "single", Match: r.match, File: r.pos.file, Line: r.pos.line,
			Evaluations: r.st.evals.Load(), Matches: r.st.matches.Load(), Errors: r.st.errors.Load(),
			EvalTime: time.Duration(r.st.evalNanos.Load())}
		if r.corr != nil {
			s.Kind = r.corr.kind
			r.corr.cs.mu.Lock()
			s.StateKeys, s.Evictions = r.corr.cs.m.len(), r.corr.cs.m.evictions
			r.corr.cs.mu.Unlock()
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// HistoryStats describes one history's state.
type HistoryStats struct {
	Name      string `json:"name"`
	Keys      int    `json:"keys"`
	Evictions uint64 `json:"evictions"`
	Expired   uint64 `json:"expired"`
}

// Histories lists the histories of the current ruleset, sorted by name.
func (e *Engine) Histories() []HistoryStats {
	rs := e.rs.Load()
	var out []HistoryStats
	for name, h := range rs.histories {
		h.hs.mu.RLock()
		out = append(out, HistoryStats{Name: name, Keys: h.hs.m.len(), Evictions: h.hs.m.evictions, Expired: h.hs.m.expired})
		h.hs.mu.RUnlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// collector exposes the engine's counters at scrape time, so the hot path only touches atomics.
type collector struct {
	e                                                                      *Engine
	matches, errors, evals, evalSecs, keys, evictions, events, bad, loaded *prometheus.Desc
}

func newCollector(e *Engine) *collector {
	rule := []string{"rule"}
	return &collector{e: e,
		matches:   prometheus.NewDesc("pipewarden_rule_matches_total", "Findings raised by a rule.", rule, nil),
		errors:    prometheus.NewDesc("pipewarden_rule_errors_total", "Evaluations of a rule that failed.", rule, nil),
		evals:     prometheus.NewDesc("pipewarden_rule_evaluations_total", "Evaluations of a rule.", rule, nil),
		evalSecs:  prometheus.NewDesc("pipewarden_rule_eval_seconds_total", "Time spent evaluating a rule (sampled).", rule, nil),
		keys:      prometheus.NewDesc("pipewarden_rule_state_keys", "Groups held by a correlation rule or history.", rule, nil),
		evictions: prometheus.NewDesc("pipewarden_rule_state_evictions_total", "Groups dropped because a correlation rule or history hit its key cap.", rule, nil),
		events:    prometheus.NewDesc("pipewarden_rules_events_total", "Events evaluated by the rules engine.", nil, nil),
		bad:       prometheus.NewDesc("pipewarden_rules_bad_events_total", "Events whose data could not be decoded for rules.", nil, nil),
		loaded:    prometheus.NewDesc("pipewarden_rules_loaded", "Rules loaded, by whether they are enabled.", []string{"enabled"}, nil),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.matches, c.errors, c.evals, c.evalSecs, c.keys, c.evictions, c.events, c.bad, c.loaded} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	enabled, disabled := 0, 0
	for _, s := range c.e.Stats() {
		if s.Enabled {
			enabled++
		} else {
			disabled++
		}
		ch <- prometheus.MustNewConstMetric(c.matches, prometheus.CounterValue, float64(s.Matches), s.ID)
		ch <- prometheus.MustNewConstMetric(c.errors, prometheus.CounterValue, float64(s.Errors), s.ID)
		ch <- prometheus.MustNewConstMetric(c.evals, prometheus.CounterValue, float64(s.Evaluations), s.ID)
		ch <- prometheus.MustNewConstMetric(c.evalSecs, prometheus.CounterValue, s.EvalTime.Seconds(), s.ID)
		if s.Kind != "single" {
			ch <- prometheus.MustNewConstMetric(c.keys, prometheus.GaugeValue, float64(s.StateKeys), s.ID)
			ch <- prometheus.MustNewConstMetric(c.evictions, prometheus.CounterValue, float64(s.Evictions), s.ID)
		}
	}
	for _, h := range c.e.Histories() {
		id := "history:" + h.Name
		ch <- prometheus.MustNewConstMetric(c.keys, prometheus.GaugeValue, float64(h.Keys), id)
		ch <- prometheus.MustNewConstMetric(c.evictions, prometheus.CounterValue, float64(h.Evictions), id)
	}
	ch <- prometheus.MustNewConstMetric(c.events, prometheus.CounterValue, float64(c.e.events.Load()))
	ch <- prometheus.MustNewConstMetric(c.bad, prometheus.CounterValue, float64(c.e.badEvents.Load()))
	ch <- prometheus.MustNewConstMetric(c.loaded, prometheus.GaugeValue, float64(enabled), "true")
	ch <- prometheus.MustNewConstMetric(c.loaded, prometheus.GaugeValue, float64(disabled), "false")
}
