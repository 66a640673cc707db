package main

import (
	"fmt"
	"log"
	"strings"
)

// ---- AVX-512, fewer instructions per hash (for cores with two 512-bit ports) ----
//
// avx512Scan2 and avx512Scan32 (main.go) were tuned on a Zen 5, which
// executes four 512-bit instructions a cycle, so the rounds' dependency
// chain is what limits them there. An Intel core executes two (ports 0 and
// 5; shifts and rotates only on port 0), so there the instruction count is
// the bound (BENCHMARKS.md: the model). These kernels cut it:
//
//   - T1 is summed first and then added to d and to Σ0+Maj: six adds a
//     round where the old form spent seven to shorten e's path by one add.
//   - The first hash's message schedule, which depends only on the nonces,
//     is computed once per 16 nonces (phase S, in registers) and stored with
//     K added, W+K; the rounds of every rolled version read it as one memory
//     operand, so a round whose W varies costs what a fixed-W round does,
//     and K versions share one schedule (the old kernels shared it between
//     two).
//   - Constants fold: h+K+W of the first hash's rounds 4-6 and h+K of the
//     second hash's rounds 1-3 (h is fixed there), C+K where a schedule
//     word has a fixed part, IV[7] into round 60's K.
//
// The versions run as pairs of 16-lane chains side by side, the pair's code
// emitted once and looped over, so the kernel stays about as large as the
// old ones whatever the version count.

// zoff: frame offsets from R8 (64-byte aligned). A[b] is block b's first-hash
// W+K, B[c] chain c's second-hash W, W3[b] block b's nonce word.
type zframe struct{ blocks int }

func (f zframe) a(b, i int) int  { return b*mStride + i*64 }
func (f zframe) bw(c, i int) int { return (f.blocks+c)*mStride + i*64 }
func (f zframe) w3(b int) int    { return (f.blocks+mChains)*mStride + b*64 }
func (f zframe) size() int       { return (f.blocks+mChains)*mStride + f.blocks*64 + 64 }

type zc struct {
	s [8]string // a..h
	t [4]string // t3 is free in a round: the schedule leaves W there
}

// zadd emits dst = src + x, x a register, a memory operand or "bcst:" one.
func zadd(x, src, dst string) {
	switch {
	case strings.HasPrefix(x, "bcst:"):
		p("VPADDD.BCST %s, %s, %s", strings.TrimPrefix(x, "bcst:"), src, dst)
	default:
		p("VPADDD %s, %s, %s", x, src, dst)
	}
}

// zsigma emits dst = the XOR of x rotated right by r0, r1 and rotated (or,
// when shr, shifted) right by r2; x may be a memory operand. t1, t2 are
// scratch.
func zsigma(x, dst, t1, t2 string, r0, r1, r2 int, shr bool) {
	p("VPRORD $%d, %s, %s", r0, x, dst)
	p("VPRORD $%d, %s, %s", r1, x, t1)
	if shr {
		p("VPSRLD $%d, %s, %s", r2, x, t2)
	} else {
		p("VPRORD $%d, %s, %s", r2, x, t2)
	}
	p("VPTERNLOGD $0x%02x, %s, %s, %s", immXor3, t2, t1, dst)
}

// zr emits one round of chain z. pre are added to h first (h + K + W, in
// one or two operands). With hconst set, h is a per-unit constant that
// hconst (a bcst operand) holds already summed with its K (and W), and pre
// go to Σ1+Ch instead. withA=false skips the new a, which is never read.
func zr(z *zc, pre []string, hconst string, withA bool) {
	a, b, c, d, e, f, g, h := z.s[0], z.s[1], z.s[2], z.s[3], z.s[4], z.s[5], z.s[6], z.s[7]
	t0, t1, t2 := z.t[0], z.t[1], z.t[2]
	if hconst == "" {
		for _, x := range pre {
			zadd(x, h, h)
		}
	}
	zsigma(e, t0, t1, t2, 6, 11, 25, false)
	p("VMOVDQA32 %s, %s", e, t1)
	p("VPTERNLOGD $0x%02x, %s, %s, %s", immCh, g, f, t1)
	p("VPADDD %s, %s, %s", t1, t0, t0)
	if hconst != "" {
		for _, x := range pre {
			zadd(x, t0, t0)
		}
		zadd(hconst, t0, h)
	} else {
		p("VPADDD %s, %s, %s", t0, h, h) // T1
	}
	p("VPADDD %s, %s, %s", h, d, d) // new e
	if withA {
		zsigma(a, t0, t1, t2, 2, 13, 22, false)
		p("VMOVDQA32 %s, %s", a, t1)
		p("VPTERNLOGD $0x%02x, %s, %s, %s", immMaj, c, b, t1)
		p("VPADDD %s, %s, %s", t1, t0, t0)
		p("VPADDD %s, %s, %s", t0, h, h) // new a
	}
	z.s = [8]string{h, a, b, c, d, e, f, g}
}

