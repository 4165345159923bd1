package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestReducedEvaluation runs the extraction evaluation on two seeds with 2,000 benign queries
// each: no benign client may be blocked or rate-limited, and every attacker must be blocked
// within 300 answered queries (except the natural-data attacker, which these detectors cannot
// tell from a benign client).
func TestReducedEvaluation(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two model servers and a gateway over HTTP")
	}
	cfg := simConfig{fixtures: "../../../shared/fixtures/datasets", datasets: []string{"wine", "iris"},
		benignQueries: 2000, benignClients: 5, attackerBudget: 400}
	var all []*seedResult
	for _, seed := range []uint64{101, 102} {
		r, err := runSeed(cfg, seed)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, r)
		if r.benignBlocked != 0 || r.benignLimited != 0 {
			t.Errorf("seed %d: %d benign clients blocked, %d benign requests limited (findings %v)", seed, r.benignBlocked, r.benignLimited, r.benignFindings)
		}
		if r.benignQueries < cfg.benignQueries {
			t.Errorf("seed %d: only %d benign queries answered", seed, r.benignQueries)
		}
		if len(r.attacks) != 2*len(attackerKinds) {
			t.Fatalf("seed %d: %d attackers", seed, len(r.attacks))
		}
		for _, a := range r.attacks {
			if a.kind == "natural" {
				continue // not expected to be caught; reported, not asserted
			}
			if !a.blocked || a.queries > 300 {
				t.Errorf("seed %d: %s attacker on %s: blocked %v after %d queries", seed, a.kind, a.dataset, a.blocked, a.queries)
			}
			if a.rule == "" {
				t.Errorf("seed %d: %s attacker on %s: block without a rule", seed, a.kind, a.dataset)
			}
		}
	}
	var out bytes.Buffer
	summarise(&out, all, 300)
	if !strings.Contains(out.String(), "| iris | uniform | 2/2 (100%)") {
		t.Errorf("summary:\n%s", out.String())
	}
}
