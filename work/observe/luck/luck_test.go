package luck

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"clminer/work/miner"
	"clminer/work/vectors"
)

// The all-time best survives a restart; the session best starts over;
// hardware errors never count; a block is counted and kept.
func TestBestSharePersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "clminer", "best-share.json")
	tr, err := Open(path)
	require.NoError(t, err)
	var bests []float64
	tr.OnBest = func(d float64, _ miner.ShareEvent) { bests = append(bests, d) }
	tr.Share(miner.ShareEvent{Outcome: miner.Accepted, ShareDiff: 5, Time: time.Unix(100, 0)})
	tr.Share(miner.ShareEvent{Outcome: miner.HWError, ShareDiff: 1e9})
	tr.Share(miner.ShareEvent{Outcome: miner.Rejected, ShareDiff: 12})
	tr.Share(miner.ShareEvent{Outcome: miner.Accepted, ShareDiff: 7})
	assert.Equal(t, []float64{5, 12}, bests)
	s, all := tr.Best()
	assert.Equal(t, 12.0, s)
	assert.Equal(t, 12.0, all)
	require.NoError(t, tr.Err())

	tr2, err := Open(path)
	require.NoError(t, err)
	var blocks int
	tr2.OnBest = func(d float64, _ miner.ShareEvent) { bests = append(bests, d) }
	tr2.OnBlock = func(miner.ShareEvent) { blocks++ }
	s, all = tr2.Best()
	assert.Equal(t, 0.0, s, "a new session")
	assert.Equal(t, 12.0, all, "all-time best read back")
	tr2.Share(miner.ShareEvent{Outcome: miner.Accepted, ShareDiff: 9})
	assert.Equal(t, []float64{5, 12}, bests, "9 is a session best, not a new all-time best")
	tr2.Share(miner.ShareEvent{Outcome: miner.Accepted, ShareDiff: 2e12, Block: true})
	assert.Equal(t, 1, blocks)
	tr3, err := Open(path)
	require.NoError(t, err)
	l := tr3.Luck(miner.Snapshot{})
	assert.Equal(t, uint64(1), l.BlocksAllTime)
	assert.Equal(t, 2e12, l.BestShareAllTime)

	require.NoError(t, os.WriteFile(path, []byte("garbage"), 0o644))
	_, err = Open(path)
	assert.ErrorContains(t, err, "is not a clminer record")
}

// Network difficulty comes from the job's nbits; the expected time to a
// block is difficulty x 2^32 / hashrate.
func TestLuck(t *testing.T) {
	d, ok := NetworkDifficulty("1d00ffff")
	require.True(t, ok)
	assert.InDelta(t, 1.0, d, 1e-12, "the genesis target is difficulty 1")
	// The real blocks: a block's hash meets its network difficulty, and
	// 540107's is the 6.727e12 of its retarget period.
	vs, err := vectors.Builtin()
	require.NoError(t, err)
	checked := 0
	for _, v := range vs {
		if len(v.NotifyParams) < 7 || v.Expected.BlockHash == "" || v.Expected.ShareDifficulty == 0 {
			continue
		}
		d, ok := NetworkDifficulty(v.NotifyParams[6].(string))
		require.True(t, ok, v.Name)
		assert.LessOrEqual(t, d, v.Expected.ShareDifficulty, "%s: the block's hash meets the network target", v.Name)
		if strings.Contains(v.Name, "540107") {
			assert.InDelta(t, 6727225469722.534, d, 1)
		}
		checked++
	}
	assert.Positive(t, checked)
	_, ok = NetworkDifficulty("zz")
	assert.False(t, ok)

	tr, err := Open("")
	require.NoError(t, err)
	tr.Share(miner.ShareEvent{Outcome: miner.Accepted, ShareDiff: 0.25})
	l := tr.Luck(miner.Snapshot{Rate60s: 1 << 20, Job: &miner.JobInfo{NBits: "1d00ffff"}})
	assert.InDelta(t, 1.0, l.NetworkDifficulty, 1e-12)
	assert.InDelta(t, 4096.0, l.ExpectedBlockS, 1e-6, "2^32 hashes at 2^20 H/s")
	assert.InDelta(t, 0.25, l.BestVsNetwork, 1e-12)
	assert.Zero(t, tr.Luck(miner.Snapshot{}).ExpectedBlockS, "no job: absent")
}
