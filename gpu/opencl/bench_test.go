package opencl

import (
	"context"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"clminer/gpu/gputest"
	"clminer/work/device"
)

// BenchmarkSweep reports the hash rate per vector width, with the batch
// autotuned to the default 50 ms as in production.
func BenchmarkSweep(b *testing.B) {
	for _, vw := range []int{1, 2, 4, 8, 16} {
		b.Run("vec"+itoa(vw), func(b *testing.B) { benchSweep(b, Options{VectorWidth: vw}) })
	}
}

// BenchmarkWorkGroup compares work-group sizes at the preferred width.
func BenchmarkWorkGroup(b *testing.B) {
	for _, wg := range []int{1, 4, 16, 64} {
		b.Run("wg"+itoa(wg), func(b *testing.B) { benchSweep(b, Options{WorkGroup: wg}) })
	}
}

// BenchmarkSweepVersions compares the single-version kernel (v1) with the
// multi-version one (v2, v4) per vector width and Maj shape, counting every
// version hashed, as `clminer bench --version-rolling` does.
func BenchmarkSweepVersions(b *testing.B) {
	for _, vw := range []int{16, 8, 4, 1} {
		for _, k := range []int{1, 2, 4} {
			for _, maj := range []string{MajMerge, MajLOP3} {
				name := "vec" + itoa(vw) + "/v" + itoa(k) + "/" + maj
				b.Run(name, func(b *testing.B) { benchSweep(b, Options{VectorWidth: vw, Versions: max(k, 2), Maj: maj}, k) })
			}
		}
	}
}

func benchSweep(b *testing.B, opts Options, versions ...int) {
	dev := openTest(b, opts)
	u := gputest.RandomUnit(rand.New(rand.NewPCG(9, 9)), 0)
	s := device.Sweep{Unit: u}
	if len(versions) > 0 && versions[0] > 1 {
		s.Units = gputest.RolledVersions(u, versions[0])
		s.FoundVersion = func(int, uint32) {}
	}
	// Let the sweep-time tuning settle (and POCL's first-launch compile of
	// the kernel run) before measuring.
	s.Count = 4 << dev.BatchLog()
	if _, err := dev.Sweep(context.Background(), s); err != nil {
		b.Fatal(err)
	}
	count := uint64(4) << dev.BatchLog() / uint64(max(len(s.Units), 1))
	var hashes uint64
	b.ResetTimer()
	cpu0 := cpuTime()
	t0 := time.Now()
	for i := 0; i < b.N; i++ {
		start := uint32(uint64(i) * count)
		s.Start, s.Count = start, min(count, 1<<32-uint64(start))
		res, err := dev.Sweep(context.Background(), s)
		if err != nil {
			b.Fatal(err)
		}
		hashes += res.Hashes
	}
	el := time.Since(t0)
	cpu := cpuTime() - cpu0
	b.ReportMetric(float64(hashes)/el.Seconds()/1e6, "MH/s")
	b.ReportMetric(float64(dev.BatchLog()), "batch_log2")
	// Per CPU-second of the runtime's threads: on a shared machine this
	// moves far less with other load than the wall-clock rate does.
	if cpu > 0 {
		b.ReportMetric(float64(hashes)/cpu.Seconds()/1e6, "MH/cpu-s")
	}
}

// cpuTime is the user+system time of this process, POCL's threads included.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
