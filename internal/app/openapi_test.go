package app_test

import (
	"os"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestOpenAPIMatchesRoutes keeps docs/openapi.yaml and the daemon's registered routes (its own and
// every mounted component's) in step.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	b, err := os.ReadFile("../../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI string                               `yaml:"openapi"`
		Paths   map[string]map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("docs/openapi.yaml: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi version %q, want 3.x", doc.OpenAPI)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			switch method {
			case "get", "post", "put", "patch", "delete":
				documented = append(documented, strings.ToUpper(method)+" "+path)
			}
		}
	}
	sort.Strings(documented)
	h := start(t, nil, nil)
	registered := h.app.Routes()
	want := map[string]bool{}
	for _, r := range registered {
		want[r] = true
	}
	have := map[string]bool{}
	for _, d := range documented {
		have[d] = true
		if !want[d] {
			t.Errorf("documented but not registered: %s", d)
		}
	}
	for _, r := range registered {
		if !have[r] {
			t.Errorf("registered but not documented in docs/openapi.yaml: %s", r)
		}
	}
}
