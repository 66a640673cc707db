package main

import (
	"fmt"
	"log"
)

// ---- SHA-NI: fewer SHA-unit instructions per hash ----
//
// On the Intel core measured (BENCHMARKS.md) SHA256RNDS2 has a latency of 4
// cycles but the unit takes a new one only every 3, and SHA256MSG1 and
// SHA256MSG2 hold the same unit for about 0.6 and 0.75 cycles each, while
// the vector ALU ports sit mostly idle: two streams in flight already
// cover the latency, and what bounds a SHA-NI kernel is its count of SHA
// instructions. So these kernels:
//
//   - start the first hash at round 4 (rounds 0..2 are the unit's, round 3
//     adds the nonce word to a and e) and the second at round 1 (round 0
//     adds W0 to a and e), and stop after round 60, whose e is the only word
//     the target test reads: 60 SHA256RNDS2 a hash where shaniScan has 62;
//   - load the K+W pairs of fixed message words from the params, and build
//     the schedule's quads from per-unit partial sums where their inputs are
//     fixed (W16..19 of the first hash is constant but for σ0(W3) and W3,
//     which the general registers compute), so that 19 SHA256MSG1 and 23
//     SHA256MSG2 remain of shaniScan's 24 and 24;
//   - emit the schedule niLead quads ahead of the rounds that read it;
//   - hash either N nonces (each stream its own schedule) or N rolled
//     versions of one nonce (versions true): the versions' first hashes share
//     one message schedule and one K+W per round pair.
//
// σ0 computed with SSE shifts instead of SHA256MSG1 was tried and measured
// slower on that core (219 cycles a hash against 211): the shifts and XORs
// cost more than the unit time they free. Only legacy-encoded SSE is used:
// SHA-NI has no VEX form, and on the core measured interleaving it with
// VEX.256 instructions cost hundreds of cycles per instruction.

// niQuadKinds says, for message quad k (words 4k..4k+3) of a block whose
// word kinds are kk, whether each part of the schedule's partial sum
// W[i-16] + σ0(W[i-15]) + W[i-7] varies per nonce.
func niQuadKinds(kk *[64]int, k int) (a, s, b bool) {
	for i := 4 * k; i < 4*k+4; i++ {
		a = a || kk[i-16] == vec
		s = s || kk[i-15] == vec
		b = b || kk[i-7] == vec
	}
	return
}

// niPartialFixed reports whether quad k's partial sum has a fixed part
// that the per-nonce computation does not cover: the W[i-16] + σ0(W[i-15])
// part when neither has a per-nonce word, the W[i-7] part when it has none.
func niPartialFixed(kk *[64]int, k int) bool {
	a, s, b := niQuadKinds(kk, k)
	for i := 4 * k; i < 4*k+4; i++ {
		if !(a || s) && (kk[i-16] == scalar || kk[i-15] == scalar) {
			return true
		}
		if !b && kk[i-7] == scalar {
			return true
		}
	}
	return false
}

// niLead is how many quads ahead of the rounds the message schedule is
// emitted. The SHA256RNDS2s wait on the unit, and with the schedule right
// before the rounds that read it, the scheduler fills with them and the
// schedule's own dependency chain (MSG2 reads the previous quad) is no
// longer overlapped: 231 cycles a hash where the rounds alone take 186.
const niLead = 3

