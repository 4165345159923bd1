package stattest

import (
	"math"
	"slices"
)

// radixMin is the length below which the comparison sort wins.
const radixMin = 2048

// SortFloats sorts x ascending in place (NaNs must have been removed). Large slices use an LSD
// radix sort on the IEEE-754 bits, which is several times faster than a comparison sort and is
// what makes KS on a million values cheap.
func SortFloats(x []float64) {
	if len(x) < radixMin {
		slices.Sort(x)
		return
	}
	keys := make([]uint64, len(x))
	for i, v := range x {
		keys[i] = floatKey(v)
	}
	buf := make([]uint64, len(x))
	var counts [8][256]int
	for _, k := range keys {
		for p := 0; p < 8; p++ {
			counts[p][byte(k>>(8*p))]++
		}
	}
	src, dst := keys, buf
	for p := 0; p < 8; p++ {
		c := &counts[p]
		if c[byte(src[0]>>(8*p))] == len(src) {
			continue // every key has the same byte here
		}
		sum := 0
		for i := range c {
			c[i], sum = sum, sum+c[i]
		}
		shift := uint(8 * p)
		for _, k := range src {
			b := byte(k >> shift)
			dst[c[b]] = k
			c[b]++
		}
		src, dst = dst, src
	}
	for i, k := range src {
		x[i] = keyFloat(k)
	}
}

// floatKey maps a float64 to a uint64 with the same order.
func floatKey(v float64) uint64 {
	b := math.Float64bits(v)
	if b>>63 == 1 {
		return ^b
	}
	return b | 1<<63
}

func keyFloat(k uint64) float64 {
	if k>>63 == 1 {
		return math.Float64frombits(k &^ (1 << 63))
	}
	return math.Float64frombits(^k)
}
