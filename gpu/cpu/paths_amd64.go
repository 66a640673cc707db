//go:build amd64 && !purego

package cpu

import (
	"math/bits"
	"strings"

	"golang.org/x/sys/cpu"
)

// Implemented in sha256_amd64.s (generated) and cpuid_amd64.s.
//
// avx512Scan2 hashes zVersions rolled versions of 16 nonces: ps holds
// each version's params (the same tail, so the same shared tables).
//
//go:noescape
func avx512Scan2(ps *[zVersions]*params, nonce uint32) uint64

// avx512Scan32 hashes 32 consecutive nonces of one unit as two
// interleaved 16-lane chains.
//
//go:noescape
func avx512Scan32(p *params, nonce uint32) uint32

//go:noescape
func avx2Scan(p *params, nonce uint32) uint32

//go:noescape
func shaniScan(p *params, nonce uint32, out *[niStreams]uint32)

func cpuid(leaf, sub uint32) (a, b, c, d uint32)

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

// archPaths lists the assembly paths, fastest first on the CPUs measured
// (see the package benchmarks).
func archPaths() []path {
	return []path{
		{name: PathAVX512, lanes: 32, scan: scanAVX512x2, chunk: fastChunk, versions: zVersions, scanVersions: scanAVX512Versions, ok: func() bool {
			// x/sys/cpu only reports AVX-512 when the OS saves ZMM state.
			return cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW
		}},
		{name: PathSHANI, lanes: niStreams, scan: scanSHANI, chunk: fastChunk, ok: hasSHANI},
		{name: PathAVX2, lanes: 8, scan: scanAVX2, chunk: fastChunk, ok: func() bool { return cpu.X86.HasAVX2 }},
	}
}

// scanAVX512Versions tests nonces [start, start+n) of every version in ps.
func scanAVX512Versions(ps *[zVersions]*params, start, n uint32, found func(v int, nonce uint32)) {
	eachCandidate(start, n, zLanes, zVersions, func(nonce uint32) uint64 { return avx512Scan2(ps, nonce) }, found)
}

func scanAVX512x2(p *params, start, n uint32, found func(uint32)) {
	eachCandidate(start, n, 32, 1, func(nonce uint32) uint64 { return uint64(avx512Scan32(p, nonce)) },
		func(_ int, nonce uint32) { found(nonce) })
}

func scanAVX2(p *params, start, n uint32, found func(uint32)) {
	eachCandidate(start, n, 8, 1, func(nonce uint32) uint64 { return uint64(avx2Scan(p, nonce)) },
		func(_ int, nonce uint32) { found(nonce) })
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
