package miner_test

// Pool dynamics: what real pools do in the middle of a run (vardiff up and
// down, a new version mask, dropped connections, silence, reject streaks,
// absurd difficulties, no pool at all, huge notify lines) and what the miner
// must make of it. Every test checks exact accounting: each candidate a
// device reports ends in exactly one outcome, and the miner's per-pool counts
// match what the pool itself counted.

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/charmbracelet/log"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"clminer/gpu/gputest"
	"clminer/internal/testkit"
	"clminer/stratum"
	"clminer/stratum/pooltest"
	"clminer/work/device"
	"clminer/work/miner"
	"clminer/work/retry"
	"clminer/work/source"
)

// fastDiff gives the reference device (about 1 MH/s, a few hundred kH/s
// under -race) a share every few tens of milliseconds.
const fastDiff = 0.000004

// countingDevice is the reference device counting every candidate it
// reports, so a test can check that each one ends in exactly one outcome.
type countingDevice struct {
	gputest.Device
	found atomic.Uint64
	// gate is held for reading while a candidate is handled (verified,
	// judged, sent); pause takes it for writing, so when pause returns every
	// candidate found so far has been handled and none is found until
	// resume.
	gate sync.RWMutex
}

func (d *countingDevice) Sweep(ctx context.Context, s device.Sweep) (device.Result, error) {
	found := s.Found
	s.Found = func(n uint32) {
		d.gate.RLock()
		defer d.gate.RUnlock()
		d.found.Add(1)
		found(n)
	}
	return d.Device.Sweep(ctx, s)
}

// observer keeps share events (like recorder) and pool events.
type observer struct {
	recorder
	emu sync.Mutex
	evs []source.Event
}

func (o *observer) PoolEvent(e source.Event) {
	o.emu.Lock()
	o.evs = append(o.evs, e)
	o.emu.Unlock()
}

func (o *observer) poolEvents(kind source.EventKind, pool int) int {
	o.emu.Lock()
	defer o.emu.Unlock()
	n := 0
	for _, e := range o.evs {
		if e.Kind == kind && e.Pool == pool {
			n++
		}
	}
	return n
}

// harness is a miner over a stratum client, with counting devices and an
// observer.
type harness struct {
	t     *testing.T
	m     *miner.Miner
	obs   *observer
	devs  []*countingDevice
	drain time.Duration
	// src is what the miner sees: the client behind onceSource.
	src *onceSource

	stop context.CancelFunc
	done chan error
	once sync.Once
	err  error
	took time.Duration // how long the shutdown took
}

type harnessConfig struct {
	pools   []stratum.PoolConfig
	devices int // [1]
	opts    stratum.Options
	drain   time.Duration // DrainTimeout [3 s]
	// wrap, when set, sits between the miner and the client.
	wrap func(source.Source) source.Source
}

func startHarness(t *testing.T, cfg harnessConfig) *harness {
	t.Helper()
	if cfg.devices == 0 {
		cfg.devices = 1
	}
	if cfg.drain == 0 {
		cfg.drain = 3 * time.Second
	}
	if cfg.opts.Retry == (retry.Backoff{}) {
		cfg.opts.Retry = retry.Backoff{Initial: 50 * time.Millisecond, Max: 200 * time.Millisecond}
	}
	client, err := stratum.NewClient(cfg.pools, cfg.opts)
	require.NoError(t, err)
	var src source.Source = client
	if cfg.wrap != nil {
		src = cfg.wrap(src)
	}
	h := &harness{t: t, obs: &observer{}, drain: cfg.drain, done: make(chan error, 1), src: &onceSource{Source: src}}
	var devs []device.Device
	for i := range cfg.devices {
		d := &countingDevice{Device: gputest.Device{ID: fmt.Sprintf("ref%d", i)}}
		h.devs = append(h.devs, d)
		devs = append(devs, d)
	}
	h.m, err = miner.New(miner.Config{Source: h.src, Devices: devs, Observer: h.obs,
		Logger: log.New(io.Discard), DrainTimeout: cfg.drain})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	h.stop = cancel
	go func() { h.done <- h.m.Run(ctx) }()
	t.Cleanup(func() { _ = h.shutdown() })
	return h
}

// pause stops every device finding candidates, once those already found
// have been handled (submitted, for a share); resume lets them go on.
func (h *harness) pause() {
	for _, d := range h.devs {
		d.gate.Lock()
	}
}

func (h *harness) resume() {
	for _, d := range h.devs {
		d.gate.Unlock()
	}
}

// shutdown cancels the miner's context and waits for Run to return.
func (h *harness) shutdown() error {
	h.once.Do(func() {
		began := time.Now()
		h.stop()
		select {
		case h.err = <-h.done:
		case <-time.After(h.drain + 15*time.Second):
			h.err = errors.New("miner did not stop")
			h.t.Error(h.err)
		}
		h.took = time.Since(began)
	})
	return h.err
}

// submitted is one mining.submit as the pool received it.
type submitted struct {
	idx                                 int // index in pool.Requests()
	conn                                int
	job, en2, ntime, nonce, versionBits string
}

// key identifies the share as the pool's duplicate check does.
func (s submitted) key() string {
	return strings.ToLower(strings.Join([]string{s.job, s.en2, s.ntime, s.nonce, s.versionBits}, "/"))
}

