package miner_test

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/charmbracelet/log"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"clminer/gpu/gputest"
	"clminer/internal/testkit"
	"clminer/stratum"
	"clminer/stratum/pooltest"
	"clminer/work"
	"clminer/work/device"
	"clminer/work/miner"
	"clminer/work/retry"
	"clminer/work/source"
	"clminer/work/sourcetest"
)

func TestMain(m *testing.M) {
	if os.Getenv(servePoolEnv) != "" {
		servePool()
		return
	}
	goleak.VerifyTestMain(m)
}

// recorder is a miner.Observer keeping every share event.
type recorder struct {
	mu     sync.Mutex
	shares []miner.ShareEvent
}

func (r *recorder) Share(ev miner.ShareEvent) {
	r.mu.Lock()
	r.shares = append(r.shares, ev)
	r.mu.Unlock()
}
func (r *recorder) NotifyLatency(string, time.Duration) {}
func (r *recorder) PoolEvent(source.Event)              {}

func (r *recorder) events() []miner.ShareEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]miner.ShareEvent(nil), r.shares...)
}

type run struct {
	m    *miner.Miner
	rec  *recorder
	stop context.CancelFunc
	done chan error
}

func startMiner(t testing.TB, pools []stratum.PoolConfig, devs []device.Device, opts stratum.Options) *run {
	t.Helper()
	if opts.Retry == (retry.Backoff{}) {
		opts.Retry = retry.Backoff{Initial: 50 * time.Millisecond, Max: 200 * time.Millisecond}
	}
	client, err := stratum.NewClient(pools, opts)
	require.NoError(t, err)
	return startMinerOn(t, client, devs...)
}

// startScripted runs a miner over a scripted source with one job of
// upstream 0 at pooltest.LowDiff, rolling versions: for the tests of the
// miner's own accounting, which the protocol would only slow down and make
// a matter of timing.
func startScripted(t testing.TB, src *sourcetest.Source, devs ...device.Device) *run {
	t.Helper()
	src.MustJob(sourcetest.JobSpec{Difficulty: pooltest.LowDiff, RollingMask: work.BIP320Mask})
	return startMinerOn(t, src, devs...)
}

// startMinerOn runs a miner over src, stopped at cleanup.
func startMinerOn(t testing.TB, src source.Source, devs ...device.Device) *run {
	t.Helper()
	rec := &recorder{}
	m, err := miner.New(miner.Config{Source: src, Devices: devs, Observer: rec,
		Logger: log.New(io.Discard), DrainTimeout: 3 * time.Second})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	r := &run{m: m, rec: rec, stop: cancel, done: make(chan error, 1)}
	go func() { r.done <- m.Run(ctx) }()
	t.Cleanup(func() { r.shutdown(t) })
	return r
}

func (r *run) shutdown(t testing.TB) error {
	t.Helper()
	r.stop()
	select {
	case err, ok := <-r.done:
		if ok {
			close(r.done)
		}
		return err
	case <-time.After(15 * time.Second):
		t.Fatal("miner did not stop")
		return nil
	}
}

func poolConf(p *pooltest.Server) stratum.PoolConfig {
	return stratum.PoolConfig{URL: p.URL(), User: "wallet.rig1", Pass: "x", VersionRolling: true}
}

func TestSharesAcceptedEndToEnd(t *testing.T) {
	pool := pooltest.Start(t, pooltest.Config{})
	r := startMiner(t, []stratum.PoolConfig{poolConf(pool)}, []device.Device{&gputest.Device{}}, stratum.Options{})
	testkit.EventuallyWithin(t, 30*time.Second, func() bool { return pool.Stats().Accepted >= 5 }, "5 accepted shares")
	require.NoError(t, r.shutdown(t))

	snap := r.m.Snapshot()
	st := pool.Stats()
	assert.Equal(t, uint64(st.Accepted), snap.Shares.Accepted, "the miner's count matches the pool's")
	assert.Zero(t, st.Rejected)
	assert.Zero(t, snap.Shares.HWErrors)
	assert.Zero(t, snap.Shares.Lost)
	assert.Positive(t, snap.Hashes)
	for _, sh := range pool.Shares() {
		assert.GreaterOrEqual(t, sh.Difficulty, pooltest.LowDiff, "the pool re-verified each share")
		assert.Len(t, sh.Nonce, 8)
	}
}

