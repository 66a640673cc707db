package gpu_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"clminer/gpu"
	"clminer/gpu/gputest"
	"clminer/work"
	"clminer/work/vectors"
)

func block100000(t *testing.T) *vectors.Solution {
	t.Helper()
	vs, err := vectors.Builtin()
	require.NoError(t, err)
	for _, v := range vs {
		if v.Label() == "block_100000" {
			sol, err := v.Solution()
			require.NoError(t, err)
			return sol
		}
	}
	t.Fatal("block_100000 not built in")
	return nil
}

func TestSweepVerifiedFindsRealNonce(t *testing.T) {
	sol := block100000(t)
	var mu sync.Mutex
	var shares []work.Check
	var progress uint64
	res, err := gpu.SweepVerified(context.Background(), &gputest.Device{}, sol.Unit, sol.Nonce-1000, 3000, gpu.Verdicts{
		Share:    func(c work.Check) { mu.Lock(); shares = append(shares, c); mu.Unlock() },
		Progress: func(n uint64) { mu.Lock(); progress += n; mu.Unlock() },
	})
	require.NoError(t, err)
	assert.Equal(t, uint64(3000), res.Hashes)
	assert.Equal(t, uint64(3000), progress)
	require.Len(t, shares, 1)
	assert.Equal(t, sol.Nonce, shares[0].Nonce)
	assert.True(t, shares[0].MeetsNetwork)
	assert.Zero(t, res.HWErrors)
}

func TestSweepVerifiedCountsWrongNoncesAsHWErrors(t *testing.T) {
	sol := block100000(t)
	var bad []uint32
	var mu sync.Mutex
	res, err := gpu.SweepVerified(context.Background(), &gputest.Device{WrongEvery: 100}, sol.Unit, 0, 1000, gpu.Verdicts{
		Share:   func(c work.Check) { t.Errorf("wrong nonce %08x reported as a share", c.Nonce) },
		HWError: func(n uint32) { mu.Lock(); bad = append(bad, n); mu.Unlock() },
	})
	require.NoError(t, err)
	assert.Equal(t, uint64(10), res.HWErrors)
	assert.Len(t, bad, 10)
	assert.Zero(t, res.Shares)
}

func TestSweepVerifiedRejectsBadRange(t *testing.T) {
	sol := block100000(t)
	_, err := gpu.SweepVerified(context.Background(), &gputest.Device{}, sol.Unit, 0xffffffff, 2, gpu.Verdicts{})
	require.Error(t, err)
	_, err = gpu.SweepVerified(context.Background(), &gputest.Device{}, sol.Unit, 0, 0, gpu.Verdicts{})
	require.Error(t, err)
}

func TestSweepVerifiedStopsOnCancel(t *testing.T) {
	sol := block100000(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := gpu.SweepVerified(ctx, &gputest.Device{}, sol.Unit, 0, 1<<32, gpu.Verdicts{})
	require.ErrorIs(t, err, context.Canceled)
	assert.Less(t, res.Hashes, uint64(1<<20))
}
