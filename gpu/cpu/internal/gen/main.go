package main

import (
	"bytes"
	"flag"
	"fmt"
	"go/format"
	"log"
	"os"
	"strings"
)

// Word offsets into the flat params array ([nParams]uint32). Both the Go
// precomputation and the assembly index it with these, so layout.go is
// written from this one table.
var layout = []struct {
	name string
	size int
}{
	{"R3", 8},     // first hash state after rounds 0..3 computed with W3 = 0
	{"Mid", 8},    // midstate, for the first hash's feed-forward
	{"KW1", 64},   // first hash K[i]+W[i] (K[i] alone where W[i] varies per nonce)
	{"C1", 64},    // first hash: sum of the nonce-independent terms of W[i]
	{"R1", 8},     // second hash state after round 0 computed with W0 = 0
	{"KW2", 64},   // second hash K[i]+W[i] as KW1
	{"C2", 64},    // second hash as C1
	{"Top", 1},    // target top word
	{"H7Add", 1},  // IV[7], the second hash's feed-forward of word 7
	{"W1617", 2},  // first hash W16, W17 (nonce-free), stored as vectors by the looped kernels
	{"Iota", 16},  // 0..15, lane offsets
	{"Shuf", 16},  // VPSHUFB mask that byte-swaps each dword
	{"K", 64},     // SHA-256 round constants
	{"NIMid", 8},  // midstate as ABEF, CDGH (SHA-NI lane order)
	{"NIR2", 8},   // first hash state after rounds 0,1 as ABEF, CDGH
	{"NIQ", 16},   // first hash message quads 0..3 (quad 0 without the nonce)
	{"NIKW1", 16}, // K+W for first hash quads 0..3 (quad 0 unused: it holds the nonce)
	{"NIIV", 8},   // IV as ABEF, CDGH
	{"NIQ2", 16},  // second hash message quads 0..3 (0,1 unused: they are the digest)
	{"NIKW2", 16}, // K+W for second hash quads 0..3 (0,1 unused)
	{"CK1", 64},   // first hash C1[i]+K[i]: W+K of a word with a fixed part in one add
	{"HKW1", 3},   // first hash h+K+W of rounds 4..6, where h is still fixed
	{"HK2", 3},    // second hash h+K of rounds 1..3, where h is still fixed
	{"CK2", 64},   // second hash C2[i]+K[i]
	{"K60H7", 1},  // K[60]+IV[7]: round 60's e comes out as H7
	{"NIR3", 8},   // first hash state after rounds 0..3 with W3 = 0, as ABEF, CDGH
	{"NIQ4", 4},   // first hash W16, W17 and the fixed parts of W18, W19
	{"NIP1", 48},  // first hash quads 4..15: fixed part of the partial sums (see niPartialFixed)
	{"NIR1", 8},   // second hash state after round 0 with W0 = 0, as ABEF, CDGH
	{"NIP2", 48},  // second hash as NIP1
	{"End", 0},
}

var off = map[string]int{}

func init() {
	n := 0
	for _, f := range layout {
		off[f.name] = n
		n += f.size
	}
}

// Message word kinds: zero words drop out of every sum, scalar words are the
// same for every nonce of a unit and are folded into the params tables, and
// vector words differ per nonce and are computed in the kernel.
const (
	zero = iota
	scalar
	vec
)

func kinds(first bool) [64]int {
	var k [64]int
	if first {
		k = [64]int{scalar, scalar, scalar, vec, scalar}
		k[15] = scalar
	} else {
		for i := 0; i < 8; i++ {
			k[i] = vec
		}
		k[8], k[15] = scalar, scalar
	}
	for i := 16; i < 64; i++ {
		k[i] = max(k[i-16], k[i-15], k[i-7], k[i-2])
	}
	return k
}

var buf bytes.Buffer

// niFeedForward adds the midstate (mid0, mid4: its ABEF and CDGH halves)
// to a SHA-NI stream's state and reorders ABEF/CDGH into the message words
// DCBA, HGFE that the second hash reads, stored at out0 and out1.
func niFeedForward(mid0, mid4, abef, cdgh, tmp, out0, out1 string) {
	p("MOVOU %s, %s", mid0, tmp)
	p("PADDD %s, %s", tmp, abef)
	p("MOVOU %s, %s", mid4, tmp)
	p("PADDD %s, %s", tmp, cdgh)
	p("PSHUFD $0x1b, %s, %s", abef, abef)
	p("PSHUFD $0xb1, %s, %s", cdgh, cdgh)
	p("MOVO %s, %s", abef, tmp)
	p("PBLENDW $0xf0, %s, %s", cdgh, abef)
	p("PALIGNR $8, %s, %s", tmp, cdgh)
	p("MOVOU %s, %s", abef, out0)
	p("MOVOU %s, %s", cdgh, out1)
}

func p(format string, args ...any) {
	ins := fmt.Sprintf(format, args...)
	count(ins)
	buf.WriteString("\t" + ins + "\n")
}

