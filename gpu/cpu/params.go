package cpu

import (
	"math/bits"

	"clminer/work"
)

// params holds everything about a unit that does not depend on the nonce,
// laid out flat so the assembly can index it with the generated offsets.
type params [nParams]uint32

// Message word kinds, as in internal/gen: the tables only fold in words that
// are the same for every nonce.
const (
	kZero = iota
	kScalar
	kVec
)

func wordKinds(first bool) [64]int {
	var k [64]int
	if first {
		k = [64]int{kScalar, kScalar, kScalar, kVec, kScalar}
		k[15] = kScalar
	} else {
		for i := 0; i < 8; i++ {
			k[i] = kVec
		}
		k[8], k[15] = kScalar, kScalar
	}
	for i := 16; i < 64; i++ {
		k[i] = max(k[i-16], k[i-15], k[i-7], k[i-2])
	}
	return k
}

func sig0(x uint32) uint32 { return bits.RotateLeft32(x, -7) ^ bits.RotateLeft32(x, -18) ^ x>>3 }
func sig1(x uint32) uint32 { return bits.RotateLeft32(x, -17) ^ bits.RotateLeft32(x, -19) ^ x>>10 }

// round runs SHA-256 round i with message word w.
func round(s *[8]uint32, i int, w uint32) {
	a, b, c, d, e, f, g, h := s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]
	t1 := h + (bits.RotateLeft32(e, -6) ^ bits.RotateLeft32(e, -11) ^ bits.RotateLeft32(e, -25)) + (e&f ^ ^e&g) + work.K[i] + w
	t2 := (bits.RotateLeft32(a, -2) ^ bits.RotateLeft32(a, -13) ^ bits.RotateLeft32(a, -22)) + (a&b ^ a&c ^ b&c)
	*s = [8]uint32{t1 + t2, a, b, c, d + t1, e, f, g}
}

// fold fills the K+W and constant-term tables for one block whose
// nonce-independent words are in w (vector words zero there).
func fold(p *params, w *[64]uint32, k *[64]int, kw, c int) {
	for i := 16; i < 64; i++ {
		var sum uint32
		if k[i-16] != kVec {
			sum += w[i-16]
		}
		if k[i-15] != kVec {
			sum += sig0(w[i-15])
		}
		if k[i-7] != kVec {
			sum += w[i-7]
		}
		if k[i-2] != kVec {
			sum += sig1(w[i-2])
		}
		if k[i] == kVec {
			p[c+i] = sum
		} else {
			w[i] = sum
		}
	}
	for i := 0; i < 64; i++ {
		p[kw+i] = work.K[i]
		if k[i] != kVec {
			p[kw+i] += w[i]
		}
	}
}

// abefcdgh stores a state in SHA-NI register order: ABEF then CDGH, lane 0
// first.
func abefcdgh(p *params, o int, s *[8]uint32) {
	copy(p[o:], []uint32{s[5], s[4], s[1], s[0], s[7], s[6], s[3], s[2]})
}

func newParams(u *work.Unit) *params {
	p := new(params)
	mid := u.Midstate

	var w1 [64]uint32
	copy(w1[:3], u.Tail[:])
	w1[4], w1[15] = 0x80000000, 640
	k1 := wordKinds(true)
	fold(p, &w1, &k1, offKW1, offC1)
	st := mid
	for i := 0; i < 4; i++ {
		round(&st, i, w1[i]) // w1[3] is 0: the kernels add the nonce word to a and e
	}
	copy(p[offR3:], st[:])
	copy(p[offMid:], mid[:])
	p[offW1617], p[offW1617+1] = w1[16], w1[17]

	var w2 [64]uint32
	w2[8], w2[15] = 0x80000000, 256
	k2 := wordKinds(false)
	fold(p, &w2, &k2, offKW2, offC2)
	st = work.IV
	round(&st, 0, 0)
	copy(p[offR1:], st[:])

	p[offTop] = u.Target.Top()
	p[offH7Add] = work.IV[7]
	for i := 0; i < 16; i++ {
		p[offIota+i] = uint32(i)
		b := uint32(4 * (i % 4))
		p[offShuf+i] = (b + 3) | (b+2)<<8 | (b+1)<<16 | b<<24
	}
	copy(p[offK:], work.K[:])

	abefcdgh(p, offNIMid, &mid)
	st = mid
	round(&st, 0, w1[0])
	round(&st, 1, w1[1])
	abefcdgh(p, offNIR2, &st)
	copy(p[offNIQ:], w1[:16])
	for i := 0; i < 16; i++ {
		p[offNIKW1+i] = work.K[i] + w1[i]
		p[offNIQ2+i] = w2[i]
		p[offNIKW2+i] = work.K[i] + w2[i]
	}
	iv := work.IV
	abefcdgh(p, offNIIV, &iv)

	for i := 16; i < 64; i++ {
		p[offCK1+i] = p[offC1+i] + work.K[i]
		p[offCK2+i] = p[offC2+i] + work.K[i]
	}
	for j := 0; j < 3; j++ {
		p[offHKW1+j] = p[offR3+7-j] + work.K[4+j] + w1[4+j]
		p[offHK2+j] = p[offR1+7-j] + work.K[1+j]
	}
	p[offK60H7] = work.K[60] + work.IV[7]

	st = mid
	for i := 0; i < 4; i++ {
		round(&st, i, w1[i]) // w1[3] is 0
	}
	abefcdgh(p, offNIR3, &st)
	p[offNIQ4], p[offNIQ4+1] = w1[16], w1[17]
	p[offNIQ4+2], p[offNIQ4+3] = p[offC1+18], p[offC1+19]
	niPartials(p, offNIP1, &w1, &k1)
	niPartials(p, offNIP2, &w2, &k2)
	st = work.IV
	round(&st, 0, 0)
	abefcdgh(p, offNIR1, &st)
	return p
}

