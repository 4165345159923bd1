package monitor_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/pipewarden/pipewarden/internal/dataset/monitor"
	"github.com/pipewarden/pipewarden/internal/finding"
)

// TestInferenceFeatureDrift feeds two endpoints' requests through the decoder: three in-control
// N(10, 2) features, then feature 1 of one endpoint shifts by one sigma. The detector must stay
// quiet before the shift, alarm on that feature soon after it, only once while the shift lasts,
// and leave the other endpoint alone.
func TestInferenceFeatureDrift(t *testing.T) {
	cases := []struct {
		name string
		cfg  monitor.Streaming
	}{
		{"cusum from arl", monitor.Streaming{Warmup: 200, ARL: 100000}},
		{"cusum fixed h", monitor.Streaming{Warmup: 200, K: 0.5, H: 10}},
		{"page-hinkley", monitor.Streaming{Warmup: 200, Detector: "page_hinkley", Delta: 0.5, Lambda: 50}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, _ := newMonitor(t, monitor.Config{Streaming: c.cfg})
			rng := rand.New(rand.NewPCG(3, 4))
			const before, after = 3000, 600
			var alarms []finding.Finding
			firstAt := -1
			for i := range before + after {
				for _, ep := range []string{"fraud-api", "churn-api"} {
					x := []float64{10 + 2*rng.NormFloat64(), 10 + 2*rng.NormFloat64(), 10 + 2*rng.NormFloat64()}
					if ep == "fraud-api" && i >= before {
						x[1] += 2
					}
					id := fmt.Sprintf("%s-%d", ep, i)
					ev := decodeEvent(t, "pipewarden.inference.request", id, map[string]any{
						"endpoint": ep, "client": "key-1", "status": 200, "latency_ms": 3.5, "features": x})
					fs := m.HandleEvent(t.Context(), ev)
					for _, f := range fs {
						if f.EventIDs[0] != id {
							t.Errorf("finding on %s names events %v", id, f.EventIDs)
						}
						if firstAt < 0 && i >= before {
							firstAt = i - before
						}
					}
					alarms = append(alarms, fs...)
				}
			}
			if len(alarms) != 1 {
				for _, f := range alarms {
					t.Logf("%s %v %s", f.Rule, f.Labels, f.Title)
				}
				t.Fatalf("%d alarms, want exactly one (after the shift)", len(alarms))
			}
			f := alarms[0]
			if f.Rule != "inference.feature_drift" || f.Subject.Kind != "endpoint" || f.Subject.Name != "fraud-api" ||
				f.Labels["feature"] != "1" || f.Severity != finding.Medium || firstAt < 0 || firstAt > 150 {
				t.Errorf("alarm %+v at %d values after the shift", f, firstAt)
			}
			if mean := f.Evidence["baseline_mean"].(float64); mean < 9.5 || mean > 10.5 {
				t.Errorf("warm-up mean %v", mean)
			}
			st := m.Streams()
			if st.Endpoints != 2 || st.Features != 6 || st.Alarms != 1 {
				t.Errorf("streams status %+v", st)
			}
		})
	}
}

func TestInferenceLimitsAndDisable(t *testing.T) {
	m, _ := newMonitor(t, monitor.Config{Streaming: monitor.Streaming{MaxEndpoints: 1, MaxFeatures: 2, Warmup: 10}})
	for i, ep := range []string{"a", "b"} {
		m.HandleEvent(t.Context(), decodeEvent(t, "pipewarden.inference.request", fmt.Sprint(i), map[string]any{
			"endpoint": ep, "client": "c", "status": 200, "latency_ms": 1, "features": []float64{1, 2, 3}}))
	}
	if st := m.Streams(); st.Endpoints != 1 || st.Features != 2 || st.Dropped != 1+3 {
		t.Errorf("limits: %+v (want 1 endpoint, 2 features, 4 dropped values)", st)
	}
	off, _ := newMonitor(t, monitor.Config{Streaming: monitor.Streaming{Disabled: true}})
	off.HandleEvent(t.Context(), decodeEvent(t, "pipewarden.inference.request", "x", map[string]any{
		"endpoint": "a", "client": "c", "status": 200, "latency_ms": 1, "features": []float64{1}}))
	if st := off.Streams(); st.Endpoints != 0 {
		t.Errorf("disabled detectors kept state: %+v", st)
	}
}