// ternlog returns the VPTERNLOGD immediate for f(A, B, C) where, in Go
// operand order, the instruction is VPTERNLOGD $imm, C, B, A(dst).
func ternlog(f func(a, b, c bool) bool) int {
	imm := 0
	for i := 0; i < 8; i++ {
		if f(i&4 != 0, i&2 != 0, i&1 != 0) {
			imm |= 1 << i
		}
	}
	return imm
}

var (
	immXor3 = ternlog(func(a, b, c bool) bool { return a != b != c })
	immCh   = ternlog(func(a, b, c bool) bool {
		if a {
			return b
		}
		return c
	})
	immMaj = ternlog(func(a, b, c bool) bool { return (a && b) || (a && c) || (b && c) })
)

// pbase is the register params is addressed from: DI, or R10 inside a
// round loop, where it advances with the rounds.
var pbase = "DI"

func mem(name string, i int) string { return fmt.Sprintf("%d(%s)", 4*(off[name]+i), pbase) }

// ---- AVX-512: 16 nonces per chain, one per dword lane ----

// zblock is one chain of SHA-256 states, 16 nonces wide.
type zblock struct {
	s   [8]string // a..h register names
	tmp [8]string
	b   int
	// w is where message word i is kept: a stack ring, or an array.
	w func(i int) string
}

// zsched computes vector message word i of block z into z.tmp[0] and the
// chain's array (z.w).
func zsched(z *zblock, k *[64]int, cname string, i int) string {
	dst := z.tmp[0]
	t1, t2, t3 := z.tmp[1], z.tmp[2], z.tmp[3]
	first := true
	add := func(src string) {
		if first {
			if strings.HasPrefix(src, "Z") {
				p("VMOVDQA32 %s, %s", src, dst)
			} else {
				p("VMOVDQU32 %s, %s", src, dst)
			}
			first = false
			return
		}
		p("VPADDD %s, %s, %s", src, dst, dst)
	}
	if k[i-16] == vec {
		add(z.w(i - 16))
	}
	if k[i-15] == vec {
		x := z.w(i - 15)
		p("VPRORD $7, %s, %s", x, t1)
		p("VPRORD $18, %s, %s", x, t2)
		p("VPSRLD $3, %s, %s", x, t3)
		p("VPTERNLOGD $0x%02x, %s, %s, %s", immXor3, t3, t2, t1)
		add(t1)
	}
	if k[i-7] == vec {
		add(z.w(i - 7))
	}
	if k[i-2] == vec {
		x := z.w(i - 2)
		p("VPRORD $17, %s, %s", x, t1)
		p("VPRORD $19, %s, %s", x, t2)
		p("VPSRLD $10, %s, %s", x, t3)
		p("VPTERNLOGD $0x%02x, %s, %s, %s", immXor3, t3, t2, t1)
		add(t1)
	}
	if k[i-16] == scalar || k[i-15] == scalar || k[i-7] == scalar || k[i-2] == scalar {
		p("VPADDD.BCST %s, %s, %s", mem(cname, i), dst, dst)
	}
	p("VMOVDQU32 %s, %s", dst, z.w(i))
	return dst
}

// zround emits round i of block z; w is where W[i] is when it varies per
// nonce. withA=false skips the new a, whose value is never read again.
func zround(z *zblock, k *[64]int, kwname string, i int, w string, withA bool) {
	a, b, c, d, e, f, g, h := z.s[0], z.s[1], z.s[2], z.s[3], z.s[4], z.s[5], z.s[6], z.s[7]
	t0, t1, t2, t3 := z.tmp[4], z.tmp[5], z.tmp[6], z.tmp[7]
	// T1 = h + S1(e) + Ch(e,f,g) + K[i] + W[i]. The e-independent part
	// (h + K + W) is added to d before e is ready, so the new e is only
	// rotate, ternlog, two adds away from the old one.
	p("VPADDD.BCST %s, %s, %s", mem(kwname, i), h, h)
	if k[i] == vec {
		p("VPADDD %s, %s, %s", w, h, h)
	}
	p("VPADDD %s, %s, %s", h, d, d)
	p("VPRORD $6, %s, %s", e, t0)
	p("VPRORD $11, %s, %s", e, t1)
	p("VPRORD $25, %s, %s", e, t2)
	p("VPTERNLOGD $0x%02x, %s, %s, %s", immXor3, t2, t1, t0)
	p("VMOVDQA32 %s, %s", e, t1)
	p("VPTERNLOGD $0x%02x, %s, %s, %s", immCh, g, f, t1)
	p("VPADDD %s, %s, %s", t1, t0, t0)
	p("VPADDD %s, %s, %s", t0, d, d) // new e
	if withA {
		p("VPADDD %s, %s, %s", t0, h, h) // T1
		p("VPRORD $2, %s, %s", a, t1)
		p("VPRORD $13, %s, %s", a, t2)
		p("VPRORD $22, %s, %s", a, t3)
		p("VPTERNLOGD $0x%02x, %s, %s, %s", immXor3, t3, t2, t1)
		p("VMOVDQA32 %s, %s", a, t2)
		p("VPTERNLOGD $0x%02x, %s, %s, %s", immMaj, c, b, t2)
		p("VPADDD %s, %s, %s", t2, t1, t1)
		p("VPADDD %s, %s, %s", t1, h, h) // new a
	}
	z.s = [8]string{h, a, b, c, d, e, f, g}
}

