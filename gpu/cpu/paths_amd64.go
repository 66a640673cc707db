//go:build amd64 && !purego

package cpu

import (
	"math/bits"
	"strings"

	"golang.org/x/sys/cpu"
)

// Implemented in sha256_amd64.s (generated) and cpuid_amd64.s.
//
// The avx512 kernels return a mask of the lanes that pass the top-word
// test, 16 bits per chain of 16 nonces: bit 16*v+j is version v (or, for
// the one-version kernels, block v), nonce+j.
//
// avx512Scan2 and avx512Scan32 are the forms tuned on a Zen 5 (the round
// adds d+h+K+W before e is ready, so e's path is one add shorter);
// avx512R2, avx512R4 and avx512N32 run fewer instructions per hash (see
// internal/gen/zv3.go).

//go:noescape
func avx512Scan2(ps *[2]*params, nonce uint32) uint64

//go:noescape
func avx512Scan32(p *params, nonce uint32) uint32

//go:noescape
func avx512R2(ps *[2]*params, nonce uint32, out *[1]uint32)

//go:noescape
func avx512R4(ps *[4]*params, nonce uint32, out *[2]uint32)

//go:noescape
func avx512R8(ps *[8]*params, nonce uint32, out *[4]uint32)

//go:noescape
func avx512N32(p *params, nonce uint32) uint32

//go:noescape
func avx512R4s(ps *[4]*params, nonce uint32, out *[2]uint32)

//go:noescape
func avx512N32s(p *params, nonce uint32) uint32

//go:noescape
func avx2Scan(p *params, nonce uint32) uint32

// avx2R2 and avx2R4 hash 8 nonces as 2 or 4 rolled versions, the first
// hash's schedule computed once for all, and leave version v's lane mask in
// out[v].

//go:noescape
func avx2R2(ps *[2]*params, nonce uint32, out *[2]uint32)

//go:noescape
func avx2R4(ps *[4]*params, nonce uint32, out *[4]uint32)

//go:noescape
func shaniScan(p *params, nonce uint32, out *[niStreams]uint32)

// The shaniN and shaniV kernels (internal/gen/shani2.go) hash N nonces of
// p[0]'s unit, or nonce for the N rolled versions p[0..N-1], and leave e
// after round 60 of each in out.

//go:noescape
func shaniN2(p *[2]*params, nonce uint32, out *[2]uint32)

//go:noescape
func shaniV2(p *[2]*params, nonce uint32, out *[2]uint32)

//go:noescape
func shaniN3(p *[3]*params, nonce uint32, out *[3]uint32)

//go:noescape
func shaniV3(p *[3]*params, nonce uint32, out *[3]uint32)

//go:noescape
func shaniN4(p *[4]*params, nonce uint32, out *[4]uint32)

//go:noescape
func shaniV4(p *[4]*params, nonce uint32, out *[4]uint32)

func cpuid(leaf, sub uint32) (a, b, c, d uint32)

// spin runs 24n cycles of dependent IMULQ (3 cycles each, on every x86
// core since Sandy Bridge and Zen): the clock reference BenchmarkCycles
// turns kernel times into cycles per hash with.
func spin(n uint64)

// hasSHANI reads CPUID leaf 7 EBX bit 29 directly: golang.org/x/sys/cpu
// does not expose the SHA extensions on x86. The instructions use only XMM
// registers, which every amd64 OS saves, so no XCR0 check is needed.
func hasSHANI() bool {
	if max, _, _, _ := cpuid(0, 0); max < 7 {
		return false
	}
	_, b, _, _ := cpuid(7, 0)
	return b&(1<<29) != 0 && cpu.X86.HasSSE41 && cpu.X86.HasSSSE3
}

