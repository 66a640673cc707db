package proxy

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"clminer/internal/testkit"
	"clminer/stratum"
	"clminer/stratum/pooltest"
	"clminer/stratum/wire"
	"clminer/work"
)

// Shares from every downstream clminer reach the pool under their own
// worker, none twice: the extranonce split keeps their work apart.
func TestSharesFromEveryMinerAcceptedUnderTheirWorkers(t *testing.T) {
	pool := pooltest.Start(t, pooltest.Config{})
	px := startProxy(t, Config{}, pool)
	var ds []*downstream
	for i := 1; i <= 3; i++ {
		ds = append(ds, startDownstream(t, px.url(), fmt.Sprintf("someone.rig%d", i), stratum.Options{}))
	}
	testkit.EventuallyWithin(t, 60*time.Second, func() bool {
		for i := 1; i <= 3; i++ {
			if acceptedBy(pool, fmt.Sprintf("farm.rig%d", i)) < 3 {
				return false
			}
		}
		return true
	}, "3 accepted shares from each rig")
	live := px.srv.Status()
	for _, d := range ds {
		d.shutdown()
	}
	st := pool.Stats()
	assert.Zero(t, st.Duplicate, "no share twice at the pool")
	assert.Zero(t, st.Rejected, "the proxy sends only what the pool accepts")
	assert.Equal(t, 1, st.Connections, "one pool connection for the whole farm")
	// Every share the pool saw is unique across miners.
	seen := map[string]bool{}
	for _, s := range pool.Shares() {
		k := s.JobID + "/" + s.Extranonce2 + "/" + s.NTime + "/" + s.Nonce + "/" + s.VersionBits
		assert.False(t, seen[k], "share %s twice", k)
		assert.True(t, strings.HasPrefix(s.Worker, "farm.rig"), "every share under its rig's worker (the miner's authorize waits for the pool's): %s", s.Worker)
		seen[k] = true
	}
	ps := px.srv.Status()
	assert.EqualValues(t, len(pool.Shares()), ps.Shares.Accepted, "every accepted share is counted once at the proxy")
	var names []string
	for _, w := range live.Workers {
		names = append(names, w.Name)
		assert.Equal(t, "authorized", w.State, w.Name)
		assert.True(t, strings.HasPrefix(w.Upstream, "farm.rig"), w.Upstream)
		assert.Positive(t, w.Shares.Accepted)
	}
	assert.ElementsMatch(t, []string{"someone.rig1", "someone.rig2", "someone.rig3"}, names)
	assert.Len(t, live.Miners, 3)
	testkit.Eventually(t, func() bool { return len(px.srv.Status().Miners) == 0 }, "the rigs' connections closed")
	for _, w := range px.srv.Status().Workers {
		assert.Equal(t, "disconnected", w.State, "after the rigs left")
	}
	// The names stay authorized upstream (the most recent keptUpstreamWorkers
	// of them), so a rig that comes back costs the pool nothing.
	var kept []string
	for _, w := range px.client.Workers() {
		kept = append(kept, w.Key)
	}
	assert.ElementsMatch(t, []string{"rig1", "rig2", "rig3"}, kept)
	authorized := pool.Stats().Authorized
	d := startDownstream(t, px.url(), "someone.rig2", stratum.Options{})
	testkit.EventuallyWithin(t, 60*time.Second, func() bool { return acceptedBy(pool, "farm.rig2") > 3 }, "the returning rig's share")
	d.shutdown()
	assert.Equal(t, authorized, pool.Stats().Authorized, "a returning name sent no authorize upstream")
}

// The upstream fails over to the backup; the miners keep their connection
// to the proxy and go on mining, now for the backup, under their workers.
func TestUpstreamFailoverKeepsMinersConnected(t *testing.T) {
	a := pooltest.Start(t, pooltest.Config{Extranonce1: "aabbccdd"})
	b := pooltest.Start(t, pooltest.Config{Extranonce1: "11223344556677", Extranonce2Size: 8})
	px := startProxy(t, Config{}, a, b)
	d1 := startDownstream(t, px.url(), "rig1", stratum.Options{})
	d2 := startDownstream(t, px.url(), "rig2", stratum.Options{})
	testkit.EventuallyWithin(t, 60*time.Second, func() bool {
		return acceptedBy(a, "farm.rig1") > 0 && acceptedBy(a, "farm.rig2") > 0
	}, "shares on the primary from both rigs")
	a.Close()
	testkit.EventuallyWithin(t, 60*time.Second, func() bool {
		return acceptedBy(b, "farm.rig1") > 1 && acceptedBy(b, "farm.rig2") > 1
	}, "shares on the backup from both rigs")
	for _, d := range []*downstream{d1, d2} {
		st := d.client.Status()
		assert.EqualValues(t, 1, st[0].Connects, "the miner never reconnected to the proxy")
	}
	assert.Zero(t, b.Stats().Rejected)
	assert.Zero(t, b.Stats().Duplicate)
}

