package proxy

import (
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
	"clminer/stratum/v2/channel"
	"clminer/stratum/v2/v2peer"
	"clminer/stratum/wire"
	"clminer/work"
	"clminer/work/failover"
	"clminer/work/retry"
)

// peerTarget is difficulty d as peer.mjs's --target and target command
// take it (big-endian hex).
func peerTarget(t *testing.T, d float64) string {
	t.Helper()
	tg, err := work.TargetForDifficulty(d)
	require.NoError(t, err)
	return fmt.Sprintf("%064x", tg.Big())
}

// runPythonMiner runs testdata/miner.py (hashlib only) against the proxy.
func runPythonMiner(t *testing.T, addr, worker string, shares int) (accepted int, hashes []string) {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CLMINER_REQUIRE_PYTHON") == "1" {
			t.Fatal("python3 is required (CLMINER_REQUIRE_PYTHON=1)")
		}
		t.Skip("python3 not installed")
	}
	cmd := exec.Command(py, "testdata/miner.py", addr, worker, fmt.Sprint(shares))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "python miner: %s", stderr.String())
	var res struct {
		Accepted          int      `json:"accepted"`
		Hashes            []string `json:"hashes"`
		DuplicateCode     *int     `json:"duplicate_code"`
		LowDifficultyCode *int     `json:"low_difficulty_code"`
	}
	require.NoError(t, json.Unmarshal(out, &res), string(out))
	require.NotNil(t, res.DuplicateCode)
	assert.Equal(t, wire.CodeDuplicate, *res.DuplicateCode, "the proxy refuses the duplicate itself")
	require.NotNil(t, res.LowDifficultyCode)
	assert.Equal(t, wire.CodeLowDifficulty, *res.LowDifficultyCode)
	return res.Accepted, res.Hashes
}

// The proxy in front of the independent Stratum V2 pool (Node.js, its own
// crypto, framing and share check), in extended-channel mode, with a
// Stratum v1 backup: two clminer rigs, the stdlib-only Python miner and a
// hand-driven miner behind it. The peer rebuilds each share's coinbase
// with the extranonce the proxy carved and re-hashes it: the Python
// miner's headers are the ones the peer hashed; SetTarget raises reach
// miners at once and lowerings from the second job after; a new prevhash
// is a clean job; the peer goes down and comes back while the miners stay
// connected, mining on the v1 backup meanwhile; no duplicate, nothing
// invalid, and the pools' counts are the proxy's.
func TestV2PeerUpstream(t *testing.T) {
	peer := v2peer.Start(t, "--extended", "--target", peerTarget(t, pooltest.LowDiff))
	v1 := pooltest.Start(t, pooltest.Config{Extranonce2Size: 8})
	src, err := channel.New(channel.Config{URL: peer.URL(), User: "acct.farm", VersionRolling: true, Extended: true},
		channel.Options{Retry: retry.Backoff{Max: 100 * time.Millisecond}, MaxInFlight: 1024})
	require.NoError(t, err)
	client, err := stratum.NewClient([]stratum.PoolConfig{{URL: v1.URL(), User: "farm", Pass: "x", VersionRolling: true}}, fastOpts())
	require.NoError(t, err)
	px := startProxyOn(t, Config{}, failover.New(src, client))
	testkit.EventuallyWithin(t, 30*time.Second, func() bool { return px.feeding() == 0 }, "the V2 pool's job")
	peerAcc := func() int { a, _ := peer.Counts(); return a }

	// The Python miner first, alone on its job.
	pyAcc, pyHashes := runPythonMiner(t, px.srv.Addr(), "py.rig7", 6)
	assert.Equal(t, 6, pyAcc)
	var peerHashes []string
	for _, e := range peer.Shares() {
		if e.Accepted {
			peerHashes = append(peerHashes, e.Hash)
		}
	}
	assert.Equal(t, pyHashes, peerHashes, "the peer hashed the headers the Python miner built")

	s := handshake(t, dialRaw(t, px.srv.Addr()), "raw", false)
	d1 := startDownstream(t, px.url(), "rig1", stratum.Options{})
	d2 := startDownstream(t, px.url(), "rig2", stratum.Options{})
	testkit.EventuallyWithin(t, 60*time.Second, func() bool {
		return minerAccepted(px, "rig1") > 2 && minerAccepted(px, "rig2") > 2
	}, "the rigs' shares at the peer")

	// A raise at once, the job re-sent; a lowering from the second job.
	d0, first := s.diff, s.job.JobID
	peer.Command(t, "target "+peerTarget(t, pooltest.LowDiff*16))
	for s.nextJob(t); s.diff == d0; s.nextJob(t) {
	}
	assert.Equal(t, first, s.job.JobID)
	raised := s.diff
	assert.InDelta(t, pooltest.LowDiff*16, raised, pooltest.LowDiff*1e-4)
	peer.Command(t, "target "+peerTarget(t, pooltest.LowDiff))
	peer.Command(t, "job")
	s.nextNewJob(t, first)
	assert.Equal(t, raised, s.diff, "the first job after the lowering")
	second := s.job.JobID
	peer.Command(t, "job")
	s.nextNewJob(t, second)
	assert.Equal(t, d0, s.diff, "the second job after it")
	// A new block: a clean job.
	third := s.job.JobID
	peer.Command(t, "block")
	s.nextNewJob(t, third)
	assert.True(t, s.job.CleanJobs)

	// Down and back, the miners mining on the v1 backup meanwhile.
	peer.Command(t, "down")
	testkit.EventuallyWithin(t, 60*time.Second, func() bool {
		return acceptedBy(v1, "farm.rig1") > 0 && acceptedBy(v1, "farm.rig2") > 0
	}, "shares on the v1 backup from both rigs")
	back := peerAcc()
	peer.Command(t, "up")
	testkit.EventuallyWithin(t, 60*time.Second, func() bool { return peerAcc() > back+4 }, "shares on the peer again")
	for _, d := range []*downstream{d1, d2} {
		assert.EqualValues(t, 1, d.client.Status()[0].Connects, "the miner never reconnected to the proxy")
	}
	d1.shutdown()
	d2.shutdown()
	s.c.Close()

	acc, rej := peer.Counts()
	for _, e := range peer.Shares() {
		assert.NotEqual(t, "duplicate-share", e.Reason)
		if !e.Accepted {
			// A share on the wire when the peer raised its target, or
			// moved to a new block, is judged at the new one: the pool's
			// reject, and the proxy's.
			assert.Contains(t, []string{"difficulty-too-low", "invalid-job-id"}, e.Reason)
		}
	}
	st := px.srv.Status().Shares
	assert.EqualValues(t, rej, st.Rejected, "the pool's rejects are the proxy's: %+v", st)
	got := uint64(acc + v1.Stats().Accepted)
	assert.GreaterOrEqual(t, got, st.Accepted, "%+v", st)
	assert.LessOrEqual(t, got, st.Accepted+st.Lost, "the pools' accepts are the proxy's (a verdict cut off by the peer going down is lost): %+v", st)
	assert.Zero(t, st.Invalid, "%+v", st)
	assert.EqualValues(t, 1, st.Duplicate, "the Python miner's deliberate one, refused here")
	assert.Zero(t, v1.Stats().Rejected+v1.Stats().Duplicate)
}
