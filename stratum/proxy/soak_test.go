package proxy

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"clminer/internal/testkit"
	"clminer/stratum/pooltest"
	"clminer/work/ledger"
)

// liveHeap is the heap still reachable after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// A farm whose miners come and go (the same eight rigs reconnecting) and
// submit shares all along: what the proxy keeps per miner goes with the
// miner, and nothing stays per share, so the process's heap (pool, upstream
// client and proxy) is flat between the first miners and many more (issue
// 28). Counted in miners and shares, not time.
func TestProxyMinerChurnSoakFlat(t *testing.T) {
	const (
		perMiner = 50  // shares each miner submits before it leaves
		warm     = 24  // miners before the first heap reading
		total    = 120 // miners before the second
		perClean = 12  // miners between clean jobs (prefixes given up are reused after one)
		rigs     = 8
		// slack: a kilobyte kept per miner (a connection's state is
		// several), or 20 bytes per share, would exceed it. The runtime's
		// own growth (goroutine descriptors, OS threads) was 10-30 KiB here.
		slack = (total - warm) << 10
	)
	pool := pooltest.Start(t, pooltest.Config{Difficulty: 1e-12, Records: 16})
	px := startProxy(t, Config{Rate: 1e9, Burst: 1 << 30}, pool)
	// Fill every job history first (the pool's, the proxy's and the
	// upstream ledger's, bounded by job count), so both readings see them
	// full.
	for i := 0; i < 2*ledger.DefaultMaxJobs; i++ {
		pool.PushJob(false)
	}
	var heapWarm, heapTotal uint64
	for i := 1; i <= total; i++ {
		f, err := pooltest.DialFlood(px.srv.Addr(), fmt.Sprintf("farm.rig%d", i%rigs), 8)
		require.NoError(t, err)
		require.NoError(t, f.Submit(perMiner))
		c := f.Counts()
		f.Close()
		require.Equal(t, perMiner, c.Accepted+c.Rejected)
		testkit.EventuallyWithin(t, 10e9, func() bool { return len(px.srv.Status().Miners) == 0 }, "the proxy to drop the miner")
		// At rest, each reading with the same shares on the live job (a
		// clean job comes every perClean miners, right after).
		if i == warm {
			heapWarm = liveHeap()
		}
		if i == total {
			heapTotal = liveHeap()
		}
		if i%perClean == 0 {
			pool.PushJob(true)
		}
	}
	t.Logf("live heap after %d miners %d KiB, after %d miners %d KiB", warm, heapWarm>>10, total, heapTotal>>10)
	assert.Less(t, int64(heapTotal)-int64(heapWarm), int64(slack), "heap grew from %d to %d bytes", heapWarm, heapTotal)

	st := px.srv.Status()
	assert.EqualValues(t, total*perMiner, st.Shares.Accepted+st.Shares.Stale+st.Shares.Rejected, "every share counted once: %+v", st.Shares)
	assert.LessOrEqual(t, len(st.Workers), rigs, "one counter per worker name")
	px.srv.mu.Lock()
	assert.Empty(t, px.srv.conns)
	assert.LessOrEqual(t, len(px.srv.jobs), keptJobs)
	px.srv.mu.Unlock()
	px.srv.keyMu.Lock()
	assert.LessOrEqual(t, len(px.srv.keys), rigs, "one upstream sub-worker per rig name, kept for its return")
	for k, u := range px.srv.keys {
		assert.Zero(t, u.refs, "no connection holds %s after its miner left", k)
	}
	px.srv.keyMu.Unlock()
}
