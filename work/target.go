package work

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"math/big"
)

// Target is a 256-bit share or network target, compared with a block hash as
// little-endian integers (the hash's internal byte order). Byte 31 is the most
// significant.
type Target [32]byte

// diff1 is the pool "difficulty 1" target, 0xFFFF << 208 ("bdiff").
var diff1 = new(big.Int).Lsh(big.NewInt(0xFFFF), 208)

var maxTarget = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))

// Diff1Target is the target of difficulty 1.
var Diff1Target = TargetFromBig(diff1)

// MaxTarget is 2^256-1, the easiest target: every hash meets it (what a
// Stratum V2 channel asks for as its maximum, taking any target).
var MaxTarget = TargetFromBig(maxTarget)

// TargetFromBig converts an integer target; values above 2^256-1 saturate.
func TargetFromBig(v *big.Int) Target {
	var t Target
	if v.Sign() <= 0 {
		return t
	}
	if v.Cmp(maxTarget) > 0 {
		v = maxTarget
	}
	be := v.FillBytes(make([]byte, 32))
	for i := 0; i < 32; i++ {
		t[i] = be[31-i]
	}
	return t
}

// Big returns the target as an integer.
func (t Target) Big() *big.Int {
	var be [32]byte
	for i := 0; i < 32; i++ {
		be[i] = t[31-i]
	}
	return new(big.Int).SetBytes(be[:])
}

// Top returns the most significant 32 bits: a hash whose top word is above it
// cannot meet the target, which is the cheap test devices do first.
func (t Target) Top() uint32 {
	return uint32(t[28]) | uint32(t[29])<<8 | uint32(t[30])<<16 | uint32(t[31])<<24
}

// Met reports whether hash (internal byte order) is at or below the target.
func (t Target) Met(hash [32]byte) bool {
	for i := 31; i >= 0; i-- {
		if hash[i] != t[i] {
			return hash[i] < t[i]
		}
	}
	return true
}

// String prints the target as display hex (most significant byte first).
func (t Target) String() string {
	var be [32]byte
	for i := 0; i < 32; i++ {
		be[i] = t[31-i]
	}
	return hex.EncodeToString(be[:])
}

// TargetForDifficulty computes floor(diff1 / d) exactly. float64 values are
// exact binary rationals, so fractional difficulties such as 0.001 (common on
// test pools) get the exact target a pool using big integers computes, and
// targets above diff1 are allowed.
func TargetForDifficulty(d float64) (Target, error) {
	if math.IsNaN(d) || math.IsInf(d, 0) || d <= 0 {
		return Target{}, fmt.Errorf("difficulty %v: must be a positive finite number", d)
	}
	r := new(big.Rat).SetFloat64(d)
	num := new(big.Int).Mul(diff1, r.Denom())
	q := new(big.Int).Quo(num, r.Num())
	return TargetFromBig(q), nil
}

// HashDifficulty is the share difficulty of a hash: diff1 / hash. A zero
// hash has infinite difficulty. It is for reporting (accounting, best share,
// logs), so float64 arithmetic within a few ulps is enough; every decision
// compares targets exactly. A big.Rat division here cost about 80 µs per
// share, the largest item of the host's per-share work.
func HashDifficulty(hash [32]byte) float64 {
	var h float64
	for i := 3; i >= 0; i-- {
		h += math.Ldexp(float64(binary.LittleEndian.Uint64(hash[8*i:])), 64*i)
	}
	if h == 0 {
		return math.Inf(1)
	}
	return diff1Float / h
}

// diff1Float is diff1 as a float64 (exact: 16 significant bits).
var diff1Float = math.Ldexp(0xFFFF, 208)

// NBitsTarget decodes the compact nbits form of the network target.
func NBitsTarget(nbits uint32) (Target, error) {
	if nbits&0x00800000 != 0 {
		return Target{}, fmt.Errorf("nbits %08x: negative compact target", nbits)
	}
	exp := uint(nbits >> 24)
	mant := big.NewInt(int64(nbits & 0x007fffff))
	if exp <= 3 {
		return TargetFromBig(mant.Rsh(mant, 8*(3-exp))), nil
	}
	if exp > 34 {
		return Target{}, fmt.Errorf("nbits %08x: exponent %d overflows 256 bits", nbits, exp)
	}
	return TargetFromBig(mant.Lsh(mant, 8*(exp-3))), nil
}

// HashDisplay prints a hash the way block explorers do (byte-reversed).
func HashDisplay(hash [32]byte) string { return Target(hash).String() }
