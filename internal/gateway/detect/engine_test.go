package detect_test

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/pipewarden/pipewarden/internal/finding"
	"github.com/pipewarden/pipewarden/internal/gateway/detect"
)

// world is a synthetic endpoint: 6 correlated features in 3 classes, with a baseline built from
// 400 training rows, a pool of 60 held-out rows, and a classifier.
type world struct {
	rng   *rand.Rand
	base  *detect.Baseline
	held  [][]float64
	lo    []float64
	hi    []float64
	class func([]float64) int
}

func newWorld(seed uint64) *world {
	rng := rand.New(rand.NewPCG(seed, 1))
	const d = 6
	centres := [][]float64{{0, 0, 0, 0, 0, 0}, {3, 2, 1, 3, 2, 1}, {-2, 3, -1, 0, 2, -3}}
	row := func() []float64 {
		c := centres[rng.IntN(3)]
		latent := rng.NormFloat64()
		x := make([]float64, d)
		for j := range x {
			x[j] = c[j] + latent + 0.5*rng.NormFloat64() // correlated through latent
		}
		return x
	}
	w := &world{rng: rng}
	var train [][]float64
	for range 400 {
		train = append(train, row())
	}
	for range 60 {
		w.held = append(w.held, row())
	}
	b := &detect.Baseline{Sample: train}
	w.lo, w.hi = make([]float64, d), make([]float64, d)
	for j := range d {
		var s, s2 float64
		w.lo[j], w.hi[j] = math.Inf(1), math.Inf(-1)
		for _, r := range train {
			s += r[j]
			s2 += r[j] * r[j]
			w.lo[j], w.hi[j] = math.Min(w.lo[j], r[j]), math.Max(w.hi[j], r[j])
		}
		m := s / float64(len(train))
		b.Mean = append(b.Mean, m)
		b.Std = append(b.Std, math.Sqrt(s2/float64(len(train))-m*m))
	}
	b.Min, b.Max = w.lo, w.hi
	w.base = b
	w.class = func(x []float64) int {
		best, bd := 0, math.Inf(1)
		for k, c := range centres {
			d := 0.0
			for j := range x {
				d += (x[j] - c[j]) * (x[j] - c[j])
			}
			if d < bd {
				best, bd = k, d
			}
		}
		return best
	}
	return w
}

func (w *world) benign() []float64 {
	r := w.held[w.rng.IntN(len(w.held))]
	x := make([]float64, len(r))
	for j, v := range r {
		x[j] = v + 0.1*w.base.Std[j]*w.rng.NormFloat64()
	}
	return x
}

func newEngine(t testing.TB, w *world) *detect.Engine {
	t.Helper()
	e, err := detect.NewEngine(detect.Config{}, []byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	e.SetBaseline("m", w.base)
	return e
}

// run feeds n queries of one client and returns the rules of the findings, in order.
func run(e *detect.Engine, w *world, client string, n int, next func(i int) []float64) []finding.Finding {
	var out []finding.Finding
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		x := next(i)
		out = append(out, e.Observe(detect.Query{Client: client, Endpoint: "m", Time: t0.Add(time.Duration(i) * time.Second), X: x, Class: w.class(x), Status: 200})...)
	}
	return out
}

func rules(fs []finding.Finding) map[string]int {
	m := map[string]int{}
	for _, f := range fs {
		m[f.Rule]++
	}
	return m
}

