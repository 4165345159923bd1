package gateway_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pipewarden/pipewarden/internal/dataset"
	"github.com/pipewarden/pipewarden/internal/dataset/table"
	"github.com/pipewarden/pipewarden/internal/gateway"
)

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name, yaml, err string
	}{
		{"minimal", "routes: [{upstream: http://127.0.0.1:9000}]", ""},
		{"full", `mode: shadow
on_error: fail_closed
interval: 5s
limits: {client_rate: 5, body_bytes: 1024}
escalation: {at: medium, block_ttl: 2h}
detectors: {disable: [prada], blacklight: {min_matches: 10}}
routes:
  - {name: a, path_prefix: /a/, upstream: "http://127.0.0.1:1", protocol: triton, features: 4, max_rows: 8}
  - {name: b, path_prefix: /b/, upstream: "http://127.0.0.1:2", protocol: openai}`, ""},
		{"unknown key", "routes: [{upstream: http://x, featurs: 3}]", "line 1: field featurs not found"},
		{"no routes", "mode: enforce", "at least one route"},
		{"bad mode", "mode: loud\nroutes: [{upstream: http://x}]", `mode "loud"`},
		{"bad severity", "escalation: {at: severe}\nroutes: [{upstream: http://x}]", "unknown severity"},
		{"relative upstream", "routes: [{upstream: /x}]", "absolute URL"},
		{"bad protocol", "routes: [{upstream: http://x, protocol: grpc}]", "unknown protocol"},
		{"duplicate prefix", "routes: [{upstream: http://x}, {upstream: http://y}]", "used twice"},
		{"tls half", "tls: {cert: a.pem}\nroutes: [{upstream: http://x}]", "cert and key"},
		{"sample rate", "sample_rate: 2\nroutes: [{upstream: http://x}]", "sample_rate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := gateway.ParseConfig([]byte(tc.yaml))
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				if _, err := c.Options(); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err = %v, want %q", err, tc.err)
			}
		})
	}
	c, _ := gateway.ParseConfig([]byte("interval: 5s\ndetectors: {blacklight: {min_matches: 10}}\nroutes: [{upstream: http://x}]"))
	if c.Interval != 5*time.Second || c.Detectors.Blacklight.MinMatches != 10 || c.Detectors.PRADA.Delta == 0 {
		t.Fatalf("decoded %+v", c)
	}
}

// TestLoadConfigWithDatasetBaseline: a route's baseline may be a `pipewarden data profile`
// baseline, found relative to the configuration file; its label is not a feature.
func TestLoadConfigWithDatasetBaseline(t *testing.T) {
	dir := t.TempDir()
	f, err := table.Open("../../../shared/fixtures/datasets/iris.csv", table.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := dataset.Profile(f, dataset.ProfileOptions{Label: "label"})
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	out, _ := os.Create(filepath.Join(dir, "iris.baseline.json"))
	if err := b.Encode(out); err != nil {
		t.Fatal(err)
	}
	out.Close()
	os.WriteFile(filepath.Join(dir, "simple.json"), []byte(`{"features":[{"name":"a","mean":1,"std":2,"min":-5,"max":5}]}`), 0o600)
	cfgPath := filepath.Join(dir, "gw.yaml")
	os.WriteFile(cfgPath, []byte(`data_dir: state
routes:
  - {name: iris, path_prefix: /iris/, upstream: "http://127.0.0.1:1", baseline: iris.baseline.json}
  - {name: one, path_prefix: /one/, upstream: "http://127.0.0.1:1", baseline: simple.json}
`), 0o600)
	c, err := gateway.LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != filepath.Join(dir, "state") {
		t.Errorf("data_dir %q not resolved against the file", c.DataDir)
	}
	o, err := c.Options()
	if err != nil {
		t.Fatal(err)
	}
	iris := o.Routes[0].Baseline
	if iris.Dim() != 4 || o.Routes[0].Features != 4 || len(iris.Sample) != 150 || iris.Names[3] != "petal_width_cm" {
		t.Fatalf("iris baseline: %d features %v, %d sample rows", iris.Dim(), iris.Names, len(iris.Sample))
	}
	if o.Routes[1].Baseline.Dim() != 1 {
		t.Fatal("simple baseline")
	}
	os.WriteFile(filepath.Join(dir, "bad.json"), []byte(`{"features":[{"name":"a","mean":1,"std":-2,"min":0,"max":1}]}`), 0o600)
	if _, err := gateway.LoadBaseline(filepath.Join(dir, "bad.json")); err == nil || !strings.Contains(err.Error(), "bad.json") {
		t.Fatalf("negative std: err = %v", err)
	}
}

// FuzzParseConfig: no configuration text makes the decoder or validation panic.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("routes: [{upstream: http://127.0.0.1:9000, protocol: mlflow}]\nlimits: {client_rate: 3}"))
	f.Add([]byte("detectors: {disable: [prada]}\nescalation: {at: low}"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		if len(raw) > 1<<14 {
			return
		}
		if c, err := gateway.ParseConfig(raw); err == nil {
			c.Options()
		}
	})
}
