package selftest_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"clminer/bench/selftest"
	"clminer/gpu/gputest"
	"clminer/work/device"
	"clminer/work/vectors"
)

func builtinVectors(t *testing.T) []vectors.Vector {
	vs, err := vectors.Builtin()
	require.NoError(t, err)
	return vs
}

func TestSelftestPassesOnReferenceDevice(t *testing.T) {
	res := selftest.Run(context.Background(), []device.Device{&gputest.Device{}}, builtinVectors(t), 1<<12)
	require.Len(t, res, 7)
	swept := 0
	for _, r := range res {
		assert.True(t, r.Pass, r.String())
		if r.Window > 0 {
			swept++
			assert.Equal(t, uint64(1<<12), r.Hashes)
		}
	}
	assert.Equal(t, 6, swept, "every vector with a real nonce is swept")
}

func TestSelftestFailsOnWrongDevice(t *testing.T) {
	res := selftest.Run(context.Background(), []device.Device{&gputest.Device{WrongEvery: 512}}, builtinVectors(t)[:1], 1<<12)
	require.Len(t, res, 1)
	assert.False(t, res[0].Pass)
	assert.Contains(t, res[0].String(), "FAIL")
	assert.Contains(t, res[0].String(), "hardware errors")
}

type blindDevice struct{ gputest.Device }

func (d *blindDevice) Sweep(ctx context.Context, s device.Sweep) (device.Result, error) {
	s.Found = func(uint32) {}
	return d.Device.Sweep(ctx, s)
}

func TestSelftestFailsWhenNonceMissed(t *testing.T) {
	res := selftest.Run(context.Background(), []device.Device{&blindDevice{}}, builtinVectors(t)[:1], 1<<10)
	assert.False(t, res[0].Pass)
	assert.Contains(t, res[0].String(), "want exactly")
}

// RunEach hands over each result as soon as it is known: the callback for
// one vector runs before the next vector is swept.
func TestRunEachReportsAsItGoes(t *testing.T) {
	vs := builtinVectors(t)[:3]
	dev := &gputest.Device{}
	var got []string
	selftest.RunEach(context.Background(), []device.Device{dev}, vs, 1<<12, func(r selftest.Result) {
		got = append(got, r.Vector)
		assert.Equal(t, uint64(len(got)), dev.Sweeps.Load(), "result %d is reported before the next vector is swept", len(got))
	})
	var want []string
	for _, v := range vs {
		want = append(want, v.Label())
	}
	assert.Equal(t, want, got)
}

func TestSelftestMultiVersionFindsBlockAtEachIndex(t *testing.T) {
	dev := &gputest.Device{MultiVersions: 2}
	res := selftest.Run(context.Background(), []device.Device{dev}, builtinVectors(t), 1<<10)
	require.Len(t, res, 7+6*2, "one single-version result per vector, then one per index for each solved vector")
	at := map[int]int{}
	for _, r := range res {
		assert.True(t, r.Pass, r.String())
		if r.Versions == 2 {
			at[r.VersionIndex]++
			assert.Equal(t, uint64(2<<10), r.Hashes, "every version counts")
			assert.Contains(t, r.String(), "of 2 rolled")
		}
	}
	assert.Equal(t, map[int]int{0: 6, 1: 6}, at)
}

// swappedDevice reports each candidate under the other version's index, as
// a kernel that mixes up its midstates would.
type swappedDevice struct{ gputest.Device }

func (d *swappedDevice) Sweep(ctx context.Context, s device.Sweep) (device.Result, error) {
	if f := s.FoundVersion; f != nil {
		s.FoundVersion = func(v int, n uint32) { f(1-v, n) }
	}
	return d.Device.Sweep(ctx, s)
}

func TestSelftestFailsOnWrongVersionIndex(t *testing.T) {
	dev := &swappedDevice{gputest.Device{MultiVersions: 2}}
	res := selftest.Run(context.Background(), []device.Device{dev}, builtinVectors(t)[1:2], 1<<10)
	require.Len(t, res, 3)
	assert.True(t, res[0].Pass, "the single-version check does not use the index")
	for _, r := range res[1:] {
		assert.False(t, r.Pass, r.String())
	}
}