func TestCleanJobSwitchesWithinOneBatch(t *testing.T) {
	pool := pooltest.Start(t, pooltest.Config{})
	devs := []device.Device{&gputest.Device{ID: "a"}, &gputest.Device{ID: "b"}}
	r := startMiner(t, []stratum.PoolConfig{poolConf(pool)}, devs, stratum.Options{})
	testkit.EventuallyWithin(t, 30*time.Second, func() bool { return pool.Stats().Accepted >= 2 }, "shares on the first job")
	oldJob := pool.CurrentJob().JobID

	newJob := pool.PushJob(true)
	testkit.Eventually(t, func() bool {
		s := r.m.Snapshot()
		return s.Job != nil && s.Job.ID == newJob && s.NotifyLatency.Count >= 4
	}, "the miner on the new job")
	oldSubmits := countSubmits(pool, oldJob)
	testkit.EventuallyWithin(t, 30*time.Second, func() bool { return countSubmits(pool, newJob) >= 2 }, "shares on the new job")
	assert.Equal(t, oldSubmits, countSubmits(pool, oldJob), "nothing for the old job is submitted after the switch")

	lat := r.m.Snapshot().NotifyLatency
	// One reference-device batch is 4096 nonces (a few ms); allow for -race
	// and a loaded 2-core machine.
	assert.Less(t, lat.Maxms, 500.0, "notify-to-work latency %+v", lat)
	for _, ev := range r.rec.events() {
		if ev.Outcome == miner.Stale {
			assert.Equal(t, oldJob, ev.JobID, "only old-job candidates are counted stale")
		}
	}
}

func countSubmits(pool *pooltest.Server, jobID string) int {
	n := 0
	for _, req := range pool.Requests() {
		if req.Method == "mining.submit" && containsJSONString(req.Params, jobID) {
			n++
		}
	}
	return n
}

func containsJSONString(raw []byte, s string) bool {
	return len(s) > 0 && strings.Contains(string(raw), `"`+s+`"`)
}

func TestWrongNoncesAreHardwareErrorsNeverSubmitted(t *testing.T) {
	src := sourcetest.New(1)
	r := startScripted(t, src, &gputest.Device{WrongEvery: 20000})
	testkit.EventuallyWithin(t, 30*time.Second, func() bool {
		s := r.m.Snapshot()
		return s.Shares.HWErrors >= 5 && s.Shares.Accepted >= 2
	}, "hardware errors and accepted shares")
	require.NoError(t, r.shutdown(t))
	sent := src.Sent()
	for _, sh := range sent {
		assert.True(t, sh.Valid, "no wrong nonce reached the pool: %+v", sh.Reply)
		assert.False(t, sh.Duplicate)
	}
	snap := r.m.Snapshot()
	assert.Equal(t, uint64(len(sent)), snap.Shares.Accepted, "every share sent was accepted and counted once")
	assert.Equal(t, snap.Shares.HWErrors, snap.Devices[0].Counts.HWErrors)
}

func TestFailoverAndReturnAfterHoldDown(t *testing.T) {
	primary := pooltest.Start(t, pooltest.Config{})
	backup := pooltest.Start(t, pooltest.Config{})
	addr := primary.Addr()
	pools := []stratum.PoolConfig{poolConf(primary), poolConf(backup)}
	r := startMiner(t, pools, []device.Device{&gputest.Device{}}, stratum.Options{
		HoldDown: 1500 * time.Millisecond, ReadTimeout: 3 * time.Second, DialTimeout: time.Second,
	})
	testkit.EventuallyWithin(t, 30*time.Second, func() bool { return primary.Stats().Accepted >= 2 }, "shares on the primary")

	primary.Close()
	died := time.Now()
	testkit.EventuallyWithin(t, 30*time.Second, func() bool { return backup.Stats().Accepted >= 1 }, "shares on the backup")
	switchTime := time.Since(died)
	t.Logf("primary dead to first accepted share on backup: %v", switchTime)
	testkit.Eventually(t, func() bool {
		s := r.m.Snapshot()
		return s.Job != nil && s.Job.Pool == backup.URL()
	}, "backup hashing")

	revived := pooltest.Start(t, pooltest.Config{Addr: addr})
	testkit.EventuallyWithin(t, 30*time.Second, func() bool { return revived.Stats().Accepted >= 1 }, "shares on the revived primary")
	require.NoError(t, r.shutdown(t))

	for _, p := range []*pooltest.Server{backup, revived} {
		st := p.Stats()
		assert.Zero(t, st.Rejected, "no share went to a pool that did not send its job")
		assert.Zero(t, st.Duplicate)
	}
	snap := r.m.Snapshot()
	assert.GreaterOrEqual(t, snap.Pools[1].Connects, uint64(1))
	assert.GreaterOrEqual(t, snap.Pools[0].Connects, uint64(2), "the primary was used again")
}

