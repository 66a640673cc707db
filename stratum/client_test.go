package stratum

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"clminer/internal/testkit"
	"clminer/stratum/pooltest"
	"clminer/work"
	"clminer/work/retry"
	"clminer/work/source"
)

const easy = 1e-7

func methods(reqs []pooltest.Request) []string {
	var out []string
	for _, r := range reqs {
		if r.Method != "" {
			out = append(out, r.Method)
		}
	}
	return out
}

// The full handshake, in the usual order and with notify/set_difficulty
// before the subscribe reply, with and without version rolling; a share is
// mined on the job and accepted.
func TestHandshakeAndShare(t *testing.T) {
	for _, tc := range []struct {
		name    string
		before  bool
		rolling bool
		shape   string
		delay   map[string]time.Duration
	}{
		{name: "plain"},
		{name: "notify before subscribe reply", before: true},
		{name: "rolling", rolling: true},
		{name: "rolling, notify first", rolling: true, before: true},
		{name: "p2pool single pair", shape: "single"},
		{name: "notify only", shape: "notify-only"},
		{name: "no subscriptions", shape: "none"},
		{name: "late authorize reply", delay: map[string]time.Duration{"mining.authorize": 200 * time.Millisecond}},
		{name: "configure reply after authorize", rolling: true, delay: map[string]time.Duration{"mining.configure": 100 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := pooltest.Start(t, pooltest.Config{Difficulty: easy, Behavior: pooltest.Behavior{
				NotifyBeforeSubscribeReply: tc.before, SubscribeShape: tc.shape, ReplyDelay: tc.delay}})
			r := newRecorder()
			p := pool(srv)
			p.VersionRolling = tc.rolling
			p.ExtranonceSubscribe = true
			p.SuggestDifficulty = 512
			c := runClient(t, []PoolConfig{p}, testOptions(r), r)
			j := r.nextJob(t, nil)
			assert.True(t, j.Clean)
			assert.Equal(t, srv.CurrentJob().JobID, j.ID)
			assert.Equal(t, easy, j.Difficulty)
			assert.Equal(t, "worker.1", j.Worker)
			assert.Equal(t, 0, j.Pool)
			if tc.rolling {
				assert.Equal(t, uint32(0x1fffe000), j.RollingMask)
			} else {
				assert.Zero(t, j.RollingMask)
			}
			version := j.Version
			if tc.rolling {
				version, _ = work.RollVersion(j.Version, j.RollingMask, 5)
			}
			s := mine(t, j, en2(j, 1), version)
			res, err := c.Submit(context.Background(), j, s)
			require.NoError(t, err)
			assert.True(t, res.Accepted, res.Reason)
			assert.Positive(t, res.RTT)
			shares := srv.Shares()
			require.Len(t, shares, 1)
			if tc.rolling {
				assert.NotEmpty(t, shares[0].VersionBits)
			} else {
				assert.Empty(t, shares[0].VersionBits)
			}
			want := []string{"mining.subscribe", "mining.authorize", "mining.extranonce.subscribe", "mining.suggest_difficulty", "mining.submit"}
			if tc.rolling {
				want = append([]string{"mining.configure"}, want...)
			}
			testkit.Eventually(t, func() bool { return len(methods(srv.Requests())) >= len(want) }, "all calls sent")
			m := methods(srv.Requests())
			assert.ElementsMatch(t, want, m)
			assert.Equal(t, "mining.authorize", m[indexOf(m, "mining.subscribe")+1])
			assert.Less(t, indexOf(m, "mining.authorize"), indexOf(m, "mining.suggest_difficulty"))
			var sub []any
			require.NoError(t, json.Unmarshal(srv.Requests()[indexOf(m, "mining.subscribe")].Params, &sub))
			assert.True(t, strings.HasPrefix(sub[0].(string), "clminer/"), sub)
			st := c.Status()
			require.Len(t, st, 1)
			assert.Equal(t, source.StateActive, st[0].State)
			assert.Equal(t, uint64(1), st[0].Accepted)
			assert.Equal(t, easy, st[0].Difficulty)
			assert.Len(t, st[0].Extranonce1, 8)
		})
	}
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// Real vectors served by pooltest and the vector's own submit accepted.
func TestVectorsEndToEnd(t *testing.T) {
	for _, label := range []string{"block_100000", "block_000170", "block_000001", "slush_doc_realworld_testnet3"} {
		v, err := pooltest.BuiltinVector(label)
		require.NoError(t, err)
		t.Run(v.Name, func(t *testing.T) {
			n := v.Notify
			srv := pooltest.Start(t, pooltest.Config{Job: &n, Extranonce1: v.Extranonce1, Extranonce2Size: v.Extranonce2Size, Difficulty: v.Difficulty})
			r := newRecorder()
			c := runClient(t, []PoolConfig{pool(srv)}, testOptions(r), r)
			j := r.nextJob(t, nil)
			assert.Equal(t, v.Notify.JobID, j.ID)
			res, err := c.Submit(context.Background(), j, work.Submit{Worker: v.Submit[0], JobID: v.Submit[1],
				Extranonce2: v.Submit[2], NTime: v.Submit[3], Nonce: v.Submit[4]})
			require.NoError(t, err)
			assert.True(t, res.Accepted, res.Reason)
		})
	}
}

// Each reject format of stratum/PROTOCOL.md#errors comes back as Accepted=false with a readable
// reason and the code when there is one.
func TestSubmitErrorFormats(t *testing.T) {
	for _, tc := range []struct {
		f      pooltest.ErrorFormat
		code   int
		reason string
	}{
		{pooltest.ErrArray3, 20, "forced reject"},
		{pooltest.ErrArray2, 20, "forced reject"},
		{pooltest.ErrMinus2, -2, "forced reject"},
		{pooltest.ErrObject, 20, "forced reject"},
		{pooltest.ErrString, 0, "forced reject"},
		{pooltest.ErrBool, 0, "true"},
		{pooltest.ErrNullReason, 0, "forced reject"},
		{pooltest.ErrMissingKey, 0, "without a reason"},
	} {
		t.Run(fmt.Sprint(tc.f), func(t *testing.T) {
			srv := pooltest.Start(t, pooltest.Config{Difficulty: easy, Behavior: pooltest.Behavior{RejectAll: true, ErrorFormat: tc.f}})
			r := newRecorder()
			c := runClient(t, []PoolConfig{pool(srv)}, testOptions(r), r)
			j := r.nextJob(t, nil)
			res, err := c.Submit(context.Background(), j, mine(t, j, en2(j, 2), j.Version))
			require.NoError(t, err)
			assert.False(t, res.Accepted)
			assert.Equal(t, tc.code, res.Code)
			assert.Contains(t, res.Reason, tc.reason)
			assert.Equal(t, uint64(1), c.Status()[0].Rejected)
		})
	}
}

// Pool-side validation: wrong extranonce2 size, short nonce, stale and
// duplicate shares are all rejected with a reason.
func TestSubmitRejectsKinds(t *testing.T) {
	srv := pooltest.Start(t, pooltest.Config{Difficulty: easy})
	r := newRecorder()
	c := runClient(t, []PoolConfig{pool(srv)}, testOptions(r), r)
	j := r.nextJob(t, nil)
	s := mine(t, j, en2(j, 3), j.Version)
	ctx := context.Background()
	res, err := c.Submit(ctx, j, s)
	require.NoError(t, err)
	require.True(t, res.Accepted)
	res, err = c.Submit(ctx, j, s)
	require.NoError(t, err)
	assert.False(t, res.Accepted)
	assert.Equal(t, 22, res.Code)

	bad := s
	bad.Extranonce2 += "00"
	res, _ = c.Submit(ctx, j, bad)
	assert.Contains(t, res.Reason, "extranonce2")
	bad = s
	bad.Nonce = s.Nonce[1:] // a dropped leading zero
	res, _ = c.Submit(ctx, j, bad)
	assert.Contains(t, res.Reason, "nonce")

	srv.PushJob(true)
	j2 := r.nextJob(t, func(x *source.Job) bool { return x.ID != j.ID })
	assert.True(t, j2.Clean)
	res, _ = c.Submit(ctx, j, mine(t, j, en2(j, 4), j.Version))
	assert.False(t, res.Accepted)
	assert.Contains(t, res.Reason, "Stale")
	st := srv.Stats()
	assert.Equal(t, 1, st.Stale)
	assert.Equal(t, 1, st.Duplicate)
	assert.Equal(t, 1, st.Accepted)
}

// stratum/PROTOCOL.md#quirks: prevhash change without clean_jobs, difficulty stamping and
// lowering, set_extranonce from the next job, set_version_mask at once,
// ping/get_version/show_message, garbage lines.
func TestSessionQuirks(t *testing.T) {
	srv := pooltest.Start(t, pooltest.Config{Difficulty: 0.01})
	r := newRecorder()
	p := pool(srv)
	p.VersionRolling = true
	c := runClient(t, []PoolConfig{p}, testOptions(r), r)
	j1 := r.nextJob(t, nil)
	assert.Equal(t, 0.01, j1.Difficulty)

	// a new prevhash with clean_jobs=false is still clean
	srv.PushJob(false)
	j2 := r.nextJob(t, nil)
	assert.True(t, j2.Clean, "prevhash change must be clean")
	// same prevhash, not clean
	n := srv.CurrentJob()
	n.JobID, n.CleanJobs = "same-prev", false
	srv.PushJobParams(n)
	j3 := r.nextJob(t, nil)
	assert.Equal(t, "same-prev", j3.ID)
	assert.False(t, j3.Clean)

	// a raise applies at once: the current job is re-issued with the
	// harder target (public-pool enforces it on jobs already sent)
	srv.SetDifficulty(0.5)
	j3r := r.nextJob(t, nil)
	assert.Equal(t, j3.ID, j3r.ID)
	assert.Same(t, j3.Entry, j3r.Entry, "a re-issue keeps the ledger entry")
	assert.Equal(t, 0.5, j3r.Entry.Difficulty())
	srv.PushJob(true)
	j4 := r.nextJob(t, nil)
	assert.Equal(t, 0.5, j4.Difficulty)

	// a lowering re-issues nothing and applies from the second job after
	// it (ckpool judges the current and the next job at the old value)
	srv.SetDifficulty(easy)
	n = srv.CurrentJob()
	n.JobID, n.CleanJobs = "after-lower-1", false
	srv.PushJobParams(n)
	j5a := r.nextJob(t, nil)
	assert.Equal(t, "after-lower-1", j5a.ID, "no re-issue of %s for a lowering", j4.ID)
	assert.Equal(t, 0.5, j5a.Difficulty)
	assert.Equal(t, 0.5, j4.Entry.Difficulty())
	n.JobID = "after-lower-2"
	srv.PushJobParams(n)
	j5 := r.nextJob(t, nil)
	assert.Equal(t, easy, j5.Difficulty)
	res, err := c.Submit(context.Background(), j5, mine(t, j5, en2(j5, 1), j5.Version))
	require.NoError(t, err)
	assert.True(t, res.Accepted, res.Reason)

	// set_extranonce applies from the next notify
	srv.SetExtranonce("deadbeefcafe", 3)
	srv.ShowMessage("hello miner")
	srv.PushJob(true)
	j6 := r.nextJob(t, nil)
	assert.Equal(t, []byte{0xde, 0xad, 0xbe, 0xef, 0xca, 0xfe}, j6.Extranonce1)
	assert.Equal(t, 3, j6.Extranonce2Size)
	res, err = c.Submit(context.Background(), j6, mine(t, j6, en2(j6, 1), j6.Version))
	require.NoError(t, err)
	assert.True(t, res.Accepted, res.Reason)

	// set_version_mask applies at once: the current job is re-issued
	srv.SetVersionMask(0x00ffe000)
	j7 := r.nextJob(t, nil)
	assert.Equal(t, j6.ID, j7.ID)
	assert.Equal(t, uint32(0x00ffe000), j7.RollingMask)
	v, _ := work.RollVersion(j7.Version, j7.RollingMask, 3)
	res, err = c.Submit(context.Background(), j7, mine(t, j7, en2(j7, 2), v))
	require.NoError(t, err)
	assert.True(t, res.Accepted, res.Reason)

	// garbage, requests from the pool, unknown methods
	srv.SendRaw("this is not json")
	srv.SendRaw(`{"id":42,"method":"mining.ping","params":[]}`)
	srv.SendRaw(`{"id":43,"method":"client.get_version","params":[]}`)
	srv.SendRaw(`{"id":44,"method":"mining.unknown_thing","params":[]}`)
	srv.SendRaw(`{"id":null,"method":"mining.set_difficulty","params":[-5]}`)
	srv.SendRaw(`{"id":null,"method":"mining.notify","params":[1,2,3]}`)
	testkit.Eventually(t, func() bool {
		var got []string
		for _, q := range srv.Requests() {
			if q.Method == "" {
				got = append(got, string(q.Params))
			}
		}
		all := strings.Join(got, "\n")
		return strings.Contains(all, `"id":42,"result":"pong"`) && strings.Contains(all, `"id":43,"result":"clminer/`) &&
			strings.Contains(all, `"id":44,"result":null,"error":[-3`)
	}, "ping, get_version and unknown request answered")
	srv.PushJob(true)
	j8 := r.nextJob(t, nil)
	assert.Equal(t, j7.Session, j8.Session, "garbage must not drop the session")
	assert.Equal(t, easy, j8.Difficulty, "a negative difficulty is ignored")
}

// Optional calls that are never answered (NOMP) do not stall the session.
func TestOptionalCallsNeverAnswered(t *testing.T) {
	srv := pooltest.Start(t, pooltest.Config{Difficulty: easy, Behavior: pooltest.Behavior{
		NeverReply: []string{"mining.configure", "mining.extranonce.subscribe", "mining.suggest_difficulty"}}})
	r := newRecorder()
	p := pool(srv)
	p.VersionRolling, p.ExtranonceSubscribe, p.SuggestDifficulty = true, true, 1000
	opts := testOptions(r)
	c := runClient(t, []PoolConfig{p}, opts, r)
	start := time.Now()
	j := r.nextJob(t, nil)
	assert.Less(t, time.Since(start), 3*time.Second)
	assert.Zero(t, j.RollingMask)
	res, err := c.Submit(context.Background(), j, mine(t, j, en2(j, 1), j.Version))
	require.NoError(t, err)
	assert.True(t, res.Accepted)
}

// A submit the pool never answers times out; one for an old session is
// refused without being sent.
func TestSubmitTimeoutAndStaleSession(t *testing.T) {
	srv := pooltest.Start(t, pooltest.Config{Difficulty: easy, Behavior: pooltest.Behavior{ReplyDelay: map[string]time.Duration{"mining.submit": 5 * time.Second}}})
	r := newRecorder()
	opts := testOptions(r)
	opts.SubmitTimeout = 200 * time.Millisecond
	c := runClient(t, []PoolConfig{pool(srv)}, opts, r)
	j := r.nextJob(t, nil)
	_, err := c.Submit(context.Background(), j, mine(t, j, en2(j, 1), j.Version))
	assert.ErrorIs(t, err, ErrTimeout)

	srv.DropAll()
	j2 := r.nextJob(t, func(x *source.Job) bool { return x.Session != j.Session })
	assert.True(t, j2.Clean)
	before := len(methods(srv.Requests()))
	_, err = c.Submit(context.Background(), j, mine(t, j, en2(j, 2), j.Version))
	assert.ErrorIs(t, err, ErrStaleSession)
	assert.Equal(t, before, len(methods(srv.Requests())), "nothing sent")
	// session resume: the second subscribe carries the first session id
	var subs [][]any
	for _, q := range srv.Requests() {
		if q.Method == "mining.subscribe" {
			var p []any
			require.NoError(t, json.Unmarshal(q.Params, &p))
			subs = append(subs, p)
		}
	}
	require.Len(t, subs, 2)
	assert.Len(t, subs[0], 1)
	require.Len(t, subs[1], 2)
	assert.Equal(t, j.Extranonce1, j2.Extranonce1, "pooltest resumes the extranonce1")
}

func TestResumeRefusedRetriesWithout(t *testing.T) {
	srv := pooltest.Start(t, pooltest.Config{Difficulty: easy, Behavior: pooltest.Behavior{RejectResume: true}})
	r := newRecorder()
	c := runClient(t, []PoolConfig{pool(srv)}, testOptions(r), r)
	j := r.nextJob(t, nil)
	srv.DropAll()
	j2 := r.nextJob(t, func(x *source.Job) bool { return x.Session != j.Session })
	res, err := c.Submit(context.Background(), j2, mine(t, j2, en2(j2, 1), j2.Version))
	require.NoError(t, err)
	assert.True(t, res.Accepted)
	assert.Equal(t, 3, strings.Count(strings.Join(methods(srv.Requests()), " "), "mining.subscribe"))
}

func TestConcurrentSubmits(t *testing.T) {
	srv := pooltest.Start(t, pooltest.Config{Difficulty: easy})
	r := newRecorder()
	c := runClient(t, []PoolConfig{pool(srv)}, testOptions(r), r)
	j := r.nextJob(t, nil)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			res, err := c.Submit(context.Background(), j, mine(t, j, en2(j, byte(10+i)), j.Version))
			assert.NoError(t, err)
			assert.True(t, res.Accepted)
		}(i)
	}
	wg.Wait()
	assert.Equal(t, 8, srv.Stats().Accepted)
}

