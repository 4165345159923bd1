package sketch

import "math/rand/v2"

// Reservoir keeps a uniform random sample of at most Size items from a stream (Vitter's
// algorithm R), with a seeded generator so the same input gives the same sample.
type Reservoir[T any] struct {
	Size  int
	Seen  int64
	Items []T
	rng   *rand.Rand
}

// NewReservoir returns an empty reservoir of the given size and seed.
func NewReservoir[T any](size int, seed uint64) *Reservoir[T] {
	return &Reservoir[T]{Size: size, rng: rand.New(rand.NewPCG(seed, 0x7265736572766f69))}
}

// Slot counts one more item of the stream and returns the index in Items where the caller
// should store it, or -1 when the item is not sampled. Callers fill the slot themselves so that
// skipped items cost no copy.
func (r *Reservoir[T]) Slot() int {
	r.Seen++
	if r.Size <= 0 {
		return -1
	}
	if len(r.Items) < r.Size {
		var zero T
		r.Items = append(r.Items, zero)
		return len(r.Items) - 1
	}
	j := r.rng.Int64N(r.Seen)
	if j < int64(r.Size) {
		return int(j)
	}
	return -1
}