// archPaths lists the assembly paths, in the order preferred where they
// measure alike, each with its shapes.
func archPaths() []path {
	one := func(pa, name string, lanes, width uint32, k func(*params, uint32) uint32) shape {
		return shape{path: pa, name: name, lanes: int(lanes), versions: 1, scan: func(p *params, start, n uint32, found func(uint32)) {
			eachCandidate(start, n, width, 1, func(nonce uint32) uint64 { return uint64(k(p, nonce)) },
				func(_ int, nonce uint32) { found(nonce) })
		}}
	}
	// y8: an AVX2 kernel of versions rolled versions of 8 nonces, one lane
	// mask per version in out.
	y8 := func(name string, versions int, k func(ps []*params, nonce uint32, out []uint32)) shape {
		return shape{path: PathAVX2, name: name, lanes: 8, versions: versions, scanVersions: func(ps []*params, start, n uint32, found func(v int, nonce uint32)) {
			var out [4]uint32
			eachCandidate(start, n, 8, versions, func(nonce uint32) uint64 {
				k(ps, nonce, out[:versions])
				var m uint64
				for v, o := range out[:versions] {
					m |= uint64(o) << (8 * v)
				}
				return m
			}, found)
		}}
	}
	z2 := func(k func(*[2]*params, uint32) uint64) versionsKernel {
		return func(ps []*params, start, n uint32, found func(v int, nonce uint32)) {
			a := (*[2]*params)(ps)
			eachCandidate(start, n, 16, 2, func(nonce uint32) uint64 { return k(a, nonce) }, found)
		}
	}
	return []path{
		{name: PathAVX512, chunk: fastChunk, ok: func() bool {
			// x/sys/cpu only reports AVX-512 when the OS saves ZMM state.
			return cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW
		},
			single: []shape{
				one(PathAVX512, "n32", 32, 32, avx512N32),
				one(PathAVX512, "n32-small", 32, 32, avx512N32s),
				one(PathAVX512, "n32-latency", 32, 32, avx512Scan32),
			},
			multi: []shape{
				{path: PathAVX512, name: "r8", lanes: 16, versions: 8, scanVersions: func(ps []*params, start, n uint32, found func(v int, nonce uint32)) {
					var out [4]uint32
					eachPair(start, n, out[:], func(nonce uint32) { avx512R8((*[8]*params)(ps), nonce, &out) }, found)
				}},
				{path: PathAVX512, name: "r4", lanes: 16, versions: 4, scanVersions: func(ps []*params, start, n uint32, found func(v int, nonce uint32)) {
					var out [2]uint32
					eachPair(start, n, out[:], func(nonce uint32) { avx512R4((*[4]*params)(ps), nonce, &out) }, found)
				}},
				{path: PathAVX512, name: "r4-small", lanes: 16, versions: 4, scanVersions: func(ps []*params, start, n uint32, found func(v int, nonce uint32)) {
					var out [2]uint32
					eachPair(start, n, out[:], func(nonce uint32) { avx512R4s((*[4]*params)(ps), nonce, &out) }, found)
				}},
				{path: PathAVX512, name: "r2", lanes: 16, versions: 2, scanVersions: func(ps []*params, start, n uint32, found func(v int, nonce uint32)) {
					var out [1]uint32
					eachPair(start, n, out[:], func(nonce uint32) { avx512R2((*[2]*params)(ps), nonce, &out) }, found)
				}},
				{path: PathAVX512, name: "r2-latency", lanes: 16, versions: 2, scanVersions: z2(avx512Scan2)},
			},
		},
		{name: PathSHANI, chunk: fastChunk, ok: hasSHANI,
			single: []shape{
				niN("n2", 2, func(p *params, n uint32, out []uint32) { shaniN2(&[2]*params{p}, n, (*[2]uint32)(out)) }),
				niN("n3", 3, func(p *params, n uint32, out []uint32) { shaniN3(&[3]*params{p}, n, (*[3]uint32)(out)) }),
				niN("n4", 4, func(p *params, n uint32, out []uint32) { shaniN4(&[4]*params{p}, n, (*[4]uint32)(out)) }),
				{path: PathSHANI, name: "n4-62", lanes: niStreams, versions: 1, scan: scanSHANI, e60: func(ps []*params, nonce uint32, out []uint32) {
					shaniScan(ps[0], nonce, (*[niStreams]uint32)(out))
				}},
			},
			multi: []shape{
				niV("v2", 2, func(ps []*params, n uint32, out []uint32) { shaniV2((*[2]*params)(ps), n, (*[2]uint32)(out)) }),
				niV("v3", 3, func(ps []*params, n uint32, out []uint32) { shaniV3((*[3]*params)(ps), n, (*[3]uint32)(out)) }),
				niV("v4", 4, func(ps []*params, n uint32, out []uint32) { shaniV4((*[4]*params)(ps), n, (*[4]uint32)(out)) }),
			},
		},
		{name: PathAVX2, chunk: fastChunk, ok: func() bool { return cpu.X86.HasAVX2 },
			single: []shape{one(PathAVX2, "n8", 8, 8, avx2Scan)},
			multi: []shape{
				y8("r4", 4, func(ps []*params, n uint32, out []uint32) { avx2R4((*[4]*params)(ps), n, (*[4]uint32)(out)) }),
				y8("r2", 2, func(ps []*params, n uint32, out []uint32) { avx2R2((*[2]*params)(ps), n, (*[2]uint32)(out)) }),
			},
		},
	}
}