func zreg(n int) string { return fmt.Sprintf("Z%d", n) }

// ---- AVX-512 kernels: two chains side by side ----

// Both AVX-512 kernels run mChains independent 16-lane chains with their
// rounds emitted side by side, which gives the out-of-order core two
// dependency chains to overlap where one chain's rounds are serial. Two
// chains fill the 32 ZMM registers (8 state and 8 temporaries each). The
// generic rounds (see loop1From) run in loops of 8, so the code (22-24 KB)
// stays within a 32 KB instruction cache; fully unrolled, two chains
// measured 20% slower than one, and that is why the first AVX-512 kernel
// ran one fully unrolled chain (43-45 MH/s per thread on the Zen 5 this
// was written on). Looped, two chains hash 59-61 MH/s of one version
// (avx512Scan32), and 60-64 when they are two rolled versions of the same
// nonces (avx512Scan2): those share the first hash's message schedule,
// which chain 0 computes and chain 1's round reads from the register it
// was computed in.
const mChains = 2

// loop1From and loop2From are the first rounds of the first and second
// hash that run in the loops. The code size is what matters: with both at
// 32 the kernel was 28 KB, nearly all of a 32 KB instruction cache, and ran
// at 63 or 41 MH/s per thread depending on where the linker put it; at
// 32 and 16 (22 KB; the second hash's loop then also computes the schedule
// words whose inputs are the padding, a few dozen extra operations) it held
// 60-64 MH/s wherever it was placed, as did 16 and 16 (17 KB, 57-62).
const (
	loop1From = 32
	loop2From = 16
)

// mStride is the distance between the arrays: 64 vectors and 5 cache lines
// more, so the same word of two chains does not share 4 KB alignment (the
// loads of one would wait on the stores of the other).
const mStride = 64*64 + 5*64

// marr is the frame offset of message word i of array a (the first hash's,
// then each chain's second hash's) from base, R8 or, in a loop, R9.
func marr(a, i int, base string) string { return fmt.Sprintf("%d(%s)", a*mStride+i*64, base) }

// mloop emits the rounds [from, to) of every chain as a loop over a body of
// 8 rounds (the register names come back around after 8), advancing R9
// over the arrays and R10 (pbase) over the params' round tables.
func mloop(label string, from, to int, body func(i int, base string)) {
	p("MOVQ R8, R9")
	p("MOVQ DI, R10")
	p("MOVL $%d, CX", (to-from)/8)
	fmt.Fprintf(&buf, "%s:\n", label)
	pbase = "R10"
	mult = (to - from) / 8
	for i := from; i < from+8; i++ {
		body(i, "R9")
	}
	mult = 1
	pbase = "DI"
	p("ADDQ $512, R9")
	p("ADDQ $32, R10")
	p("DECL CX")
	p("JNE %s", label)
}

