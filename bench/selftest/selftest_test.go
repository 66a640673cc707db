package selftest_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"clminer/bench/selftest"
	"clminer/gpu"
	"clminer/gpu/gputest"
	"clminer/work/vectors"
)

func sharedVectors(t *testing.T) []vectors.Vector {
	vs, err := vectors.LoadDir("../../../shared/vectors")
	require.NoError(t, err)
	return vs
}

func TestSelftestPassesOnReferenceDevice(t *testing.T) {
	res := selftest.Run(context.Background(), []gpu.Device{&gputest.Device{}}, sharedVectors(t), 1<<12)
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
	res := selftest.Run(context.Background(), []gpu.Device{&gputest.Device{WrongEvery: 512}}, sharedVectors(t)[:1], 1<<12)
	require.Len(t, res, 1)
	assert.False(t, res[0].Pass)
	assert.Contains(t, res[0].String(), "FAIL")
	assert.Contains(t, res[0].String(), "hardware errors")
}

type blindDevice struct{ gputest.Device }

func (d *blindDevice) Sweep(ctx context.Context, s gpu.Sweep) (gpu.Result, error) {
	s.Found = func(uint32) {}
	return d.Device.Sweep(ctx, s)
}

func TestSelftestFailsWhenNonceMissed(t *testing.T) {
	res := selftest.Run(context.Background(), []gpu.Device{&blindDevice{}}, sharedVectors(t)[:1], 1<<10)
	assert.False(t, res[0].Pass)
	assert.Contains(t, res[0].String(), "want exactly")
}

// RunEach hands over each result as soon as it is known: the callback for
// one vector runs before the next vector is swept.
func TestRunEachReportsAsItGoes(t *testing.T) {
	vs := sharedVectors(t)[:3]
	dev := &gputest.Device{}
	var got []string
	selftest.RunEach(context.Background(), []gpu.Device{dev}, vs, 1<<12, func(r selftest.Result) {
		got = append(got, r.Vector)
		assert.Equal(t, uint64(len(got)), dev.Sweeps.Load(), "result %d is reported before the next vector is swept", len(got))
	})
	var want []string
	for _, v := range vs {
		want = append(want, v.Label())
	}
	assert.Equal(t, want, got)
}
