package opencl

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"clminer/gpu/gputest"
	"clminer/work"
	"clminer/work/device"
)

// versionCollector gathers FoundVersion pairs.
type versionCollector struct {
	mu   sync.Mutex
	seen map[[2]uint32]int
}

func (c *versionCollector) found(v int, n uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen == nil {
		c.seen = map[[2]uint32]int{}
	}
	c.seen[[2]uint32{uint32(v), n}]++
}

func (c *versionCollector) perVersion(tb testing.TB, k int) []map[uint32]bool {
	tb.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]map[uint32]bool, k)
	for i := range out {
		out[i] = map[uint32]bool{}
	}
	for key, times := range c.seen {
		require.Equalf(tb, 1, times, "nonce %08x of version %d reported %d times", key[1], key[0], times)
		require.Lessf(tb, int(key[0]), k, "version index %d out of range", key[0])
		out[key[0]][key[1]] = true
	}
	return out
}

// Every K and both Maj shapes, against the host's hashes of each version.
func TestMultiVersionCandidatesMatchHost(t *testing.T) {
	const top = 0x00ffffff // about one nonce in 256
	for _, k := range []int{2, 4} {
		for _, maj := range []string{MajMerge, MajLOP3} {
			for _, gpuForm := range []bool{false, true} {
				t.Run(fmt.Sprintf("K%d-%s-gpu%v", k, maj, gpuForm), func(t *testing.T) {
					// Each is its own kernel build, the unrolled GPU form
					// about 30 s on POCL: builds of separate devices overlap.
					t.Parallel()
					// The GPU form at vector width 1 is what NVIDIA builds.
					vw := 0
					if gpuForm {
						vw = 1
					}
					dev := openTest(t, Options{Versions: k, Maj: maj, Intensity: 14, gpuForm: gpuForm, VectorWidth: vw})
					require.Equal(t, k, dev.Versions())
					require.Equal(t, maj, dev.Maj())
					r := rand.New(rand.NewPCG(uint64(k), 99))
					base := gputest.RandomUnit(r, top)
					units := gputest.RolledVersions(base, k)
					start := r.Uint32() | 1
					count := uint64(3*4096 + 2*dev.VectorWidth() + 3)
					col := &versionCollector{}
					var progress uint64
					res, err := dev.Sweep(context.Background(), device.Sweep{
						Unit: units[0], Units: units, Start: start, Count: count,
						FoundVersion: col.found, Progress: func(h uint64) { progress += h },
					})
					require.NoError(t, err)
					require.Equal(t, count*uint64(k), res.Hashes, "hashes count every version")
					require.Equal(t, count*uint64(k), progress)
					got := col.perVersion(t, k)
					for i, u := range units {
						want := hostCandidates(u, start, count, top)
						require.NotEmpty(t, want)
						require.Equalf(t, want, got[i], "version %d (%08x)", i, u.Version)
					}
					// The single-version kernel of the same program still works.
					one := newCollector()
					res, err = dev.Sweep(context.Background(), device.Sweep{Unit: units[1], Start: start, Count: count, Found: one.found})
					require.NoError(t, err)
					require.Equal(t, count, res.Hashes)
					require.Equal(t, hostCandidates(units[1], start, count, top), one.set(t))
				})
			}
		}
	}
}

// The real blocks: each block's nonce is found at the index its version
// holds in a unit of rolled versions, whichever index that is, and the host
// judges it a block there and nowhere else.
func TestMultiVersionFindsRealBlocksAtTheirIndex(t *testing.T) {
	for _, k := range []int{2, 4} {
		for _, maj := range []string{MajMerge, MajLOP3} {
			dev := openTest(t, Options{Versions: k, Maj: maj})
			gputest.RealBlocksAtTheirIndex(t, dev, k, dev.Maj())
		}
	}
}

func TestMultiVersionRejectsMismatchedUnits(t *testing.T) {
	dev := openTest(t, Options{Versions: 2, Intensity: 12})
	r := rand.New(rand.NewPCG(3, 3))
	a, b := gputest.RandomUnit(r, 0), gputest.RandomUnit(r, 0)
	_, err := dev.Sweep(context.Background(), device.Sweep{Units: []*work.Unit{a, b}, Count: 1024})
	require.ErrorContains(t, err, "second chunk")
	_, err = dev.Sweep(context.Background(), device.Sweep{Units: []*work.Unit{a, a, a}, Count: 1024})
	require.ErrorContains(t, err, "versions")
}

func TestOptionsChecked(t *testing.T) {
	p, d := needDevice(t)
	_, err := Open(p, d, Options{Versions: 3, CacheDir: "-"})
	require.ErrorContains(t, err, "versions")
	_, err = Open(p, d, Options{Maj: "fast", CacheDir: "-"})
	require.ErrorContains(t, err, "Maj")
}

// The host path GPUs want runs on every runtime: a profiling queue whose
// kernel events time the batches, and results read into pinned memory.
func TestBatchTimesComeFromProfilingEvents(t *testing.T) {
	dev := openTest(t, Options{Intensity: 14})
	require.True(t, dev.profiling, "the runtime refused CL_QUEUE_PROFILING_ENABLE")
	u := gputest.RandomUnit(rand.New(rand.NewPCG(1, 2)), 0x00ffffff)
	col := newCollector()
	_, err := dev.Sweep(context.Background(), device.Sweep{Unit: u, Count: 1 << 15, Found: col.found})
	require.NoError(t, err)
	require.Equal(t, hostCandidates(u, 0, 1<<15, 0x00ffffff), col.set(t), "results read through the pinned buffer")
	for i := range dev.bufs {
		assert.Positive(t, dev.bufs[i].kernelNS, "slot %d: kernel time from its event", i)
		assert.NotNil(t, dev.bufs[i].pinned)
	}
}