// genAVX512Pair writes a kernel of mChains interleaved 16-lane chains.
// With blocks false it is avx512Scan2: rolled versions of the same 16
// nonces, sharing the first hash's schedule (ps holds each version's
// params). With blocks true it is avx512Scan32: 32 consecutive nonces of
// one unit, each chain with its own schedule. (Four versions as two pairs,
// the second reading the first's stored schedule, measured no faster than
// one version: that code is twice the size.)
func genAVX512Pair(blocks bool) {
	if (64-loop1From)%8 != 0 || (56-loop2From)%8 != 0 || (loop1From != 16 && loop1From != 32) || loop2From != 16 && loop2From < 32 {
		log.Fatalf("loops from rounds %d and %d: the prologue stores only what loops from 16 or 32 read", loop1From, loop2From)
	}
	nW1 := 1
	if blocks {
		nW1 = mChains
	}
	w1 := func(c int) int {
		if blocks {
			return c
		}
		return 0
	}
	w2 := func(c int) int { return nW1 + c }
	frame := (nW1+mChains)*mStride + 64
	// AX points at the chains' params pointers: ps, or the argument slot
	// of p, which every chain reads (pv is the offset from AX).
	pv := func(c int) int { return 8 * c }
	if blocks {
		pv = func(int) int { return 0 }
		fmt.Fprintf(&buf, "\n// func avx512Scan32(p *params, nonce uint32) uint32\n")
		fmt.Fprintf(&buf, "// Returns the mask of lanes nonce+0..31 whose H7 passes the top-word test.\n")
		text("avx512Scan32", frame, 20, 32)
		p("LEAQ p+0(FP), AX")
	} else {
		fmt.Fprintf(&buf, "\n// func avx512Scan2(ps *[2]*params, nonce uint32) uint64\n")
		fmt.Fprintf(&buf, "// Returns the mask of lanes passing the top-word test, 16 bits per version:\n")
		fmt.Fprintf(&buf, "// bit 16*v+j is version v, nonce+j.\n")
		text("avx512Scan2", frame, 24, 32)
		p("MOVQ ps+0(FP), AX")
	}
	p("MOVQ 0(AX), DI") // version 0's params, which hold every shared table
	p("LEAQ 63(SP), R8")
	p("ANDQ $~63, R8")
	zs := make([]*zblock, mChains)
	for c := range zs {
		z := &zblock{b: c}
		for i := 0; i < 8; i++ {
			z.tmp[i] = zreg(8*mChains + 8*c + i)
		}
		zs[c] = z
	}
	allVec := [64]int{}
	for i := range allVec {
		allVec[i] = vec
	}
	k1 := kinds(true)
	k2 := kinds(false)

	// W3 = bswap(nonce + lane), and W16, W17 as vectors for the loop.
	for c := 0; c < nW1; c++ {
		w3 := zs[c].tmp[0]
		p("MOVL nonce+8(FP), BX")
		if c > 0 {
			p("ADDL $%d, BX", 16*c)
		}
		p("VPBROADCASTD BX, %s", w3)
		p("VPADDD %s, %s, %s", mem("Iota", 0), w3, w3)
		p("VPSHUFB %s, %s, %s", mem("Shuf", 0), w3, w3)
		p("VMOVDQU32 %s, %s", w3, marr(c, 3, "R8"))
	}
	// The loops read every word they index from the arrays, so the
	// unit's fixed words go there too.
	t := zs[0].tmp[1]
	for a := 0; a < nW1; a++ {
		if loop1From == 16 {
			for i := 0; i < 16; i++ {
				if i != 3 {
					p("VPBROADCASTD %s, %s", mem("NIQ", i), t)
					p("VMOVDQU32 %s, %s", t, marr(a, i, "R8"))
				}
			}
		} else {
			for i := 0; i < 2; i++ {
				p("VPBROADCASTD %s, %s", mem("W1617", i), t)
				p("VMOVDQU32 %s, %s", t, marr(a, 16+i, "R8"))
			}
		}
	}
	if loop2From == 16 {
		for i := 8; i < 16; i++ {
			p("VPBROADCASTD %s, %s", mem("NIQ2", i), t)
			for c := range zs {
				p("VMOVDQU32 %s, %s", t, marr(w2(c), i, "R8"))
			}
		}
	}
	for c, z := range zs {
		p("MOVQ %d(AX), SI", pv(c))
		for i := 0; i < 8; i++ {
			z.s[i] = zreg(8*c + i)
			p("VPBROADCASTD %d(SI), %s", 4*(off["R3"]+i), z.s[i])
		}
		w3 := zs[w1(c)].tmp[0]
		p("VPADDD %s, %s, %s", w3, z.s[0], z.s[0])
		p("VPADDD %s, %s, %s", w3, z.s[4], z.s[4])
	}
	// First hash: each block extends its own schedule; rolled versions
	// share chain 0's, reading each word from the register it was
	// computed in.
	first := func(k *[64]int, kw string) func(i int, base string) {
		return func(i int, base string) {
			var w string
			for c, z := range zs {
				if c == 0 || blocks {
					z.w = func(j int) string { return marr(w1(c), j, base) }
					w = z.w(i)
					if i >= 16 && k[i] == vec {
						w = zsched(z, k, "C1", i)
					}
				}
				zround(z, k, kw, i, w, true)
			}
		}
	}
	for i := 4; i < loop1From; i++ {
		first(&k1, "KW1")(i, "R8")
	}
	mloop("first2", loop1From, 64, first(&allVec, "K"))

	// Feed-forward: each chain's digest is its second hash's W0..7.
	for c, z := range zs {
		p("MOVQ %d(AX), SI", pv(c))
		for i := 0; i < 8; i++ {
			p("VPADDD.BCST %d(SI), %s, %s", 4*(off["Mid"]+i), z.s[i], z.s[i])
			p("VMOVDQU32 %s, %s", z.s[i], marr(w2(c), i, "R8"))
		}
		p("VMOVDQA32 %s, %s", z.s[0], z.tmp[0])
		for i := 0; i < 8; i++ {
			z.s[i] = zreg(8*c + i)
			p("VPBROADCASTD %s, %s", mem("R1", i), z.s[i])
		}
		p("VPADDD %s, %s, %s", z.tmp[0], z.s[0], z.s[0])
		p("VPADDD %s, %s, %s", z.tmp[0], z.s[4], z.s[4])
	}
	second := func(k *[64]int, kw string) func(i int, base string) {
		return func(i int, base string) {
			for c, z := range zs {
				z.w = func(j int) string { return marr(w2(c), j, base) }
				w := z.w(i)
				if i >= 16 && k[i] == vec {
					w = zsched(z, k, "C2", i)
				}
				zround(z, k, kw, i, w, i < 57)
			}
		}
	}
	for i := 1; i < loop2From; i++ {
		second(&k2, "KW2")(i, "R8")
	}
	mloop("second2", loop2From, 56, second(&allVec, "K"))
	for i := 56; i <= 60; i++ {
		second(&k2, "KW2")(i, "R8")
	}
	for c, z := range zs {
		e := z.s[4]
		p("VPADDD.BCST %s, %s, %s", mem("H7Add", 0), e, e)
		p("VPSHUFB %s, %s, %s", mem("Shuf", 0), e, e)
		p("VPCMPUD.BCST $2, %s, %s, K%d", mem("Top", 0), e, 1+c) // e <= top
	}
	p("KMOVW K1, AX")
	for c := 1; c < mChains; c++ {
		p("KMOVW K%d, BX", 1+c)
		p("SHLQ $%d, BX", 16*c)
		p("ORQ BX, AX")
	}
	p("VZEROUPPER")
	if blocks {
		p("MOVL AX, ret+16(FP)")
	} else {
		p("MOVQ AX, ret+16(FP)")
	}
	p("RET")
}

