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
	"clminer/stratum"
	"clminer/stratum/pooltest"
	"clminer/work/device"
	"clminer/work/miner"
	"clminer/work/retry"
	"clminer/work/source"
)

func TestMain(m *testing.M) {
	if os.Getenv(servePoolEnv) != "" {
		servePool()
		return
	}
	goleak.VerifyTestMain(m)
}

// lowDiff gives the reference device (about 1 MH/s) several shares a second.
const lowDiff = 0.00002

func startPool(t testing.TB, cfg pooltest.Config) *pooltest.Server {
	t.Helper()
	if cfg.Difficulty == 0 {
		cfg.Difficulty = lowDiff
	}
	p := pooltest.New(cfg)
	require.NoError(t, p.Start())
	t.Cleanup(p.Close)
	return p
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
	rec := &recorder{}
	if opts.Retry == (retry.Backoff{}) {
		opts.Retry = retry.Backoff{Initial: 50 * time.Millisecond, Max: 200 * time.Millisecond}
	}
	client, err := stratum.NewClient(pools, opts)
	require.NoError(t, err)
	m, err := miner.New(miner.Config{Source: client, Devices: devs, Observer: rec,
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

func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSharesAcceptedEndToEnd(t *testing.T) {
	pool := startPool(t, pooltest.Config{})
	r := startMiner(t, []stratum.PoolConfig{poolConf(pool)}, []device.Device{&gputest.Device{}}, stratum.Options{})
	waitFor(t, 30*time.Second, "5 accepted shares", func() bool { return pool.Stats().Accepted >= 5 })
	require.NoError(t, r.shutdown(t))

	snap := r.m.Snapshot()
	st := pool.Stats()
	assert.Equal(t, uint64(st.Accepted), snap.Shares.Accepted, "the miner's count matches the pool's")
	assert.Zero(t, st.Rejected)
	assert.Zero(t, snap.Shares.HWErrors)
	assert.Zero(t, snap.Shares.Lost)
	assert.Positive(t, snap.Hashes)
	for _, sh := range pool.Shares() {
		assert.GreaterOrEqual(t, sh.Difficulty, lowDiff, "the pool re-verified each share")
		assert.Len(t, sh.Nonce, 8)
	}
}

func TestCleanJobSwitchesWithinOneBatch(t *testing.T) {
	pool := startPool(t, pooltest.Config{})
	devs := []device.Device{&gputest.Device{ID: "a"}, &gputest.Device{ID: "b"}}
	r := startMiner(t, []stratum.PoolConfig{poolConf(pool)}, devs, stratum.Options{})
	waitFor(t, 30*time.Second, "shares on the first job", func() bool { return pool.Stats().Accepted >= 2 })
	oldJob := pool.CurrentJob().JobID

	newJob := pool.PushJob(true)
	waitFor(t, 10*time.Second, "the miner on the new job", func() bool {
		s := r.m.Snapshot()
		return s.Job != nil && s.Job.ID == newJob && s.NotifyLatency.Count >= 4
	})
	oldSubmits := countSubmits(pool, oldJob)
	waitFor(t, 30*time.Second, "shares on the new job", func() bool { return countSubmits(pool, newJob) >= 2 })
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
	pool := startPool(t, pooltest.Config{})
	r := startMiner(t, []stratum.PoolConfig{poolConf(pool)}, []device.Device{&gputest.Device{WrongEvery: 20000}}, stratum.Options{})
	waitFor(t, 30*time.Second, "hardware errors and accepted shares", func() bool {
		s := r.m.Snapshot()
		return s.Shares.HWErrors >= 5 && s.Shares.Accepted >= 2
	})
	require.NoError(t, r.shutdown(t))
	assert.Zero(t, pool.Stats().Rejected, "no wrong nonce reached the pool")
	snap := r.m.Snapshot()
	assert.Equal(t, snap.Shares.HWErrors, snap.Devices[0].Counts.HWErrors)
}

func TestFailoverAndReturnAfterHoldDown(t *testing.T) {
	primary := startPool(t, pooltest.Config{})
	backup := startPool(t, pooltest.Config{})
	addr := primary.Addr()
	pools := []stratum.PoolConfig{poolConf(primary), poolConf(backup)}
	r := startMiner(t, pools, []device.Device{&gputest.Device{}}, stratum.Options{
		HoldDown: 1500 * time.Millisecond, ReadTimeout: 3 * time.Second, DialTimeout: time.Second,
	})
	waitFor(t, 30*time.Second, "shares on the primary", func() bool { return primary.Stats().Accepted >= 2 })

	primary.Close()
	died := time.Now()
	waitFor(t, 30*time.Second, "shares on the backup", func() bool { return backup.Stats().Accepted >= 1 })
	switchTime := time.Since(died)
	t.Logf("primary dead to first accepted share on backup: %v", switchTime)
	waitFor(t, 5*time.Second, "backup hashing", func() bool {
		s := r.m.Snapshot()
		return s.Job != nil && s.Job.Pool == backup.URL()
	})

	revived := startPool(t, pooltest.Config{Addr: addr})
	waitFor(t, 30*time.Second, "shares on the revived primary", func() bool { return revived.Stats().Accepted >= 1 })
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
	pool := startPool(t, pooltest.Config{Difficulty: 0.0001})
	r := startMiner(t, []stratum.PoolConfig{poolConf(pool)}, []device.Device{&gputest.Device{}}, stratum.Options{})
	waitFor(t, 30*time.Second, "shares", func() bool { return pool.Stats().Accepted >= 1 })

	// A lower difficulty applies from the second job notified after it
	// (stratum/PROTOCOL.md#difficulty): shares between the two difficulties are then
	// submitted and accepted, and never on the jobs before.
	old := pool.CurrentJob().JobID
	pool.SetDifficulty(lowDiff)
	next := pool.PushJob(false)
	lowered := pool.PushJob(false)
	waitFor(t, 30*time.Second, "low-difficulty shares", func() bool {
		for _, sh := range pool.Shares() {
			if sh.Difficulty < 0.0001 && sh.JobID == lowered {
				return true
			}
		}
		return false
	})
	for _, sh := range pool.Shares() {
		if sh.JobID == old || sh.JobID == next {
			assert.GreaterOrEqual(t, sh.Difficulty, 0.0001, "job %s was judged at the old difficulty", sh.JobID)
		}
	}

	pool.SetExtranonce("a1b2c3d4e5", 3)
	job := pool.PushJob(true)
	waitFor(t, 30*time.Second, "shares under the new extranonce", func() bool {
		for _, sh := range pool.Shares() {
			if sh.JobID == job {
				return len(sh.Extranonce2) == 6
			}
		}
		return false
	})
	require.NoError(t, r.shutdown(t))
	// A share in flight while the clean job is sent is stale on arrival;
	// anything else would be a wrong extranonce or difficulty.
	st := pool.Stats()
	assert.Equal(t, st.Stale, st.Rejected, "rejects: %+v", pool.Rejects())
}

func TestVersionRollingSharesCarrySixthParam(t *testing.T) {
	pool := startPool(t, pooltest.Config{})
	devs := []device.Device{&gputest.Device{ID: "a"}, &gputest.Device{ID: "b"}}
	r := startMiner(t, []stratum.PoolConfig{poolConf(pool)}, devs, stratum.Options{})
	waitFor(t, 30*time.Second, "rolled shares", func() bool {
		for _, sh := range pool.Shares() {
			if sh.VersionBits != "" && sh.VersionBits != "00000000" {
				return true
			}
		}
		return false
	})
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
	pool := startPool(t, pooltest.Config{})
	devs := []device.Device{&gputest.Device{ID: "k4", MultiVersions: 4}}
	r := startMiner(t, []stratum.PoolConfig{poolConf(pool)}, devs, stratum.Options{})
	waitFor(t, 30*time.Second, "shares from three versions", func() bool {
		seen := map[string]bool{}
		for _, sh := range pool.Shares() {
			seen[sh.VersionBits] = true
		}
		return len(seen) >= 3
	})
	require.NoError(t, r.shutdown(t))
	st := pool.Stats()
	assert.Zero(t, st.Rejected)
	assert.Equal(t, uint64(st.Accepted), r.m.Snapshot().Shares.Accepted)
	assert.Zero(t, r.m.Snapshot().Shares.HWErrors)
}

func TestShutdownAwaitsSharesInFlight(t *testing.T) {
	pool := startPool(t, pooltest.Config{Behavior: pooltest.Behavior{ReplyDelay: map[string]time.Duration{"mining.submit": 700 * time.Millisecond}}})
	r := startMiner(t, []stratum.PoolConfig{poolConf(pool)}, []device.Device{&gputest.Device{}}, stratum.Options{})
	waitFor(t, 30*time.Second, "a share sent", func() bool { return countSubmits(pool, pool.CurrentJob().JobID) >= 1 })
	began := time.Now()
	err := r.shutdown(t)
	require.True(t, err == nil || errors.Is(err, context.Canceled), "%v", err)
	snap := r.m.Snapshot()
	sent := countSubmits(pool, pool.CurrentJob().JobID)
	assert.Equal(t, uint64(sent), snap.Shares.Accepted+snap.Shares.Rejected+snap.Shares.Lost, "every share sent got its verdict counted")
	assert.Zero(t, snap.Shares.Lost, "the drain waited for the delayed replies")
	assert.Less(t, time.Since(began), 5*time.Second)
}

// The per-pool accounting behind cgminer's POOLS fields: shares by pool,
// the jobs each sent, a pool that could not be reached counted as a
// failure to get work, the last share's pool, and rejects with the pool's
// reason in the recent list.
func TestPoolAccounting(t *testing.T) {
	dead := startPool(t, pooltest.Config{})
	deadConf := poolConf(dead)
	dead.Close()
	good := startPool(t, pooltest.Config{Behavior: pooltest.Behavior{RejectAll: true}})
	r := startMiner(t, []stratum.PoolConfig{deadConf, poolConf(good)}, []device.Device{&gputest.Device{}}, stratum.Options{DialTimeout: time.Second})
	waitFor(t, 30*time.Second, "rejected shares on the second pool", func() bool { return r.m.Snapshot().Shares.Rejected >= 2 })
	require.NoError(t, r.shutdown(t))

	s := r.m.Snapshot()
	require.Len(t, s.Pools, 2)
	p0, p1 := s.Pools[0], s.Pools[1]
	assert.GreaterOrEqual(t, p0.ConnectFailures, uint64(1), "the dead pool got no work")
	assert.Zero(t, p0.Jobs)
	require.NotNil(t, p1.Shares)
	assert.Equal(t, s.Shares.Rejected, p1.Shares.Rejected, "every share was found on the second pool's jobs")
	assert.Equal(t, s.Shares.RejectedDiff, p1.Shares.RejectedDiff)
	assert.Positive(t, p1.Shares.RejectedDiff)
	assert.GreaterOrEqual(t, p1.Jobs, uint64(1))
	assert.GreaterOrEqual(t, s.Jobs, p1.Jobs)
	assert.GreaterOrEqual(t, s.NetworkBlocks, uint64(1))
	assert.LessOrEqual(t, s.NetworkBlocks, s.Jobs)
	assert.Positive(t, s.WorkUnits)
	assert.True(t, s.Shares.LastShare.IsZero(), "nothing was accepted")
	assert.False(t, s.Devices[0].Counts.LastValid.IsZero())
	require.NotEmpty(t, s.RecentRejects)
	assert.Equal(t, good.URL(), s.RecentRejects[0].Pool)
	assert.NotEmpty(t, s.RecentRejects[0].Reason)
	assert.Equal(t, miner.Rejected, s.RecentRejects[0].Outcome)
}

// An accepted share is the device's and the pool's last share.
func TestLastShare(t *testing.T) {
	pool := startPool(t, pooltest.Config{})
	before := time.Now()
	r := startMiner(t, []stratum.PoolConfig{poolConf(pool)}, []device.Device{&gputest.Device{}}, stratum.Options{})
	waitFor(t, 30*time.Second, "an accepted share", func() bool { return r.m.Snapshot().Shares.Accepted >= 1 })
	require.NoError(t, r.shutdown(t))
	s := r.m.Snapshot()
	for _, c := range []miner.Counts{s.Shares, s.Devices[0].Counts, *s.Pools[0].Shares} {
		assert.False(t, c.LastShare.Before(before))
		assert.Equal(t, 0, c.LastSharePool)
		assert.Equal(t, lowDiff, c.LastShareDiff)
	}
	assert.Equal(t, s.Shares.Accepted, s.Pools[0].Shares.Accepted)
	assert.Equal(t, s.Shares.AcceptedDiff, s.Pools[0].Shares.AcceptedDiff)
}
