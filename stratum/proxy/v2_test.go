package proxy

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"clminer/internal/testkit"
	"clminer/stratum"
	"clminer/stratum/pooltest"
	"clminer/stratum/v2/channel"
	"clminer/stratum/v2/codec"
	"clminer/stratum/v2/v2test"
	"clminer/stratum/wire"
	"clminer/work"
	"clminer/work/failover"
	"clminer/work/retry"
)

// v2Target is the V2 target of difficulty d.
func v2Target(t testing.TB, d float64) [32]byte {
	t.Helper()
	tg, err := work.TargetForDifficulty(d)
	require.NoError(t, err)
	return work.U256FromTarget(tg)
}

// startV2 runs the Go V2 test pool in extended-channel mode and a channel
// to it, as `clminer proxy` builds one (Extended).
func startV2(t testing.TB, cfg v2test.Config) (*v2test.Pool, *channel.Source) {
	t.Helper()
	cfg.Extended = true
	if cfg.Target == ([32]byte{}) {
		cfg.Target = v2Target(t, pooltest.LowDiff)
	}
	pool := v2test.Start(t, cfg)
	src, err := channel.New(channel.Config{URL: pool.URL(), User: "acct.farm", VersionRolling: true, Extended: true},
		channel.Options{Retry: retry.Backoff{Max: 100 * time.Millisecond}, MaxInFlight: 1024})
	require.NoError(t, err)
	return pool, src
}

// v2Counts are the pool's accepted and rejected shares, and how many of
// the rejects were duplicates.
func v2Counts(p *v2test.Pool) (acc, rej, dup int) {
	for _, s := range p.Shares() {
		switch {
		case s.Accepted:
			acc++
		case s.Reason == "duplicate-share":
			dup++
			rej++
		default:
			rej++
		}
	}
	return
}

// minerAccepted is the proxy's count of accepted shares of worker.
func minerAccepted(px *proxyRun, worker string) uint64 {
	for _, w := range px.srv.Status().Workers {
		if w.Name == worker {
			return w.Shares.Accepted
		}
	}
	return 0
}

// A Stratum V2 pool upstream, in an extended channel: every downstream
// clminer's shares go up as SubmitSharesExtended with the miner's prefix
// at the head of the channel's extranonce, none twice, and the pool's
// counts are the proxy's. The names stay downstream (V2 has no
// sub-workers): they are the proxy's per-worker accounting.
func TestV2UpstreamExtendedChannel(t *testing.T) {
	pool, src := startV2(t, v2test.Config{})
	px := startProxyOn(t, Config{}, src)
	var ds []*downstream
	for i := 1; i <= 3; i++ {
		ds = append(ds, startDownstream(t, px.url(), fmt.Sprintf("someone.rig%d", i), stratum.Options{}))
	}
	testkit.EventuallyWithin(t, 60*time.Second, func() bool {
		for i := 1; i <= 3; i++ {
			if minerAccepted(px, fmt.Sprintf("someone.rig%d", i)) < 3 {
				return false
			}
		}
		return true
	}, "3 accepted shares from each rig")
	st := px.srv.Status()
	prefixes := map[string]bool{}
	for _, m := range st.Miners {
		assert.Len(t, m.Extranonce1, 4, "2 bytes of the channel's 8 per miner")
		assert.Equal(t, 6, m.Extranonce2Size)
		prefixes[m.Extranonce1] = true
	}
	assert.Len(t, prefixes, 3)
	for _, d := range ds {
		d.shutdown()
	}
	testkit.Eventually(t, func() bool { return len(px.srv.Status().Miners) == 0 }, "the rigs' connections closed")
	acc, rej, dup := v2Counts(pool)
	ps := px.srv.Status()
	assert.Zero(t, dup, "no share twice at the pool")
	assert.Zero(t, rej, "the proxy sends only what the pool accepts")
	assert.EqualValues(t, acc, ps.Shares.Accepted, "the pool's count is the proxy's")
	assert.Zero(t, ps.Shares.Rejected+ps.Shares.Invalid+ps.Shares.Duplicate)
	for _, s := range pool.Shares() {
		require.Len(t, s.Extranonce, 8)
		assert.True(t, prefixes[hex.EncodeToString(s.Extranonce[:2])], "share under a miner's prefix: %x", s.Extranonce)
	}
	for _, w := range ps.Workers {
		assert.Equal(t, "disconnected", w.State, w.Name)
		assert.Empty(t, w.Upstream, "no V2 sub-worker names")
	}
	require.Len(t, ps.Pools, 1)
	assert.Equal(t, "stratum2", ps.Pools[0].Protocol)
}