// ---- AVX2: 8 nonces, one per dword lane ----
//
// For x86 CPUs with neither AVX-512 nor SHA-NI (most Intel client parts up
// to Comet Lake). AVX2 has no rotate and no three-input logic, so rotates
// are shift pairs, and Maj reuses the previous round's a^b.

var ytmp = [6]string{"Y10", "Y11", "Y12", "Y13", "Y14", "Y15"}

func ymem(i int) string { return fmt.Sprintf("%d(R8)", (i%16)*32) }

// ysigma sets dst to the XOR of x rotated right by each of rot and, when
// shr > 0, x shifted right by shr.
func ysigma(x, dst, tmp string, rot []int, shr int) {
	for j, r := range rot {
		if j == 0 {
			p("VPSRLD $%d, %s, %s", r, x, dst)
		} else {
			p("VPSRLD $%d, %s, %s", r, x, tmp)
			p("VPXOR %s, %s, %s", tmp, dst, dst)
		}
		p("VPSLLD $%d, %s, %s", 32-r, x, tmp)
		p("VPXOR %s, %s, %s", tmp, dst, dst)
	}
	if shr > 0 {
		p("VPSRLD $%d, %s, %s", shr, x, tmp)
		p("VPXOR %s, %s, %s", tmp, dst, dst)
	}
}

func ysched(k *[64]int, cname string, i int) string {
	dst, x, t0, t1 := ytmp[4], ytmp[5], ytmp[0], ytmp[1]
	first := true
	add := func(src string) {
		if first {
			if strings.HasPrefix(src, "Y") {
				p("VMOVDQA %s, %s", src, dst)
			} else {
				p("VMOVDQU %s, %s", src, dst)
			}
			first = false
			return
		}
		p("VPADDD %s, %s, %s", src, dst, dst)
	}
	if k[i-16] == vec {
		add(ymem(i - 16))
	}
	if k[i-15] == vec {
		p("VMOVDQU %s, %s", ymem(i-15), x)
		ysigma(x, t0, t1, []int{7, 18}, 3)
		add(t0)
	}
	if k[i-7] == vec {
		add(ymem(i - 7))
	}
	if k[i-2] == vec {
		p("VMOVDQU %s, %s", ymem(i-2), x)
		ysigma(x, t0, t1, []int{17, 19}, 10)
		add(t0)
	}
	if k[i-16] == scalar || k[i-15] == scalar || k[i-7] == scalar || k[i-2] == scalar {
		p("VPBROADCASTD %s, %s", mem(cname, i), t1)
		p("VPADDD %s, %s, %s", t1, dst, dst)
	}
	p("VMOVDQU %s, %s", dst, ymem(i))
	return dst
}

type ystate struct {
	s      [8]string
	ab, bc string // a^b of this round, and of the previous one (= b^c now)
}

// yround emits round i: h gets K+W from the kwname table (K alone where
// W varies, w then holds W) or, with kwname "", from w alone (W+K stored).
func yround(st *ystate, k *[64]int, kwname string, i int, w string, withA bool) {
	a, b, c, d, e, f, g, h := st.s[0], st.s[1], st.s[2], st.s[3], st.s[4], st.s[5], st.s[6], st.s[7]
	_ = c
	t0, t1, t2, t3 := ytmp[0], ytmp[1], ytmp[2], ytmp[3]
	if kwname != "" {
		p("VPBROADCASTD %s, %s", mem(kwname, i), t0)
		p("VPADDD %s, %s, %s", t0, h, h)
	}
	if k[i] == vec || kwname == "" {
		p("VPADDD %s, %s, %s", w, h, h)
	}
	p("VPADDD %s, %s, %s", h, d, d)
	ysigma(e, t0, t1, []int{6, 11, 25}, 0)
	p("VPXOR %s, %s, %s", g, f, t1) // Ch = ((f^g)&e)^g
	p("VPAND %s, %s, %s", e, t1, t1)
	p("VPXOR %s, %s, %s", g, t1, t1)
	p("VPADDD %s, %s, %s", t1, t0, t0)
	p("VPADDD %s, %s, %s", t0, d, d) // new e
	if withA {
		p("VPADDD %s, %s, %s", t0, h, h) // T1
		ysigma(a, t2, t3, []int{2, 13, 22}, 0)
		p("VPADDD %s, %s, %s", t2, h, h)
		p("VPXOR %s, %s, %s", b, a, st.ab) // Maj = ((a^b)&(b^c))^b
		p("VPAND %s, %s, %s", st.bc, st.ab, t3)
		p("VPXOR %s, %s, %s", b, t3, t3)
		p("VPADDD %s, %s, %s", t3, h, h) // new a
		st.ab, st.bc = st.bc, st.ab
	}
	st.s = [8]string{h, a, b, c, d, e, f, g}
}