// unit is the (extranonce2, version bits) the share was found on.
func (s submitted) unit() string { return s.en2 + "/" + s.versionBits }

func shareKey(sh pooltest.Share) string {
	return strings.ToLower(strings.Join([]string{sh.JobID, sh.Extranonce2, sh.NTime, sh.Nonce, sh.VersionBits}, "/"))
}

func parseSubmit(t *testing.T, idx int, req pooltest.Request) submitted {
	t.Helper()
	var p []string
	require.NoError(t, json.Unmarshal(req.Params, &p), "submit params %s", req.Params)
	require.True(t, len(p) == 5 || len(p) == 6, "submit params %s", req.Params)
	s := submitted{idx: idx, conn: req.Conn, job: p[1], en2: p[2], ntime: p[3], nonce: p[4]}
	if len(p) == 6 {
		s.versionBits = p[5]
	}
	return s
}

func submitsOf(t *testing.T, pool *pooltest.Server) []submitted {
	t.Helper()
	var out []submitted
	for i, req := range pool.Requests() {
		if req.Method == "mining.submit" {
			out = append(out, parseSubmit(t, i, req))
		}
	}
	return out
}

// en2Value reads an extranonce2 as the little-endian counter the ledger
// hands out (00000000, 01000000, 02000000, ...).
func en2Value(t *testing.T, s string) uint64 {
	t.Helper()
	b, err := hex.DecodeString(s)
	require.NoError(t, err)
	var v uint64
	for i := len(b) - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}

// assertNoDuplicates checks the pool counted no duplicate and that no
// (job, extranonce2, ntime, nonce, version) reached it twice.
func assertNoDuplicates(t *testing.T, pool *pooltest.Server) {
	t.Helper()
	assert.Zero(t, pool.Stats().Duplicate, "duplicate rejects")
	seen := map[string]int{}
	for _, s := range submitsOf(t, pool) {
		if prev, dup := seen[s.key()]; dup {
			t.Errorf("share %s submitted twice (requests %d and %d)", s.key(), prev, s.idx)
		}
		seen[s.key()] = s.idx
	}
}

func acceptedOn(pool *pooltest.Server, job string) int {
	n := 0
	for _, sh := range pool.Shares() {
		if sh.JobID == job {
			n++
		}
	}
	return n
}

func outcomesSum(c miner.Counts) uint64 {
	return c.Accepted + c.Rejected + c.Stale + c.Duplicate + c.HWErrors + c.BelowTarget + c.Lost + c.Throttled
}

// accountingMode says which of the pool's counts must equal the miner's.
type accountingMode int

const (
	// oneSession: no session ended while shares were in flight; the pool's
	// counts equal the miner's.
	oneSession accountingMode = iota
	// clientLeft: the client ended sessions (failover, failback, shutdown
	// after the drain timeout). Every share it sent reached the pool, but a
	// verdict still on its way is lost at the miner.
	clientLeft
	// poolDropped: the pool dropped connections, so a share sent just before
	// may not even have reached it.
	poolDropped
)

// checkAccounting runs after shutdown. pools[i] are the servers that were
// pool i of the list (a pool restarted on the same address is one pool).
func (h *harness) checkAccounting(mode accountingMode, pools ...[]*pooltest.Server) {
	t := h.t
	t.Helper()
	snap := h.m.Snapshot()
	c := snap.Shares

	// The source answered each share once (a second answer would have
	// crashed the miner's WaitGroup; onceSource keeps it from the miner).
	assert.Zero(t, h.src.extra.Load(), "shares the client answered more than once")

	// Every candidate a device reported has exactly one outcome.
	var found uint64
	for i, d := range h.devs {
		f := d.found.Load()
		found += f
		assert.Equal(t, f, outcomesSum(snap.Devices[i].Counts), "device %d: candidates reported vs outcomes %+v", i, snap.Devices[i].Counts)
	}
	assert.Equal(t, found, outcomesSum(c), "candidates reported vs outcomes %+v", c)
	assert.Positive(t, found)

	// The observer hears every outcome but below_target and throttled.
	total := map[miner.Outcome]uint64{}
	perPool := map[int]map[miner.Outcome]uint64{}
	for _, ev := range h.obs.events() {
		total[ev.Outcome]++
		if perPool[ev.Pool] == nil {
			perPool[ev.Pool] = map[miner.Outcome]uint64{}
		}
		perPool[ev.Pool][ev.Outcome]++
	}
	assert.Equal(t, c.Accepted, total[miner.Accepted], "accepted events")
	assert.Equal(t, c.Rejected, total[miner.Rejected], "rejected events")
	assert.Equal(t, c.Stale, total[miner.Stale], "stale events")
	assert.Equal(t, c.Duplicate, total[miner.Duplicate], "duplicate events")
	assert.Equal(t, c.HWErrors, total[miner.HWError], "hw_error events")
	assert.Equal(t, c.Lost, total[miner.Lost], "lost events")
	assert.Zero(t, total[miner.BelowTarget], "below_target is not sent to observers")
	assert.Zero(t, total[miner.Throttled], "throttled is not sent to observers")

	var accepted, throttled uint64
	for i, servers := range pools {
		var st pooltest.Stats
		sent := 0
		for _, p := range servers {
			s := p.Stats()
			st.Accepted += s.Accepted
			st.Rejected += s.Rejected
			sent += len(submitsOf(t, p))
		}
		ev := perPool[i]
		ps := snap.Pools[i]
		accepted += ps.Accepted
		throttled += ps.Throttled
		assert.Equal(t, ev[miner.Accepted], ps.Accepted, "pool %d: accepted events vs the client's count", i)
		assert.Equal(t, ev[miner.Rejected], ps.Rejected, "pool %d: rejected events vs the client's count", i)
		if mode == oneSession {
			assert.Equal(t, uint64(st.Accepted), ps.Accepted, "pool %d: accepted by the pool vs counted by the miner", i)
			assert.Equal(t, uint64(st.Rejected), ps.Rejected, "pool %d: rejected by the pool vs counted by the miner", i)
		} else {
			// What the pool judged but the miner did not hear is lost there.
			assert.LessOrEqual(t, ps.Accepted, uint64(st.Accepted), "pool %d: accepted", i)
			assert.LessOrEqual(t, ps.Rejected, uint64(st.Rejected), "pool %d: rejected", i)
			assert.LessOrEqual(t, uint64(st.Accepted+st.Rejected), ps.Accepted+ps.Rejected+ev[miner.Lost],
				"pool %d: verdicts the miner did not hear are counted lost", i)
		}
		if mode == poolDropped {
			assert.LessOrEqual(t, ev[miner.Accepted]+ev[miner.Rejected], uint64(sent), "pool %d: verdicts vs shares received", i)
		} else {
			assert.Equal(t, uint64(sent), ev[miner.Accepted]+ev[miner.Rejected]+ev[miner.Lost],
				"pool %d: every share the pool received got exactly one verdict at the miner", i)
		}
	}
	assert.Equal(t, accepted, c.Accepted, "per-pool accepted add up")
	assert.Equal(t, throttled, c.Throttled, "per-pool throttled add up")
}