func TestSetExtranonceAndDifficultyMidRun(t *testing.T) {
	pool := pooltest.Start(t, pooltest.Config{Difficulty: 0.0001})
	r := startMiner(t, []stratum.PoolConfig{poolConf(pool)}, []device.Device{&gputest.Device{}}, stratum.Options{})
	testkit.EventuallyWithin(t, 30*time.Second, func() bool { return pool.Stats().Accepted >= 1 }, "shares")

	// A lower difficulty applies from the second job notified after it
	// (stratum/PROTOCOL.md#difficulty): shares between the two difficulties are then
	// submitted and accepted, and never on the jobs before.
	old := pool.CurrentJob().JobID
	pool.SetDifficulty(pooltest.LowDiff)
	next := pool.PushJob(false)
	lowered := pool.PushJob(false)
	testkit.EventuallyWithin(t, 30*time.Second, func() bool {
		for _, sh := range pool.Shares() {
			if sh.Difficulty < 0.0001 && sh.JobID == lowered {
				return true
			}
		}
		return false
	}, "low-difficulty shares")
	for _, sh := range pool.Shares() {
		if sh.JobID == old || sh.JobID == next {
			assert.GreaterOrEqual(t, sh.Difficulty, 0.0001, "job %s was judged at the old difficulty", sh.JobID)
		}
	}

	pool.SetExtranonce("a1b2c3d4e5", 3)
	job := pool.PushJob(true)
	testkit.EventuallyWithin(t, 30*time.Second, func() bool {
		for _, sh := range pool.Shares() {
			if sh.JobID == job {
				return len(sh.Extranonce2) == 6
			}
		}
		return false
	}, "shares under the new extranonce")
	require.NoError(t, r.shutdown(t))
	// A share in flight while the clean job is sent is stale on arrival;
	// anything else would be a wrong extranonce or difficulty.
	st := pool.Stats()
	assert.Equal(t, st.Stale, st.Rejected, "rejects: %+v", pool.Rejects())
}

func TestVersionRollingSharesCarrySixthParam(t *testing.T) {
	pool := pooltest.Start(t, pooltest.Config{})
	devs := []device.Device{&gputest.Device{ID: "a"}, &gputest.Device{ID: "b"}}
	r := startMiner(t, []stratum.PoolConfig{poolConf(pool)}, devs, stratum.Options{})
	testkit.EventuallyWithin(t, 30*time.Second, func() bool {
		for _, sh := range pool.Shares() {
			if sh.VersionBits != "" && sh.VersionBits != "00000000" {
				return true
			}
		}
		return false
	}, "rolled shares")
	require.NoError(t, r.shutdown(t))
	assert.Zero(t, pool.Stats().Rejected)
	for _, sh := range pool.Shares() {
		assert.Len(t, sh.VersionBits, 8, "every share carries version bits once rolling is negotiated")
	}
}

// A device hashing four rolled versions per nonce gets four units of the
// ledger per assignment; each share goes out with its own version's bits and
// the pool, which re-hashes it with them, accepts it.
func TestMultiVersionDeviceSharesCarryTheirVersion(t *testing.T) {
	pool := pooltest.Start(t, pooltest.Config{})
	devs := []device.Device{&gputest.Device{ID: "k4", MultiVersions: 4}}
	r := startMiner(t, []stratum.PoolConfig{poolConf(pool)}, devs, stratum.Options{})
	testkit.EventuallyWithin(t, 30*time.Second, func() bool {
		seen := map[string]bool{}
		for _, sh := range pool.Shares() {
			seen[sh.VersionBits] = true
		}
		return len(seen) >= 3
	}, "shares from three versions")
	require.NoError(t, r.shutdown(t))
	st := pool.Stats()
	assert.Zero(t, st.Rejected)
	assert.Equal(t, uint64(st.Accepted), r.m.Snapshot().Shares.Accepted)
	assert.Zero(t, r.m.Snapshot().Shares.HWErrors)
}