func ystart(st *ystate, r string) {
	st.s = [8]string{"Y0", "Y1", "Y2", "Y3", "Y4", "Y5", "Y6", "Y7"}
	st.ab, st.bc = "Y8", "Y9"
	for i := 0; i < 8; i++ {
		p("VPBROADCASTD %s, %s", mem(r, i), st.s[i])
	}
	p("VPXOR %s, %s, %s", st.s[2], st.s[1], st.bc)
}

// yentry aligns the frame (R8) for the schedule ring and leaves the lanes'
// nonce words, byte-swapped as W3, in ytmp[4] and in the ring.
func yentry() string {
	p("LEAQ 31(SP), R8")
	p("ANDQ $~31, R8")
	w3 := ytmp[4]
	p("MOVL nonce+8(FP), AX")
	p("VMOVD AX, X14")
	p("VPBROADCASTD X14, %s", w3)
	p("VPADDD %s, %s, %s", mem("Iota", 0), w3, w3)
	p("VPSHUFB %s, %s, %s", mem("Shuf", 0), w3, w3)
	p("VMOVDQU %s, %s", w3, ymem(3))
	return w3
}

func genAVX2() {
	buf.WriteString("\n// func avx2Scan(p *params, nonce uint32) uint32\n")
	buf.WriteString("// Returns the mask of lanes nonce+0..7 whose H7 passes the top-word test.\n")
	text("avx2Scan", 16*32+32, 20, 8)
	p("MOVQ p+0(FP), DI")
	w3 := yentry()
	var st ystate
	// b^c is only right from round 4 on, which is where the kernel starts.
	ystart(&st, "R3")
	p("VPADDD %s, Y0, Y0", w3)
	p("VPADDD %s, Y4, Y4", w3)
	k1 := kinds(true)
	for i := 4; i < 64; i++ {
		w := ymem(i)
		if i >= 16 && k1[i] == vec {
			w = ysched(&k1, "C1", i)
		}
		yround(&st, &k1, "KW1", i, w, true)
	}
	ysecond(&st, "DI")
	p("VZEROUPPER")
	p("MOVL AX, ret+16(FP)")
	p("RET")
}

// ysecond adds the midstate (from the params at base) to the first hash's
// state in st, stores the digest as the second hash's W0..7 in the ring,
// emits the second hash and leaves in AX the mask of lanes whose H7 passes
// the top-word test.
func ysecond(st *ystate, base string) {
	for i := 0; i < 8; i++ {
		p("VPBROADCASTD %d(%s), %s", 4*(off["Mid"]+i), base, ytmp[0])
		p("VPADDD %s, %s, %s", ytmp[0], st.s[i], st.s[i])
		p("VMOVDQU %s, %s", st.s[i], ymem(i))
	}
	p("VMOVDQA %s, %s", st.s[0], ytmp[4])
	ystart(st, "R1")
	p("VPADDD %s, Y0, Y0", ytmp[4])
	p("VPADDD %s, Y4, Y4", ytmp[4])
	k2 := kinds(false)
	for i := 1; i <= 60; i++ {
		w := ymem(i)
		if i >= 16 && k2[i] == vec {
			w = ysched(&k2, "C2", i)
		}
		yround(st, &k2, "KW2", i, w, i < 57)
	}
	e := st.s[4]
	p("VPBROADCASTD %s, %s", mem("H7Add", 0), ytmp[0])
	p("VPADDD %s, %s, %s", ytmp[0], e, e)
	p("VPSHUFB %s, %s, %s", mem("Shuf", 0), e, e)
	p("VPBROADCASTD %s, %s", mem("Top", 0), ytmp[0])
	// No unsigned compare in AVX2: e <= top exactly when min(e, top) == e.
	p("VPMINUD %s, %s, %s", ytmp[0], e, ytmp[1])
	p("VPCMPEQD %s, %s, %s", ytmp[1], e, ytmp[1])
	p("VMOVMSKPS %s, AX", ytmp[1])
}

