package pooltest

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"clminer/internal/testkit"
	"clminer/work"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type rawClient struct {
	t  *testing.T
	c  net.Conn
	sc *bufio.Scanner
	id int
}

func dialRaw(t *testing.T, s *Server) *rawClient {
	c, err := net.Dial("tcp", s.Addr())
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 4096), 1<<20)
	return &rawClient{t: t, c: c, sc: sc}
}

func (r *rawClient) call(method string, params ...any) int {
	r.id++
	b, _ := json.Marshal(map[string]any{"id": r.id, "method": method, "params": params})
	_, err := r.c.Write(append(b, '\n'))
	require.NoError(r.t, err)
	return r.id
}

type line struct {
	ID     *int            `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
	Result json.RawMessage `json:"result"`
	Error  json.RawMessage `json:"error"`
}

func (r *rawClient) read() line {
	_ = r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	require.True(r.t, r.sc.Scan(), "read: %v", r.sc.Err())
	var l line
	require.NoError(r.t, json.Unmarshal(r.sc.Bytes(), &l), r.sc.Text())
	return l
}

// until reads lines until the reply to id, returning it and the
// notifications seen before it.
func (r *rawClient) until(id int) (line, []line) {
	var notes []line
	for {
		l := r.read()
		if l.Method == "" && l.ID != nil && *l.ID == id {
			return l, notes
		}
		notes = append(notes, l)
	}
}

func handshake(t *testing.T, r *rawClient) (en1 string, size int, job NotifyParams, diff float64) {
	id := r.call("mining.subscribe", "test/1")
	rep, notes := r.until(id)
	var res []json.RawMessage
	require.NoError(t, json.Unmarshal(rep.Result, &res))
	require.NoError(t, json.Unmarshal(res[1], &en1))
	require.NoError(t, json.Unmarshal(res[2], &size))
	id = r.call("mining.authorize", "w", "x")
	rep, more := r.until(id)
	require.Equal(t, "true", string(rep.Result))
	notes = append(notes, more...)
	for len(notes) < 2 {
		notes = append(notes, r.read())
	}
	for _, n := range notes {
		switch n.Method {
		case "mining.set_difficulty":
			var d []float64
			require.NoError(t, json.Unmarshal(n.Params, &d))
			diff = d[0]
		case "mining.notify":
			var err error
			job, err = ParseNotifyParams(n.Params)
			require.NoError(t, err)
		}
	}
	return
}

func mineShare(t *testing.T, p NotifyParams, en1 string, size int, diff float64, en2 []byte) (string, string) {
	j, err := work.NewJob(work.JobParams{JobID: p.JobID, PrevHash: p.PrevHash, Coinb1: p.Coinb1, Coinb2: p.Coinb2,
		MerkleBranch: p.MerkleBranch, Version: p.Version, NBits: p.NBits, NTime: p.NTime, Extranonce1: en1,
		Extranonce2Size: size, Difficulty: diff})
	require.NoError(t, err)
	u, err := j.NewUnit(en2, j.Version, j.NTime)
	require.NoError(t, err)
	for n := uint32(0); ; n++ {
		if u.Check(n).MeetsShare {
			return p.NTime, fmt.Sprintf("%08x", n)
		}
	}
}

func TestServerValidatesShares(t *testing.T) {
	s := New(Config{Difficulty: 1e-6, Extranonce1Size: 5, Extranonce2Size: 3})
	require.NoError(t, s.Start())
	defer s.Close()
	r := dialRaw(t, s)
	en1, size, job, diff := handshake(t, r)
	assert.Len(t, en1, 10)
	assert.Equal(t, 3, size)
	assert.Equal(t, 1e-6, diff)
	assert.True(t, job.CleanJobs)
	en2 := []byte{1, 2, 3}
	ntime, nonce := mineShare(t, job, en1, size, diff, en2)
	e2 := hex.EncodeToString(en2)
	for _, tc := range []struct {
		params []any
		ok     bool
		reason string
	}{
		{[]any{"w", job.JobID, e2, ntime, nonce}, true, ""},
		{[]any{"w", job.JobID, e2, ntime, nonce}, false, "Duplicate"},
		{[]any{"w", job.JobID, e2 + "00", ntime, nonce}, false, "extranonce2"},
		{[]any{"w", job.JobID, e2, ntime, nonce[1:]}, false, "nonce"},
		{[]any{"w", "nope", e2, ntime, nonce}, false, "Job not found"},
		{[]any{"w", job.JobID, e2, "00000001", nonce}, false, "Ntime"},
		{[]any{"w", job.JobID, e2, ntime, nonce, "00002000"}, false, "not negotiated"},
	} {
		id := r.call("mining.submit", tc.params...)
		rep, _ := r.until(id)
		if tc.ok {
			assert.Equal(t, "true", string(rep.Result), string(rep.Error))
		} else {
			assert.Contains(t, string(rep.Error), tc.reason)
		}
	}
	st := s.Stats()
	assert.Equal(t, 1, st.Accepted)
	assert.Equal(t, 6, st.Rejected)
	assert.Equal(t, 1, st.Duplicate)
	require.Len(t, s.Shares(), 1)
	assert.GreaterOrEqual(t, s.Shares()[0].Difficulty, 1e-6)
}

func TestServerVersionRolling(t *testing.T) {
	s := New(Config{Difficulty: 1e-6, VersionMask: 0x1fffe000})
	require.NoError(t, s.Start())
	defer s.Close()
	r := dialRaw(t, s)
	id := r.call("mining.configure", []any{"version-rolling"}, map[string]any{"version-rolling.mask": "1fffe000"})
	rep, _ := r.until(id)
	assert.JSONEq(t, `{"version-rolling":true,"version-rolling.mask":"1fffe000"}`, string(rep.Result))
	en1, size, job, diff := handshake(t, r)
	j, err := work.NewJob(work.JobParams{JobID: job.JobID, PrevHash: job.PrevHash, Coinb1: job.Coinb1, Coinb2: job.Coinb2,
		MerkleBranch: job.MerkleBranch, Version: job.Version, NBits: job.NBits, NTime: job.NTime, Extranonce1: en1,
		Extranonce2Size: size, Difficulty: diff})
	require.NoError(t, err)
	v, _ := work.RollVersion(j.Version, 0x1fffe000, 77)
	u, err := j.NewUnit(make([]byte, size), v, j.NTime)
	require.NoError(t, err)
	var n uint32
	for !u.Check(n).MeetsShare {
		n++
	}
	sub, err := u.Submit("w", n, 0x1fffe000)
	require.NoError(t, err)
	id = r.call("mining.submit", sub.Params()...)
	rep, _ = r.until(id)
	assert.Equal(t, "true", string(rep.Result), string(rep.Error))
	// bits outside the mask
	p := sub.Params()
	p[5] = "40000000"
	id = r.call("mining.submit", p...)
	rep, _ = r.until(id)
	assert.Contains(t, string(rep.Error), "Invalid version mask")
}

func TestServerScriptedBehaviour(t *testing.T) {
	s := New(Config{Behavior: Behavior{NotifyBeforeSubscribeReply: true, SubscribeShape: "single", RefuseAuth: true,
		NeverReply: []string{"mining.extranonce.subscribe"}}})
	require.NoError(t, s.Start())
	defer s.Close()
	r := dialRaw(t, s)
	id := r.call("mining.subscribe", "x")
	rep, notes := r.until(id)
	require.Len(t, notes, 2, "set_difficulty and notify before the reply")
	assert.Equal(t, "mining.notify", notes[1].Method)
	var res []json.RawMessage
	require.NoError(t, json.Unmarshal(rep.Result, &res))
	assert.Contains(t, string(res[0]), `"mining.notify"`)
	assert.NotContains(t, string(res[0]), `[[`)
	r.call("mining.extranonce.subscribe")
	id = r.call("mining.authorize", "w", "x")
	rep, _ = r.until(id) // the never-answered call is skipped
	assert.Equal(t, "false", string(rep.Result))
	assert.Contains(t, string(rep.Error), "Unauthorized")

	s.SendRaw(`garbage`)
	_ = r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	require.True(t, r.sc.Scan())
	assert.Equal(t, "garbage", r.sc.Text())
	s.Stall(true)
	s.ShowMessage("silent")
	_ = r.c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	assert.False(t, r.sc.Scan(), "stalled server sends nothing")
}

func TestServerTLSAndVectors(t *testing.T) {
	v, err := BuiltinVector("block_100000")
	require.NoError(t, err)
	s := New(Config{TLS: true, Job: &v.Notify, Extranonce1: v.Extranonce1, Extranonce2Size: v.Extranonce2Size})
	require.NoError(t, s.Start())
	defer s.Close()
	assert.Len(t, s.Fingerprint(), 64)
	assert.Contains(t, s.URL(), "stratum+tls://")
	sess, err := BuiltinVector("esp_miner_slush_notify_790246_midstate")
	require.NoError(t, err)
	assert.Equal(t, "1f9a56282c", sess.Notify.JobID)
	_, err = BuiltinVector("no_such_vector")
	require.Error(t, err)
	g := GenerateJob("1", 4, 8, true)
	_, err = work.NewJob(work.JobParams{JobID: g.JobID, PrevHash: g.PrevHash, Coinb1: g.Coinb1, Coinb2: g.Coinb2,
		MerkleBranch: g.MerkleBranch, Version: g.Version, NBits: g.NBits, NTime: g.NTime, Extranonce1: "00000000", Extranonce2Size: 8})
	require.NoError(t, err)
}

func TestServerCloseWithLiveConns(t *testing.T) {
	s := New(Config{Behavior: Behavior{ReplyDelay: map[string]time.Duration{"mining.subscribe": time.Hour}}})
	require.NoError(t, s.Start())
	r := dialRaw(t, s)
	r.call("mining.subscribe")
	testkit.Eventually(t, func() bool { return len(s.Requests()) == 1 }, "the subscribe recorded")
	s.SendEndless(1 << 20)
	s.Close() // must not hang on the delayed reply or the endless writer
}

func TestKeepRecentIsBounded(t *testing.T) {
	var s []int
	for i := 0; i < 5*maxRecorded; i++ {
		s = keepRecent(s, i, maxRecorded)
		require.LessOrEqual(t, len(s), 2*maxRecorded)
	}
	require.GreaterOrEqual(t, len(s), maxRecorded)
	require.Equal(t, 5*maxRecorded-1, s[len(s)-1], "the newest is kept")
	for i := 1; i < len(s); i++ {
		require.Equal(t, s[i-1]+1, s[i], "in order, without gaps")
	}
}

func TestOldJobsAreForgottenAfterCleanJobs(t *testing.T) {
	s := New(Config{})
	require.NoError(t, s.Start())
	defer s.Close()
	for i := 0; i < 200; i++ {
		s.PushJob(i%4 == 0)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	require.LessOrEqual(t, len(s.jobs), keptOldJobs+1, "jobs stay bounded over a long run")
	require.Contains(t, s.jobs, s.current)
}

// A job pushed between a miner's subscribe and its authorize is the first
// the miner sees: it comes with the connection's difficulty, as a real
// pool's first job does, so the miner does not judge at the default of 1.
func TestFirstJobCarriesTheDifficulty(t *testing.T) {
	s := New(Config{Difficulty: 1e-6})
	require.NoError(t, s.Start())
	defer s.Close()
	r := dialRaw(t, s)
	id := r.call("mining.subscribe", "test/1")
	_, _ = r.until(id)
	s.PushJob(false)
	first := r.read()
	require.Equal(t, "mining.set_difficulty", first.Method, "the difficulty precedes the first job")
	var d []float64
	require.NoError(t, json.Unmarshal(first.Params, &d))
	assert.Equal(t, []float64{1e-6}, d)
	assert.Equal(t, "mining.notify", r.read().Method)
	// Later jobs come alone.
	s.PushJob(false)
	assert.Equal(t, "mining.notify", r.read().Method)
}
