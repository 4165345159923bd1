package monitor

import (
	"fmt"
	"math"
	"strconv"

	"github.com/pipewarden/pipewarden/internal/dataset"
	"github.com/pipewarden/pipewarden/internal/dataset/changepoint"
	"github.com/pipewarden/pipewarden/internal/event"
	"github.com/pipewarden/pipewarden/internal/finding"
)

// streams holds one detector per feature of each endpoint's inference requests. A feature
// first spends Warmup values estimating its in-control mean and sigma (Welford); then every
// value goes to its detector. After an alarm the feature warms up again on the new data, so a
// lasting shift gives one finding and a further change another.
type streams struct {
	cfg       Streaming
	h         float64 // CUSUM decision interval in sigmas
	endpoints map[string]*endpoint
	dropped   int64 // values not tracked because of MaxEndpoints or MaxFeatures
}

type endpoint struct {
	features []feature
	requests int64
}

type feature struct {
	warm    int64
	mean    float64
	m2      float64
	sigma   float64
	watched int64 // values seen by the detector since the last warm-up
	cusum   changepoint.CUSUM
	ph      changepoint.PageHinkley
	alarms  int64
}

func (s *streams) init(cfg Streaming) {
	s.cfg = cfg
	s.h = cfg.H
	if s.h == 0 {
		s.h = changepoint.CUSUMThreshold(cfg.K, cfg.ARL)
	}
	s.endpoints = map[string]*endpoint{}
}

type inferenceData struct {
	Endpoint string    `json:"endpoint"`
	Features []float64 `json:"features"`
}

func (m *Monitor) inference(ev event.Event) []finding.Finding {
	if m.cfg.Streaming.Disabled {
		return nil
	}
	d, err := parseInference(ev.Data)
	if err != nil || d.Endpoint == "" || len(d.Features) == 0 {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s := &m.streams
	ep := s.endpoints[d.Endpoint]
	if ep == nil {
		if len(s.endpoints) >= s.cfg.MaxEndpoints {
			s.dropped += int64(len(d.Features))
			return nil
		}
		ep = &endpoint{}
		s.endpoints[d.Endpoint] = ep
	}
	ep.requests++
	n := min(len(d.Features), s.cfg.MaxFeatures)
	s.dropped += int64(len(d.Features) - n)
	for len(ep.features) < n {
		ep.features = append(ep.features, feature{})
	}
	var fs []finding.Finding
	for i, x := range d.Features[:n] {
		f := &ep.features[i]
		if s.add(f, x) {
			fs = append(fs, m.featureFinding(d.Endpoint, i, f, x))
			*f = feature{alarms: f.alarms}
		}
	}
	return fs
}

// add feeds one value and reports an alarm.
func (s *streams) add(f *feature, x float64) bool {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return false
	}
	if f.warm < int64(s.cfg.Warmup) {
		f.warm++
		d := x - f.mean
		f.mean += d / float64(f.warm)
		f.m2 += d * (x - f.mean)
		if f.warm == int64(s.cfg.Warmup) {
			f.sigma = math.Sqrt(f.m2 / float64(f.warm-1))
			// A feature constant during warm-up still gets a scale, so that any later change
			// stands out instead of dividing by zero.
			f.sigma = max(f.sigma, 1e-9*math.Abs(f.mean), 1e-12)
			if s.cfg.Detector == "page_hinkley" {
				f.ph = *changepoint.NewPageHinkley(s.cfg.Delta*f.sigma, s.cfg.Lambda*f.sigma)
			} else {
				f.cusum = *changepoint.NewCUSUM(f.mean, f.sigma, s.cfg.K, s.h)
			}
		}
		return false
	}
	f.watched++
	if s.cfg.Detector == "page_hinkley" {
		return f.ph.Add(x)
	}
	return f.cusum.Add(x)
}

func (m *Monitor) featureFinding(ep string, i int, f *feature, x float64) finding.Finding {
	s := &m.streams
	f.alarms++
	ev := map[string]any{"feature": i, "detector": s.cfg.Detector, "baseline_mean": f.mean, "baseline_sigma": f.sigma,
		"warmup": s.cfg.Warmup, "values_watched": f.watched, "value": x, "alarms": f.alarms, "verdict": dataset.VerdictDrift,
		"reasoning": "the feature's mean moved away from its warm-up level; a lasting change in what clients send can be natural drift, a new client population, or crafted inputs (evasion, probing)"}
	if s.cfg.Detector == "page_hinkley" {
		ev["test"] = "page_hinkley"
		ev["threshold"] = map[string]float64{"delta_sigma": s.cfg.Delta, "lambda_sigma": s.cfg.Lambda}
	} else {
		ev["test"] = "cusum"
		ev["threshold"] = map[string]float64{"k_sigma": s.cfg.K, "h_sigma": s.h, "arl": s.cfg.ARL}
	}
	return finding.Finding{Rule: "inference.feature_drift", Severity: finding.Medium,
		Title:   fmt.Sprintf("endpoint %q: input feature %d drifted (%s after %d values)", ep, i, ev["test"], f.watched),
		Subject: finding.Subject{Kind: "endpoint", Name: ep},
		Labels:  map[string]string{"endpoint": ep, "feature": strconv.Itoa(i), "verdict": dataset.VerdictDrift},
		ATLAS:   []string{"AML.T0043", "AML.T0015"}, OWASP: []string{"ML01:2023"},
		Evidence: ev, Confidence: 0.8, Time: m.now().UTC()}
}

// StreamStatus is the state of the inference feature detectors.
type StreamStatus struct {
	Endpoints int   `json:"endpoints"`
	Features  int   `json:"features"`
	Alarms    int64 `json:"alarms"`
	Dropped   int64 `json:"dropped_values"` // beyond max_endpoints or max_features
}

// Streams reports the state of the inference feature detectors.
func (m *Monitor) Streams() StreamStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := StreamStatus{Endpoints: len(m.streams.endpoints), Dropped: m.streams.dropped}
	for _, ep := range m.streams.endpoints {
		st.Features += len(ep.features)
		for _, f := range ep.features {
			st.Alarms += f.alarms
		}
	}
	return st
}