// zphaseS computes block b's first-hash schedule for the nonces whose W3 is
// in Z3, and stores W+K of words 16..63 to A[b]. The schedule is a ring of
// 16 registers (Z0..Z15, word j in Z(j%16)); Z16..Z23 are scratch.
func zphaseS(fr zframe, b int) {
	k := kinds(true)
	ring := func(j int) string { return zreg(j % 16) }
	t := func(i int) string { return zreg(16 + i) }
	for i := 16; i < 18; i++ { // fixed for the unit
		p("VPBROADCASTD %s, %s", mem("KW1", i), t(0))
		p("VMOVDQU32 %s, %d(R8)", t(0), fr.a(b, i))
	}
	for i := 18; i < 64; i++ {
		if k[i] != vec {
			log.Fatalf("first hash word %d is not per-nonce", i)
		}
		dst := ring(i)
		var terms []string
		if k[i-16] == vec {
			terms = append(terms, dst) // W[i-16] is in dst's register
		}
		if k[i-15] == vec {
			zsigma(ring(i-15), t(0), t(1), t(2), 7, 18, 3, true)
			terms = append(terms, t(0))
		}
		if k[i-7] == vec {
			terms = append(terms, ring(i-7))
		}
		if k[i-2] == vec {
			zsigma(ring(i-2), t(3), t(4), t(5), 17, 19, 10, true)
			terms = append(terms, t(3))
		}
		hasC := k[i-16] == scalar || k[i-15] == scalar || k[i-7] == scalar || k[i-2] == scalar
		switch {
		case len(terms) == 1 && terms[0] != dst:
			p("VMOVDQA32 %s, %s", terms[0], dst)
		case len(terms) > 1 && terms[0] == dst:
			for _, x := range terms[1:] {
				p("VPADDD %s, %s, %s", x, dst, dst)
			}
		case len(terms) > 1:
			p("VPADDD %s, %s, %s", terms[1], terms[0], dst)
			for _, x := range terms[2:] {
				p("VPADDD %s, %s, %s", x, dst, dst)
			}
		}
		wk := t(6)
		if hasC {
			zadd("bcst:"+mem("CK1", i), dst, wk)
			if i <= 61 {
				zadd("bcst:"+mem("C1", i), dst, dst)
			}
		} else {
			zadd("bcst:"+mem("KW1", i), dst, wk) // K alone: W varies
		}
		p("VMOVDQU32 %s, %d(R8)", wk, fr.a(b, i))
	}
}

// zsched2 computes the second hash's word i for chain c into z.t[3] (and
// its array, when a later word reads it) and returns what round i adds to
// h: K and W, or W+K in one register where the word has a fixed part.
func zsched2(fr zframe, z *zc, c int, k *[64]int, i int, at func(j int) string, kw func(name string, j int) string) []string {
	t0, t1, t2, dst := z.t[0], z.t[1], z.t[2], z.t[3]
	empty := true
	sum := func(x string, isReg bool) {
		switch {
		case empty && isReg:
			p("VMOVDQA32 %s, %s", x, dst)
		case empty:
			p("VMOVDQU32 %s, %s", x, dst)
		default:
			p("VPADDD %s, %s, %s", x, dst, dst)
		}
		empty = false
	}
	if k[i-15] == vec {
		zsigma(at(i-15), dst, t1, t2, 7, 18, 3, true)
		empty = false
	}
	if k[i-2] == vec {
		if empty {
			zsigma(at(i-2), dst, t1, t2, 17, 19, 10, true)
			empty = false
		} else {
			zsigma(at(i-2), t0, t1, t2, 17, 19, 10, true)
			sum(t0, true)
		}
	}
	if k[i-16] == vec {
		sum(at(i-16), false)
	}
	if k[i-7] == vec {
		sum(at(i-7), false)
	}
	hasC := k[i-16] == scalar || k[i-15] == scalar || k[i-7] == scalar || k[i-2] == scalar
	needed := i <= 58 // W60 reads W58 (σ1), nothing reads a later word
	if hasC {
		if needed {
			zadd("bcst:"+kw("C2", i), dst, t0)
			p("VMOVDQU32 %s, %s", t0, at(i))
		}
		zadd("bcst:"+kw("CK2", i), dst, dst)
		return []string{dst}
	}
	if needed {
		p("VMOVDQU32 %s, %s", dst, at(i))
	}
	return []string{"bcst:" + kw("K", i), dst}
}

