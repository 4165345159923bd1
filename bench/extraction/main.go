// Command extraction evaluates the gateway's detectors end to end: a softmax-regression model
// trained at start-up on wine and iris (shared fixtures) is served over KServe v2 JSON behind
// the gateway, benign clients send noisy held-out rows, and four kinds of attackers (uniform
// random, Jacobian augmentation, boundary probing around a seed, one-feature sweeps) query
// until they are blocked; a fifth attacker querying real held-out records only shows what the
// detectors cannot see. Run from the repository root:
//
//	go run ./bench/extraction -seeds 20
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
)

func main() {
	seeds := flag.Int("seeds", 20, "number of seeds")
	first := flag.Int("first", 1, "first seed")
	benignN := flag.Int("benign", 10000, "benign queries per seed")
	calibrate := flag.Bool("calibrate", false, "print each detector's statistic per kind of client instead (no blocking)")
	fixtures := flag.String("fixtures", "../shared/fixtures/datasets", "folder with wine.csv and iris.csv")
	flag.Parse()
	cfg := simConfig{fixtures: *fixtures, datasets: []string{"wine", "iris"}, benignQueries: *benignN,
		benignClients: 5, attackerBudget: 600, calibrate: *calibrate}
	var all []*seedResult
	for s := *first; s < *first+*seeds; s++ {
		r, err := runSeed(cfg, uint64(s))
		if err != nil {
			fmt.Fprintln(os.Stderr, "extraction:", err)
			os.Exit(1)
		}
		all = append(all, r)
		fmt.Fprintf(os.Stderr, "seed %d: %s\n", s, oneLine(r))
	}
	if *calibrate {
		calibration(os.Stdout, all)
		return
	}
	summarise(os.Stdout, all, 300)
}

func oneLine(r *seedResult) string {
	var parts []string
	for _, a := range r.attacks {
		st := "never"
		if a.blocked {
			st = fmt.Sprint(a.queries)
		}
		parts = append(parts, fmt.Sprintf("%s/%s=%s", a.dataset, a.kind, st))
	}
	return fmt.Sprintf("%s; benign blocked %d, limited %d, findings %v", strings.Join(parts, " "), r.benignBlocked, r.benignLimited, r.benignFindings)
}

// summarise writes the Markdown tables of docs/benchmarks/gateway.md.
func summarise(w io.Writer, all []*seedResult, within int) {
	type key struct{ dataset, kind string }
	qs := map[key][]int{}
	ok := map[key]int{}
	rules := map[key]map[string]int{}
	benignQ, benignBlocked, benignLimited := 0, 0, 0
	benignFindings := map[string]int{}
	ns := 0.0
	for _, r := range all {
		benignQ += r.benignQueries
		benignBlocked += r.benignBlocked
		benignLimited += r.benignLimited
		for k, n := range r.benignFindings {
			benignFindings[k] += n
		}
		ns += r.detectorNs / float64(len(all))
		for _, a := range r.attacks {
			k := key{a.dataset, a.kind}
			if rules[k] == nil {
				rules[k] = map[string]int{}
			}
			if a.blocked {
				qs[k] = append(qs[k], a.queries)
				rules[k][a.rule]++
				if a.queries <= within {
					ok[k]++
				}
			}
		}
	}
	fmt.Fprintf(w, "Seeds: %d. Benign: %d queries, %d benign clients blocked, %d benign requests rate-limited, findings on benign clients: %v. Detector cost: %.0f ns per query.\n\n",
		len(all), benignQ, benignBlocked, benignLimited, benignFindings, ns)
	fmt.Fprintf(w, "| dataset | attacker | blocked within %d queries | median queries to block | max | blocking rule |\n|---|---|---|---|---|---|\n", within)
	var keys []key
	for k := range rules {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].dataset != keys[j].dataset {
			return keys[i].dataset > keys[j].dataset
		}
		return slices.Index(attackerKinds, keys[i].kind) < slices.Index(attackerKinds, keys[j].kind)
	})
	for _, k := range keys {
		q := qs[k]
		slices.Sort(q)
		med, mx := "-", "-"
		if len(q) > 0 {
			med, mx = fmt.Sprint(q[len(q)/2]), fmt.Sprint(q[len(q)-1])
		}
		var rs []string
		for r, n := range rules[k] {
			rs = append(rs, fmt.Sprintf("%s (%d)", r, n))
		}
		slices.Sort(rs)
		fmt.Fprintf(w, "| %s | %s | %d/%d (%.0f%%) | %s | %s | %s |\n", k.dataset, k.kind, ok[k], len(all),
			100*float64(ok[k])/float64(len(all)), med, mx, strings.Join(rs, ", "))
	}
}

// calibration prints quantiles of each detector's statistic per kind of client.
func calibration(w io.Writer, all []*seedResult) {
	st := map[string][]float64{}
	for _, r := range all {
		for k, v := range r.stats {
			st[k] = append(st[k], v...)
		}
	}
	var keys []string
	for k := range st {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	fmt.Fprintln(w, "| client kind, rule | n | min | p5 | median | p95 | max |\n|---|---|---|---|---|---|---|")
	for _, k := range keys {
		v := st[k]
		slices.Sort(v)
		q := func(p float64) float64 { return v[int(p*float64(len(v)-1))] }
		fmt.Fprintf(w, "| %s | %d | %.3f | %.3f | %.3f | %.3f | %.3f |\n", k, len(v), v[0], q(0.05), q(0.5), q(0.95), v[len(v)-1])
	}
}
