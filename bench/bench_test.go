package bench_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"clminer/bench"
	"clminer/gpu"
	"clminer/gpu/gputest"
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

func (d *blindDevice) Sweep(ctx context.Context, s gpu.Sweep) (gpu.Result, error) {
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