// genZ writes one kernel: blocks blocks of 16 consecutive nonces, each
// hashed as versions rolled versions, in pairs of chains: (block 0,
// versions 0 and 1), (block 0, versions 2 and 3)... or, with one version,
// (block 0, block 1). loop2 is the second hash's first looped round (16 or
// 32).
func genZ(name string, blocks, versions, loop2 int) {
	if blocks*versions%mChains != 0 || (loop2 != 16 && loop2 != 32) {
		log.Fatalf("%s: %d blocks of %d versions", name, blocks, versions)
	}
	fr := zframe{blocks: blocks}
	pairs := blocks * versions / mChains
	hashes := 16 * blocks * versions
	rolled := versions > 1
	fmt.Fprintf(&buf, "\n")
	if rolled {
		fmt.Fprintf(&buf, "// func %s(ps *[%d]*params, nonce uint32, out *[%d]uint32)\n", name, versions, versions/2)
		fmt.Fprintf(&buf, "// Writes the masks of lanes passing the top-word test, one per pair of versions:\n")
		fmt.Fprintf(&buf, "// bit 16*c+j of out[q] is version 2q+c, nonce+j.\n")
		text(name, fr.size(), 24, hashes)
		p("MOVQ ps+0(FP), AX")
		p("MOVQ out+16(FP), R13")
	} else {
		fmt.Fprintf(&buf, "// func %s(p *params, nonce uint32) uint32\n", name)
		fmt.Fprintf(&buf, "// Returns the mask of lanes nonce+0..%d whose H7 passes the top-word test.\n", 16*blocks-1)
		text(name, fr.size(), 20, hashes)
		p("LEAQ p+0(FP), AX")
	}
	p("MOVQ 0(AX), DI") // version 0's params, which hold every shared table
	p("LEAQ 63(SP), R8")
	p("ANDQ $~63, R8")

	// Phase S: each block's first-hash schedule, once for all its versions.
	for b := 0; b < blocks; b++ {
		p("MOVL nonce+8(FP), BX")
		if b > 0 {
			p("ADDL $%d, BX", 16*b)
		}
		p("VPBROADCASTD BX, Z3")
		p("VPADDD %s, Z3, Z3", mem("Iota", 0))
		p("VPSHUFB %s, Z3, Z3", mem("Shuf", 0))
		p("VMOVDQU32 Z3, %d(R8)", fr.w3(b))
		zphaseS(fr, b)
	}
	// The second hash's fixed words, for the looped schedule to read.
	k2 := kinds(false)
	for i := 8; i < 16; i++ {
		p("VPBROADCASTD %s, Z0", mem("NIQ2", i))
		for c := 0; c < mChains; c++ {
			p("VMOVDQU32 Z0, %d(R8)", fr.bw(c, i))
		}
	}

	zs := make([]*zc, mChains)
	preg := []string{"SI", "DX"} // each chain's params
	blockOf := func(c int) int {
		if rolled {
			return 0
		}
		return c
	}
	if pairs > 1 {
		p("MOVQ AX, R12")
		p("MOVL $%d, R11", pairs)
		fmt.Fprintf(&buf, "%s_pair:\n", name)
		mult = pairs
	}
	for c := range zs {
		if rolled {
			p("MOVQ %d(%s), %s", 8*c, map[bool]string{true: "R12", false: "AX"}[pairs > 1], preg[c])
		} else {
			p("MOVQ 0(AX), %s", preg[c])
		}
	}
	for c := range zs {
		z := &zc{}
		for i := 0; i < 4; i++ {
			z.t[i] = zreg(16 + 4*c + i)
		}
		for i := 0; i < 8; i++ {
			z.s[i] = zreg(8*c + i)
			p("VPBROADCASTD %d(%s), %s", 4*(off["R3"]+i), preg[c], z.s[i])
		}
		p("VMOVDQU32 %d(R8), %s", fr.w3(blockOf(c)), z.t[3])
		p("VPADDD %s, %s, %s", z.t[3], z.s[0], z.s[0])
		p("VPADDD %s, %s, %s", z.t[3], z.s[4], z.s[4])
		zs[c] = z
	}
	pmem := func(c int, name string, i int) string {
		return fmt.Sprintf("%d(%s)", 4*(off[name]+i), preg[c])
	}
	// First hash: rounds 4-6 with h fixed, 7-15 with W fixed, then the
	// loop over the stored W+K.
	for i := 4; i < 16; i++ {
		for c, z := range zs {
			if i <= 6 {
				zr(z, nil, "bcst:"+pmem(c, "HKW1", i-4), true)
			} else {
				zr(z, []string{"bcst:" + mem("KW1", i)}, "", true)
			}
		}
	}
	inner := mult
	zloop := func(label string, from, to int, body func(i int)) {
		p("MOVQ R8, R9")
		p("MOVQ DI, R10")
		p("MOVL $%d, CX", (to-from)/8)
		fmt.Fprintf(&buf, "%s:\n", label)
		pbase = "R10"
		mult = inner * (to - from) / 8
		for i := from; i < from+8; i++ {
			body(i)
		}
		p("ADDQ $512, R9")
		p("ADDQ $32, R10")
		p("DECL CX")
		p("JNE %s", label)
		mult = inner
		pbase = "DI"
	}
	zloop(name+"_first", 16, 64, func(i int) {
		for c, z := range zs {
			zr(z, []string{fmt.Sprintf("%d(R9)", fr.a(blockOf(c), i))}, "", true)
		}
	})

	// Feed-forward: the digest is the second hash's W0..7.
	for c, z := range zs {
		for i := 0; i < 8; i++ {
			zadd("bcst:"+pmem(c, "Mid", i), z.s[i], z.s[i])
			p("VMOVDQU32 %s, %d(R8)", z.s[i], fr.bw(c, i))
		}
		p("VMOVDQA32 %s, %s", z.s[0], z.t[3])
		for i := 0; i < 8; i++ {
			z.s[i] = zreg(8*c + i)
			p("VPBROADCASTD %s, %s", mem("R1", i), z.s[i])
		}
		p("VPADDD %s, %s, %s", z.t[3], z.s[0], z.s[0])
		p("VPADDD %s, %s, %s", z.t[3], z.s[4], z.s[4])
	}
	second := func(i int, base string, k *[64]int, kw func(name string, j int) string) {
		for c, z := range zs {
			at := func(j int) string {
				if base == "R8" {
					return fmt.Sprintf("%d(R8)", fr.bw(c, j))
				}
				return fmt.Sprintf("%d(%s)", fr.bw(c, j), base) // base advances 8 words a trip
			}
			var pre []string
			hconst := ""
			switch {
			case i <= 3:
				pre, hconst = []string{at(i)}, "bcst:"+mem("HK2", i-1)
			case i < 16 && k[i] == vec:
				pre = []string{"bcst:" + kw("KW2", i), at(i)}
			case i < 16:
				pre = []string{"bcst:" + kw("KW2", i)}
			default:
				pre = zsched2(fr, z, c, k, i, at, kw)
			}
			if i == 60 {
				pre[0] = "bcst:" + mem("K60H7", 0)
			}
			zr(z, pre, hconst, i < 57)
		}
	}
	fixed := func(name string, j int) string {
		switch name {
		case "K":
			return mem("KW2", j) // K alone where W varies
		}
		return mem(name, j)
	}
	for i := 1; i < loop2; i++ {
		second(i, "R8", &k2, fixed)
	}
	allVec := [64]int{}
	for i := range allVec {
		allVec[i] = vec
	}
	zloop(name+"_second", loop2, 56, func(i int) {
		second(i, "R9", &allVec, func(name string, j int) string { return mem(name, j) })
	})
	for i := 56; i <= 60; i++ {
		second(i, "R8", &k2, fixed)
	}
	for c, z := range zs {
		e := z.s[4]
		p("VPSHUFB %s, %s, %s", mem("Shuf", 0), e, e)
		p("VPCMPUD.BCST $2, %s, %s, K%d", mem("Top", 0), e, 1+c) // e <= top
	}
	p("KMOVW K1, BX")
	p("KMOVW K2, CX")
	p("SHLQ $16, CX")
	p("ORQ CX, BX")
	if rolled {
		p("MOVL BX, 0(R13)")
	}
	if pairs > 1 {
		p("ADDQ $4, R13")
		p("ADDQ $%d, R12", 8*mChains)
		p("DECL R11")
		p("JNE %s_pair", name)
		mult = 1
	}
	p("VZEROUPPER")
	if !rolled {
		p("MOVL BX, ret+16(FP)")
	}
	p("RET")
}