// fence sends a mining.ping and waits for the client's pong to reach the
// pool. The client answers on its reader, in order, so every line the pool
// sent before (a set_difficulty) has been processed when the pong arrives,
// and every submit the pool received before the pong has been judged.
func fence(t *testing.T, pool *pooltest.Server, id string) {
	t.Helper()
	pool.SendRaw(fmt.Sprintf(`{"id":%q,"method":"mining.ping","params":[]}`, id))
	testkit.Eventually(t, func() bool { return fenceIndex(pool.Requests(), id) >= 0 }, "pong "+id)
}

func fenceIndex(reqs []pooltest.Request, id string) int {
	for i, r := range reqs {
		if r.Method == "" && strings.Contains(string(r.Params), fmt.Sprintf("%q", id)) {
			return i
		}
	}
	return -1
}

// TestVardiffAndVersionMaskMidJobContinueTheWork: vardiff lowers without a
// notify, then raises, then the pool sends set_version_mask, all on one job.
// The work position carries on: no unit is hashed twice (no duplicate at the
// pool), the raise continues with the next version of the same extranonce2,
// and the new mask moves on to the next extranonce2 instead of restarting at
// 00000000.
func TestVardiffAndVersionMaskMidJobContinueTheWork(t *testing.T) {
	const d0 = fastDiff
	pool := pooltest.Start(t, pooltest.Config{Difficulty: d0})
	h := startHarness(t, harnessConfig{pools: []stratum.PoolConfig{poolConf(pool)}})
	job := pool.CurrentJob().JobID
	testkit.EventuallyWithin(t, 20*time.Second, func() bool { return acceptedOn(pool, job) >= 3 }, "shares on the job")

	// Lower without a notify: the job stays judged at d0, nothing is
	// re-issued, hashing continues on the same unit.
	pool.SetDifficulty(d0 / 4)
	testkit.Eventually(t, func() bool { return h.m.Snapshot().Pools[0].Difficulty == d0/4 }, "the lowering seen")
	assert.Equal(t, d0, h.m.Snapshot().Job.Difficulty, "a lowering does not apply to the job already notified")
	n := acceptedOn(pool, job)
	testkit.EventuallyWithin(t, 20*time.Second, func() bool { return acceptedOn(pool, job) >= n+3 }, "shares after the lowering")

	// Raise: applies at once, the job is re-issued with the harder target
	// and continues from the same position (next version).
	pool.SetDifficulty(2 * d0)
	testkit.Eventually(t, func() bool {
		s := h.m.Snapshot()
		return s.Job != nil && s.Job.ID == job && s.Job.Difficulty == 2*d0
	}, "the raise applied to the job")
	n = acceptedOn(pool, job)
	testkit.EventuallyWithin(t, 20*time.Second, func() bool { return acceptedOn(pool, job) >= n+3 }, "shares after the raise")

	// set_version_mask: re-issued under the new mask, on a fresh
	// extranonce2 so that no (extranonce2, version) repeats.
	const newMask = 0x00ffe000
	maskedAt := len(pool.Requests())
	pool.SetVersionMask(newMask)
	testkit.Eventually(t, func() bool { return h.m.Snapshot().Pools[0].RollingMask == "00ffe000" }, "the new mask in force")
	testkit.EventuallyWithin(t, 20*time.Second, func() bool {
		k := 0
		for _, sh := range pool.Shares() {
			if sh.JobID == job && sh.Extranonce2 != "00000000" {
				k++
			}
		}
		return k >= 3
	}, "shares under the new mask")
	require.NoError(t, h.shutdown())

	st := pool.Stats()
	assert.Zero(t, st.Rejected, "rejects: %+v", pool.Rejects())
	assertNoDuplicates(t, pool)
	for _, sh := range pool.Shares() {
		assert.GreaterOrEqual(t, sh.Difficulty, d0, "the job is never judged below the difficulty of its notify")
	}

	subs := submitsOf(t, pool)
	require.NotEmpty(t, subs)
	var units []string
	unitAt := map[string]int{}
	var maxBefore uint64
	raisedRoll := false
	for i, s := range subs {
		require.Equal(t, job, s.job, "one job all along")
		if i > 0 {
			assert.GreaterOrEqual(t, en2Value(t, s.en2), en2Value(t, subs[i-1].en2),
				"extranonce2 went back from %s to %s at submit %d", subs[i-1].en2, s.en2, i)
		}
		if s.idx < maskedAt {
			maxBefore = max(maxBefore, en2Value(t, s.en2))
		}
		if s.en2 == "00000000" && s.versionBits != "00000000" {
			raisedRoll = true
		}
		if len(units) == 0 || units[len(units)-1] != s.unit() {
			if first, again := unitAt[s.unit()]; again {
				t.Errorf("unit %s hashed again at submit %d after leaving it (first at %d)", s.unit(), i, first)
			}
			unitAt[s.unit()] = i
			units = append(units, s.unit())
		}
	}
	// One device, three SetJobs (the notify, the raise, the mask): three
	// units, each continuing where the previous one stopped.
	assert.Equal(t, []string{"00000000/00000000", "00000000/00002000", "01000000/00000000"}, units, "units in the order hashed")
	assert.True(t, raisedRoll, "the raise continued with the next version of extranonce2 00000000, units %v", units)
	last := subs[len(subs)-1]
	assert.Greater(t, en2Value(t, last.en2), maxBefore, "after the mask change the extranonce2 advanced, it did not restart")
	for _, s := range subs {
		if en2Value(t, s.en2) > maxBefore {
			bits, err := hex.DecodeString(s.versionBits)
			require.NoError(t, err)
			assert.Zero(t, binary.BigEndian.Uint32(bits)&^newMask, "version bits %s outside the new mask", s.versionBits)
		}
	}
	h.checkAccounting(oneSession, []*pooltest.Server{pool})
}

