package miner_test

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"clminer/gpu/cpu"
	"clminer/internal/testkit"
	"clminer/stratum"
	"clminer/stratum/pooltest"
	"clminer/work/device"
	"clminer/work/miner"
)

// BenchmarkDifficultyRuleCredit measures what the difficulty rule of
// stratum/PROTOCOL.md#difficulty costs in credited work: the miner judges a job at the
// highest difficulty in force since the notify before it, so after a
// lowering it holds back shares that meet only the new value for one or two
// jobs. It mines with the CPU device against the test pool while vardiff
// moves between D and D/10 every 3 s, a job every second, and reports the
// credited work (accepted difficulty x 2^32) per hash done: 1 means nothing
// lost. "steady" is the same run without difficulty changes. Run with
// -benchtime 1x; each case mines for 30 s.
func BenchmarkDifficultyRuleCredit(b *testing.B) {
	const d = 0.002 // about 20 shares/s at 90 MH/s
	for _, tc := range []struct {
		name string
		rule pooltest.DiffRule
		vary bool
	}{
		{"steady", pooltest.DiffCkpool, false},
		{"ckpool", pooltest.DiffCkpool, true},
		{"public-pool", pooltest.DiffImmediate, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			pool := pooltest.Start(b, pooltest.Config{Difficulty: d, Behavior: pooltest.Behavior{DiffRule: tc.rule}})
			dev, err := cpu.New(cpu.Options{})
			require.NoError(b, err)
			defer dev.Close()
			r := startMiner(b, []stratum.PoolConfig{poolConf(pool)}, []device.Device{dev}, stratum.Options{})
			testkit.EventuallyWithin(b, 30*time.Second, func() bool { return pool.Stats().Accepted > 0 }, "first share")
			s0 := r.m.Snapshot()
			t0 := time.Now()
			tick := time.NewTicker(time.Second)
			for i := 1; time.Since(t0) < 30*time.Second; i++ {
				<-tick.C
				if tc.vary && i%3 == 0 {
					pool.SetDifficulty(map[bool]float64{true: d / 10, false: d}[i%6 == 3])
				}
				pool.PushJob(i%10 == 0)
			}
			tick.Stop()
			s1, t1 := r.m.Snapshot(), time.Now()
			require.NoError(b, r.shutdown(b))
			credit := (s1.Shares.AcceptedDiff - s0.Shares.AcceptedDiff) * (1 << 32)
			hashes := float64(s1.Hashes - s0.Hashes)
			n := float64(s1.Shares.Accepted - s0.Shares.Accepted)
			// The error of credited work is that of a sum of shares of mixed
			// difficulty: sqrt(sum d^2) / sum d, not 1/sqrt(N).
			var sum, sum2 float64
			for _, ev := range r.rec.events() {
				if ev.Outcome == miner.Accepted && !ev.Time.Before(t0) && ev.Time.Before(t1) {
					sum += ev.PoolDiff
					sum2 += ev.PoolDiff * ev.PoolDiff
				}
			}
			rel := math.Sqrt(sum2) / sum
			low := 0
			for _, rj := range pool.Rejects() {
				if strings.HasPrefix(rj.Reason, "Low difficulty") {
					low++
				}
			}
			b.ReportMetric(credit/hashes, "credit/hash")
			b.ReportMetric(rel, "±rel")
			b.ReportMetric(n, "accepted")
			b.ReportMetric(float64(low), "lowdiff_rejects")
			b.ReportMetric(float64(s1.Shares.BelowTarget-s0.Shares.BelowTarget), "below_target")
			fmt.Printf("%s: accepted %d rejected %d (low difficulty %d) below_target %d credit/hash %.4f ±%.3f\n", tc.name,
				s1.Shares.Accepted-s0.Shares.Accepted, s1.Shares.Rejected-s0.Shares.Rejected, low,
				s1.Shares.BelowTarget-s0.Shares.BelowTarget, credit/hashes, rel)
		})
	}
}