// hashShare finds a nonce meeting diff for a job as a miner sees it.
func mineShare(t testing.TB, p work.JobParams, en2 []byte, version uint32) (uint32, work.Check) {
	t.Helper()
	j, err := work.NewJob(p)
	require.NoError(t, err)
	u, err := j.NewUnit(en2, version, j.NTime)
	require.NoError(t, err)
	for n := uint32(0); n < 1<<28; n++ {
		if c := u.Check(n); c.MeetsShare {
			return n, c
		}
	}
	t.Fatal("no share found")
	return 0, work.Check{}
}

type session struct {
	*raw
	en1   string
	size  int
	diff  float64
	job   work.JobParams
	mask  uint32
	notes []rline
}

// handshake subscribes and authorizes a raw miner and reads its first job.
func handshake(t *testing.T, r *raw, worker string, rolling bool) *session {
	s := &session{raw: r, diff: 1}
	if rolling {
		id := r.call("mining.configure", []any{"version-rolling"}, map[string]any{"version-rolling.mask": "ffffffff"})
		rep, _ := r.until(id)
		ok, mask, err := stratum.ParseConfigureResult(rep.Result)
		require.NoError(t, err)
		require.True(t, ok)
		s.mask = mask
	}
	id := r.call("mining.subscribe", "raw/1")
	rep, _ := r.until(id)
	sub, err := stratum.ParseSubscribeResult(rep.Result)
	require.NoError(t, err, string(rep.Error))
	s.en1, s.size = sub.Extranonce1, sub.Extranonce2Size
	id = r.call("mining.authorize", worker, "x")
	rep, notes := r.until(id)
	require.Equal(t, "true", string(rep.Result))
	s.notes = notes
	s.nextJob(t)
	return s
}

// nextJob reads up to the next notify, applying set_difficulty.
func (s *session) nextJob(t *testing.T) {
	t.Helper()
	for {
		var l rline
		if len(s.notes) > 0 {
			l, s.notes = s.notes[0], s.notes[1:]
		} else {
			var err error
			l, err = s.read()
			require.NoError(t, err)
		}
		switch l.Method {
		case wire.MethodSetDifficulty:
			d, err := stratum.ParseDifficulty(l.Params)
			require.NoError(t, err)
			s.diff = d
		case wire.MethodNotify:
			p, err := stratum.ParseNotify(l.Params)
			require.NoError(t, err)
			p.Extranonce1, p.Extranonce2Size, p.Difficulty = s.en1, s.size, s.diff
			s.job = p
			return
		}
	}
}

func (s *session) submit(t *testing.T, worker string, en2 []byte, ntime uint32, nonce uint32, vbits string) rline {
	t.Helper()
	params := []any{worker, s.job.JobID, hex.EncodeToString(en2), work.FormatUint32Hex(ntime), work.FormatUint32Hex(nonce)}
	if vbits != "" {
		params = append(params, vbits)
	}
	id := s.call("mining.submit", params...)
	rep, notes := s.until(id)
	s.notes = append(s.notes, notes...)
	return rep
}

func rejectCode(t *testing.T, l rline) int {
	t.Helper()
	require.NotEqual(t, "true", string(l.Result), "want a reject")
	e := stratum.ParseError(l.Error, "")
	require.NotNil(t, e)
	return e.Code
}