func TestShutdownAwaitsSharesInFlight(t *testing.T) {
	src := sourcetest.New(1)
	// Verdicts a round trip late, well inside the 3 s DrainTimeout: what is
	// modelled is elapsed time.
	src.Delay(700 * time.Millisecond)
	r := startScripted(t, src, &gputest.Device{})
	testkit.EventuallyWithin(t, 30*time.Second, func() bool { return src.Pending() >= 1 }, "a share awaiting its verdict")
	began := time.Now()
	err := r.shutdown(t)
	require.True(t, err == nil || errors.Is(err, context.Canceled), "%v", err)
	snap := r.m.Snapshot()
	sent := src.Sent()
	assert.Equal(t, uint64(len(sent)), snap.Shares.Accepted+snap.Shares.Rejected+snap.Shares.Lost, "every share sent got its verdict counted")
	assert.Zero(t, snap.Shares.Lost, "the drain waited for the delayed replies")
	for _, sh := range sent {
		assert.Equal(t, source.Accepted, sh.Reply.Kind)
	}
	assert.Less(t, time.Since(began), 5*time.Second)
}

// The per-pool accounting behind cgminer's POOLS fields: shares by pool,
// the jobs each sent, a pool that could not be reached counted as a
// failure to get work, the last share's pool, and rejects with the pool's
// reason in the recent list.
func TestPoolAccounting(t *testing.T) {
	src := sourcetest.New(2)
	src.Event(source.Event{Kind: source.EventDisconnected, Pool: 0, Err: errors.New("connection refused")})
	src.Script(sourcetest.Always(source.Rejected, "Job not found"))
	src.MustJob(sourcetest.JobSpec{Pool: 1, Difficulty: pooltest.LowDiff})
	r := startMinerOn(t, src, &gputest.Device{})
	testkit.EventuallyWithin(t, 30*time.Second, func() bool { return r.m.Snapshot().Shares.Rejected >= 2 }, "rejected shares on the second pool")
	require.NoError(t, r.shutdown(t))

	s := r.m.Snapshot()
	require.Len(t, s.Pools, 2)
	p0, p1 := s.Pools[0], s.Pools[1]
	assert.Equal(t, uint64(1), p0.ConnectFailures, "the dead pool got no work")
	assert.Zero(t, p0.Jobs)
	require.NotNil(t, p1.Shares)
	assert.Equal(t, s.Shares.Rejected, p1.Shares.Rejected, "every share was found on the second pool's jobs")
	assert.Equal(t, uint64(len(src.Sent())), s.Shares.Rejected, "every share sent was counted once")
	assert.Equal(t, s.Shares.RejectedDiff, p1.Shares.RejectedDiff)
	assert.Positive(t, p1.Shares.RejectedDiff)
	assert.Equal(t, uint64(1), p1.Jobs)
	assert.Equal(t, uint64(1), s.Jobs)
	assert.Equal(t, uint64(1), s.NetworkBlocks)
	assert.Positive(t, s.WorkUnits)
	assert.True(t, s.Shares.LastShare.IsZero(), "nothing was accepted")
	assert.False(t, s.Devices[0].Counts.LastValid.IsZero())
	require.NotEmpty(t, s.RecentRejects)
	assert.Equal(t, src.Upstreams()[1].URL, s.RecentRejects[0].Pool)
	assert.Equal(t, "Job not found", s.RecentRejects[0].Reason)
	assert.Equal(t, miner.Rejected, s.RecentRejects[0].Outcome)
}

// An accepted share is the device's and the pool's last share.
func TestLastShare(t *testing.T) {
	before := time.Now()
	r := startScripted(t, sourcetest.New(1), &gputest.Device{})
	testkit.EventuallyWithin(t, 30*time.Second, func() bool { return r.m.Snapshot().Shares.Accepted >= 1 }, "an accepted share")
	require.NoError(t, r.shutdown(t))
	s := r.m.Snapshot()
	for _, c := range []miner.Counts{s.Shares, s.Devices[0].Counts, *s.Pools[0].Shares} {
		assert.False(t, c.LastShare.Before(before))
		assert.Equal(t, 0, c.LastSharePool)
		assert.Equal(t, pooltest.LowDiff, c.LastShareDiff)
	}
	assert.Equal(t, s.Shares.Accepted, s.Pools[0].Shares.Accepted)
	assert.Equal(t, s.Shares.AcceptedDiff, s.Pools[0].Shares.AcceptedDiff)
}
