package opencl

import (
	"math/bits"

	"clminer/work"
)

// What the kernel would otherwise compute per work-item although no nonce
// changes it. The second chunk of the header reads message words 0..2
// (merkle tail, ntime, nbits) before the nonce (word 3), and words 4..15 are
// constant padding, so rounds 0..2, the nonce-free terms of rounds 3..6 and
// the nonce-free parts of schedule words 16..19, 31 and 32 are the host's.
// The round terms depend on the midstate, so each version has its own; the
// schedule terms depend on the second chunk only, which every rolled version
// of a unit shares.

// vrecWords is one version's record in the kernel's pv buffer; the field
// offsets are sha256d.cl's PV_* names.
const vrecWords = 20

const (
	pvMid = 0
	pvE3  = 8
	pvA3  = 9
	pvA2  = 10
	pvB2  = 11
	pvC2  = 12
	pvE2  = 13
	pvF2  = 14
	pvG2  = 15
	pvH4  = 16
	pvH5  = 17
	pvH6  = 18
)

// shared holds the kernel's schedule arguments (sha256d.cl's w16, w17,
// w18p, w19p, w31p, w32p).
type shared [6]uint32

// The W4 and W15 padding words of an 80-byte message.
const (
	w4Pad  = 0x80000000
	w15Len = 640
)

func rotr(x uint32, n int) uint32 { return bits.RotateLeft32(x, -n) }
func ssig0(x uint32) uint32       { return rotr(x, 7) ^ rotr(x, 18) ^ x>>3 }
func ssig1(x uint32) uint32       { return rotr(x, 17) ^ rotr(x, 19) ^ x>>10 }
func bsig0(x uint32) uint32       { return rotr(x, 2) ^ rotr(x, 13) ^ rotr(x, 22) }
func bsig1(x uint32) uint32       { return rotr(x, 6) ^ rotr(x, 11) ^ rotr(x, 25) }
func ch(e, f, g uint32) uint32    { return (e & f) ^ (^e & g) }
func maj(a, b, c uint32) uint32   { return (a & b) ^ (a & c) ^ (b & c) }

// sharedPre computes the schedule arguments from message words 0..2 of the
// second chunk (words 9..14 are zero).
func sharedPre(tail [3]uint32) shared {
	w16 := tail[0] + ssig0(tail[1])
	w17 := tail[1] + ssig0(tail[2]) + ssig1(w15Len)
	return shared{
		w16,
		w17,
		tail[2] + ssig1(w16),      // W18 less s0(W3)
		ssig1(w17) + ssig0(w4Pad), // W19 less W3
		ssig0(w16) + w15Len,       // W31 less W24 and s1(W29)
		ssig0(w17) + w16,          // W32 less W25 and s1(W30)
	}
}

// versionPre computes the record of the version u hashes.
func versionPre(u *work.Unit) [vrecWords]uint32 {
	var r [vrecWords]uint32
	copy(r[pvMid:], u.Midstate[:])
	a, b, c, d, e, f, g, h := u.Midstate[0], u.Midstate[1], u.Midstate[2], u.Midstate[3],
		u.Midstate[4], u.Midstate[5], u.Midstate[6], u.Midstate[7]
	for i := 0; i < 3; i++ {
		t1 := h + bsig1(e) + ch(e, f, g) + work.K[i] + u.Tail[i]
		t2 := bsig0(a) + maj(a, b, c)
		h, g, f, e, d, c, b, a = g, f, e, d+t1, c, b, a, t1+t2
	}
	// Round 3 less its message word, the nonce.
	t1 := h + bsig1(e) + ch(e, f, g) + work.K[3]
	t2 := bsig0(a) + maj(a, b, c)
	r[pvE3], r[pvA3] = d+t1, t1+t2
	r[pvA2], r[pvB2], r[pvC2] = a, b, c
	r[pvE2], r[pvF2], r[pvG2] = e, f, g
	// After round 3 h is g2; after 4, f2; after 5, e2 (the state shifts).
	r[pvH4] = g + work.K[4] + w4Pad
	r[pvH5] = f + work.K[5]
	r[pvH6] = e + work.K[6]
	return r
}