// The proxy answers locally, with the usual codes, what the pool would
// reject, and sends the pool only the one good share.
func TestLocalVerdicts(t *testing.T) {
	pool := pooltest.Start(t, pooltest.Config{})
	px := startProxy(t, Config{}, pool)
	r := dialRaw(t, px.srv.Addr())
	s := handshake(t, r, "w.raw1", true)
	require.Equal(t, 3, s.size, "pool extranonce2 of 4 bytes: 1 byte prefix, 3 for the miner")
	require.Len(t, s.en1, 2)
	require.Equal(t, uint32(0x1fffe000), s.mask, "intersection of ffffffff and the pool's mask")
	j, err := work.NewJob(s.job)
	require.NoError(t, err)
	en2 := []byte{1, 2, 3}
	nonce, chk := mineShare(t, s.job, en2, j.Version)
	// a nonce that does not meet the difficulty
	var bad uint32
	u, _ := j.NewUnit(en2, j.Version, j.NTime)
	for bad = nonce + 1; u.Check(bad).MeetsShare; bad++ {
	}
	assert.Equal(t, wire.CodeLowDifficulty, rejectCode(t, s.submit(t, "w.raw1", en2, j.NTime, bad, "")))
	assert.Equal(t, wire.CodeUnauthorized, rejectCode(t, s.submit(t, "w.other", en2, j.NTime, nonce, "")))
	assert.Equal(t, wire.CodeOther, rejectCode(t, s.submit(t, "w.raw1", []byte{1, 2}, j.NTime, nonce, "")), "short extranonce2")
	assert.Equal(t, wire.CodeOther, rejectCode(t, s.submit(t, "w.raw1", en2, j.NTime-1, nonce, "")), "ntime below the job's")
	assert.Equal(t, wire.CodeVersionMask, rejectCode(t, s.submit(t, "w.raw1", en2, j.NTime, nonce, "e0000000")), "bits outside the mask")
	rep := s.submit(t, "w.raw1", en2, j.NTime, nonce, "")
	require.Equal(t, "true", string(rep.Result), "the good share: %s", rep.Error)
	assert.Equal(t, wire.CodeDuplicate, rejectCode(t, s.submit(t, "w.raw1", en2, j.NTime, nonce, "")))
	// the pool got exactly the good share, with the full extranonce2
	shares := pool.Shares()
	require.Len(t, shares, 1)
	assert.Equal(t, s.en1+hex.EncodeToString(en2), shares[0].Extranonce2, "upstream extranonce2 = prefix || miner's")
	assert.Equal(t, work.HashDisplay(chk.Hash), shares[0].Hash, "the pool hashed the same header as the miner")
	assert.Equal(t, "farm.raw1", shares[0].Worker)
	// a clean job makes the old one stale
	old := s.job
	pool.PushJob(true)
	s.nextJob(t)
	s.job, old = old, s.job
	assert.Equal(t, wire.CodeJobNotFound, rejectCode(t, s.submit(t, "w.raw1", []byte{9, 9, 9}, j.NTime, nonce, "")))
	s.job = old
	assert.Equal(t, 1, pool.Stats().Accepted)
	assert.Zero(t, pool.Stats().Rejected, "nothing the pool would reject reached it")
	st := px.srv.Status()
	assert.EqualValues(t, 1, st.Shares.Accepted)
	assert.EqualValues(t, 1, st.Shares.LowDifficulty)
	assert.EqualValues(t, 1, st.Shares.Duplicate)
	assert.EqualValues(t, 1, st.Shares.Stale)
	assert.EqualValues(t, 4, st.Shares.Invalid)
}

// Version-rolled shares pass through: the miner's bits within the
// intersected mask reach the pool as its sixth param.
func TestVersionRollingPassesThrough(t *testing.T) {
	pool := pooltest.Start(t, pooltest.Config{VersionMask: 0x00ffe000})
	px := startProxy(t, Config{}, pool)
	s := handshake(t, dialRaw(t, px.srv.Addr()), "rig", true)
	require.Equal(t, uint32(0x00ffe000), s.mask)
	j, err := work.NewJob(s.job)
	require.NoError(t, err)
	v := j.Version | 0x00002000
	nonce, _ := mineShare(t, s.job, []byte{0, 0, 1}, v)
	rep := s.submit(t, "rig", []byte{0, 0, 1}, j.NTime, nonce, "00002000")
	require.Equal(t, "true", string(rep.Result), string(rep.Error))
	require.Equal(t, "00002000", pool.Shares()[0].VersionBits)
	// the pool narrows its mask: the miner is told at once, and a share
	// with a bit now outside it is refused locally
	pool.SetVersionMask(0x0000e000)
	var masks []string
	for len(masks) == 0 {
		l, err := s.read()
		require.NoError(t, err)
		if l.Method == wire.MethodSetVersionMask {
			m, err := stratum.ParseVersionMask(l.Params)
			require.NoError(t, err)
			masks = append(masks, work.FormatUint32Hex(m))
		}
	}
	assert.Equal(t, []string{"0000e000"}, masks)
	s.mask = 0x0000e000
	v = j.Version | 0x00100000
	nonce, _ = mineShare(t, s.job, []byte{0, 0, 2}, v)
	assert.Equal(t, wire.CodeVersionMask, rejectCode(t, s.submit(t, "rig", []byte{0, 0, 2}, j.NTime, nonce, "00100000")))
	assert.Equal(t, 1, pool.Stats().Accepted)
	assert.Zero(t, pool.Stats().Rejected)
}