// TestSessionResumeContinuesTheJob: the pool drops every connection while
// the miner hashes; the client reconnects with its session id, gets the same
// extranonce1 and the same job id again, and continues after the position it
// had reached: no duplicate, later work only.
func TestSessionResumeContinuesTheJob(t *testing.T) {
	for _, rolling := range []bool{false, true} {
		t.Run(fmt.Sprintf("rolling=%v", rolling), func(t *testing.T) {
			pool := pooltest.Start(t, pooltest.Config{Difficulty: fastDiff})
			pc := poolConf(pool)
			pc.VersionRolling = rolling
			h := startHarness(t, harnessConfig{pools: []stratum.PoolConfig{pc}})
			job := pool.CurrentJob().JobID
			testkit.EventuallyWithin(t, 20*time.Second, func() bool { return pool.Stats().Accepted >= 3 }, "shares")
			en1 := h.m.Snapshot().Pools[0].Extranonce1
			require.NotEmpty(t, en1)

			pool.DropAll()
			testkit.Eventually(t, func() bool {
				st := pool.Stats()
				return st.Connections >= 2 && st.Authorized >= 2
			}, "the resumed session")
			testkit.EventuallyWithin(t, 20*time.Second, func() bool {
				k := 0
				for _, sh := range pool.Shares() {
					if sh.Conn != 1 {
						k++
					}
				}
				return k >= 3
			}, "shares on the resumed session")
			snap := h.m.Snapshot()
			assert.Equal(t, en1, snap.Pools[0].Extranonce1, "the resumed session has the same extranonce1")
			require.NoError(t, h.shutdown())

			st := pool.Stats()
			assert.Equal(t, 2, st.Connections)
			assert.Equal(t, job, pool.CurrentJob().JobID, "no new job: the pool re-sent the same one")
			assertNoDuplicates(t, pool)
			assert.Equal(t, st.Stale, st.Rejected, "rejects: %+v", pool.Rejects())

			var subscribes []pooltest.Request
			for _, r := range pool.Requests() {
				if r.Method == "mining.subscribe" {
					subscribes = append(subscribes, r)
				}
			}
			require.Len(t, subscribes, 2)
			var p2 []string
			require.NoError(t, json.Unmarshal(subscribes[1].Params, &p2))
			assert.Len(t, p2, 2, "the second subscribe carries the session id: %s", subscribes[1].Params)

			// The position of a unit: extranonce2 counter, then the version
			// roll within it (mask 1fffe000: bits 13..28).
			pos := func(s submitted) uint64 {
				p := en2Value(t, s.en2) << 16
				if s.versionBits != "" {
					bits, err := hex.DecodeString(s.versionBits)
					require.NoError(t, err)
					p |= uint64(binary.BigEndian.Uint32(bits)>>13) & 0xffff
				}
				return p
			}
			var before, after []submitted
			for _, s := range submitsOf(t, pool) {
				assert.Equal(t, job, s.job)
				if s.conn == subscribes[0].Conn {
					before = append(before, s)
				} else {
					after = append(after, s)
				}
			}
			require.NotEmpty(t, before)
			require.NotEmpty(t, after)
			var maxBefore, maxEn2Before uint64
			for _, s := range before {
				maxBefore = max(maxBefore, pos(s))
				maxEn2Before = max(maxEn2Before, en2Value(t, s.en2))
			}
			for _, s := range after {
				assert.Greater(t, pos(s), maxBefore, "share %s on the resumed session is not past the work done before the drop", s.key())
				if !rolling {
					assert.Greater(t, en2Value(t, s.en2), maxEn2Before, "extranonce2 %s after the drop", s.en2)
				}
			}
			h.checkAccounting(poolDropped, []*pooltest.Server{pool})
		})
	}
}