// shareBetween finds a share of job p (as a miner with extranonce2 size
// size sees it) that meets difficulty easy but not hard.
func shareBetween(t *testing.T, p work.JobParams, easy, hard float64) ([]byte, uint32) {
	t.Helper()
	j, err := work.NewJob(p)
	require.NoError(t, err)
	lo, err := work.TargetForDifficulty(easy)
	require.NoError(t, err)
	hi, err := work.TargetForDifficulty(hard)
	require.NoError(t, err)
	for e := byte(1); ; e++ {
		en2 := bytes.Repeat([]byte{0}, p.Extranonce2Size)
		en2[len(en2)-1] = e
		u, err := j.NewUnit(en2, j.Version, j.NTime)
		require.NoError(t, err)
		for n := uint32(0); n < 1<<20; n++ {
			h := u.Check(n).Hash
			if lo.Met(h) && !hi.Met(h) {
				return en2, n
			}
		}
	}
}

// jobNTime is a job's ntime.
func jobNTime(t *testing.T, p work.JobParams) uint32 {
	t.Helper()
	n, err := work.ParseUint32Hex("ntime", p.NTime)
	require.NoError(t, err)
	return n
}

// nextNewJob reads jobs until one with another id than old.
func (s *session) nextNewJob(t *testing.T, old string) {
	t.Helper()
	for s.nextJob(t); s.job.JobID == old; s.nextJob(t) {
	}
}

// SetTarget reaches V1 miners under the v1 rule: a raise at once (the job
// re-sent, a share meeting only the old value refused here), a lowering
// from the second new job after it; SetNewPrevHash is a clean job.
func TestV2SetTargetUnderTheV1Rule(t *testing.T) {
	pool, src := startV2(t, v2test.Config{})
	px := startProxyOn(t, Config{}, src)
	s := handshake(t, dialRaw(t, px.srv.Addr()), "rig", false)
	conn := pool.Next(10 * time.Second)
	require.NotNil(t, conn)
	d0 := s.diff
	first := s.job
	require.InDelta(t, pooltest.LowDiff, d0, pooltest.LowDiff*1e-6)

	require.NoError(t, conn.SetTarget(v2Target(t, pooltest.LowDiff*64)))
	for s.nextJob(t); s.diff == d0; s.nextJob(t) {
	}
	assert.Equal(t, first.JobID, s.job.JobID, "the raise re-sends the job")
	raised := s.diff
	assert.InDelta(t, pooltest.LowDiff*64, raised, pooltest.LowDiff*1e-4)
	en2, nonce := shareBetween(t, first, pooltest.LowDiff, pooltest.LowDiff*64)
	assert.Equal(t, wire.CodeLowDifficulty, rejectCode(t, s.submit(t, "rig", en2, jobNTime(t, s.job), nonce, "")))

	require.NoError(t, conn.SetTarget(v2Target(t, pooltest.LowDiff)))
	require.NoError(t, conn.NewJob())
	s.nextNewJob(t, first.JobID)
	assert.Equal(t, raised, s.diff, "the first job after a lowering keeps the higher value")
	second := s.job.JobID
	require.NoError(t, conn.NewJob())
	s.nextNewJob(t, second)
	assert.Equal(t, d0, s.diff, "the second job after it has the lower one")
	// A share meeting only the lowered value is the pool's.
	en2, nonce = shareBetween(t, s.job, pooltest.LowDiff, pooltest.LowDiff*64)
	rep := s.submit(t, "rig", en2, jobNTime(t, s.job), nonce, "")
	require.Equal(t, "true", string(rep.Result), "%s", rep.Error)

	third := s.job.JobID
	require.NoError(t, conn.NewBlock())
	s.nextNewJob(t, third)
	assert.True(t, s.job.CleanJobs, "a new prevhash is a clean job")
	acc, rej, _ := v2Counts(pool)
	assert.Equal(t, 1, acc)
	assert.Zero(t, rej, "the share below the raised target never reached the pool")
	st := px.srv.Status()
	assert.EqualValues(t, 1, st.Shares.Accepted)
	assert.EqualValues(t, 1, st.Shares.LowDifficulty)
}

