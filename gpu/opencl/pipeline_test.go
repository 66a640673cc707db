package opencl

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestBatchNonces(t *testing.T) {
	for _, tc := range []struct {
		log      int32
		versions int
		left, n  uint64
	}{
		{20, 1, 1 << 32, 1 << 20},
		{20, 2, 1 << 32, 1 << 19}, // the batch counts hashes: nonces times versions
		{20, 4, 1 << 32, 1 << 18},
		{maxBatchLog, 1, 1 << 32, 1 << maxBatchLog},
		{1, 4, 1 << 32, 1}, // never an empty batch
		{20, 1, 1000, 1000},
		{20, 4, 1, 1},
	} {
		assert.Equal(t, tc.n, batchNonces(tc.log, tc.versions, tc.left), "%+v", tc)
	}
}

func TestGlobalItems(t *testing.T) {
	for _, tc := range []struct {
		n          uint64
		vec, local int
		items      uint64
	}{
		{1000, 4, 0, 250},
		{1001, 4, 0, 251}, // the last work-item's spare lanes are past count
		{1000, 4, 16, 256},
		{1 << 20, 16, 256, 1 << 16},
		{1, 16, 256, 256},
		{1 << 31, 1, 256, 1 << 31},
	} {
		assert.Equal(t, tc.items, globalItems(tc.n, tc.vec, tc.local), "%+v", tc)
	}
}

func TestDecodeResults(t *testing.T) {
	count, got := decodeResults([]uint32{2, 10, 0, 11, 3, 0, 0}, 3)
	assert.Equal(t, uint32(2), count)
	assert.Equal(t, []candidate{{10, 0}, {11, 3}}, got)

	count, got = decodeResults([]uint32{7, 10, 0, 11, 1}, 2)
	assert.Equal(t, uint32(7), count, "an overflow keeps the kernel's count")
	assert.Equal(t, []candidate{{10, 0}, {11, 1}}, got, "and the pairs that fit")

	count, got = decodeResults([]uint32{0, 0, 0}, 1)
	assert.Zero(t, count)
	assert.Empty(t, got)
}

func TestResweepPiece(t *testing.T) {
	for _, tc := range []struct {
		n     uint64
		count uint32
		slots int
		size  uint64
	}{
		{1 << 20, 1024, 1023, 1 << 19}, // just over: halves
		{1 << 20, 5000, 1023, 1 << 16}, // ~9.8x half the slots: 16 pieces
		{1 << 20, 1 << 20, 31, 1 << 3}, // every nonce a candidate
		{3, 40, 31, 2},
		{1, 40, 31, 1}, // never an empty piece
	} {
		assert.Equal(t, tc.size, resweepPiece(tc.n, tc.count, tc.slots), "%+v", tc)
	}
}

func TestExpectedWake(t *testing.T) {
	t0 := time.Unix(1000, 0)
	// 2^20 nonces at 10 ns each: 10.49 ms of kernel, woken at 90%.
	const ps, n = 10_000, 1 << 20
	want := time.Duration(ps * n / 1000 * 9 / 10)
	assert.Equal(t, t0.Add(want), expectedWake(t0, time.Time{}, ps, n), "first batch: from its launch")
	later := t0.Add(3 * time.Millisecond)
	assert.Equal(t, later.Add(want), expectedWake(t0, later, ps, n), "queued batch: from the end of the one before")
	assert.Equal(t, t0, expectedWake(t0, time.Time{}, 0, n), "nothing measured yet: no sleep")
}
