package work

import (
	"bytes"
	"math"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func hexTarget(t *testing.T, s string) Target {
	t.Helper()
	v, ok := new(big.Int).SetString(s, 16)
	require.True(t, ok)
	return TargetFromBig(v)
}

func TestTargetForDifficulty(t *testing.T) {
	tests := []struct {
		diff float64
		want string
	}{
		{1, "00000000ffff0000000000000000000000000000000000000000000000000000"},
		{2, "000000007fff8000000000000000000000000000000000000000000000000000"},
		{1024, "00000000003fffc0000000000000000000000000000000000000000000000000"},
		{0.5, "00000001fffe0000000000000000000000000000000000000000000000000000"},
		{3, "0000000055550000000000000000000000000000000000000000000000000000"},
		// 0xFFFF<<208 / 7 is not whole: the floor, as big-int pools compute it.
		{7, "0000000024922492492492492492492492492492492492492492492492492492"},
	}
	for _, tc := range tests {
		got, err := TargetForDifficulty(tc.diff)
		require.NoError(t, err)
		assert.Equal(t, hexTarget(t, tc.want), got, "difficulty %v", tc.diff)
	}
}

func TestFractionalDifficultyIsExact(t *testing.T) {
	// 0.001 is not a binary fraction: the target must be floor(diff1 / x) for
	// the exact float64 x, not a rounded double computation.
	got, err := TargetForDifficulty(0.001)
	require.NoError(t, err)
	x := new(big.Rat).SetFloat64(0.001)
	want := new(big.Int).Quo(new(big.Int).Mul(diff1, x.Denom()), x.Num())
	assert.Equal(t, 0, want.Cmp(got.Big()))
	assert.Greater(t, got.Top(), Diff1Target.Top(), "targets above diff1 are allowed")
	assert.InEpsilon(t, 0.001, HashDifficulty([32]byte(got)), 1e-9)
}

func TestTinyDifficultySaturates(t *testing.T) {
	got, err := TargetForDifficulty(1e-80)
	require.NoError(t, err)
	for _, b := range got {
		assert.Equal(t, byte(0xff), b)
	}
}

func TestBadDifficulty(t *testing.T) {
	for _, d := range []float64{0, -1, math.NaN(), math.Inf(1)} {
		_, err := TargetForDifficulty(d)
		assert.Error(t, err, "%v", d)
	}
}

func TestNBitsTarget(t *testing.T) {
	tests := []struct {
		nbits uint32
		want  string
		err   bool
	}{
		{0x1d00ffff, "00000000ffff0000000000000000000000000000000000000000000000000000", false},
		{0x1b04864c, "000000000004864c000000000000000000000000000000000000000000000000", false},
		{0x03123456, "123456", false},
		{0x02123456, "1234", false},
		{0x1d80ffff, "", true},
		{0x23000001, "", true},
	}
	for _, tc := range tests {
		got, err := NBitsTarget(tc.nbits)
		if tc.err {
			assert.Error(t, err, "%08x", tc.nbits)
			continue
		}
		require.NoError(t, err)
		assert.Equal(t, hexTarget(t, tc.want), got, "%08x", tc.nbits)
	}
}

func TestTargetMetIsInclusiveAndLittleEndian(t *testing.T) {
	tgt := Diff1Target
	assert.True(t, tgt.Met([32]byte(tgt)), "hash == target meets it")
	h := [32]byte(tgt)
	h[0]++ // least significant byte
	assert.False(t, tgt.Met(h))
	h = [32]byte(tgt)
	h[26]-- // 0xffff -> 0xfffe in the top bytes
	assert.True(t, tgt.Met(h))
	assert.Equal(t, uint32(0), tgt.Top())
	half, _ := TargetForDifficulty(0.5)
	assert.Equal(t, uint32(1), half.Top())
}

func TestHashDifficulty(t *testing.T) {
	assert.Equal(t, 1.0, HashDifficulty([32]byte(Diff1Target)))
	assert.True(t, math.IsInf(HashDifficulty([32]byte{}), 1))

	// The float64 path against exact rational division, over hashes of
	// every magnitude (leading zero bytes 0..31) and the largest one.
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		var h [32]byte
		for j := range h {
			h[j] = byte(r.Uint32())
		}
		for j := 31; j >= 32-i%32; j-- {
			h[j] = 0
		}
		if i == 1 {
			h = [32]byte(bytes.Repeat([]byte{0xff}, 32))
		}
		exact, _ := new(big.Rat).SetFrac(new(big.Int).Lsh(big.NewInt(0xFFFF), 208), Target(h).Big()).Float64()
		assert.InEpsilon(t, exact, HashDifficulty(h), 1e-14, "hash %x", h)
	}
}

// TestMaxTarget: the easiest target is 2^256-1, met by every hash.
func TestMaxTarget(t *testing.T) {
	assert.Equal(t, Target([32]byte(bytes.Repeat([]byte{0xff}, 32))), MaxTarget)
	assert.True(t, MaxTarget.Met([32]byte(bytes.Repeat([]byte{0xff}, 32))))
	assert.Equal(t, MaxTarget, TargetFromBig(new(big.Int).Lsh(big.NewInt(1), 300)), "saturates at MaxTarget")
}