// A V2 pool fails over to a Stratum v1 backup and comes back: the miners
// keep their connection to the proxy throughout and mine for each in
// turn, their names authorized on the v1 backup as its sub-workers.
func TestV2FailoverToV1AndBack(t *testing.T) {
	v2, src := startV2(t, v2test.Config{})
	v1 := pooltest.Start(t, pooltest.Config{Extranonce2Size: 8})
	client, err := stratum.NewClient([]stratum.PoolConfig{{URL: v1.URL(), User: "farm", Pass: "x", VersionRolling: true}}, fastOpts())
	require.NoError(t, err)
	px := startProxyOn(t, Config{}, failover.New(src, client))
	d1 := startDownstream(t, px.url(), "rig1", stratum.Options{})
	d2 := startDownstream(t, px.url(), "rig2", stratum.Options{})
	v2Acc := func() int { a, _, _ := v2Counts(v2); return a }
	testkit.EventuallyWithin(t, 60*time.Second, func() bool { return v2Acc() >= 4 }, "shares on the V2 pool")
	v2.SetDown(true)
	testkit.EventuallyWithin(t, 60*time.Second, func() bool {
		return acceptedBy(v1, "farm.rig1") > 0 && acceptedBy(v1, "farm.rig2") > 0
	}, "shares on the v1 backup from both rigs")
	back := v2Acc()
	v2.SetDown(false)
	testkit.EventuallyWithin(t, 60*time.Second, func() bool { return v2Acc() >= back+4 }, "shares on the V2 pool again")
	for _, d := range []*downstream{d1, d2} {
		assert.EqualValues(t, 1, d.client.Status()[0].Connects, "the miner never reconnected to the proxy")
	}
	d1.shutdown()
	d2.shutdown()
	_, rej, dup := v2Counts(v2)
	assert.Zero(t, rej+dup)
	assert.Zero(t, v1.Stats().Rejected)
	assert.Zero(t, v1.Stats().Duplicate)
	st := px.srv.Status()
	// A share whose verdict was on its way when the V2 pool went down is
	// the pool's but lost to the proxy: counted lost, never twice.
	got := uint64(v2Acc() + v1.Stats().Accepted)
	assert.GreaterOrEqual(t, got, st.Shares.Accepted, "%+v", st.Shares)
	assert.LessOrEqual(t, got, st.Shares.Accepted+st.Shares.Lost, "both pools' counts are the proxy's: %+v", st.Shares)
	assert.Zero(t, st.Shares.Invalid+st.Shares.Duplicate+st.Shares.Rejected, "%+v", st.Shares)
}

// The V2 pool's Reconnect and CloseChannel end the channel as they do for
// `clminer mine` (the channel reconnects, to the same authority key); the
// miners keep their connection to the proxy and mine on the new channel.
func TestV2ReconnectAndCloseChannelKeepMiners(t *testing.T) {
	pool, src := startV2(t, v2test.Config{})
	px := startProxyOn(t, Config{}, src)
	d := startDownstream(t, px.url(), "rig1", stratum.Options{})
	conn := pool.Next(10 * time.Second)
	require.NotNil(t, conn)
	acc := func() int { a, _, _ := v2Counts(pool); return a }
	testkit.EventuallyWithin(t, 60*time.Second, func() bool { return acc() >= 2 }, "shares")
	for _, m := range []codec.Message{&codec.Reconnect{}, &codec.CloseChannel{ChannelID: 7, ReasonCode: "maintenance"}} {
		require.NoError(t, conn.Send(m))
		conn = pool.Next(30 * time.Second)
		require.NotNil(t, conn, "the channel came back after %s", m.Name())
		n := acc()
		testkit.EventuallyWithin(t, 60*time.Second, func() bool { return acc() >= n+2 }, "shares on the new channel")
	}
	assert.EqualValues(t, 1, d.client.Status()[0].Connects, "the miner never reconnected to the proxy")
	d.shutdown()
	_, rej, dup := v2Counts(pool)
	assert.Zero(t, rej+dup)
	st := px.srv.Status().Shares
	assert.Zero(t, st.Invalid+st.Duplicate+st.Rejected, "%+v", st)
}
