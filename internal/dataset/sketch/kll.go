package sketch

import (
	"math"
	"math/rand/v2"
	"slices"
)

// KLL is the Karnin-Lang-Liberty quantile sketch: a stack of compactors whose capacities shrink
// geometrically towards the bottom; a full level is sorted and every other item (odd or even,
// by a coin) is promoted with twice the weight. Rank error is about 1.7/K of n with high
// probability; it merges with another KLL of the same K. The coin is seeded, so a profile is
// reproducible.
type KLL struct {
	K      int         `json:"k"`
	N      int64       `json:"n"`
	Min    float64     `json:"min"`
	Max    float64     `json:"max"`
	Levels [][]float64 `json:"levels"`
	rng    *rand.Rand
}

// NewKLL returns an empty sketch with accuracy parameter k (200 gives ~1% rank error).
func NewKLL(k int, seed uint64) *KLL {
	return &KLL{K: k, Levels: [][]float64{nil}, Min: math.Inf(1), Max: math.Inf(-1),
		rng: rand.New(rand.NewPCG(seed, 0x6b6c6c))}
}

func (s *KLL) capacity(level int) int {
	h := len(s.Levels)
	c := int(math.Ceil(float64(s.K) * math.Pow(2.0/3.0, float64(h-1-level))))
	return max(c, 2)
}

// Add inserts one value; NaN is ignored.
func (s *KLL) Add(v float64) {
	if v != v {
		return
	}
	s.N++
	s.Min = min(s.Min, v)
	s.Max = max(s.Max, v)
	s.Levels[0] = append(s.Levels[0], v)
	if len(s.Levels[0]) >= s.capacity(0) {
		s.compress()
	}
}

func (s *KLL) coin() int {
	if s.rng == nil {
		s.rng = rand.New(rand.NewPCG(uint64(s.N), 0x6b6c6c))
	}
	return int(s.rng.Uint64() & 1)
}

func (s *KLL) compress() {
	for l := 0; l < len(s.Levels); l++ {
		if len(s.Levels[l]) < s.capacity(l) {
			continue
		}
		if l+1 == len(s.Levels) {
			s.Levels = append(s.Levels, nil)
		}
		lv := s.Levels[l]
		slices.Sort(lv)
		keep := []float64(nil)
		if len(lv)%2 == 1 { // an odd item stays behind
			keep = append(keep, lv[len(lv)-1])
			lv = lv[:len(lv)-1]
		}
		for i := s.coin(); i < len(lv); i += 2 {
			s.Levels[l+1] = append(s.Levels[l+1], lv[i])
		}
		s.Levels[l] = append(lv[:0], keep...)
	}
}

// Merge folds o into s; both must have the same K.
func (s *KLL) Merge(o *KLL) {
	for len(s.Levels) < len(o.Levels) {
		s.Levels = append(s.Levels, nil)
	}
	for l, lv := range o.Levels {
		s.Levels[l] = append(s.Levels[l], lv...)
	}
	s.N += o.N
	s.Min = min(s.Min, o.Min)
	s.Max = max(s.Max, o.Max)
	s.compress()
}

type weighted struct {
	v float64
	w int64
}

func (s *KLL) items() []weighted {
	var out []weighted
	for l, lv := range s.Levels {
		for _, v := range lv {
			out = append(out, weighted{v, 1 << l})
		}
	}
	slices.SortFunc(out, func(a, b weighted) int {
		switch {
		case a.v < b.v:
			return -1
		case a.v > b.v:
			return 1
		}
		return 0
	})
	return out
}

// Quantile returns the value at rank q*n (0 <= q <= 1); NaN when empty.
func (s *KLL) Quantile(q float64) float64 {
	return s.Quantiles([]float64{q})[0]
}

// Quantiles answers several quantile queries with one pass.
func (s *KLL) Quantiles(qs []float64) []float64 {
	out := make([]float64, len(qs))
	it := s.items()
	if len(it) == 0 {
		for i := range out {
			out[i] = math.NaN()
		}
		return out
	}
	var total int64
	for _, x := range it {
		total += x.w
	}
	for i, q := range qs {
		switch {
		case q <= 0:
			out[i] = s.Min
			continue
		case q >= 1:
			out[i] = s.Max
			continue
		}
		target := q * float64(total)
		var cum int64
		out[i] = it[len(it)-1].v
		for _, x := range it {
			cum += x.w
			if float64(cum) >= target {
				out[i] = x.v
				break
			}
		}
	}
	return out
}

// CDF returns the estimated fraction of values <= x.
func (s *KLL) CDF(x float64) float64 {
	var tot, le int64
	for l, lv := range s.Levels {
		for _, v := range lv {
			tot += 1 << l
			if v <= x {
				le += 1 << l
			}
		}
	}
	if tot == 0 {
		return math.NaN()
	}
	return float64(le) / float64(tot)
}