// genAVX2R writes avx2R<versions>: 8 nonces hashed as versions rolled
// versions. The first hash's message schedule depends on the nonces alone,
// so it is computed once (phase S) and stored as W+K; every version's
// rounds then read it as one memory operand, and the versions share about
// a seventh of a one-version kernel's instructions (BENCHMARKS.md: the
// model). The versions run one after the other, looped: AVX2's 16
// registers hold one chain, and a copy per version (some 25 KB each) would
// not fit a 32 KB instruction cache (AVX-512 kernels unrolled past it ran
// 25% slower).
//
// func avx2R<V>(ps *[V]*params, nonce uint32, out *[V]uint32)
// Writes to out[v] the mask of lanes nonce+0..7 of version v whose H7
// passes the top-word test.
func genAVX2R(name string, versions int) {
	const w3slot, arr = 16 * 32, 17 * 32 // frame: the schedule ring (ymem), W3, W+K of words 16..63
	fmt.Fprintf(&buf, "\n// func %s(ps *[%d]*params, nonce uint32, out *[%d]uint32)\n", name, versions, versions)
	fmt.Fprintf(&buf, "// Writes to out[v] the mask of lanes nonce+0..7 of version v whose H7 passes the top-word test.\n")
	text(name, arr+48*32+32, 24, 8*versions)
	p("MOVQ ps+0(FP), R12")
	p("MOVQ 0(R12), DI") // version 0's params, which hold every shared table
	w3 := yentry()
	p("VMOVDQU %s, %d(R8)", w3, w3slot)
	// Phase S: the nonce-dependent words, as W in the ring for the words
	// after them and as W+K for the rounds.
	k1 := kinds(true)
	for i := 16; i < 64; i++ {
		if k1[i] != vec {
			continue
		}
		wreg := ysched(&k1, "C1", i)
		p("VPBROADCASTD %s, %s", mem("KW1", i), ytmp[2])
		p("VPADDD %s, %s, %s", wreg, ytmp[2], ytmp[2])
		p("VMOVDQU %s, %d(R8)", ytmp[2], arr+(i-16)*32)
	}
	p("MOVQ out+16(FP), R13")
	p("MOVL $%d, R11", versions)
	fmt.Fprintf(&buf, "%s_version:\n", name)
	mult = versions
	p("MOVQ 0(R12), SI") // this version's midstate tables
	var st ystate
	pbase = "SI"
	ystart(&st, "R3")
	pbase = "DI"
	p("VPADDD %d(R8), Y0, Y0", w3slot)
	p("VPADDD %d(R8), Y4, Y4", w3slot)
	for i := 4; i < 64; i++ {
		if k1[i] == vec {
			yround(&st, &k1, "", i, fmt.Sprintf("%d(R8)", arr+(i-16)*32), true)
		} else {
			yround(&st, &k1, "KW1", i, "", true)
		}
	}
	ysecond(&st, "SI")
	p("MOVL AX, 0(R13)")
	p("ADDQ $4, R13")
	p("ADDQ $8, R12")
	p("DECL R11")
	p("JNE %s_version", name)
	mult = 1
	p("VZEROUPPER")
	p("RET")
}

// ---- SHA-NI: N nonces interleaved ----

const niStreams = 4

