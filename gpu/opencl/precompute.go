package opencl

import (
	"math/bits"

	"clminer/work"
)

// hostPre is the part of the first hash's second chunk that no nonce
// changes: the state after rounds 0..2 (they read message words 0..2 only)
// and schedule words 16 and 17 (they read words 0, 1, 9, 14 and 15). Every
// work-item would otherwise recompute them.
type hostPre struct {
	state    [8]uint32
	w16, w17 uint32
}

func precompute(u *work.Unit) hostPre {
	var p hostPre
	w := [3]uint32{u.Tail[0], u.Tail[1], u.Tail[2]}
	s0 := func(x uint32) uint32 {
		return bits.RotateLeft32(x, -7) ^ bits.RotateLeft32(x, -18) ^ x>>3
	}
	s1 := func(x uint32) uint32 {
		return bits.RotateLeft32(x, -17) ^ bits.RotateLeft32(x, -19) ^ x>>10
	}
	// Words 9 and 14 are zero padding, word 15 the bit length 640.
	p.w16 = w[0] + s0(w[1])
	p.w17 = w[1] + s0(w[2]) + s1(640)

	a, b, c, d, e, f, g, h := u.Midstate[0], u.Midstate[1], u.Midstate[2], u.Midstate[3],
		u.Midstate[4], u.Midstate[5], u.Midstate[6], u.Midstate[7]
	for i := 0; i < 3; i++ {
		t1 := h + (bits.RotateLeft32(e, -6) ^ bits.RotateLeft32(e, -11) ^ bits.RotateLeft32(e, -25)) +
			((e & f) ^ (^e & g)) + work.K[i] + w[i]
		t2 := (bits.RotateLeft32(a, -2) ^ bits.RotateLeft32(a, -13) ^ bits.RotateLeft32(a, -22)) +
			((a & b) ^ (a & c) ^ (b & c))
		h, g, f, e, d, c, b, a = g, f, e, d+t1, c, b, a, t1+t2
	}
	p.state = [8]uint32{a, b, c, d, e, f, g, h}
	return p
}
