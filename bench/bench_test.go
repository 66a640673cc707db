package bench_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"clminer/bench"
	"clminer/gpu/gputest"
	"clminer/work/device"
)

func TestBenchReportsRateAndFindsKnownNonce(t *testing.T) {
	cfg := bench.Config{Duration: 1500 * time.Millisecond, Warmup: 100 * time.Millisecond, Intervals: 3, KnownLead: 1 << 10}
	rep, err := bench.Run(context.Background(), &gputest.Device{}, cfg)
	require.NoError(t, err)
	assert.True(t, rep.KnownNonceHit)
	assert.Equal(t, "10572b0f", rep.KnownNonce)
	require.Len(t, rep.IntervalMHs, 3)
	assert.Positive(t, rep.MedianMHs)
	assert.LessOrEqual(t, rep.MinMHs, rep.MedianMHs)
	assert.GreaterOrEqual(t, rep.MaxMHs, rep.MedianMHs)
	assert.Positive(t, rep.Hashes)
	assert.Zero(t, rep.HWErrors)
}

// With rolling on, a multi-version device gets its K versions of each nonce
// at once, the block's own version among them, and every version counts.
func TestBenchRollsVersionsOnMultiVersionDevices(t *testing.T) {
	for _, rolling := range []bool{true, false} {
		dev := &gputest.Device{MultiVersions: 2}
		cfg := bench.Config{Duration: 1500 * time.Millisecond, Intervals: 3, KnownLead: 1 << 10, VersionRolling: rolling}
		sweeps := 0
		counting := &sweepCounter{Device: dev, multi: &sweeps}
		rep, err := bench.Run(context.Background(), counting, cfg)
		require.NoError(t, err)
		assert.True(t, rep.KnownNonceHit)
		if rolling {
			assert.Positive(t, sweeps, "rolling on: multi-version sweeps")
		} else {
			assert.Zero(t, sweeps, "rolling off: one version at a time")
		}
	}
}

// sweepCounter counts the multi-version sweeps a device gets.
type sweepCounter struct {
	*gputest.Device
	multi *int
}

func (d *sweepCounter) Sweep(ctx context.Context, s device.Sweep) (device.Result, error) {
	if len(s.Units) > 1 {
		*d.multi++
	}
	return d.Device.Sweep(ctx, s)
}

func TestBenchFailsOnHardwareErrors(t *testing.T) {
	cfg := bench.Config{Duration: 300 * time.Millisecond, Intervals: 1, KnownLead: 1 << 10}
	_, err := bench.Run(context.Background(), &gputest.Device{WrongEvery: 1000}, cfg)
	require.ErrorContains(t, err, "hardware errors")
}

func TestBenchRejectsBadConfig(t *testing.T) {
	_, err := bench.Run(context.Background(), &gputest.Device{}, bench.Config{})
	require.Error(t, err)
}

// blindDevice hashes but never reports a candidate, like a kernel whose
// target compare is wrong.
type blindDevice struct{ gputest.Device }

func (d *blindDevice) Sweep(ctx context.Context, s device.Sweep) (device.Result, error) {
	s.Found = func(uint32) {}
	return d.Device.Sweep(ctx, s)
}

func TestBenchFailsWhenKnownNonceMissed(t *testing.T) {
	cfg := bench.Config{Duration: 1500 * time.Millisecond, Intervals: 1, KnownLead: 1 << 10}
	_, err := bench.Run(context.Background(), &blindDevice{}, cfg)
	require.ErrorContains(t, err, "not found")
}

func TestBenchWarnsWhenFiguresAreUnreliable(t *testing.T) {
	tests := []struct {
		name     string
		batchS   float64
		spread   float64
		interval time.Duration
		want     []string
	}{
		{"steady, many batches per interval", 0.05, 3, 2 * time.Second, nil},
		{"intervals shorter than one batch", 3, 3, 2 * time.Second, []string{"shorter than one batch"}},
		{"wide spread", 0.05, 596, 2 * time.Second, []string{"spread 596.0% is over 10%"}},
		{"both", 3, 50, time.Second, []string{"shorter than one batch", "spread 50.0%"}},
	}
	for _, tc := range tests {
		got := bench.Warnings(bench.Report{MaxBatchS: tc.batchS, SpreadPct: tc.spread}, tc.interval)
		require.Len(t, got, len(tc.want), tc.name)
		for i, w := range tc.want {
			assert.Contains(t, got[i], w, tc.name)
		}
	}
}