// niQuadKinds and niPartials follow internal/gen (shani2.go): for message
// quad k, whether each part of the schedule's partial sum W[i-16] +
// σ0(W[i-15]) + W[i-7] has a per-nonce word, and the fixed parts that the
// SHA-NI kernels add from the params because no per-nonce computation
// covers them.
func niQuadKinds(k *[64]int, q int) (a, s, b bool) {
	for i := 4 * q; i < 4*q+4; i++ {
		a = a || k[i-16] == kVec
		s = s || k[i-15] == kVec
		b = b || k[i-7] == kVec
	}
	return
}

func niPartials(p *params, o int, w *[64]uint32, k *[64]int) {
	for q := 4; q < 16; q++ {
		a, s, b := niQuadKinds(k, q)
		for i := 4 * q; i < 4*q+4; i++ {
			var sum uint32
			if !(a || s) {
				sum += w[i-16] + sig0(w[i-15])
			}
			if !b {
				sum += w[i-7]
			}
			p[o+i-16] = sum
		}
	}
}

// pass is the top-word test on the second hash's e after round 60.
func pass(p *params, e60 uint32) bool {
	return bits.ReverseBytes32(e60+work.IV[7]) <= p[offTop]
}

// portableE60 returns e after round 60 of the second hash, which becomes h
// after round 63: H7 is it plus IV[7]. It stays a plain loop over a full
// schedule: a fully unrolled version that skipped the zero words (like the
// assembly does) measured no faster, as the Go compiler then spills.
func portableE60(p *params, nonce uint32) uint32 {
	var w [64]uint32
	copy(w[:16], p[offNIQ:offNIQ+16])
	w3 := bits.ReverseBytes32(nonce)
	w[3] = w3
	for i := 16; i < 64; i++ {
		w[i] = w[i-16] + sig0(w[i-15]) + w[i-7] + sig1(w[i-2])
	}
	a, b, c, d := p[offR3]+w3, p[offR3+1], p[offR3+2], p[offR3+3]
	e, f, g, h := p[offR3+4]+w3, p[offR3+5], p[offR3+6], p[offR3+7]
	for i := 4; i < 64; i++ {
		t1 := h + (bits.RotateLeft32(e, -6) ^ bits.RotateLeft32(e, -11) ^ bits.RotateLeft32(e, -25)) + (e&f ^ ^e&g) + work.K[i] + w[i]
		t2 := (bits.RotateLeft32(a, -2) ^ bits.RotateLeft32(a, -13) ^ bits.RotateLeft32(a, -22)) + (a&b ^ a&c ^ b&c)
		a, b, c, d, e, f, g, h = t1+t2, a, b, c, d+t1, e, f, g
	}
	w = [64]uint32{
		a + p[offMid], b + p[offMid+1], c + p[offMid+2], d + p[offMid+3],
		e + p[offMid+4], f + p[offMid+5], g + p[offMid+6], h + p[offMid+7],
		0x80000000, 15: 256,
	}
	for i := 16; i <= 60; i++ {
		w[i] = w[i-16] + sig0(w[i-15]) + w[i-7] + sig1(w[i-2])
	}
	a, b, c, d = p[offR1]+w[0], p[offR1+1], p[offR1+2], p[offR1+3]
	e, f, g, h = p[offR1+4]+w[0], p[offR1+5], p[offR1+6], p[offR1+7]
	for i := 1; i < 60; i++ {
		t1 := h + (bits.RotateLeft32(e, -6) ^ bits.RotateLeft32(e, -11) ^ bits.RotateLeft32(e, -25)) + (e&f ^ ^e&g) + work.K[i] + w[i]
		t2 := (bits.RotateLeft32(a, -2) ^ bits.RotateLeft32(a, -13) ^ bits.RotateLeft32(a, -22)) + (a&b ^ a&c ^ b&c)
		a, b, c, d, e, f, g, h = t1+t2, a, b, c, d+t1, e, f, g
	}
	return d + h + (bits.RotateLeft32(e, -6) ^ bits.RotateLeft32(e, -11) ^ bits.RotateLeft32(e, -25)) + (e&f ^ ^e&g) + work.K[60] + w[60]
}

// scanPortable tests nonces [start, start+n).
func scanPortable(p *params, start, n uint32, found func(uint32)) {
	for i := uint32(0); i < n; i++ {
		if pass(p, portableE60(p, start+i)) {
			found(start + i)
		}
	}
}
