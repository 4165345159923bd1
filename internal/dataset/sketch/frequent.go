package sketch

import "sort"

// Frequent is the space-saving top-k counter: at most K values are tracked; a new value
// evicts the least counted one and inherits its count as error. Counts are overestimates by at
// most Err.
type Frequent struct {
	K      int              `json:"k"`
	N      int64            `json:"n"`
	Counts map[string]int64 `json:"counts"`
	Errs   map[string]int64 `json:"errors,omitempty"`
}

// NewFrequent returns an empty counter tracking k values.
func NewFrequent(k int) *Frequent {
	return &Frequent{K: k, Counts: map[string]int64{}, Errs: map[string]int64{}}
}

// Add counts one value.
func (f *Frequent) Add(v string) {
	f.N++
	if _, ok := f.Counts[v]; ok || len(f.Counts) < f.K {
		f.Counts[v]++
		return
	}
	minK, minC := "", int64(-1)
	for k, c := range f.Counts {
		if minC < 0 || c < minC || (c == minC && k < minK) {
			minK, minC = k, c
		}
	}
	delete(f.Counts, minK)
	delete(f.Errs, minK)
	f.Counts[v] = minC + 1
	f.Errs[v] = minC
}

// Exact reports whether every value seen is tracked (so counts are exact).
func (f *Frequent) Exact() bool {
	var s int64
	for _, c := range f.Counts {
		s += c
	}
	return s == f.N && len(f.Errs) == 0
}

// Item is a value and its count.
type Item struct {
	Value string `json:"value"`
	Count int64  `json:"count"`
}

// Top returns the tracked values, most frequent first.
func (f *Frequent) Top() []Item {
	out := make([]Item, 0, len(f.Counts))
	for k, c := range f.Counts {
		out = append(out, Item{k, c})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Value < out[j].Value
	})
	return out
}
