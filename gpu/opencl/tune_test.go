package opencl

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// simulated is a device that hashes at a fixed speed: a batch of 2^log
// hashes takes 2^log*nsPerHash nanoseconds.
func simulated(nsPerHash float64) func(log int32) float64 {
	return func(log int32) float64 { return float64(uint64(1)<<log) * nsPerHash / 1e6 }
}

func TestCalibrateKernelMSToBatch(t *testing.T) {
	for _, tc := range []struct {
		name      string
		nsPerHash float64
		target    float64
		measured  []int32 // the batch logs timed, in order
		log       int32
	}{
		// 2^25 hashes take 33.6 ms, inside 50 ms's band (33.3..75).
		{"1 GH/s at 50 ms", 1, 50, []int32{16, 20, 24, 25}, 25},
		// 2^27 hashes take 134 ms, inside 200 ms's band (133..300).
		{"1 GH/s at 200 ms", 1, 200, []int32{16, 20, 24, 27}, 27},
		// 2^19 hashes take 52 ms.
		{"10 MH/s at 50 ms", 100, 50, []int32{16, 18, 19}, 19},
		// The first batch already takes 655 ms: one size down, and tuning
		// takes it from there.
		{"100 kH/s at 50 ms", 10_000, 50, []int32{16}, 15},
		// Jumps of at most 16x, up to the largest batch.
		{"1 TH/s at 50 ms", 0.001, 50, []int32{16, 20, 24, 28, 31}, 31},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dev := simulated(tc.nsPerHash)
			var measured []int32
			log, err := calibrateLog(tc.target, func(log int32) (float64, error) {
				measured = append(measured, log)
				return dev(log), nil
			}, func() bool { return false })
			require.NoError(t, err)
			assert.Equal(t, tc.log, log)
			assert.Equal(t, tc.measured, measured)
		})
	}
}

func TestCalibrateStopsAtTheDeadline(t *testing.T) {
	dev := simulated(1)
	calls := 0
	log, err := calibrateLog(50, func(log int32) (float64, error) {
		calls++
		return dev(log), nil
	}, func() bool { return true })
	require.NoError(t, err)
	assert.Equal(t, int32(16), log, "the size measured when time ran out")
	assert.Equal(t, 1, calls)
}

func TestCalibrateZeroTimeJumpsAtMost16x(t *testing.T) {
	var measured []int32
	log, err := calibrateLog(50, func(log int32) (float64, error) {
		measured = append(measured, log)
		return 0, nil // a clock too coarse to see the batch
	}, func() bool { return false })
	require.NoError(t, err)
	assert.Equal(t, int32(maxBatchLog), log)
	assert.Equal(t, []int32{16, 20, 24, 28, 31}, measured)
}

func TestCalibrateReturnsTheRunError(t *testing.T) {
	boom := errors.New("clEnqueueNDRangeKernel: CL_OUT_OF_RESOURCES")
	_, err := calibrateLog(50, func(log int32) (float64, error) {
		if log > 16 {
			return 0, boom
		}
		return 0.1, nil
	}, func() bool { return false })
	require.ErrorIs(t, err, boom)
}

func TestRetune(t *testing.T) {
	const target = 50
	for _, tc := range []struct {
		name      string
		cur, log  int32
		hashes    uint64
		ms        float64
		next      int32
		reasoning string
	}{
		{"fast: grow", 20, 20, 1 << 20, 10, 21, "below target/1.5"},
		{"just below the band", 20, 20, 1 << 20, 33, 21, ""},
		{"in band", 20, 20, 1 << 20, 40, 20, ""},
		{"band's top", 20, 20, 1 << 20, 75, 20, "not above target*1.5"},
		{"slow: shrink", 20, 20, 1 << 20, 80, 19, ""},
		{"partial batch", 20, 20, 1 << 19, 1, 20, "a sweep's tail says nothing"},
		{"already retuned", 21, 20, 1 << 20, 1, 21, "a batch of an older size says nothing"},
		{"largest batch", maxBatchLog, maxBatchLog, 1 << maxBatchLog, 1, maxBatchLog, ""},
		{"smallest batch", minBatchLog, minBatchLog, 1 << minBatchLog, 1000, minBatchLog, ""},
	} {
		assert.Equal(t, tc.next, retune(tc.cur, tc.log, tc.hashes, tc.ms, target), "%s %s", tc.name, tc.reasoning)
	}
}

// Batch after batch, tuning settles inside the band and stays there.
func TestRetuneSettles(t *testing.T) {
	for _, tc := range []struct {
		nsPerHash float64
		start     int32
		settle    int32
	}{
		{1, 16, 25},     // 33.6 ms
		{1, 30, 26},     // from 1 s down: 67 ms is in the band too
		{100, 10, 19},   // 52 ms
		{0.001, 20, 31}, // the largest batch is too fast, and stays
		{1e6, 16, 10},   // the smallest is too slow, and stays
	} {
		dev := simulated(tc.nsPerHash)
		log := tc.start
		for range 64 {
			log = retune(log, log, uint64(1)<<log, dev(log), 50)
		}
		assert.Equal(t, tc.settle, log, "%g ns/hash from 2^%d", tc.nsPerHash, tc.start)
		assert.Equal(t, log, retune(log, log, uint64(1)<<log, dev(log), 50), "settled")
	}
}

func TestPerHashAndMillis(t *testing.T) {
	// 1 ms over 2^20 hashes: 953.67 ps each, truncated.
	assert.Equal(t, uint64(953), perHashPS(time.Millisecond, 1<<20))
	for _, took := range []time.Duration{time.Microsecond, 33 * time.Millisecond, 7*time.Second + 3} {
		for log := minBatchLog; log <= maxBatchLog; log++ {
			require.Equal(t, uint64(took.Nanoseconds())*1000>>log, perHashPS(took, 1<<log), "a batch of 2^%d: calibrate's shift", log)
		}
	}
	assert.Equal(t, 1.5, millis(1500*time.Microsecond))
	assert.Equal(t, 0.0, millis(999*time.Nanosecond), "microsecond resolution")
}

func TestBatchTime(t *testing.T) {
	assert.Equal(t, 5*time.Millisecond, batchTime(5e6, time.Second), "the event's time wins over a late host clock")
	assert.Equal(t, time.Second, batchTime(0, time.Second), "no event time: the host clock")
}