func TestTLS(t *testing.T) {
	srv := pooltest.Start(t, pooltest.Config{TLS: true, Difficulty: easy})
	require.NotEmpty(t, srv.Fingerprint())
	fp := srv.Fingerprint()
	var colons []string
	for i := 0; i < len(fp); i += 2 {
		colons = append(colons, strings.ToUpper(fp[i:i+2]))
	}
	for _, tc := range []struct {
		name string
		mod  func(*PoolConfig)
		ok   bool
	}{
		{"self-signed refused by default", func(*PoolConfig) {}, false},
		{"wrong pin refused", func(p *PoolConfig) { p.Fingerprint = strings.Repeat("00", 32) }, false},
		{"pinned", func(p *PoolConfig) { p.Fingerprint = strings.Join(colons, ":") }, true},
		{"insecure", func(p *PoolConfig) { p.TLSInsecure = true }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRecorder()
			p := pool(srv)
			tc.mod(&p)
			c := runClient(t, []PoolConfig{p}, testOptions(r), r)
			if tc.ok {
				j := r.nextJob(t, nil)
				res, err := c.Submit(context.Background(), j, mine(t, j, en2(j, 1), j.Version))
				require.NoError(t, err)
				assert.True(t, res.Accepted)
				return
			}
			testkit.Eventually(t, func() bool {
				for _, e := range r.eventList() {
					if e.Kind == source.EventDisconnected && e.Err != nil {
						return true
					}
				}
				return false
			}, "TLS failure reported")
			assert.False(t, r.hasEvent(source.EventAuthorized, 0))
			assert.NotEmpty(t, c.Status()[0].LastError)
		})
	}
}