func genSHANI2(name string, N int, versions bool) {
	if N < 1 || N > 4 {
		log.Fatalf("%s: %d streams", name, N)
	}
	// Frame: a 16-byte aligned area at R8 of quad sets (16 quads of 16
	// bytes): the first hash's message quads and K+W quads (one set of
	// each with versions, one per stream without), and each stream's
	// second-hash message quads and K+W quads.
	sets1 := N
	if versions {
		sets1 = 1
	}
	frame := (2*sets1+2*N)*256 + 16
	slot := func(set, q int) string { return fmt.Sprintf("%d(R8)", (set*16+q)*16) }
	s1 := func(s int) int {
		if versions {
			return 0
		}
		return s
	}
	q1 := func(s, q int) string { return slot(s1(s), q) }
	kw1 := func(s, q int) string { return slot(sets1+s1(s), q) }
	q2 := func(s, q int) string { return slot(2*sets1+s, q) }
	kw2 := func(s, q int) string { return slot(2*sets1+N+s, q) }
	fmt.Fprintf(&buf, "\n// func %s(p *[%d]*params, nonce uint32, out *[%d]uint32)\n", name, N, N)
	if versions {
		fmt.Fprintf(&buf, "// Writes e after round 60 of the second hash of nonce for versions 0..%d (p[v]).\n", N-1)
	} else {
		fmt.Fprintf(&buf, "// Writes e after round 60 of the second hash for nonces nonce+0..%d (params p[0]).\n", N-1)
	}
	text(name, frame, 24, N)
	p("MOVQ p+0(FP), R9")
	p("MOVQ 0(R9), DI")
	p("MOVQ out+16(FP), SI")
	p("LEAQ 15(SP), R8")
	p("ANDQ $~15, R8")
	abef := make([]string, N)
	cdgh := make([]string, N)
	for s := 0; s < N; s++ {
		abef[s] = fmt.Sprintf("X%d", 1+2*s)
		cdgh[s] = fmt.Sprintf("X%d", 2+2*s)
	}
	tmp := func(i int) string {
		if 1+2*N+i > 15 {
			log.Fatalf("%s: out of XMM registers", name)
		}
		return fmt.Sprintf("X%d", 1+2*N+i)
	}
	rnds := func(s int) {
		p("SHA256RNDS2 X0, %s, %s", abef[s], cdgh[s])
		abef[s], cdgh[s] = cdgh[s], abef[s]
	}
	// pmem is stream s's own params (the per-version tables).
	pmem := func(s int, field string, i int) string {
		if !versions || s == 0 {
			return mem(field, i)
		}
		return fmt.Sprintf("%d(R10)", 4*(off[field]+i))
	}
	useStream := func(s int) {
		if versions && s > 0 {
			p("MOVQ %d(R9), R10", 8*s)
		}
	}
	// quad computes message quad k (4k..4k+3) into at(k) from the quads
	// at(j), j < k, of a block with word kinds kk, and its K+W into kw.
	// Parts of the partial sum W[i-16] + σ0(W[i-15]) + W[i-7] that are
	// fixed for the unit come from table pt (see niPartials in params.go,
	// which follows the same rule); parts with a per-nonce word are
	// computed from the stored quads.
	quad := func(kk *[64]int, k int, at func(j int) string, pt string, kw string) {
		a, s, b := niQuadKinds(kk, k)
		dst, t0 := tmp(3), tmp(4)
		have := false
		if a || s {
			p("MOVOU %s, %s", at(k-4), dst)
			p("SHA256MSG1 %s, %s", at(k-3), dst)
			have = true
		}
		prev := "" // quad k-1, when loaded for W[i-7]
		if b {
			prev = tmp(5)
			p("MOVOU %s, %s", at(k-1), prev)
			p("MOVO %s, %s", prev, t0)
			p("PALIGNR $4, %s, %s", at(k-2), t0) // W[i-7]
			if have {
				p("PADDD %s, %s", t0, dst)
			} else {
				p("MOVO %s, %s", t0, dst)
			}
			have = true
		}
		if !have || niPartialFixed(kk, k) {
			p("MOVOU %s, %s", mem(pt, 4*k-16), t0)
			if have {
				p("PADDD %s, %s", t0, dst)
			} else {
				p("MOVO %s, %s", t0, dst)
			}
		}
		if prev == "" {
			prev = tmp(5)
			p("MOVOU %s, %s", at(k-1), prev)
		}
		p("SHA256MSG2 %s, %s", prev, dst)
		p("MOVOU %s, %s", dst, at(k))
		p("MOVOU %s, %s", mem("K", 4*k), t0)
		p("PADDD %s, %s", dst, t0)
		p("MOVOU %s, %s", t0, kw)
	}
	k1 := kinds(true)
	k2 := kinds(false)

	// ---- First hash: state after round 3, quad 4 (W16..19). ----
	for s := 0; s < N; s++ {
		if s == 0 || !versions {
			p("MOVL nonce+8(FP), AX")
			if s > 0 {
				p("ADDL $%d, AX", s)
			}
			p("BSWAPL AX")
			p("MOVL AX, BX")
			p("RORL $7, BX")
			p("MOVL AX, CX")
			p("RORL $18, CX")
			p("XORL CX, BX")
			p("MOVL AX, CX")
			p("SHRL $3, CX")
			p("XORL CX, BX") // σ0(W3)
			w := tmp(0)
			p("MOVL BX, %s", w)
			p("PINSRD $1, AX, %s", w)            // (σ0(W3), W3, 0, 0)
			p("PSHUFD $0x66, %s, %s", w, tmp(1)) // (0, W3, 0, W3): e and a of ABEF
			p("PSLLDQ $8, %s", w)                // (0, 0, σ0(W3), W3)
			p("MOVOU %s, %s", mem("NIQ4", 0), tmp(2))
			p("PADDD %s, %s", tmp(2), w)
			p("MOVOU %s, %s", w, q1(s, 4))
			p("MOVOU %s, %s", mem("K", 16), tmp(2))
			p("PADDD %s, %s", w, tmp(2))
			p("MOVOU %s, %s", tmp(2), kw1(s, 4))
			// The schedule reads quads 1..3 (fixed) from the frame too.
			for q := 1; q < 4; q++ {
				p("MOVOU %s, %s", mem("NIQ", 4*q), tmp(2))
				p("MOVOU %s, %s", tmp(2), q1(s, q))
			}
		}
		useStream(s)
		p("MOVOU %s, %s", pmem(s, "NIR3", 0), abef[s])
		p("PADDD %s, %s", tmp(1), abef[s])
		p("MOVOU %s, %s", pmem(s, "NIR3", 4), cdgh[s])
	}
	sched1 := func(k int) {
		if k < 5 || k > 15 {
			return
		}
		for s := 0; s < sets1; s++ {
			quad(&k1, k, func(j int) string { return q1(s, j) }, "NIP1", kw1(s, k))
		}
	}
	// Rounds 4..63, the schedule niLead quads ahead; rounds 4..15 read
	// the fixed K+W pairs from the params.
	for q := 1; q < 16; q++ {
		sched1(q + niLead)
		switch {
		case q < 4: // every stream reads the same fixed pairs
			for half := 0; half < 2; half++ {
				p("MOVQ %s, X0", mem("NIKW1", 4*q+2*half))
				for s := 0; s < N; s++ {
					rnds(s)
				}
			}
		case versions: // and the same schedule
			p("MOVOU %s, X0", kw1(0, q))
			for s := 0; s < N; s++ {
				rnds(s)
			}
			p("PSHUFD $0x0e, %s, X0", kw1(0, q))
			for s := 0; s < N; s++ {
				rnds(s)
			}
		default:
			for s := 0; s < N; s++ {
				p("MOVOU %s, X0", kw1(s, q))
				rnds(s)
				p("PSHUFD $0x0e, X0, X0")
				rnds(s)
			}
		}
	}
	// Feed-forward: the digest is the second hash's quads 0 and 1; its
	// state after round 0 is the unit's plus W0 in a and e.
	for s := 0; s < N; s++ {
		useStream(s)
		niFeedForward(pmem(s, "NIMid", 0), pmem(s, "NIMid", 4), abef[s], cdgh[s], tmp(0), q2(s, 0), q2(s, 1))
		for q := 0; q < 2; q++ {
			p("MOVOU %s, %s", mem("K", 4*q), tmp(0))
			p("PADDD %s, %s", []string{abef[s], cdgh[s]}[q], tmp(0))
			p("MOVOU %s, %s", tmp(0), kw2(s, q))
		}
		for q := 2; q < 4; q++ {
			p("MOVOU %s, %s", mem("NIQ2", 4*q), tmp(0))
			p("MOVOU %s, %s", tmp(0), q2(s, q))
			p("MOVOU %s, %s", mem("NIKW2", 4*q), tmp(0))
			p("MOVOU %s, %s", tmp(0), kw2(s, q))
		}
		// (0, W0, 0, W0) from quad 0 = (W0, W1, W2, W3).
		p("MOVO %s, %s", abef[s], tmp(1))
		p("PSLLDQ $12, %s", tmp(1))
		p("PSHUFD $0xcc, %s, %s", tmp(1), tmp(1))
		p("MOVOU %s, %s", mem("NIR1", 0), abef[s])
		p("PADDD %s, %s", tmp(1), abef[s])
		p("MOVOU %s, %s", mem("NIR1", 4), cdgh[s])
	}
	// Second hash: round pairs (1,2), (3,4) ... (59,60): pair (4q+1, 4q+2)
	// is K+W quad q's lanes 1, 2; pair (4q+3, 4q+4) is its lane 3 and quad
	// q+1's lane 0.
	sched2 := func(k int) {
		if k < 4 || k > 15 {
			return
		}
		for s := 0; s < N; s++ {
			quad(&k2, k, func(j int) string { return q2(s, j) }, "NIP2", kw2(s, k))
		}
	}
	for q := 0; q < 16; q++ {
		sched2(q + niLead)
		for s := 0; s < N; s++ {
			kw := fmt.Sprintf("X%d", 1+2*N+s%3) // tmp(0..2): free in the rounds
			if q > 0 {
				p("MOVOU %s, %s", kw2(s, q), kw)
				p("MOVO %s, X0", kw)
				p("PALIGNR $12, %s, X0", kw2(s, q-1))
				rnds(s)
			}
			if q < 15 {
				if q == 0 {
					p("PSHUFD $0x09, %s, X0", kw2(s, q))
				} else {
					p("PSHUFD $0x09, %s, X0", kw)
				}
				rnds(s)
			}
		}
	}
	for s := 0; s < N; s++ {
		// After rounds 59, 60 the E lane holds e after round 60.
		p("PEXTRD $1, %s, AX", abef[s])
		p("MOVL AX, %d(SI)", 4*s)
	}
	p("RET")
}
