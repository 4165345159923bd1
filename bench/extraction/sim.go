package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/pipewarden/pipewarden/internal/event"
	"github.com/pipewarden/pipewarden/internal/finding"
	"github.com/pipewarden/pipewarden/internal/gateway"
	"github.com/pipewarden/pipewarden/internal/gateway/detect"
)

// attackerKinds in report order. "natural" queries real held-out records only: no detector here
// is expected to stop it, and the evaluation reports it to say so.
var attackerKinds = []string{"uniform", "jacobian", "perturb", "sweep", "natural"}

type simConfig struct {
	fixtures       string // folder holding wine.csv and iris.csv
	datasets       []string
	benignQueries  int // per seed, over all benign clients
	benignClients  int // per dataset
	attackerBudget int // answered queries before an attacker gives up
	// calibrate switches escalation off and every threshold to "always", so that the findings
	// carry each detector's statistic for every kind of client.
	calibrate bool
}

// attackResult is one attacker in one seed.
type attackResult struct {
	dataset, kind string
	blocked       bool
	queries       int // answered queries before the first 403
	throttledAt   int // answered queries before the first 429 (0: never)
	rule          string
}

type seedResult struct {
	seed           uint64
	attacks        []attackResult
	benignQueries  int
	benignBlocked  int // benign clients that ever got a 403
	benignLimited  int // benign requests answered 429
	benignFindings map[string]int
	detectorNs     float64
	stats          map[string][]float64 // calibration: "kind rule" → statistics
}

type simClient struct {
	name, dataset, kind, key string
	q                        querier
	attacker                 bool
	answered                 int
	waitUntil                time.Time
	done                     bool
	res                      *attackResult
}