// A re-issue that changes nothing a miner sees (a new mask, for a miner
// that does not roll) is not sent to it again: a second notify of the same
// job makes a miner restart its work, and a test flood counting jobs took
// it for the next one and sent a window of shares on a job about to die.
func TestReissueUnchangedForTheMinerIsNotResent(t *testing.T) {
	pool := pooltest.Start(t, pooltest.Config{VersionMask: 0x00ffe000})
	px := startProxy(t, Config{}, pool)
	s := handshake(t, dialRaw(t, px.srv.Addr()), "rig", false)
	first := s.job.JobID
	pool.SetVersionMask(0x0000e000)
	testkit.Eventually(t, func() bool {
		pj, _, _ := px.srv.current()
		return pj != nil && px.srv.issue(pj).RollingMask == 0x0000e000
	}, "the proxy's re-issue under the new mask")
	pool.PushJob(false)
	s.nextJob(t)
	assert.NotEqual(t, first, s.job.JobID, "the next notify is the next job, not the first again")
}

// The job a miner was just sent is not sent again: a miner's authorize (or
// subscribe) sends it the current job while the pool's broadcast of that
// same job may be on its way to every connection, and CI saw the miner get
// job 1 twice. A second notify of the same job only restarts its work.
func TestSameJobTwiceIsSentOnce(t *testing.T) {
	pool := pooltest.Start(t, pooltest.Config{})
	px := startProxy(t, Config{}, pool)
	s := handshake(t, dialRaw(t, px.srv.Addr()), "rig", false)
	first := s.job.JobID
	pj, _, _ := px.srv.current()
	require.NotNil(t, pj)
	px.srv.mu.Lock()
	var conns []*conn
	for _, c := range px.srv.conns {
		conns = append(conns, c)
	}
	px.srv.mu.Unlock()
	for _, c := range conns {
		c.sendJob(pj, true) // the racing broadcast of the job the miner has
	}
	pool.PushJob(false)
	s.nextJob(t)
	assert.NotEqual(t, first, s.job.JobID, "the next notify is the next job, not the first again")
}

// Miners past the capacity are refused with a clear reason; a freed prefix
// whose miner sent shares is not handed out before a clean job, one whose
// miner sent none is at once.
func TestFullProxyRefusesClearly(t *testing.T) {
	pool := pooltest.Start(t, pooltest.Config{})
	px := startProxy(t, Config{MaxMiners: 2}, pool)
	a := handshake(t, dialRaw(t, px.srv.Addr()), "a", false)
	b := handshake(t, dialRaw(t, px.srv.Addr()), "b", false)
	j, err := work.NewJob(a.job)
	require.NoError(t, err)
	nonce, _ := mineShare(t, a.job, []byte{0, 0, 1}, j.Version)
	rep := a.submit(t, "a", []byte{0, 0, 1}, j.NTime, nonce, "")
	require.Equal(t, "true", string(rep.Result), string(rep.Error))
	// b leaves without a share: its prefix is free at once
	b.c.Close()
	testkit.Eventually(t, func() bool { return len(px.srv.Status().Miners) == 1 }, "b's connection gone")
	b2 := handshake(t, dialRaw(t, px.srv.Addr()), "b2", false)
	assert.Equal(t, b.en1, b2.en1, "the prefix of a miner that sent no share, at once")
	c := dialRaw(t, px.srv.Addr())
	id := c.call("mining.subscribe", "x")
	rep, _ = c.until(id)
	e := stratum.ParseError(rep.Error, "")
	require.NotNil(t, e)
	assert.Contains(t, e.Message, "proxy full")
	_, err = c.read()
	assert.Error(t, err, "connection closed after the refusal")
	// a leaves; its prefix cools down until a clean job
	a.c.Close()
	testkit.Eventually(t, func() bool { return len(px.srv.Status().Miners) == 1 }, "a's connection gone")
	d := dialRaw(t, px.srv.Addr())
	id = d.call("mining.subscribe", "x")
	rep, _ = d.until(id)
	require.NotNil(t, stratum.ParseError(rep.Error, ""), "a's prefix is not reused before a clean job")
	pool.PushJob(true)
	testkit.Eventually(t, func() bool {
		px.srv.mu.Lock()
		defer px.srv.mu.Unlock()
		return px.srv.cur != nil && px.srv.cur.seq >= 2
	}, "the clean job at the proxy")
	e2 := dialRaw(t, px.srv.Addr())
	id = e2.call("mining.subscribe", "x")
	rep, _ = e2.until(id)
	sub, err := stratum.ParseSubscribeResult(rep.Result)
	require.NoError(t, err, string(rep.Error))
	assert.Equal(t, a.en1, sub.Extranonce1, "the freed prefix after a clean job")
}

