package cpu

import (
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"runtime"
	"strconv"
	"syscall"
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

// BenchmarkSweep runs each path's kernel on one goroutine over a batch of
// 4096 nonces per op, so ns/op divided by 4096 is the time per hash.
func BenchmarkSweep(b *testing.B) {
	const batch = 4096
	u := gputest.RandomUnit(rand.New(rand.NewPCG(1, 2)), 0)
	p := newParams(u)
	for _, pa := range paths() {
		b.Run(pa.name, func(b *testing.B) {
			found := func(uint32) {}
			b.ReportAllocs()
			var nonce uint32
			for b.Loop() {
				pa.scan(p, nonce, batch, found)
				nonce += batch
			}
			b.ReportMetric(float64(b.N)*batch/b.Elapsed().Seconds()/1e6, "MH/s")
		})
	}
}

// BenchmarkSweepVersions compares each multi-version kernel with its path's
// single-version one on one goroutine: 4096 nonces per op, every version
// counted in MH/s.
func BenchmarkSweepVersions(b *testing.B) {
	const batch = 4096
	u := gputest.RandomUnit(rand.New(rand.NewPCG(1, 2)), 0)
	for _, pa := range paths() {
		if len(pa.multi) == 0 {
			continue
		}
		for _, nv := range []int{1, 2, 4} {
			b.Run(pa.name+"/v"+strconv.Itoa(nv), func(b *testing.B) {
				units := gputest.RandomVersions(u, nv)
				p := newParams(units[0])
				var vs []uint32
				for _, v := range units {
					vs = append(vs, versionParams(newParams(v))...)
				}
				var nonce uint32
				// Per CPU-second of this thread: on a shared machine that
				// moves far less with other load than the wall-clock rate.
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				cpu0 := threadCPU()
				for b.Loop() {
					if nv == 1 {
						pa.scan(p, nonce, batch, func(uint32) {})
					} else {
						pa.multi[nv](p, vs, nonce, batch, func(int, uint32) {})
					}
					nonce += batch
				}
				hashes := float64(b.N) * batch * float64(nv)
				b.ReportMetric(hashes/b.Elapsed().Seconds()/1e6, "MH/s")
				if cpu := threadCPU() - cpu0; cpu > 0 {
					b.ReportMetric(hashes/cpu.Seconds()/1e6, "MH/cpu-s")
				}
			})
		}
	}
}

// threadCPU is the user+system time of the calling OS thread.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
