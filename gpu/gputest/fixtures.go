package gputest

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"clminer/work"
	"clminer/work/vectors"
)

// SharedVectorsDir is ../shared/vectors as seen from a package two levels
// below the repository root (gpu/cpu, gpu/opencl, bench/selftest).
const SharedVectorsDir = "../../../shared/vectors"

// RandomUnit builds a unit from a random header with the given target top
// word (the little-endian top 32 bits of the target), so a device test can
// choose how many candidates a sweep yields. No job is needed for hashing.
func RandomUnit(r *rand.Rand, top uint32) *work.Unit {
	u := &work.Unit{}
	for i := range u.Header {
		u.Header[i] = byte(r.Uint32())
	}
	u.Midstate = work.Midstate(&u.Header)
	for i := range u.Tail {
		u.Tail[i] = binary.BigEndian.Uint32(u.Header[64+4*i:])
	}
	binary.LittleEndian.PutUint32(u.Target[28:], top)
	return u
}

// SolvedVectors returns the real solutions (unit and nonce, with the rolled
// version applied) of every shared vector that carries one. A missing
// shared directory fails the test: device tests must run on real blocks.
func SolvedVectors(tb testing.TB) map[string]*vectors.Solution {
	tb.Helper()
	vs, err := vectors.LoadDir(SharedVectorsDir)
	if err != nil {
		tb.Fatalf("the shared vectors must be beside the repository: %v", err)
	}
	out := map[string]*vectors.Solution{}
	for i := range vs {
		v := &vs[i]
		if !v.HasNonce() {
			continue
		}
		sol, err := v.Solution()
		if err != nil {
			tb.Fatalf("vector %s: %v", v.Label(), err)
		}
		out[v.File+"/"+v.Name] = sol
	}
	if len(out) == 0 {
		tb.Fatalf("no solved vectors in %s", SharedVectorsDir)
	}
	return out
}