// A dead primary (refused) fails over to the backup within 5 s; once the
// primary has been reachable for the hold-down, the client returns to it.
func TestFailoverAndReturn(t *testing.T) {
	primary := pooltest.Start(t, pooltest.Config{Difficulty: easy})
	backup := pooltest.Start(t, pooltest.Config{Difficulty: easy})
	d := newTestDialer()
	d.set(primary.Addr(), true)
	r := newRecorder()
	opts := testOptions(r)
	opts.Dialer = d.dial
	opts.HoldDown = 600 * time.Millisecond
	start := time.Now()
	c := runClient(t, []PoolConfig{pool(primary), pool(backup)}, opts, r)
	j := r.nextJob(t, nil)
	assert.Equal(t, 1, j.Pool)
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.True(t, r.hasEvent(source.EventFailover, 1))

	// the primary comes back: no switch before the hold-down, then a switch
	d.set(primary.Addr(), false)
	back := time.Now()
	j2 := r.nextJob(t, func(x *source.Job) bool { return x.Pool == 0 })
	assert.GreaterOrEqual(t, time.Since(back), opts.HoldDown)
	assert.True(t, j2.Clean)
	_, err := c.Submit(context.Background(), j, mine(t, j, en2(j, 1), j.Version))
	assert.ErrorIs(t, err, ErrStaleSession, "a share for the backup is never sent to the primary")
	res, err := c.Submit(context.Background(), j2, mine(t, j2, en2(j2, 1), j2.Version))
	require.NoError(t, err)
	assert.True(t, res.Accepted)
	assert.Equal(t, 0, backup.Stats().Accepted)
	st := c.Status()
	assert.Equal(t, source.StateActive, st[0].State)
	assert.GreaterOrEqual(t, st[1].Failovers, uint64(1))
}

