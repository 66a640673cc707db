package device_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"clminer/gpu/gputest"
	"clminer/work"
	"clminer/work/device"
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
	res, err := device.SweepVerified(context.Background(), &gputest.Device{}, sol.Unit, sol.Nonce-1000, 3000, device.Verdicts{
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
	res, err := device.SweepVerified(context.Background(), &gputest.Device{WrongEvery: 100}, sol.Unit, 0, 1000, device.Verdicts{
		Share:   func(c work.Check) { t.Errorf("wrong nonce %08x reported as a share", c.Nonce) },
		HWError: func(n uint32) { mu.Lock(); bad = append(bad, n); mu.Unlock() },
	})
	require.NoError(t, err)
	assert.Equal(t, uint64(10), res.HWErrors)
	assert.Len(t, bad, 10)
	assert.Zero(t, res.Shares)
}

// A device may prefilter on the target's top word only, so a hash whose top
// word equals the target's but whose lower bits are above it is a correct
// report that is not a share: counted as below target, not as an error.
func TestSweepVerifiedCountsPrefilterPassesBelowTarget(t *testing.T) {
	unit := *block100000(t).Unit
	u := &unit
	const nonce = 77
	h := u.Hash(nonce)
	u.Target = work.Target{}
	copy(u.Target[28:], h[28:]) // same top word, zero below: h is above it
	require.NotEqual(t, [28]byte{}, [28]byte(h[:28]))
	var below []work.Check
	res, err := device.SweepVerified(context.Background(), reportDevice{nonce}, u, 0, 1000, device.Verdicts{
		Share:       func(c work.Check) { t.Errorf("nonce %08x is above the target", c.Nonce) },
		HWError:     func(n uint32) { t.Errorf("nonce %08x is a correct prefilter pass, not an error", n) },
		BelowTarget: func(c work.Check) { below = append(below, c) },
	})
	require.NoError(t, err)
	assert.Equal(t, uint64(1), res.BelowTarget)
	require.Len(t, below, 1)
	assert.Equal(t, uint32(nonce), below[0].Nonce)
	assert.Zero(t, res.HWErrors)
}

// reportDevice reports its nonces as candidates whatever the unit.
type reportDevice []uint32

func (d reportDevice) Info() device.Info { return device.Info{ID: "report"} }
func (d reportDevice) Close() error      { return nil }
func (d reportDevice) Sweep(_ context.Context, s device.Sweep) (device.Result, error) {
	for _, n := range d {
		s.Found(n)
	}
	return device.Result{Hashes: s.Count}, nil
}

func TestSweepVerifiedRejectsBadRange(t *testing.T) {
	sol := block100000(t)
	_, err := device.SweepVerified(context.Background(), &gputest.Device{}, sol.Unit, 0xffffffff, 2, device.Verdicts{})
	require.Error(t, err)
	_, err = device.SweepVerified(context.Background(), &gputest.Device{}, sol.Unit, 0, 0, device.Verdicts{})
	require.Error(t, err)
}

func TestSweepVerifiedStopsOnCancel(t *testing.T) {
	sol := block100000(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := device.SweepVerified(ctx, &gputest.Device{}, sol.Unit, 0, 1<<32, device.Verdicts{})
	require.ErrorIs(t, err, context.Canceled)
	assert.Less(t, res.Hashes, uint64(1<<20))
}