// sickOptions make a pool sick within about a second.
var sickOptions = stratum.Options{
	SubmitTimeout:    300 * time.Millisecond,
	UnansweredAfter:  500 * time.Millisecond,
	UnansweredStreak: 3,
	RejectStreak:     3,
	HoldDown:         300 * time.Millisecond,
	SickHoldDown:     300 * time.Millisecond,
	Retry:            retry.Backoff{Initial: 50 * time.Millisecond, Max: 200 * time.Millisecond},
	DialTimeout:      time.Second,
	HandshakeTimeout: time.Second,
	CallTimeout:      time.Second,
}

// testSickFailover: the primary turns sick (sicken) after accepting shares
// and also refuses the worker from then on. The client marks it sick, mines
// on the backup, does not return while the primary refuses the worker
// (though its port answers and probes reach it), and returns once it
// authorizes again.
func testSickFailover(t *testing.T, sicken func(b *pooltest.Behavior), reasons ...string) {
	primary := pooltest.Start(t, pooltest.Config{Difficulty: fastDiff})
	backup := pooltest.Start(t, pooltest.Config{Difficulty: fastDiff})
	h := startHarness(t, harnessConfig{pools: []stratum.PoolConfig{poolConf(primary), poolConf(backup)}, opts: sickOptions})
	testkit.EventuallyWithin(t, 20*time.Second, func() bool { return primary.Stats().Accepted >= 2 }, "shares on the primary")

	primary.SetBehavior(func(b *pooltest.Behavior) {
		sicken(b)
		b.RefuseAuth = true // the live session stays authorized; probes are refused
	})
	sickened := time.Now()
	// The bound: the health rule's window plus a couple of shares to trip it
	// and one on the backup.
	bound := sickOptions.UnansweredAfter + sickOptions.SubmitTimeout + 5*time.Second
	testkit.EventuallyWithin(t, bound, func() bool { return h.m.Snapshot().Pools[0].State == "sick" }, "the primary marked sick")
	testkit.EventuallyWithin(t, bound, func() bool { return backup.Stats().Accepted >= 2 }, "shares on the backup")
	t.Logf("primary turned sick to 2 shares accepted by the backup: %v", time.Since(sickened).Round(time.Millisecond))
	snap := h.m.Snapshot()
	reason := snap.Pools[0].SickReason
	require.NotEmpty(t, reason)
	matched := false
	for _, r := range reasons {
		matched = matched || strings.Contains(reason, r)
	}
	assert.True(t, matched, "sick reason %q, want one of %q", reason, reasons)
	assert.GreaterOrEqual(t, h.obs.poolEvents(source.EventSick, 0), 1, "EventSick reported")
	assert.Equal(t, "active", snap.Pools[1].State)

	// While the primary refuses the worker, probes reach it and fail; the
	// client stays on the backup.
	authorized := primary.Stats().Authorized
	connects := snap.Pools[0].Connects
	countAuth := func() int {
		n := 0
		for _, r := range primary.Requests() {
			if r.Method == "mining.authorize" {
				n++
			}
		}
		return n
	}
	probes := countAuth()
	testkit.Eventually(t, func() bool { return countAuth() >= probes+4 }, "refused probes")
	snap = h.m.Snapshot()
	assert.Equal(t, authorized, primary.Stats().Authorized, "the primary authorized nobody")
	assert.Equal(t, connects, snap.Pools[0].Connects, "no session was opened on the refusing primary")
	assert.Equal(t, "sick", snap.Pools[0].State)
	assert.Equal(t, "active", snap.Pools[1].State)
	assert.Equal(t, 1, backup.Stats().Connections, "the client stayed on the backup")

	// Healthy again: probes pass for HoldDown and the client returns.
	accepted := primary.Stats().Accepted
	primary.SetBehavior(func(b *pooltest.Behavior) { *b = pooltest.Behavior{} })
	testkit.Eventually(t, func() bool {
		return primary.Stats().Accepted >= accepted+2 && h.m.Snapshot().Pools[0].State == "active"
	}, "shares on the primary again")
	require.NoError(t, h.shutdown())
	snap = h.m.Snapshot()
	assert.GreaterOrEqual(t, snap.Pools[0].Failovers, uint64(1), "left the primary for the backup")
	assert.GreaterOrEqual(t, snap.Pools[1].Failovers, uint64(1), "left the backup for the primary")
	unanswered := 0
	for _, ev := range h.obs.events() {
		if ev.Pool == 0 && (ev.Outcome == miner.Lost || ev.Outcome == miner.Rejected) {
			unanswered++
		}
	}
	assert.Positive(t, unanswered, "the shares that made the primary sick are counted (lost or rejected)")
	assert.Zero(t, backup.Stats().Rejected, "rejects at the backup: %+v", backup.Rejects())
	assertNoDuplicates(t, primary)
	assertNoDuplicates(t, backup)
	h.checkAccounting(clientLeft, []*pooltest.Server{primary}, []*pooltest.Server{backup})
}

