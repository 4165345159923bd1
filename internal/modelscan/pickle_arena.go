package modelscan

// arena is append-only storage addressed by 31-bit offsets, kept in chunks of 1<<shift
// elements so that growing never copies nor zeroes what is stored. What is allocated never
// straddles two chunks: an allocation that does not fit in what is left of a chunk starts
// the next one, and one larger than a chunk gets a chunk of its own size, spanning the
// offsets of as many chunks. reset keeps the chunks for reuse.
type arena[T any] struct {
	chunks [][]T // chunks[off>>shift] holds off; nil past a chunk of its own size
	n      int   // offsets below n are allocated
	shift  uint
}

// maxArena bounds an arena's offsets: the top bit of a heap offset names the generation.
const maxArena = 1 << 31

func (a *arena[T]) reset() { a.n = 0 }

// at is the n elements stored at off.
func (a *arena[T]) at(off, n uint32) []T {
	c := a.chunks[off>>a.shift]
	o := off & (1<<a.shift - 1)
	return c[o : o+n : o+n]
}

// ptr is the element at off.
func (a *arena[T]) ptr(off uint32) *T {
	return &a.chunks[off>>a.shift][off&(1<<a.shift-1)]
}

// alloc reserves k elements and returns their offset and memory, whose content is whatever
// was stored there before; ok is false when the arena is full.
func (a *arena[T]) alloc(k int) (off uint32, s []T, ok bool) {
	// Most allocations fit in the chunk the previous one used.
	if o := a.n & (1<<a.shift - 1); o != 0 && o+k <= 1<<a.shift {
		if c := a.chunks[a.n>>a.shift]; len(c) >= o+k {
			off := a.n
			a.n += k
			return uint32(off), c[o : o+k : o+k], true
		}
	}
	return a.allocChunk(k)
}

// allocChunk is alloc starting a chunk.
func (a *arena[T]) allocChunk(k int) (off uint32, s []T, ok bool) {
	size := 1 << a.shift
	start := a.n
	if k > size-start&(size-1) && start&(size-1) != 0 {
		start = (start + size - 1) &^ (size - 1)
	}
	end := start + max(k, 1)
	if end > maxArena {
		return 0, nil, false
	}
	i := start >> a.shift
	for len(a.chunks) < (end+size-1)>>a.shift {
		a.chunks = append(a.chunks, nil)
	}
	if len(a.chunks[i]) < max(k, size) || k > size && len(a.chunks[i]) > 2*k {
		a.chunks[i] = make([]T, max(k, size))
	}
	for j := i + 1; j < (end+size-1)>>a.shift && k > size; j++ {
		a.chunks[j] = nil // the offsets of a chunk of its own size
	}
	a.n = end
	o := start & (size - 1)
	return uint32(start), a.chunks[i][o : o+k : o+k], true
}