func runSeed(cfg simConfig, seed uint64) (*seedResult, error) {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	mux := http.NewServeMux()
	var routes []gateway.Route
	var clients []*simClient
	model := httptest.NewServer(mux)
	defer model.Close()
	up, _ := url.Parse(model.URL)
	for _, name := range cfg.datasets {
		d, err := loadCSV(filepath.Join(cfg.fixtures, name+".csv"))
		if err != nil {
			return nil, err
		}
		train, held := d.split(rng, 0.7)
		m := momentsOf(train.x)
		sm := trainSoftmax(train.x, train.y, d.k, m, 200)
		path := "/v2/models/" + name + "/infer"
		mux.HandleFunc("POST "+path, sm.serve)
		base := &detect.Baseline{Names: d.names, Mean: m.mean, Std: m.std, Min: m.min, Max: m.max, Sample: train.x}
		routes = append(routes, gateway.Route{Name: name, PathPrefix: "/v2/models/" + name + "/", Upstream: up,
			Features: len(d.names), Baseline: base})
		for i := range cfg.benignClients {
			clients = append(clients, &simClient{name: fmt.Sprintf("benign-%s-%d", name, i), dataset: name, kind: "benign",
				q: &benign{rng: rand.New(rand.NewPCG(seed, uint64(100+i))), held: held.x, m: m, noise: 0.1}})
		}
		pick := func() []float64 { return held.x[rng.IntN(len(held.x))] }
		seeds := make([][]float64, 10)
		for i := range seeds {
			seeds[i] = pick()
		}
		for _, kind := range attackerKinds {
			var q querier
			switch kind {
			case "uniform":
				q = &uniform{rng: rand.New(rand.NewPCG(seed, 7)), m: m}
			case "jacobian":
				q = newJacobian(seeds, d.k)
			case "perturb":
				q = &perturb{rng: rand.New(rand.NewPCG(seed, 8)), seed: pick(), m: m}
			case "sweep":
				q = &sweep{seed: pick(), m: m}
			case "natural":
				q = &benign{rng: rand.New(rand.NewPCG(seed, 9)), held: held.x, m: m}
			}
			c := &simClient{name: "attacker-" + name + "-" + kind, dataset: name, kind: kind, q: q, attacker: true}
			c.res = &attackResult{dataset: name, kind: kind}
			clients = append(clients, c)
		}
	}
	for _, c := range clients {
		c.key = fmt.Sprintf("%s-%x", c.name, rng.Uint64())
	}

	// A virtual clock: every request moves it 20 ms, so rate limits and Retry-After work the
	// same on any machine.
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	var fmu sync.Mutex
	found := map[string]int{}
	kindOf := map[string]string{}
	stats := map[string][]float64{}
	secret := make([]byte, 32)
	binary.LittleEndian.PutUint64(secret, seed)
	binary.LittleEndian.PutUint64(secret[8:], seed*0x9E3779B97F4A7C15)
	for _, c := range clients {
		kindOf[gateway.ClientID("key", c.key)] = c.dataset + "/" + c.kind
	}
	dc := detect.DefaultConfig()
	esc := gateway.Escalation{}
	if cfg.calibrate {
		esc.Off = true
		dc.PRADA.Delta = 1.01
		dc.Blacklight.MinMatches = 1e-9
		dc.Drift.OODRate = 1e-9
		dc.Pattern.SweepRate = 1e-9
		dc.Pattern.CoverageRate = 1e-9
	}
	g, err := gateway.New(gateway.Options{
		Detect: dc, Escalation: esc,
		Routes: routes, Now: clock, Synchronous: true, Secret: secret, Interval: time.Hour,
		Limits: gateway.Limits{ClientRate: 20, ClientBurst: 40},
		Reporter: gateway.ReporterFunc(func(_ context.Context, _ []event.Event, fs []finding.Finding) {
			fmu.Lock()
			defer fmu.Unlock()
			for _, f := range fs {
				if f.Severity > finding.Info {
					found[f.Subject.Name+" "+f.Rule]++
				}
				if v, ok := f.Evidence["statistic"].(float64); ok && cfg.calibrate {
					k := kindOf[f.Subject.Name] + " " + f.Rule
					stats[k] = append(stats[k], v)
				}
			}
		}),
	})
	if err != nil {
		return nil, err
	}
	defer g.Close()
	front := httptest.NewServer(g)
	defer front.Close()
	hc := front.Client()

	res := &seedResult{seed: seed, benignFindings: map[string]int{}}
	benignBlocked := map[string]bool{}
	for active := len(clients); active > 0; {
		active = 0
		for _, c := range clients {
			if c.done {
				continue
			}
			if !c.attacker && res.benignQueries >= cfg.benignQueries {
				c.done = true
				continue
			}
			active++
			mu.Lock()
			now = now.Add(20 * time.Millisecond)
			t := now
			mu.Unlock()
			if t.Before(c.waitUntil) {
				continue
			}
			x := c.q.next()
			status, class, retry, err := query(hc, front.URL+"/v2/models/"+c.dataset+"/infer", c.key, x)
			if err != nil {
				return nil, err
			}
			switch status {
			case http.StatusOK:
				c.answered++
				c.q.answer(x, class)
				if !c.attacker {
					res.benignQueries++
				}
			case http.StatusTooManyRequests:
				c.waitUntil = t.Add(retry)
				if c.attacker && c.res.throttledAt == 0 {
					c.res.throttledAt = c.answered
				}
				if !c.attacker {
					res.benignLimited++
				}
			case http.StatusForbidden:
				if c.attacker {
					c.res.blocked, c.res.queries, c.done = true, c.answered, true
				} else {
					benignBlocked[c.name] = true
					c.done = true
				}
			default:
				return nil, fmt.Errorf("%s: unexpected status %d", c.name, status)
			}
			if c.attacker && c.answered >= cfg.attackerBudget {
				c.res.queries, c.done = c.answered, true
			}
		}
	}
	res.benignBlocked = len(benignBlocked)
	for _, b := range g.Blocks().List() {
		for _, c := range clients {
			if c.attacker && gateway.ClientID("key", c.key) == b.Client {
				c.res.rule = b.Rule
			}
		}
	}
	g.Flush()
	fmu.Lock()
	for _, c := range clients {
		if c.attacker {
			res.attacks = append(res.attacks, *c.res)
			continue
		}
		id := gateway.ClientID("key", c.key)
		for k, n := range found {
			if len(k) > len(id) && k[:len(id)] == id {
				res.benignFindings[k[len(id)+1:]] += n
			}
		}
	}
	fmu.Unlock()
	res.detectorNs = g.Stats().DetectorNsPerRow
	res.stats = stats
	return res, nil
}

func query(hc *http.Client, u, key string, x []float64) (status, class int, retry time.Duration, err error) {
	body, _ := json.Marshal(map[string]any{"inputs": []any{map[string]any{"name": "x", "shape": []int{1, len(x)}, "datatype": "FP64", "data": x}}})
	req, _ := http.NewRequest(http.MethodPost, u, bytes.NewReader(body))
	req.Header.Set("X-API-Key", key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return 0, 0, 0, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusTooManyRequests {
		s, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		return resp.StatusCode, 0, time.Duration(s) * time.Second, nil
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, 0, 0, nil
	}
	var out struct {
		Outputs []struct {
			Data []float64 `json:"data"`
		} `json:"outputs"`
	}
	if err := json.Unmarshal(raw, &out); err != nil || len(out.Outputs) == 0 {
		return 0, 0, 0, fmt.Errorf("bad model response %q", raw)
	}
	best := 0
	for i, p := range out.Outputs[0].Data {
		if p > out.Outputs[0].Data[best] {
			best = i
		}
	}
	return resp.StatusCode, best, 0, nil
}
