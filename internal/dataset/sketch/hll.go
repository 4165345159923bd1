package sketch

import (
	"math"
	"math/bits"
)

// hllP is the HyperLogLog precision: 2^12 registers, about 1.6% standard error.
const hllP = 12

// HLL is a HyperLogLog distinct-count estimator over 64-bit hashes.
type HLL struct {
	Registers []uint8 `json:"registers"`
}

// NewHLL returns an empty estimator.
func NewHLL() *HLL { return &HLL{Registers: make([]uint8, 1<<hllP)} }

// AddHash adds an already hashed item.
func (h *HLL) AddHash(x uint64) {
	idx := x >> (64 - hllP)
	rank := uint8(bits.LeadingZeros64(x<<hllP|1<<(hllP-1)) + 1)
	if rank > h.Registers[idx] {
		h.Registers[idx] = rank
	}
}

// Merge folds o into h.
func (h *HLL) Merge(o *HLL) {
	for i, r := range o.Registers {
		h.Registers[i] = max(h.Registers[i], r)
	}
}

// Estimate returns the estimated number of distinct items.
func (h *HLL) Estimate() float64 {
	m := float64(len(h.Registers))
	if m == 0 {
		return 0
	}
	var sum float64
	zeros := 0
	for _, r := range h.Registers {
		sum += math.Ldexp(1, -int(r))
		if r == 0 {
			zeros++
		}
	}
	alpha := 0.7213 / (1 + 1.079/m)
	e := alpha * m * m / sum
	if e <= 2.5*m && zeros > 0 {
		return m * math.Log(m/float64(zeros)) // linear counting for small cardinalities
	}
	return e
}

// Mix64 is the splitmix64 finaliser, used to spread hashes of values over 64 bits.
func Mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// HashString is FNV-1a followed by Mix64: stable across runs and machines.
func HashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return Mix64(h)
}

// HashFloat hashes a number by its bits (with -0 folded into 0).
func HashFloat(v float64) uint64 {
	if v == 0 {
		v = 0
	}
	return Mix64(math.Float64bits(v) + 0x9E3779B97F4A7C15)
}
