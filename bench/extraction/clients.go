package main

import (
	"fmt"
	"math/rand/v2"
)

// querier is one simulated client: it proposes a query and learns the answer.
type querier interface {
	next() []float64
	answer(x []float64, class int)
}

// benign samples held-out real rows with small Gaussian noise (noise standard deviations; the
// benign clients use 0.1). With no noise it is the natural-data attacker: real records only.
type benign struct {
	rng   *rand.Rand
	held  [][]float64
	m     moments
	noise float64
}

func (b *benign) next() []float64 {
	r := b.held[b.rng.IntN(len(b.held))]
	x := make([]float64, len(r))
	for j, v := range r {
		x[j] = v + b.noise*b.m.std[j]*b.rng.NormFloat64()
	}
	return x
}

func (b *benign) answer([]float64, int) {}

// uniform queries uniformly at random in the features' bounding box.
type uniform struct {
	rng *rand.Rand
	m   moments
}

func (u *uniform) next() []float64 {
	x := make([]float64, len(u.m.min))
	for j := range x {
		x[j] = u.m.min[j] + u.rng.Float64()*(u.m.max[j]-u.m.min[j])
	}
	return x
}

func (u *uniform) answer([]float64, int) {}

// perturb probes the decision boundary around one seed with small perturbations (5% of a
// standard deviation per feature).
type perturb struct {
	rng  *rand.Rand
	seed []float64
	m    moments
}

func (p *perturb) next() []float64 {
	x := make([]float64, len(p.seed))
	for j, v := range p.seed {
		x[j] = v + 0.05*p.m.std[j]*p.rng.NormFloat64()
	}
	return x
}

func (p *perturb) answer([]float64, int) {}

// sweep varies one feature at a time over 20 steps of its range, starting from a seed.
type sweep struct {
	seed    []float64
	m       moments
	feature int
	step    int
}

func (s *sweep) next() []float64 {
	x := append([]float64(nil), s.seed...)
	j := s.feature % len(x)
	x[j] = s.m.min[j] + float64(s.step)/19*(s.m.max[j]-s.m.min[j])
	s.step++
	if s.step == 20 {
		s.step, s.feature = 0, s.feature+1
	}
	return x
}

func (s *sweep) answer([]float64, int) {}

// jacobian is Papernot et al.'s Jacobian-based dataset augmentation (2017): from a few seeds, it
// trains a substitute on the labels it gets back, then adds x + λ·sign(∂p_label/∂x) for every
// point so far, with λ = 0.1 of each feature's range among its seeds, doubling its set each
// round.
type jacobian struct {
	m       moments
	k       int
	pending [][]float64
	xs      [][]float64
	ys      []int
	asked   map[string]bool
	flip    bool
}

// The attacker knows only its seeds: its feature scales are their ranges, not the training
// data's.
func newJacobian(seeds [][]float64, k int) *jacobian {
	j := &jacobian{m: momentsOf(seeds), k: k}
	for _, s := range seeds {
		j.pending = append(j.pending, append([]float64(nil), s...))
	}
	return j
}

// next returns the next point to query; points already queried are skipped (their label is
// known), so no query is wasted.
func (j *jacobian) next() []float64 {
	if j.asked == nil {
		j.asked = map[string]bool{}
	}
	for fruitless := 0; ; {
		if len(j.pending) == 0 {
			if fruitless++; fruitless > 4 {
				return j.xs[0] // nothing new to ask: repeat a point rather than loop
			}
			// A round that only rediscovers known points flips the step, as Papernot et
			// al.'s periodic step size does.
			j.flip = !j.flip
			j.augment()
		}
		x := j.pending[0]
		j.pending = j.pending[1:]
		k := fmt.Sprint(x)
		if !j.asked[k] {
			j.asked[k] = true
			return x
		}
	}
}

func (j *jacobian) answer(x []float64, class int) {
	j.xs, j.ys = append(j.xs, x), append(j.ys, class)
}

func (j *jacobian) augment() {
	sub := trainSoftmax(j.xs, j.ys, j.k, j.m, 50)
	d := len(j.m.mean)
	z := make([]float64, d)
	p := make([]float64, j.k)
	for i, x := range j.xs {
		sub.standardise(x, z)
		sub.probs(z, p)
		c := j.ys[i]
		nx := make([]float64, d)
		for f := range d {
			// ∂p_c/∂z_f = p_c (w_cf − Σ_k p_k w_kf); p_c > 0 does not change the sign, and
			// leaving it out keeps the sign when p_c underflows. A saturated substitute
			// (p_c = 1) falls back to the logit margin w_cf − mean_k w_kf.
			g, mean := sub.w[c][f], 0.0
			for kk := range j.k {
				g -= p[kk] * sub.w[kk][f]
				mean += sub.w[kk][f] / float64(j.k)
			}
			if g == 0 {
				g = sub.w[c][f] - mean
			}
			lambda := 0.1
			if j.flip {
				lambda = -lambda
			}
			nx[f] = x[f] + lambda*(j.m.max[f]-j.m.min[f])*sign(g)
		}
		j.pending = append(j.pending, nx)
	}
}

func sign(v float64) float64 {
	if v < 0 {
		return -1
	}
	if v > 0 {
		return 1
	}
	return 0
}