// TestSilentSubmitsMakeThePoolSick: the primary stops answering submits.
func TestSilentSubmitsMakeThePoolSick(t *testing.T) {
	testSickFailover(t, func(b *pooltest.Behavior) { b.NeverReply = []string{"mining.submit"} },
		"got no answer", "no submit answered")
}

// TestRejectStreakMakesThePoolSick: the primary rejects every valid share.
func TestRejectStreakMakesThePoolSick(t *testing.T) {
	testSickFailover(t, func(b *pooltest.Behavior) { b.RejectAll = true }, "rejected")
}

// TestAbsurdDifficultyStaysBounded: at difficulty 1e-9 (and 1e-300) every
// hash is a share, and the pool answers each after a second and a half.
// Shares beyond the in-flight bound are throttled, not queued: goroutines
// and heap stay bounded, and shutdown takes no longer than the drain.
func TestAbsurdDifficultyStaysBounded(t *testing.T) {
	for _, diff := range []float64{1e-9, 1e-300} {
		t.Run(fmt.Sprint(diff), func(t *testing.T) {
			runtime.GC()
			baseG := runtime.NumGoroutine()
			pool := pooltest.Start(t, pooltest.Config{Difficulty: diff,
				Behavior: pooltest.Behavior{ReplyDelay: map[string]time.Duration{"mining.submit": 1500 * time.Millisecond}}})
			const drain = time.Second
			h := startHarness(t, harnessConfig{pools: []stratum.PoolConfig{poolConf(pool)}, drain: drain,
				opts: stratum.Options{SubmitTimeout: 3 * time.Second, UnansweredAfter: 3 * time.Second}})
			var maxG int
			var maxHeap uint64
			sample := func() {
				maxG = max(maxG, runtime.NumGoroutine())
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				maxHeap = max(maxHeap, ms.HeapAlloc)
			}
			testkit.EventuallyWithin(t, 30*time.Second, func() bool {
				sample()
				s := h.m.Snapshot()
				return s.Shares.Throttled >= 20000 && pool.Stats().Accepted >= 128
			}, "throttled and accepted shares")
			sample()
			snap := h.m.Snapshot()
			t.Logf("goroutines %d (baseline %d), heap %d MB, %d hashes, %+v", maxG, baseG, maxHeap>>20, snap.Hashes, snap.Shares)
			assert.Less(t, maxG-baseG, 200, "goroutines stay bounded")
			assert.Less(t, maxHeap, uint64(200<<20), "heap stays bounded")
			assert.LessOrEqual(t, snap.Pools[0].InFlight, 64, "in flight stays at the bound")
			assert.Positive(t, snap.Shares.Throttled)
			assert.Zero(t, snap.Shares.HWErrors)

			require.NoError(t, h.shutdown())
			// The margin covers the batch in progress (at this difficulty the
			// reference device's 4096 nonces are 4096 shares, each verified,
			// judged and throttled) under -race on a loaded machine.
			t.Logf("shutdown took %v (drain timeout %v)", h.took, drain)
			assert.Less(t, h.took, drain+3*time.Second, "shutdown waits at most the drain timeout")
			snap = h.m.Snapshot()
			assert.Positive(t, snap.Shares.Throttled)
			assert.Equal(t, snap.Shares.Throttled, snap.Pools[0].Throttled)
			assert.Zero(t, pool.Stats().Rejected, "rejects: %+v", pool.Rejects())
			assertNoDuplicates(t, pool)
			// Replies still delayed at the pool when the drain gave up are
			// lost at the miner, so the pool may count more accepts.
			h.checkAccounting(clientLeft, []*pooltest.Server{pool})
		})
	}
}

