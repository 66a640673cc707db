package gputest

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"clminer/work"
	"clminer/work/vectors"
)

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
// version applied) of every built-in vector that carries one: device tests
// run on real blocks, from the repository alone.
func SolvedVectors(tb testing.TB) map[string]*vectors.Solution {
	tb.Helper()
	vs, err := vectors.Builtin()
	if err != nil {
		tb.Fatalf("built-in vectors: %v", err)
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
		tb.Fatalf("no solved built-in vectors")
	}
	return out
}