func TestDetectorsFireOnTheirAttacksOnly(t *testing.T) {
	tests := []struct {
		name string
		next func(w *world) func(int) []float64
		want string // rule expected within 150 queries; "" = none at all over 2000
	}{
		{"benign noisy held-out rows", func(w *world) func(int) []float64 { return func(int) []float64 { return w.benign() } }, ""},
		{"real records re-scored exactly", func(w *world) func(int) []float64 {
			return func(int) []float64 { return w.held[w.rng.IntN(len(w.held))] }
		}, ""},
		{"uniform random in the box", func(w *world) func(int) []float64 {
			return func(int) []float64 {
				x := make([]float64, len(w.lo))
				for j := range x {
					x[j] = w.lo[j] + w.rng.Float64()*(w.hi[j]-w.lo[j])
				}
				return x
			}
		}, detect.RuleOOD},
		{"perturbations of one seed", func(w *world) func(int) []float64 {
			seed := w.held[0]
			return func(int) []float64 {
				x := make([]float64, len(seed))
				for j := range x {
					x[j] = seed[j] + 0.02*w.base.Std[j]*w.rng.NormFloat64()
				}
				return x
			}
		}, detect.RuleQueryAttack},
		{"sign-gradient steps (Jacobian augmentation)", func(w *world) func(int) []float64 {
			set := [][]float64{w.held[0], w.held[1], w.held[2], w.held[3]}
			return func(i int) []float64 {
				if i < len(set) {
					return set[i]
				}
				p := set[w.rng.IntN(len(set))] // a step of 0.05 of each feature's range from an earlier point
				x := make([]float64, len(p))
				for j := range x {
					x[j] = p[j] + 0.05*(w.hi[j]-w.lo[j])*float64(1-2*w.rng.IntN(2))
				}
				set = append(set, x)
				return x
			}
		}, detect.RuleSignSteps},
		{"one feature at a time", func(w *world) func(int) []float64 {
			seed := w.held[1]
			return func(i int) []float64 {
				x := append([]float64(nil), seed...)
				j := (i / 20) % len(x)
				x[j] = w.lo[j] + float64(i%20)/19*(w.hi[j]-w.lo[j])
				return x
			}
		}, detect.RuleSweep},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for seed := range uint64(3) {
				w := newWorld(seed + 1)
				e := newEngine(t, w)
				n := 150
				if tc.want == "" {
					n = 2000
				}
				fs := run(e, w, "c", n, tc.next(w))
				got := rules(fs)
				if tc.want == "" {
					for _, f := range fs {
						if f.Subject.Kind == "client" {
							t.Fatalf("seed %d: benign client got %s: %s", seed, f.Rule, f.Title)
						}
					}
					continue
				}
				if got[tc.want] == 0 {
					t.Fatalf("seed %d: no %s within %d queries; got %v", seed, tc.want, n, got)
				}
				for _, f := range fs {
					if f.Rule != tc.want {
						continue
					}
					if err := f.Validate(); err != nil || len(f.ATLAS) == 0 || f.Subject.Name != "c" {
						t.Fatalf("bad finding %+v: %v", f, err)
					}
					for _, k := range []string{"statistic", "threshold", "queries", "first_request", "last_request"} {
						if _, ok := f.Evidence[k]; !ok {
							t.Fatalf("finding %s lacks evidence %q: %v", f.Rule, k, f.Evidence)
						}
					}
				}
			}
		})
	}
}

func TestBlacklightLinksClientsSharingAProbe(t *testing.T) {
	w := newWorld(9)
	e := newEngine(t, w)
	seed := w.held[3]
	var fs []finding.Finding
	for i := range 200 { // two keys take turns probing the same point
		x := make([]float64, len(seed))
		for j := range x {
			x[j] = seed[j] + 0.02*w.base.Std[j]*w.rng.NormFloat64()
		}
		client := []string{"a", "b"}[i%2]
		fs = append(fs, e.Observe(detect.Query{Client: client, Endpoint: "m", X: x, Class: 0, Status: 200})...)
	}
	linked := false
	for _, f := range fs {
		if f.Rule == detect.RuleLinked {
			linked = true
			if l, _ := f.Evidence["linked_clients"].([]string); len(l) != 1 {
				t.Fatalf("linked clients %v", f.Evidence["linked_clients"])
			}
		}
	}
	if !linked {
		t.Fatalf("no linked-clients finding: %v", rules(fs))
	}
}

func TestEngineStateIsCapped(t *testing.T) {
	w := newWorld(4)
	e, _ := detect.NewEngine(detect.Config{MaxClients: 50}, []byte("0123456789abcdef"))
	e.SetBaseline("m", w.base)
	for i := range 1000 {
		e.Observe(detect.Query{Client: string(rune('a'+i%26)) + string(rune(i)), Endpoint: "m", X: w.benign(), Class: 0})
	}
	if e.Clients() != 50 {
		t.Fatalf("%d client states kept, cap 50", e.Clients())
	}
}

func TestNewEngineRejects(t *testing.T) {
	if _, err := detect.NewEngine(detect.Config{}, []byte("short")); err == nil {
		t.Error("a short secret must be refused")
	}
	if _, err := detect.NewEngine(detect.Config{Disable: []string{"prada", "nope"}}, []byte("0123456789abcdef")); err == nil {
		t.Error("an unknown detector name must be refused")
	}
}

// BenchmarkObserve is the detectors' cost per query (all on, baseline with 400 rows).
func BenchmarkObserve(b *testing.B) {
	w := newWorld(5)
	e := newEngine(b, w)
	xs := make([][]float64, 1024)
	for i := range xs {
		xs[i] = w.benign()
	}
	clients := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		x := xs[i%len(xs)]
		e.Observe(detect.Query{Client: clients[i%len(clients)], Endpoint: "m", X: x, Class: i % 3, Status: 200})
		i++
	}
}
