package protocol

import (
	"math"
	"math/big"
	"math/bits"
)

// Decimal exponents covered by the 128-bit power table: wide enough for model inputs, which
// rarely leave 1e-30..1e30; the rest go to strconv.
const (
	lemireMinExp = -64
	lemireMaxExp = 64
)

// pow10x128 holds 10^e for e in [lemireMinExp, lemireMaxExp] as 128-bit mantissas normalised
// to a set top bit and truncated: {low, high}. Constant data, computed once from exact
// integers.
var pow10x128 = makePow10x128()

func makePow10x128() [lemireMaxExp - lemireMinExp + 1][2]uint64 {
	var t [lemireMaxExp - lemireMinExp + 1][2]uint64
	ten := big.NewInt(10)
	for e := lemireMinExp; e <= lemireMaxExp; e++ {
		var v big.Int
		if e >= 0 {
			v.Exp(ten, big.NewInt(int64(e)), nil)
			if n := v.BitLen(); n > 128 {
				v.Rsh(&v, uint(n-128))
			} else {
				v.Lsh(&v, uint(128-n))
			}
		} else {
			// floor(2^k / 10^-e) with k chosen to leave exactly 128 bits.
			d := new(big.Int).Exp(ten, big.NewInt(int64(-e)), nil)
			k := d.BitLen() + 127
			v.Lsh(big.NewInt(1), uint(k))
			v.Quo(&v, d)
			if v.BitLen() > 128 {
				v.Rsh(&v, 1)
			}
		}
		lo := new(big.Int).And(&v, new(big.Int).SetUint64(math.MaxUint64)).Uint64()
		hi := new(big.Int).Rsh(&v, 64).Uint64()
		t[e-lemireMinExp] = [2]uint64{lo, hi}
	}
	return t
}

// eiselLemire converts man × 10^exp10 to the nearest float64 (Lemire, "Number Parsing at a
// Gigabyte per Second", 2021). ok is false in the rare cases it cannot decide, and outside the
// table; the caller then falls back to strconv. man must be the exact decimal mantissa.
func eiselLemire(man uint64, exp10 int, neg bool) (float64, bool) {
	if man == 0 {
		if neg {
			return math.Copysign(0, -1), true
		}
		return 0, true
	}
	if exp10 < lemireMinExp || exp10 > lemireMaxExp {
		return 0, false
	}
	clz := bits.LeadingZeros64(man)
	man <<= uint(clz)
	// 217706/2^16 ≈ log2(10): the binary exponent of 10^exp10, biased.
	retExp2 := uint64(217706*exp10>>16+64+1023) - uint64(clz)
	p := pow10x128[exp10-lemireMinExp]
	xHi, xLo := bits.Mul64(man, p[1])
	if xHi&0x1FF == 0x1FF && xLo+man < man {
		// The truncated low half of the power may matter: widen the product.
		yHi, yLo := bits.Mul64(man, p[0])
		mergedHi, mergedLo := xHi, xLo+yHi
		if mergedLo < xLo {
			mergedHi++
		}
		if mergedHi&0x1FF == 0x1FF && mergedLo+1 == 0 && yLo+man < man {
			return 0, false
		}
		xHi, xLo = mergedHi, mergedLo
	}
	msb := xHi >> 63
	mant := xHi >> (msb + 9)
	retExp2 -= 1 ^ msb
	if xLo == 0 && xHi&0x1FF == 0 && mant&3 == 1 {
		return 0, false // exactly half way: let strconv round to even
	}
	mant += mant & 1
	mant >>= 1
	if mant>>53 > 0 {
		mant >>= 1
		retExp2++
	}
	if retExp2-1 >= 0x7FF-1 {
		return 0, false // subnormal or overflow
	}
	b := retExp2<<52 | mant&(1<<52-1)
	if neg {
		b |= 1 << 63
	}
	return math.Float64frombits(b), true
}
