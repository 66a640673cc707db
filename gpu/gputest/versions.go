package gputest

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"clminer/work"
	"clminer/work/device"
)

// RolledVersions returns k versions of u (a random unit, which has no job
// to roll from): u, then u with other values in the header's version field,
// each with its own midstate and the same tail and target.
func RolledVersions(u *work.Unit, k int) []*work.Unit {
	units := []*work.Unit{u}
	for i := 1; i < k; i++ {
		c := *u
		v := binary.LittleEndian.Uint32(u.Header[0:]) ^ uint32(i)<<13
		binary.LittleEndian.PutUint32(c.Header[0:], v)
		c.Version, c.Midstate = v, work.Midstate(&c.Header)
		units = append(units, &c)
	}
	return units
}

// RealBlocksAtTheirIndex checks a multi-version device of k versions on the
// real blocks: each block's nonce is found at the index its version holds
// in a unit of rolled versions, whichever index that is, and the host
// judges it a block there and nowhere else. label names the subtests.
func RealBlocksAtTheirIndex(t *testing.T, dev device.Device, k int, label string) {
	for name, sol := range SolvedVectors(t) {
		for at := 0; at < k; at++ {
			t.Run(fmt.Sprintf("K%d-%s-%s-at%d", k, label, name, at), func(t *testing.T) {
				units, err := work.VersionGroup(sol.Unit, k, at)
				require.NoError(t, err)
				const window = 1 << 14
				start := uint64(sol.Nonce) &^ (window - 1)
				var mu sync.Mutex
				blocks := map[int][]uint32{}
				res, err := device.SweepVerifiedVersions(context.Background(), dev, units, uint32(start), window,
					func(u *work.Unit) device.Verdicts {
						idx := -1
						for i := range units {
							if units[i] == u {
								idx = i
							}
						}
						return device.Verdicts{Share: func(c work.Check) {
							if c.MeetsNetwork {
								mu.Lock()
								blocks[idx] = append(blocks[idx], c.Nonce)
								mu.Unlock()
							}
						}}
					})
				require.NoError(t, err)
				require.Equal(t, uint64(window*k), res.Hashes)
				require.Zero(t, res.HWErrors)
				require.Zero(t, res.Lost)
				require.Equal(t, map[int][]uint32{at: {sol.Nonce}}, blocks)
			})
		}
	}
}
