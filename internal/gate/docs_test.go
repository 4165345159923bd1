package gate_test

import (
	"os"
	"strings"
	"testing"

	"github.com/pipewarden/pipewarden/internal/gate"
)

// The policy example in docs/ci.md is what users copy: it must load as written.
func TestDocsPolicyExampleLoads(t *testing.T) {
	b, err := os.ReadFile("../../docs/ci.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	_, rest, ok := strings.Cut(doc, "## The policy file")
	if !ok {
		t.Fatal("docs/ci.md has no policy section")
	}
	_, rest, ok = strings.Cut(rest, "```yaml\n")
	if !ok {
		t.Fatal("no yaml block in the policy section")
	}
	example, _, _ := strings.Cut(rest, "```")
	p, err := gate.Load([]byte(example), "/repo")
	if err != nil {
		t.Fatalf("docs/ci.md policy example: %v", err)
	}
	if len(p.Models) != 2 || len(p.Datasets) != 1 || len(p.Lockfiles) != 2 || len(p.Allow) != 2 || p.Deploy.Endpoint == "" {
		t.Errorf("example loaded as %+v", p)
	}
}