// A miner between its subscribe and its authorize (one round trip) keeps
// its prefix while another holder has not earned its own: a newcomer's
// subscribe takes the prefix of an authorized miner silent past
// SilentGrace before that of one still in its handshake. CI saw the
// reverse: squatters' subscribes still in flight took the prefix of a
// newcomer that was waiting for its subscribe reply, and its authorize
// found the connection closed.
func TestHandshakingMinerKeepsItsPrefix(t *testing.T) {
	pool := pooltest.Start(t, pooltest.Config{})
	px := startProxy(t, Config{MaxMiners: 2, SilentGrace: time.Millisecond}, pool)
	squatter := handshake(t, dialRaw(t, px.srv.Addr()), "squatter", false)
	newcomer := dialRaw(t, px.srv.Addr())
	id := newcomer.call("mining.subscribe", "raw/1")
	rep, _ := newcomer.until(id)
	require.Nil(t, stratum.ParseError(rep.Error, ""), "the newcomer is given the free prefix")
	testkit.Eventually(t, func() bool { return len(px.srv.Status().Miners) == 2 }, "both miners counted")
	time.Sleep(2 * time.Millisecond) // the squatter's silence passes SilentGrace
	late := dialRaw(t, px.srv.Addr())
	id = late.call("mining.subscribe", "raw/1")
	rep, _ = late.until(id)
	require.Nil(t, stratum.ParseError(rep.Error, ""), "the late subscribe takes the silent squatter's prefix")
	for {
		if _, err := squatter.read(); err != nil {
			assert.False(t, isTimeout(err), "the silent squatter made room: its connection is closed")
			break
		}
	}
	id = newcomer.call("mining.authorize", "newcomer", "x")
	rep, _ = newcomer.until(id)
	assert.Equal(t, "true", string(rep.Result), "the newcomer kept its prefix through its handshake")
}

