package miner_test

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"clminer/gpu/cpu"
	"clminer/gpu/opencl"
	"clminer/internal/testkit"
	"clminer/stratum"
	"clminer/stratum/pooltest"
	"clminer/work/device"
	"clminer/work/miner"
)

// realDevice is a production device for end-to-end tests, with the longest
// a new job may wait for it: a CPU batch is milliseconds; the OpenCL device
// has two batches queued, which a new job waits out, each tuned to within
// 1.5x of kernelMS.
type realDevice struct {
	name    string
	open    func(t *testing.T) device.Device
	maxWait time.Duration
}

const kernelMS = 50

var realDevices = []realDevice{
	{"cpu", func(t *testing.T) device.Device {
		d, err := cpu.New(cpu.Options{Threads: 2})
		require.NoError(t, err)
		return d
	}, 100 * time.Millisecond},
	{"opencl", openOpenCL, 3 * kernelMS * time.Millisecond},
}

// openOpenCL opens the first OpenCL device; with no OpenCL it skips, or
// fails under CLMINER_REQUIRE_OPENCL=1 (CI runs these on POCL).
func openOpenCL(t *testing.T) device.Device {
	ps, err := opencl.Platforms()
	for _, p := range ps {
		if len(p.Devices) > 0 {
			d, err := opencl.Open(p.Index, 0, opencl.Options{KernelMS: kernelMS})
			require.NoError(t, err)
			return d
		}
	}
	if os.Getenv("CLMINER_REQUIRE_OPENCL") == "1" {
		t.Fatalf("CLMINER_REQUIRE_OPENCL=1 but no OpenCL device: %v", err)
	}
	t.Skipf("no OpenCL device: %v", err)
	return nil
}

// TestRealDevicesEndToEnd mines with the production devices against the
// test pool: shares are accepted and re-verified by the pool, a clean job
// mid-batch moves the device within its batch budget, and nothing for the
// old job is submitted after the switch.
func TestRealDevicesEndToEnd(t *testing.T) {
	for _, rd := range realDevices {
		t.Run(rd.name, func(t *testing.T) {
			dev := rd.open(t)
			t.Cleanup(func() { require.NoError(t, dev.Close()) })
			const diff = 0.001 // about 20 shares/s at 90 MH/s
			pool := pooltest.Start(t, pooltest.Config{Difficulty: diff})
			r := startMiner(t, []stratum.PoolConfig{poolConf(pool)}, []device.Device{dev}, stratum.Options{})
			testkit.EventuallyWithin(t, 60*time.Second, func() bool { return pool.Stats().Accepted >= 5 }, "5 accepted shares")

			// Three new blocks, each sent while a batch is running.
			oldJobs := map[string]bool{}
			for range 3 {
				oldJob := pool.CurrentJob().JobID
				oldJobs[oldJob] = true
				before := r.m.Snapshot().NotifyLatency.Count
				newJob := pool.PushJob(true)
				testkit.Eventually(t, func() bool {
					s := r.m.Snapshot()
					return s.Job != nil && s.Job.ID == newJob && s.NotifyLatency.Count > before
				}, "the device on the new job")
				oldSubmits := countSubmits(pool, oldJob)
				testkit.EventuallyWithin(t, 60*time.Second, func() bool { return countSubmits(pool, newJob) >= 3 }, "3 shares on the new job")
				assert.Equal(t, oldSubmits, countSubmits(pool, oldJob), "nothing for the old job is submitted after the switch")
			}
			require.NoError(t, r.shutdown(t))

			snap := r.m.Snapshot()
			lat := snap.NotifyLatency
			// The budget plus a margin for -race and a 2-core CI machine that
			// runs other packages' tests at the same time.
			assert.Less(t, lat.Maxms, float64((rd.maxWait+400*time.Millisecond)/time.Millisecond), "notify-to-work latency %+v", lat)
			t.Logf("%s: %.1f MH/s, %d accepted, notify-to-work %+v", dev.Info().ID, snap.RateAvg/1e6, snap.Shares.Accepted, lat)

			st := pool.Stats()
			assert.Equal(t, uint64(st.Accepted), snap.Shares.Accepted, "the miner's count matches the pool's")
			// A share sent just before the clean notify reached the client is
			// a stale reject by the pool, as at real pools; nothing else is.
			assert.Equal(t, st.Rejected, st.Stale, "rejects other than stale: %+v", st)
			assert.Zero(t, snap.Shares.HWErrors)
			assert.Zero(t, snap.Shares.Lost)
			for _, sh := range pool.Shares() {
				assert.GreaterOrEqual(t, sh.Difficulty, diff, "the pool re-verified each share")
			}
			for _, ev := range r.rec.events() {
				if ev.Outcome == miner.Stale {
					assert.True(t, oldJobs[ev.JobID], "only old-job candidates are counted stale, not %s", ev.JobID)
				}
			}
		})
	}
}
