package cpu

import (
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"clminer/gpu/gputest"
)

// BenchmarkNaive is the baseline the kernels are measured against: Go's
// crypto/sha256 (itself SHA-NI accelerated where available) hashing the
// whole 80-byte header twice per nonce, on one goroutine.
func BenchmarkNaive(b *testing.B) {
	u := gputest.RandomUnit(rand.New(rand.NewPCG(1, 2)), 0)
	h := u.Header
	var sink byte
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		binary.LittleEndian.PutUint32(h[76:], uint32(i))
		first := sha256.Sum256(h[:])
		second := sha256.Sum256(first[:])
		sink ^= second[31]
	}
	_ = sink
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/1e6, "MH/s")
}

// BenchmarkSweep runs each one-version shape on one goroutine over a batch
// of 4096 nonces per op, so ns/op divided by 4096 is the time per hash.
func BenchmarkSweep(b *testing.B) {
	const batch = 4096
	u := gputest.RandomUnit(rand.New(rand.NewPCG(1, 2)), 0)
	p := newParams(u)
	for _, pa := range shapes(false) {
		b.Run(pa.path+"/"+pa.name, func(b *testing.B) {
			found := func(uint32) {}
			b.ReportAllocs()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			cpu0 := threadCPU()
			var nonce uint32
			for b.Loop() {
				pa.scan(p, nonce, batch, found)
				nonce += batch
			}
			reportRates(b, float64(b.N)*batch, threadCPU()-cpu0)
		})
	}
}

// BenchmarkSweepVersions runs each multi-version shape on one goroutine
// over the same 4096 nonces per op as BenchmarkSweep, counting every
// version hashed, as a pool that rolls versions has the device do.
func BenchmarkSweepVersions(b *testing.B) {
	const batch = 4096
	for _, pa := range shapes(true) {
		b.Run(pa.path+"/"+pa.name, func(b *testing.B) {
			units := gputest.RolledVersions(gputest.RandomUnit(rand.New(rand.NewPCG(1, 2)), 0), pa.versions)
			ps := make([]*params, len(units))
			for i, u := range units {
				ps[i] = newParams(u)
			}
			found := func(int, uint32) {}
			b.ReportAllocs()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			cpu0 := threadCPU()
			var nonce uint32
			for b.Loop() {
				pa.scanVersions(ps, nonce, batch, found)
				nonce += batch
			}
			reportRates(b, float64(b.N)*batch*float64(pa.versions), threadCPU()-cpu0)
		})
	}
}

// reportRates reports hashes per wall second and, where the thread's CPU
// time is known, per CPU second of the benchmark's thread.
func reportRates(b *testing.B, hashes float64, cpu time.Duration) {
	b.ReportMetric(hashes/b.Elapsed().Seconds()/1e6, "MH/s")
	if cpu > 0 {
		b.ReportMetric(hashes/cpu.Seconds()/1e6, "MH/cpu-s")
	}
}