// eachCandidate walks [start, start+n) in blocks of width nonces. scan
// hashes the block from its first nonce and returns a mask of width bits
// per version (version v's lanes from bit v*width); found gets every set
// bit of a lane that was asked for. Lanes past the end may have wrapped
// past 2^32 and are dropped.
func eachCandidate(start, n, width uint32, versions int, scan func(nonce uint32) uint64, found func(v int, nonce uint32)) {
	for i := uint32(0); i < n; i += width {
		m := scan(start + i)
		if m == 0 {
			continue
		}
		if left := n - i; left < width {
			keep := uint64(1)<<left - 1
			var all uint64
			for v := range versions {
				all |= keep << (width * uint32(v))
			}
			m &= all
		}
		for ; m != 0; m &= m - 1 {
			b := uint32(bits.TrailingZeros64(m))
			found(int(b/width), start+i+b%width)
		}
	}
}

// eachPair walks [start, start+n) in blocks of 16 nonces, for kernels that
// hash pairs of rolled versions: scan hashes the block from its first nonce
// and leaves in out[q] the mask of versions 2q and 2q+1 (16 bits each).
func eachPair(start, n uint32, out []uint32, scan func(nonce uint32), found func(v int, nonce uint32)) {
	for i := uint32(0); i < n; i += 16 {
		scan(start + i)
		for q, m32 := range out {
			if m32 == 0 {
				continue
			}
			m := uint64(m32)
			if left := n - i; left < 16 {
				keep := uint64(1)<<left - 1
				m &= keep | keep<<16
			}
			for ; m != 0; m &= m - 1 {
				b := uint32(bits.TrailingZeros64(m))
				found(2*q+int(b/16), start+i+b%16)
			}
		}
	}
}

// niN is a SHA-NI shape of streams nonces side by side; k leaves e after
// round 60 of each nonce in out.
func niN(name string, streams int, k func(p *params, nonce uint32, out []uint32)) shape {
	e60 := func(ps []*params, nonce uint32, out []uint32) { k(ps[0], nonce, out) }
	return shape{path: PathSHANI, name: name, lanes: streams, versions: 1, e60: e60, scan: func(p *params, start, n uint32, found func(uint32)) {
		out := make([]uint32, streams)
		for i := uint32(0); i < n; i += uint32(streams) {
			k(p, start+i, out)
			for j := uint32(0); j < uint32(streams) && j < n-i; j++ {
				if pass(p, out[j]) {
					found(start + i + j)
				}
			}
		}
	}}
}

// niV is a SHA-NI shape of one nonce for versions rolled versions.
func niV(name string, versions int, k func(ps []*params, nonce uint32, out []uint32)) shape {
	return shape{path: PathSHANI, name: name, lanes: 1, versions: versions, e60: k, scanVersions: func(ps []*params, start, n uint32, found func(v int, nonce uint32)) {
		out := make([]uint32, versions)
		for i := uint32(0); i < n; i++ {
			k(ps, start+i, out)
			for v, e := range out {
				if pass(ps[v], e) {
					found(v, start+i)
				}
			}
		}
	}}
}

func scanSHANI(p *params, start, n uint32, found func(uint32)) {
	var out [niStreams]uint32
	for i := uint32(0); i < n; i += niStreams {
		shaniScan(p, start+i, &out)
		for j := uint32(0); j < niStreams && j < n-i; j++ {
			if pass(p, out[j]) {
				found(start + i + j)
			}
		}
	}
}

// modelName reads the CPUID brand string, which costs nothing and needs no
// /proc.
func modelName() string {
	if max, _, _, _ := cpuid(0x80000000, 0); max < 0x80000004 {
		return "CPU"
	}
	var b []byte
	for leaf := uint32(0x80000002); leaf <= 0x80000004; leaf++ {
		a, bx, c, d := cpuid(leaf, 0)
		for _, r := range []uint32{a, bx, c, d} {
			b = append(b, byte(r), byte(r>>8), byte(r>>16), byte(r>>24))
		}
	}
	s := strings.TrimSpace(strings.TrimRight(string(b), "\x00"))
	if s == "" {
		return "CPU"
	}
	return s
}