// A primary that stops sending is declared dead after ReadTimeout.
func TestStalledPrimaryFailsOver(t *testing.T) {
	primary := pooltest.Start(t, pooltest.Config{Difficulty: easy})
	backup := pooltest.Start(t, pooltest.Config{Difficulty: easy})
	r := newRecorder()
	opts := testOptions(r)
	opts.ReadTimeout = 500 * time.Millisecond
	opts.HoldDown = time.Minute
	runClient(t, []PoolConfig{pool(primary), pool(backup)}, opts, r)
	j := r.nextJob(t, nil)
	require.Equal(t, 0, j.Pool)
	primary.Stall(true)
	start := time.Now()
	// reconnects to the stalled primary get no subscribe reply either
	j2 := r.nextJob(t, func(x *source.Job) bool { return x.Pool == 1 })
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.True(t, j2.Clean)
}

func TestAuthorizeFailureFailsOver(t *testing.T) {
	primary := pooltest.Start(t, pooltest.Config{Difficulty: easy, Behavior: pooltest.Behavior{RefuseAuth: true}})
	backup := pooltest.Start(t, pooltest.Config{Difficulty: easy})
	r := newRecorder()
	opts := testOptions(r)
	opts.HoldDown = time.Minute
	c := runClient(t, []PoolConfig{pool(primary), pool(backup)}, opts, r)
	j := r.nextJob(t, nil)
	assert.Equal(t, 1, j.Pool)
	assert.True(t, r.hasEvent(source.EventAuthFailed, 0))
	var authErr error
	for _, e := range r.eventList() {
		if e.Kind == source.EventAuthFailed {
			authErr = e.Err
		}
	}
	assert.ErrorIs(t, authErr, ErrAuthorize)
	assert.Contains(t, authErr.Error(), "worker.1")
	assert.Contains(t, authErr.Error(), "Unauthorized")
	assert.NotContains(t, c.Status()[0].LastError, "x\"")
}