// TestNoLivePoolIdlesTheDevices: the only pool goes away. The devices stop
// hashing (at most the batch in progress completes) and say why; when a
// pool comes back on the address they hash and submit again.
func TestNoLivePoolIdlesTheDevices(t *testing.T) {
	pool := pooltest.Start(t, pooltest.Config{Difficulty: fastDiff})
	addr := pool.Addr()
	h := startHarness(t, harnessConfig{pools: []stratum.PoolConfig{poolConf(pool)}, devices: 2})
	testkit.EventuallyWithin(t, 20*time.Second, func() bool { return pool.Stats().Accepted >= 2 }, "shares")

	pool.Close()
	testkit.Eventually(t, func() bool { return h.m.Snapshot().Idle != "" }, "devices idle")
	s1 := h.m.Snapshot()
	assert.Contains(t, s1.Idle, "no live pool")
	// Several failed reconnects later (backoff 50..200 ms: long enough for
	// tens of batches) nothing more was hashed.
	fails := h.obs.poolEvents(source.EventDisconnected, 0)
	testkit.Eventually(t, func() bool { return h.obs.poolEvents(source.EventDisconnected, 0) >= fails+3 }, "failed reconnects")
	s2 := h.m.Snapshot()
	assert.NotEmpty(t, s2.Idle)
	assert.Nil(t, s2.Job)
	const batch = 1 << 12 // gputest reports progress per 4096 nonces
	assert.LessOrEqual(t, s2.Hashes-s1.Hashes, uint64(len(h.devs)*batch), "hashing stopped (at most one batch per device after idle)")
	for _, d := range s2.Devices {
		assert.False(t, d.Sweeping, "device %s idle", d.ID)
	}
	assert.False(t, s2.Healthy())

	revived := pooltest.Start(t, pooltest.Config{Addr: addr, Difficulty: fastDiff})
	testkit.Eventually(t, func() bool { return revived.Stats().Accepted >= 2 }, "shares on the revived pool")
	assert.Empty(t, h.m.Snapshot().Idle)
	// Hashes are counted as batches complete, which can trail the shares
	// found early in them.
	testkit.Eventually(t, func() bool {
		return h.m.Snapshot().Hashes > s2.Hashes+uint64(len(h.devs)*batch)
	}, "hashing resumed")
	require.NoError(t, h.shutdown())
	assert.Zero(t, revived.Stats().Rejected, "rejects: %+v", revived.Rejects())
	h.checkAccounting(poolDropped, []*pooltest.Server{pool, revived})
}

// bigNotify is a job whose coinb2 pays 1,500 P2PKH outputs, as pools with
// many payouts send: a mining.notify line of over 100 KB.
func bigNotify(id string) pooltest.NotifyParams {
	p := pooltest.GenerateJob(id, 4, 4, true)
	const outputs = 1500
	var b strings.Builder
	b.WriteString("0a" + hex.EncodeToString([]byte("/pooltest/")) + "ffffffff") // the tag push, as GenerateJob, and the sequence
	b.WriteString(fmt.Sprintf("fd%02x%02x", outputs&0xff, outputs>>8))          // output count (CompactSize)
	for i := range outputs {
		var pkh [20]byte
		binary.BigEndian.PutUint32(pkh[:], uint32(i+1))
		b.WriteString("e803000000000000" + "1976a914" + hex.EncodeToString(pkh[:]) + "88ac")
	}
	b.WriteString("00000000") // lock time
	p.Coinb2 = b.String()
	return p
}

// TestHugeNotifyLineMines: a 100 KB notify line is accepted and mined.
func TestHugeNotifyLineMines(t *testing.T) {
	pool := pooltest.Start(t, pooltest.Config{Difficulty: fastDiff})
	h := startHarness(t, harnessConfig{pools: []stratum.PoolConfig{poolConf(pool)}})
	testkit.EventuallyWithin(t, 20*time.Second, func() bool { return pool.Stats().Accepted >= 1 }, "shares")

	p := bigNotify("big1")
	line, err := json.Marshal(map[string]any{"id": nil, "method": "mining.notify", "params": p.Array()})
	require.NoError(t, err)
	require.Greater(t, len(line), 100_000, "the notify line is over 100 KB")
	_, err = hex.DecodeString(p.Coinb2)
	require.NoError(t, err, "coinb2 is valid hex")
	pool.PushJobParams(p)
	testkit.EventuallyWithin(t, 20*time.Second, func() bool { return acceptedOn(pool, p.JobID) >= 3 }, "shares on the big job")
	assert.Equal(t, p.JobID, h.m.Snapshot().Job.ID)
	require.NoError(t, h.shutdown())
	st := pool.Stats()
	// A share in flight when the clean job came is stale; nothing else.
	assert.Equal(t, st.Stale, st.Rejected, "rejects: %+v", pool.Rejects())
	assertNoDuplicates(t, pool)
	h.checkAccounting(oneSession, []*pooltest.Server{pool})
}