func genSHANI() {
	N := niStreams
	frame := N * 16 * 16
	fmt.Fprintf(&buf, "\n// func shaniScan(p *params, nonce uint32, out *[%d]uint32)\n", N)
	fmt.Fprintf(&buf, "// Writes e after round 60 of the second hash for nonces nonce+0..%d.\n", N-1)
	text("shaniScan", frame, 24, N)
	p("MOVQ p+0(FP), DI")
	p("MOVQ out+16(FP), SI")
	// Per-stream state: roles swap after every SHA256RNDS2.
	abef := make([]string, N)
	cdgh := make([]string, N)
	for s := 0; s < N; s++ {
		abef[s] = fmt.Sprintf("X%d", 1+2*s)
		cdgh[s] = fmt.Sprintf("X%d", 2+2*s)
	}
	tmp := func(i int) string { return fmt.Sprintf("X%d", 1+2*N+i) } // 16-1-2N temps
	stack := func(s, q int) string { return fmt.Sprintf("%d(SP)", (s*16+q)*16) }
	rnds := func(s int) {
		p("SHA256RNDS2 X0, %s, %s", abef[s], cdgh[s])
		abef[s], cdgh[s] = cdgh[s], abef[s]
	}
	quad := func(s, q int, addr func(s, q int) string) {
		t0, t1, t2, t3 := tmp(0), tmp(1), tmp(2), tmp(3)
		p("MOVOU %s, %s", addr(s, q-4), t0)
		p("MOVOU %s, %s", addr(s, q-3), t1)
		p("SHA256MSG1 %s, %s", t1, t0)
		p("MOVOU %s, %s", addr(s, q-1), t2)
		p("MOVOU %s, %s", addr(s, q-2), t1)
		p("MOVO %s, %s", t2, t3)
		p("PALIGNR $4, %s, %s", t1, t3)
		p("PADDD %s, %s", t3, t0)
		p("SHA256MSG2 %s, %s", t2, t0)
		p("MOVOU %s, %s", t0, stack(s, q))
		p("MOVOU %s, X0", mem("K", 4*q))
		p("PADDD %s, X0", t0)
	}
	// First hash.
	for s := 0; s < N; s++ {
		p("MOVOU %s, %s", mem("NIR2", 0), abef[s])
		p("MOVOU %s, %s", mem("NIR2", 4), cdgh[s])
		p("MOVL nonce+8(FP), AX")
		if s > 0 {
			p("ADDL $%d, AX", s)
		}
		p("BSWAPL AX")
		p("MOVOU %s, %s", mem("NIQ", 0), tmp(0))
		p("PINSRD $3, AX, %s", tmp(0))
		p("MOVOU %s, %s", tmp(0), stack(s, 0))
		p("MOVOU %s, X0", mem("K", 0))
		p("PADDD %s, X0", tmp(0))
		p("PSHUFD $0x0e, X0, X0")
		rnds(s) // rounds 2,3
	}
	addr1 := func(s, q int) string {
		if q >= 1 && q <= 3 {
			return mem("NIQ", 4*q)
		}
		return stack(s, q)
	}
	for q := 1; q < 16; q++ {
		for s := 0; s < N; s++ {
			if q < 4 {
				p("MOVOU %s, X0", mem("NIKW1", 4*q))
			} else {
				quad(s, q, addr1)
			}
			rnds(s)
			p("PSHUFD $0x0e, X0, X0")
			rnds(s)
		}
	}
	// Feed-forward and reorder ABEF/CDGH into message words DCBA, HGFE.
	for s := 0; s < N; s++ {
		niFeedForward(mem("NIMid", 0), mem("NIMid", 4), abef[s], cdgh[s], tmp(0), stack(s, 0), stack(s, 1))
	}
	// Second hash.
	for s := 0; s < N; s++ {
		p("MOVOU %s, %s", mem("NIIV", 0), abef[s])
		p("MOVOU %s, %s", mem("NIIV", 4), cdgh[s])
	}
	addr2 := func(s, q int) string {
		if q == 2 || q == 3 {
			return mem("NIQ2", 4*q)
		}
		return stack(s, q)
	}
	for q := 0; q < 16; q++ {
		for s := 0; s < N; s++ {
			switch {
			case q < 2:
				// SSE memory operands must be 16-byte aligned; the Go
				// frame is not, so everything goes through registers.
				p("MOVOU %s, X0", mem("K", 4*q))
				p("MOVOU %s, %s", stack(s, q), tmp(0))
				p("PADDD %s, X0", tmp(0))
			case q < 4:
				p("MOVOU %s, X0", mem("NIKW2", 4*q))
			default:
				quad(s, q, addr2)
			}
			rnds(s)
			if q == 15 {
				// After rounds 60,61 the F lane holds e after round 60.
				p("PEXTRD $0, %s, AX", abef[s])
				p("MOVL AX, %d(SI)", 4*s)
				continue
			}
			p("PSHUFD $0x0e, X0, X0")
			rnds(s)
		}
	}
	p("RET")
}

func main() {
	dir := flag.String("dir", ".", "output directory")
	model := flag.Bool("model", false, "print the instruction counts and bounds of every kernel instead of writing files")
	flag.Parse()

	asm, lay, err := generate()
	if err != nil {
		log.Fatal(err)
	}
	if *model {
		writeModel(os.Stdout)
		return
	}
	if err := os.WriteFile(*dir+"/sha256_amd64.s", asm, 0o644); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*dir+"/layout.go", lay, 0o644); err != nil {
		log.Fatal(err)
	}
}

// generate returns sha256_amd64.s and layout.go, and leaves the kernels'
// counts in stats.
func generate() (asm, lay []byte, err error) {
	buf.Reset()
	stats, cur, mult = nil, nil, 1
	buf.WriteString("// Code generated by internal/gen; DO NOT EDIT.\n\n//go:build amd64 && !purego\n\n#include \"textflag.h\"\n")
	genAVX512Pair(false)
	genAVX512Pair(true)
	genZ("avx512R2", 1, 2, 32)
	genZ("avx512R4", 1, 4, 32)
	genZ("avx512R8", 1, 8, 32)
	genZ("avx512N32", 2, 1, 32)
	genZ("avx512R4s", 1, 4, 16)
	genZ("avx512N32s", 2, 1, 16)
	genAVX2()
	genAVX2R("avx2R2", 2)
	genAVX2R("avx2R4", 4)
	genSHANI()
	for _, n := range []int{2, 3, 4} {
		genSHANI2(fmt.Sprintf("shaniN%d", n), n, false)
		genSHANI2(fmt.Sprintf("shaniV%d", n), n, true)
	}
	asm = append([]byte(nil), buf.Bytes()...)

	buf.Reset()
	buf.WriteString("// Code generated by internal/gen; DO NOT EDIT.\n\npackage cpu\n\n// Word offsets into params, shared with the assembly.\nconst (\n")
	for _, f := range layout {
		name := "off" + f.name
		if f.name == "End" {
			name = "nParams"
		}
		fmt.Fprintf(&buf, "%s = %d\n", name, off[f.name])
	}
	buf.WriteString(")\n\n// niStreams is how many nonces one shaniScan call hashes.\n")
	fmt.Fprintf(&buf, "const niStreams = %d\n", niStreams)
	lay, err = format.Source(buf.Bytes())
	return asm, lay, err
}