// Garbage, floods, endless lines and silent connections are each dropped
// or slowed on their own, while a real miner keeps getting shares accepted.
func TestBadMinersAreIsolated(t *testing.T) {
	pool := pooltest.Start(t, pooltest.Config{})
	px := startProxy(t, Config{HandshakeTimeout: 2 * time.Second, Rate: 50, Burst: 50, MaxLineSize: 4096}, pool)
	good := startDownstream(t, px.url(), "good", stratum.Options{})
	testkit.EventuallyWithin(t, 60*time.Second, func() bool { return acceptedBy(pool, "farm.good") > 0 }, "a first share from the good miner")

	garbage := dialRaw(t, px.srv.Addr())
	for i := 0; i < 50; i++ {
		if _, err := garbage.c.Write([]byte("this is not json\n")); err != nil {
			break
		}
	}
	endless := dialRaw(t, px.srv.Addr())
	go func() {
		chunk := []byte(strings.Repeat("x", 1024))
		for i := 0; i < 64; i++ {
			if _, err := endless.c.Write(chunk); err != nil {
				return
			}
		}
	}()
	silent := dialRaw(t, px.srv.Addr())
	flood := handshake(t, dialRaw(t, px.srv.Addr()), "flood", false)
	stop := make(chan struct{})
	floodDone := make(chan struct{})
	go func() {
		defer close(floodDone)
		line := []byte(`{"id":1,"method":"mining.submit","params":["flood","1","000000","00000000","00000000"]}` + "\n")
		for {
			select {
			case <-stop:
				return
			default:
			}
			_ = flood.c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			if _, err := flood.c.Write(line); err != nil && !isTimeout(err) {
				return
			}
		}
	}()
	go func() { // keep the flooder's replies flowing
		for {
			if _, err := flood.read(); err != nil {
				return
			}
		}
	}()
	before := acceptedBy(pool, "farm.good")
	testkit.EventuallyWithin(t, 60*time.Second, func() bool { return acceptedBy(pool, "farm.good") >= before+3 }, "more shares from the good miner during the flood")
	for _, r := range []*raw{garbage, endless, silent} {
		_ = r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 4096)
		var err error
		for err == nil {
			_, err = r.c.Read(buf)
		}
		assert.False(t, isTimeout(err), "the proxy dropped the bad connection: %v", err)
	}
	close(stop)
	<-floodDone
	st := px.srv.Status()
	assert.Greater(t, st.Shares.Invalid+st.Shares.Stale, uint64(0), "the flood was answered locally")
	assert.Zero(t, pool.Stats().Rejected, "nothing of the flood reached the pool")
	assert.GreaterOrEqual(t, st.Refused, uint64(2), "garbage and the endless line counted as refused")
	good.shutdown()
}

func isTimeout(err error) bool {
	type timeout interface{ Timeout() bool }
	t, ok := err.(timeout)
	return ok && t.Timeout()
}

// The coinbase a miner builds from the proxy's notify is the coinbase the
// pool builds from the upstream job and the full extranonce2.
func TestFoldedCoinbaseMatchesUpstream(t *testing.T) {
	up := work.JobParams{JobID: "j", PrevHash: strings.Repeat("00", 32), Coinb1: "0100000001", Coinb2: "ffffffff00",
		Version: "20000000", NBits: "1d00ffff", NTime: "5f000000", Extranonce1: "a1b2c3d4", Extranonce2Size: 8, Difficulty: 1}
	uj, err := work.NewJob(up)
	require.NoError(t, err)
	s := &Server{prefix: 2}
	pj := &pjob{id: "7", up: &sourceJob{Job: uj}, sp: &space{en1: uj.Extranonce1, size: 8}, params: map[int]work.JobParams{}}
	for _, d := range []int{6, 4, 2} {
		p := s.paramsFor(pj, d, true)
		p.Extranonce1, p.Extranonce2Size, p.Difficulty = "0005", d, 1
		dj, err := work.NewJob(p)
		require.NoError(t, err)
		en2 := make([]byte, d)
		for i := range en2 {
			en2[i] = byte(0x10 + i)
		}
		got, err := dj.Coinbase(en2)
		require.NoError(t, err)
		full := append(append([]byte{0, 5}, en2...), make([]byte, 6-d)...)
		want, err := uj.Coinbase(full)
		require.NoError(t, err)
		assert.Equal(t, want, got, "d=%d", d)
	}
	b, _ := json.Marshal(stratum.NotifyParams(s.paramsFor(pj, 6, false)))
	assert.Contains(t, string(b), `"0100000001a1b2c3d4"`)
}

// A miner written in Python, with its own header code, mines through the
// proxy: its shares reach the pool under its worker, the pool hashes the
// same headers, and the proxy refuses its duplicate and its low-difficulty
// share itself.
func TestIndependentPythonMiner(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CLMINER_REQUIRE_PYTHON") == "1" {
			t.Fatal("python3 is required (CLMINER_REQUIRE_PYTHON=1)")
		}
		t.Skip("python3 not installed")
	}
	pool := pooltest.Start(t, pooltest.Config{Difficulty: 0.000004})
	px := startProxy(t, Config{}, pool)
	cmd := exec.Command(py, "testdata/miner.py", px.srv.Addr(), "py.rig7", "6")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "python miner: %s", stderr.String())
	var res struct {
		Accepted          int            `json:"accepted"`
		Codes             map[string]int `json:"codes"`
		Hashes            []string       `json:"hashes"`
		DuplicateCode     *int           `json:"duplicate_code"`
		LowDifficultyCode *int           `json:"low_difficulty_code"`
	}
	require.NoError(t, json.Unmarshal(out, &res), string(out))
	assert.Equal(t, 6, res.Accepted, "codes %v", res.Codes)
	require.NotNil(t, res.DuplicateCode)
	assert.Equal(t, wire.CodeDuplicate, *res.DuplicateCode)
	require.NotNil(t, res.LowDifficultyCode)
	assert.Equal(t, wire.CodeLowDifficulty, *res.LowDifficultyCode)
	var poolHashes []string
	rolled := 0
	for _, s := range pool.Shares() {
		assert.Equal(t, "farm.rig7", s.Worker)
		poolHashes = append(poolHashes, s.Hash)
		if s.VersionBits != "" && s.VersionBits != "00000000" {
			rolled++
		}
	}
	assert.Equal(t, res.Hashes, poolHashes, "the pool hashed the headers the Python miner built")
	assert.Equal(t, 3, rolled, "rolled versions passed through")
	assert.Zero(t, pool.Stats().Rejected)
}