// TestDifficultyRules: against a pool with ckpool's rule (a change applies
// from the second job after it) and one with public-pool's (at once), vardiff
// lowers and raises several times, with clean and non-clean notifies in
// between. The client's rule (stratum/PROTOCOL.md#difficulty) is never rejected for low
// difficulty, and shares are accepted in every phase.
//
// A share found before a raise reached the client met the difficulty in
// force then, and may still be judged at the raised value when it arrives:
// at public-pool always, at ckpool when another change follows before the
// next job (its old_diff is then the raised value). No client can avoid
// that, so the devices are paused around each raise until the client has
// answered a ping sent after the set_difficulty; every share found after
// that must meet what the pool enforces.
func TestDifficultyRules(t *testing.T) {
	for _, tc := range []struct {
		name string
		rule pooltest.DiffRule
	}{{"ckpool", pooltest.DiffCkpool}, {"immediate", pooltest.DiffImmediate}} {
		t.Run(tc.name, func(t *testing.T) {
			const d = fastDiff
			pool := pooltest.Start(t, pooltest.Config{Difficulty: d, Behavior: pooltest.Behavior{DiffRule: tc.rule}})
			h := startHarness(t, harnessConfig{pools: []stratum.PoolConfig{poolConf(pool)}})
			testkit.EventuallyWithin(t, 20*time.Second, func() bool { return pool.Stats().Accepted >= 2 }, "first shares")

			fences, diff := 0, d
			setDiff := func(v float64) {
				fences++
				if v > diff {
					h.pause()
					// Every share found so far has been sent; once this pong
					// is back the pool has judged them all at the old value.
					fence(t, pool, fmt.Sprintf("fence-%d-pre", fences))
					pool.SetDifficulty(v)
					fence(t, pool, fmt.Sprintf("fence-%d-post", fences))
					h.resume()
				} else {
					pool.SetDifficulty(v)
				}
				diff = v
			}
			sharesOn := func(what, job string) {
				t.Helper()
				n := acceptedOn(pool, job)
				testkit.EventuallyWithin(t, 20*time.Second, func() bool { return acceptedOn(pool, job) >= n+2 }, what)
			}
			cur := func() string { return pool.CurrentJob().JobID }

			setDiff(d / 4) // lower, no notify: the current job stays at d
			sharesOn("shares after a lowering", cur())
			pool.PushJob(false) // still judged at d (notified right after the lowering)
			sharesOn("shares on the job after the lowering", cur())
			pool.PushJob(false) // the second job after: d/4
			sharesOn("shares at the lower difficulty", cur())
			setDiff(2 * d) // raise: at once
			sharesOn("shares after a raise", cur())
			pool.PushJob(true)
			sharesOn("shares on a clean job after the raise", cur())
			setDiff(d / 2) // lower, then a clean and a non-clean job
			pool.PushJob(true)
			pool.PushJob(false)
			sharesOn("shares two jobs after a lowering", cur())
			setDiff(d) // raise then lower with no notify between
			setDiff(d / 8)
			pool.PushJob(false)
			sharesOn("shares after a raise and a lowering", cur())
			pool.PushJob(true)
			sharesOn("shares on a clean job", cur())
			setDiff(d) // raise
			sharesOn("shares after the last raise", cur())
			require.NoError(t, h.shutdown())

			lowDiff := 0
			for _, rj := range pool.Rejects() {
				if strings.Contains(rj.Reason, "Low difficulty") {
					lowDiff++
					t.Errorf("a share for job %s was rejected: %s", rj.JobID, rj.Reason)
					continue
				}
				// A share in flight when a clean job came is stale.
				assert.Equal(t, "Stale", rj.Reason)
			}
			st := pool.Stats()
			assert.Equal(t, st.Stale, st.Rejected, "rejects: %+v", pool.Rejects())
			t.Logf("%d shares accepted, %d rejected (%d for low difficulty)", st.Accepted, st.Rejected, lowDiff)
			assertNoDuplicates(t, pool)
			h.checkAccounting(oneSession, []*pooltest.Server{pool})
		})
	}
}

// failingConn fails the next write of a mining.submit once armed, as a
// connection reset by the peer does.
type failingConn struct {
	net.Conn
	arm    *atomic.Bool
	failed *atomic.Int64
}

func (c *failingConn) Write(b []byte) (int, error) {
	if strings.Contains(string(b), `"mining.submit"`) && c.arm.CompareAndSwap(true, false) {
		c.failed.Add(1)
		return 0, errors.New("injected: connection reset by peer")
	}
	return c.Conn.Write(b)
}

// onceSource passes each verdict on once and counts any further one, so a
// source that answers a share twice fails the test (checkAccounting) instead
// of crashing the miner's WaitGroup and with it the whole test binary.
type onceSource struct {
	source.Source
	extra atomic.Int64
}

func (s *onceSource) Send(sh source.Share, done func(source.Reply)) {
	var n atomic.Int32
	s.Source.Send(sh, func(r source.Reply) {
		if n.Add(1) > 1 {
			s.extra.Add(1)
			return
		}
		done(r)
	})
}

// TestSubmitWriteFailureHasOneOutcome: the write of a submit fails (the
// connection was reset). The share must get exactly one verdict (lost) and
// the client must reconnect and mine on.
func TestSubmitWriteFailureHasOneOutcome(t *testing.T) {
	pool := pooltest.Start(t, pooltest.Config{Difficulty: fastDiff})
	var arm atomic.Bool
	var failed atomic.Int64
	var d net.Dialer
	opts := stratum.Options{Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &failingConn{Conn: c, arm: &arm, failed: &failed}, nil
	}}
	h := startHarness(t, harnessConfig{pools: []stratum.PoolConfig{poolConf(pool)}, opts: opts})
	testkit.EventuallyWithin(t, 20*time.Second, func() bool { return pool.Stats().Accepted >= 2 }, "shares")
	arm.Store(true)
	testkit.EventuallyWithin(t, 20*time.Second, func() bool { return failed.Load() == 1 }, "a failed submit write")
	testkit.EventuallyWithin(t, 20*time.Second, func() bool {
		return pool.Stats().Connections >= 2 && acceptedOnConnAbove(pool, 1) >= 2
	}, "shares after reconnecting")
	require.NoError(t, h.shutdown())
	assert.Zero(t, h.src.extra.Load(), "a share whose submit write failed was answered more than once")
	snap := h.m.Snapshot()
	assert.GreaterOrEqual(t, snap.Shares.Lost, uint64(1), "the share whose write failed is lost")
	// Not exact: the share whose write failed never reached the pool.
	h.checkAccounting(poolDropped, []*pooltest.Server{pool})
}

func acceptedOnConnAbove(pool *pooltest.Server, conn int) int {
	n := 0
	for _, sh := range pool.Shares() {
		if sh.Conn > conn {
			n++
		}
	}
	return n
}