// Backoff grows per failure and is capped, as seen by the dial times of a
// single dead pool.
func TestBackoffAgainstDeadPool(t *testing.T) {
	d := newTestDialer()
	d.set("127.0.0.1:1", true)
	r := newRecorder()
	opts := testOptions(r)
	opts.Dialer = d.dial
	opts.Retry = retry.Backoff{Initial: 20 * time.Millisecond, Max: 160 * time.Millisecond}
	c := runClient(t, []PoolConfig{{URL: "stratum+tcp://127.0.0.1:1", User: "w"}}, opts, r)
	testkit.Eventually(t, func() bool { return c.Status()[0].Failures >= 7 }, "failures accumulate")
	// Past the cap, attempts come at least 160 ms*0.8 apart (the lower
	// bound, which a loaded machine only lengthens) and at most 160 ms
	// apart (uncapped, the next four would take over 10 s).
	n, since := d.count("127.0.0.1:1"), time.Now()
	testkit.Eventually(t, func() bool { return d.count("127.0.0.1:1") >= n+4 }, "four more attempts")
	assert.GreaterOrEqual(t, time.Since(since), 3*128*time.Millisecond, "three full gaps between them")
	assert.Equal(t, source.StateDown, c.Status()[0].State)
}

func TestReconnect(t *testing.T) {
	t.Run("other domain refused", func(t *testing.T) {
		srv := pooltest.Start(t, pooltest.Config{Difficulty: easy})
		r := newRecorder()
		c := runClient(t, []PoolConfig{pool(srv)}, testOptions(r), r)
		j := r.nextJob(t, nil)
		srv.Reconnect("evil.example.net", 3333, 0)
		srv.PushJob(true)
		j2 := r.nextJob(t, nil)
		assert.Equal(t, j.Session, j2.Session)
		assert.Equal(t, 1, srv.Stats().Connections)
		assert.False(t, r.hasEvent(source.EventReconnectRequested, 0))
		_ = c
	})
	t.Run("same host other port followed", func(t *testing.T) {
		srv := pooltest.Start(t, pooltest.Config{Difficulty: easy})
		other := pooltest.Start(t, pooltest.Config{Difficulty: easy})
		r := newRecorder()
		c := runClient(t, []PoolConfig{pool(srv)}, testOptions(r), r)
		j := r.nextJob(t, nil)
		_, port, _ := net.SplitHostPort(other.Addr())
		srv.Reconnect("127.0.0.1", port, 0)
		j2 := r.nextJob(t, func(x *source.Job) bool { return x.Session != j.Session })
		assert.Equal(t, 0, j2.Pool)
		res, err := c.Submit(context.Background(), j2, mine(t, j2, en2(j2, 1), j2.Version))
		require.NoError(t, err)
		assert.True(t, res.Accepted)
		assert.Equal(t, 1, other.Stats().Accepted)
		assert.True(t, r.hasEvent(source.EventReconnectRequested, 0))
	})
	t.Run("other domain allowed by option", func(t *testing.T) {
		srv := pooltest.Start(t, pooltest.Config{Difficulty: easy})
		other := pooltest.Start(t, pooltest.Config{Difficulty: easy})
		r := newRecorder()
		p := pool(srv)
		p.AllowReconnectAnyDomain = true
		runClient(t, []PoolConfig{p}, testOptions(r), r)
		j := r.nextJob(t, nil)
		_, port, _ := net.SplitHostPort(other.Addr())
		srv.Reconnect("localhost", port, 0)
		r.nextJob(t, func(x *source.Job) bool { return x.Session != j.Session })
		testkit.Eventually(t, func() bool { return other.Stats().Authorized == 1 }, "moved to localhost")
	})
}