// A backup pool with a smaller extranonce2 than the miners were given:
// a miner that asked for mining.set_extranonce is told the new size and
// stays; one that did not is asked to reconnect to the proxy (never
// elsewhere) and comes back with the new size. Both mine on.
func TestSmallerBackupExtranonce(t *testing.T) {
	a := pooltest.Start(t, pooltest.Config{Extranonce2Size: 8})
	b := pooltest.Start(t, pooltest.Config{Extranonce2Size: 4})
	px := startProxy(t, Config{}, a, b)
	stays := startDownstreamWith(t, stratum.PoolConfig{URL: px.url(), User: "stays", Pass: "x", VersionRolling: true, ExtranonceSubscribe: true}, stratum.Options{})
	moves := startDownstream(t, px.url(), "moves", stratum.Options{})
	testkit.EventuallyWithin(t, 60*time.Second, func() bool {
		return acceptedBy(a, "farm.stays") > 0 && acceptedBy(a, "farm.moves") > 0
	}, "shares on the primary")
	a.Close()
	testkit.EventuallyWithin(t, 60*time.Second, func() bool {
		return acceptedBy(b, "farm.stays") > 0 && acceptedBy(b, "farm.moves") > 0
	}, "shares on the backup")
	assert.EqualValues(t, 1, stays.client.Status()[0].Connects, "told the new size, kept its connection")
	assert.EqualValues(t, 2, moves.client.Status()[0].Connects, "reconnected once, to the proxy")
	assert.Zero(t, b.Stats().Rejected)
}

// The pool raises the difficulty: miners are told at once with the job
// re-sent under the same id, and a share that meets only the old value is
// refused by the proxy as low difficulty instead of reaching the pool.
func TestDifficultyRaiseReachesMinersAtOnce(t *testing.T) {
	pool := pooltest.Start(t, pooltest.Config{Behavior: pooltest.Behavior{DiffRule: pooltest.DiffImmediate}})
	px := startProxy(t, Config{}, pool)
	s := handshake(t, dialRaw(t, px.srv.Addr()), "rig", false)
	first := s.job
	pool.SetDifficulty(pooltest.LowDiff * 64)
	// A notify already on its way may come first: read until the raise
	// (nextJob fails the test if none comes).
	for s.nextJob(t); s.diff != pooltest.LowDiff*64; s.nextJob(t) {
	}
	assert.Equal(t, first.JobID, s.job.JobID, "the same job, re-sent")
	assert.Equal(t, pooltest.LowDiff*64, s.diff)
	// a share meeting the old difficulty but not the new one
	j, err := work.NewJob(first)
	require.NoError(t, err)
	hard, err := work.TargetForDifficulty(pooltest.LowDiff * 64)
	require.NoError(t, err)
	var en2 []byte
	var nonce uint32
	for e := byte(1); en2 == nil; e++ {
		u, err := j.NewUnit([]byte{0, 0, e}, j.Version, j.NTime)
		require.NoError(t, err)
		for n := uint32(0); n < 1<<20; n++ {
			if c := u.Check(n); c.MeetsShare && !hard.Met(c.Hash) {
				en2, nonce = []byte{0, 0, e}, n
				break
			}
		}
	}
	assert.Equal(t, wire.CodeLowDifficulty, rejectCode(t, s.submit(t, "rig", en2, j.NTime, nonce, "")))
	assert.Zero(t, pool.Stats().Rejected, "the pool never saw it")
}

