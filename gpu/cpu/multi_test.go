package cpu

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"clminer/bench/selftest"
	"clminer/gpu"
	"clminer/gpu/gputest"
	"clminer/work"
)

// Each multi-version kernel against portable on every version, with uneven
// counts for the SIMD tail.
func TestMultiVersionPathsMatchPortable(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	multis := 0
	for _, pa := range paths() {
		for nv, multi := range pa.multi {
			multis++
			t.Run(fmt.Sprintf("%s/v%d", pa.name, nv), func(t *testing.T) {
				for _, top := range []uint32{0, 0x00ffffff, 0x0fffffff, 0xffffffff} {
					units := gputest.RandomVersions(gputest.RandomUnit(r, top), nv)
					var vs []uint32
					for _, u := range units {
						vs = append(vs, versionParams(newParams(u))...)
					}
					p := newParams(units[0])
					start := r.Uint32() &^ 0xff
					for _, n := range []uint32{1, 3, 17, 4099} {
						got := make([][]uint32, nv)
						multi(p, vs, start+5, n, func(v int, nonce uint32) { got[v] = append(got[v], nonce) })
						for v, u := range units {
							want := collect(t, scanPortable, newParams(u), start+5, n)
							require.Equal(t, want, got[v], "version %d top %#x n %d", v, top, n)
						}
					}
				}
			})
		}
	}
	if hasAVX512() {
		require.Equal(t, 2, multis, "the avx512 path has 2- and 4-version kernels")
	}
}

func hasAVX512() bool {
	for _, p := range Paths() {
		if p == PathAVX512 {
			return true
		}
	}
	return false
}

// The real blocks, found by the device at their version's index among
// rolled versions, whichever index that is.
func TestMultiVersionDeviceFindsRealBlocks(t *testing.T) {
	if !hasAVX512() {
		t.Skip("no multi-version path on this CPU")
	}
	for _, nv := range []int{2, 4} {
		dev, err := New(Options{Threads: 2, Path: PathAVX512, Versions: nv})
		require.NoError(t, err)
		require.Equal(t, nv, dev.Versions())
		for name, sol := range gputest.SolvedVectors(t) {
			for at := 0; at < nv; at++ {
				units, err := selftest.VersionGroup(sol.Unit, nv, at)
				require.NoError(t, err)
				const window = 1 << 14
				start := uint64(sol.Nonce) &^ (window - 1)
				var mu sync.Mutex
				blocks := map[int][]uint32{}
				res, err := gpu.SweepVerifiedVersions(context.Background(), dev, units, uint32(start), window,
					func(u *work.Unit) gpu.Verdicts {
						return gpu.Verdicts{Share: func(c work.Check) {
							if c.MeetsNetwork {
								mu.Lock()
								defer mu.Unlock()
								for i := range units {
									if units[i] == u {
										blocks[i] = append(blocks[i], c.Nonce)
									}
								}
							}
						}}
					})
				require.NoError(t, err, name)
				require.Equal(t, uint64(window*nv), res.Hashes)
				require.Zero(t, res.HWErrors)
				require.Equal(t, map[int][]uint32{at: {sol.Nonce}}, blocks, "%s at %d of %d", name, at, nv)
			}
		}
	}
	_, err := New(Options{Path: PathAVX2, Versions: 4})
	if err == nil {
		t.Fatal("avx2 has no multi-version kernel; Versions 4 must be refused")
	}
}