// An endless line closes the connection (memory stays bounded) and the
// client reconnects.
func TestEndlessLine(t *testing.T) {
	srv := pooltest.Start(t, pooltest.Config{Difficulty: easy})
	r := newRecorder()
	opts := testOptions(r)
	opts.MaxLineSize = 16 << 10
	runClient(t, []PoolConfig{pool(srv)}, opts, r)
	j := r.nextJob(t, nil)
	srv.SendEndless(4 << 20)
	j2 := r.nextJob(t, func(x *source.Job) bool { return x.Session != j.Session })
	assert.True(t, j2.Clean)
	var lineErr bool
	for _, e := range r.eventList() {
		if e.Kind == source.EventDisconnected && errors.Is(e.Err, ErrLineTooLong) {
			lineErr = true
		}
	}
	assert.True(t, lineErr, "disconnect reason is the line cap")
}

func TestNewClientErrors(t *testing.T) {
	_, err := NewClient(nil, Options{})
	assert.Error(t, err)
	_, err = NewClient([]PoolConfig{{URL: "pool:3333", User: "w"}}, Options{})
	assert.ErrorContains(t, err, "no scheme")
	_, err = NewClient([]PoolConfig{{URL: "stratum+tcp://pool:3333"}}, Options{})
	assert.ErrorContains(t, err, "user")
	_, err = NewClient([]PoolConfig{{URL: "stratum+tls://pool:3333", User: "w", Fingerprint: "zz"}}, Options{})
	assert.ErrorContains(t, err, "fingerprint")
	c, err := NewClient([]PoolConfig{{URL: "stratum+tcp://pool:3333", User: "w"}}, Options{})
	require.NoError(t, err)
	_, err = c.Submit(context.Background(), &source.Job{Session: 99}, work.Submit{})
	assert.ErrorIs(t, err, ErrStaleSession)
}

// A pool granting bits outside BIP 320 (AntPool's 5fffe000) gets the
// intersection; rolled shares inside it are accepted.
func TestRollingMaskIntersected(t *testing.T) {
	srv := pooltest.Start(t, pooltest.Config{Difficulty: easy, VersionMask: 0x5fffe000})
	r := newRecorder()
	p := pool(srv)
	p.VersionRolling = true
	c := runClient(t, []PoolConfig{p}, testOptions(r), r)
	j := r.nextJob(t, nil)
	assert.Equal(t, uint32(0x1fffe000), j.RollingMask)
	v, err := work.RollVersion(j.Version, j.RollingMask, 1<<15)
	require.NoError(t, err)
	res, err := c.Submit(context.Background(), j, mine(t, j, en2(j, 1), v))
	require.NoError(t, err)
	assert.True(t, res.Accepted, res.Reason)
	assert.Equal(t, uint32(0x1fffe000), c.Status()[0].RollingMask)
}