// A miner that stops reading is dropped once its writes stall; the pool
// side and the other miners never wait for it.
func TestMinerThatStopsReadingIsDropped(t *testing.T) {
	pool := pooltest.Start(t, pooltest.Config{})
	px := startProxy(t, Config{WriteTimeout: 300 * time.Millisecond}, pool)
	good := handshake(t, dialRaw(t, px.srv.Addr()), "good", false)
	handshake(t, dialRaw(t, px.srv.Addr()), "deaf", false)
	// The good miner reads everything, keeping the latest job and passing
	// replies on.
	type jobSeen struct {
		p    work.JobParams
		diff float64
	}
	latest := make(chan jobSeen, 1)
	replies := make(chan rline, 1)
	go func() {
		diff := good.diff
		for {
			l, err := good.read()
			if err != nil {
				return
			}
			switch {
			case l.Method == wire.MethodSetDifficulty:
				diff, _ = stratum.ParseDifficulty(l.Params)
			case l.Method == wire.MethodNotify:
				p, err := stratum.ParseNotify(l.Params)
				if err != nil {
					continue
				}
				select {
				case <-latest:
				default:
				}
				latest <- jobSeen{p, diff}
			case l.Method == "":
				select {
				case replies <- l:
				default:
				}
			}
		}
	}()
	deafGone := func() bool {
		for _, m := range px.srv.Status().Miners {
			for _, w := range m.Workers {
				if w == "deaf" {
					return false
				}
			}
		}
		return true
	}
	require.False(t, deafGone())
	// big jobs (60 KB coinb2) until the deaf miner's socket buffers fill
	big := pooltest.GenerateJob("big", 4, 4, false)
	big.Coinb2 = strings.Repeat("ab", 30000)
	for i := 0; i < 2000 && !deafGone(); i++ {
		big.JobID = fmt.Sprintf("big%d", i)
		pool.PushJobParams(big)
		// The good miner's next job paces the pool to the proxy's speed.
		select {
		case <-latest:
		case <-time.After(testkit.Timeout):
			t.Fatal("the good miner stopped getting jobs while the deaf one filled up")
		}
	}
	testkit.EventuallyWithin(t, 30*time.Second, deafGone, "the deaf miner dropped")
	pool.PushJob(true)
	var js jobSeen
	for js.p.JobID == "" || js.p.Coinb2 == big.Coinb2 || !strings.HasSuffix(js.p.Coinb2, pool.CurrentJob().Coinb2) {
		js = <-latest
	}
	js.p.Extranonce1, js.p.Extranonce2Size, js.p.Difficulty = good.en1, good.size, js.diff
	j, err := work.NewJob(js.p)
	require.NoError(t, err)
	nonce, _ := mineShare(t, js.p, []byte{7, 7, 7}, j.Version)
	good.call("mining.submit", "good", js.p.JobID, "070707", work.FormatUint32Hex(j.NTime), work.FormatUint32Hex(nonce))
	rep := <-replies
	assert.Equal(t, "true", string(rep.Result), "the reading miner is still served: %s", rep.Error)
}

// With a user list only those miners authorize; five refusals drop the
// connection.
func TestMinerUserList(t *testing.T) {
	pool := pooltest.Start(t, pooltest.Config{})
	px := startProxy(t, Config{Users: map[string]string{"rig1": "s3cret"}}, pool)
	r := dialRaw(t, px.srv.Addr())
	id := r.call("mining.subscribe", "x")
	r.until(id)
	for i := 0; i < maxAuthFailures; i++ {
		id = r.call("mining.authorize", "rig1", "wrong")
		rep, _ := r.until(id)
		assert.Equal(t, wire.CodeUnauthorized, rejectCode(t, rep))
	}
	var err error
	for err == nil {
		_, err = r.read()
	}
	assert.False(t, isTimeout(err), "dropped after %d refusals: %v", maxAuthFailures, err)
	ok := dialRaw(t, px.srv.Addr())
	id = ok.call("mining.subscribe", "x")
	ok.until(id)
	id = ok.call("mining.authorize", "rig1", "s3cret")
	rep, _ := ok.until(id)
	assert.Equal(t, "true", string(rep.Result))
	id = ok.call("mining.authorize", "rig2", "s3cret")
	rep, _ = ok.until(id)
	assert.Equal(t, wire.CodeUnauthorized, rejectCode(t, rep), "a name not in the list")
}
