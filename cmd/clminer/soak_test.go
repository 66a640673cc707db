package main

import (
	"context"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/charmbracelet/log"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"clminer/internal/testkit"
	"clminer/stratum/pooltest"
	"clminer/work/ledger"
)

// Soak sizes, in shares: a clean job every soakRound shares (the demo's
// job ticker, at a few hundred shares a second between two 30 s jobs),
// the heap read after soakWarm shares and again after soakTotal. What the
// demo keeps per share would show as tens of bytes times the difference.
const (
	soakDiff  = 1e-12 // every hash a share: the shares cost nothing to find
	soakRound = 1000
	soakWarm  = 3 * soakRound
	soakTotal = 8 * soakRound
	// soakSlack is the heap growth allowed between the two readings: 32
	// bytes a share (the demo pool kept about 500, issue 28).
	soakSlack = 32 * (soakTotal - soakWarm)
)

// liveHeap is the heap still reachable after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// soak sends soakTotal shares through addr in rounds, each ended by a
// clean job from pool as the demo's ticker sends them, and returns the
// live heap after soakWarm and after soakTotal shares.
func soak(t *testing.T, pool *pooltest.Server, addr string, viaProxy bool) (warm, total uint64) {
	t.Helper()
	if viaProxy {
		// The proxy's upstream session is the pool's first: the histories
		// below fill only once it takes jobs.
		testkit.Eventually(t, func() bool { return pool.Stats().Authorized > 0 }, "the proxy's upstream authorized")
	}
	// Fill every job history first (the pool's, a proxy's, the upstream
	// ledger's: bounded by job count), so both readings see them full.
	for i := 0; i < 2*ledger.DefaultMaxJobs; i++ {
		pool.PushJob(false)
	}
	pool.PushJob(true)
	last := pool.CurrentJob().PrevHash
	f, err := pooltest.DialFlood(addr, "demo.soak", 32)
	require.NoError(t, err)
	defer f.Close()
	// Through a proxy the fill may still be on its way: shares on a job
	// the proxy has since forgotten (it keeps 32) would be stale.
	require.NoError(t, f.WaitCurrent(func(p pooltest.NotifyParams) bool { return p.PrevHash == last }, 10*time.Second), "the fill delivered")
	for sent := 0; sent < soakTotal; sent += soakRound {
		require.NoError(t, f.Submit(soakRound))
		jobs := f.Counts().Jobs
		pool.PushJob(true)
		require.NoError(t, f.WaitJob(jobs, 10*time.Second), "the clean job")
		// At rest: every share has its verdict, and the clean job (through
		// the proxy, if any) made every earlier one stale.
		if sent+soakRound == soakWarm {
			warm = liveHeap()
		}
		if sent+soakRound == soakTotal {
			total = liveHeap()
		}
	}
	c := f.Counts()
	require.Equal(t, soakTotal, c.Accepted+c.Rejected, "a verdict for every share")
	assert.Equal(t, soakTotal, c.Accepted, "each share on the newest job, none a duplicate: %+v", c)
	st := pool.Stats()
	assert.Zero(t, st.Duplicate, "no share is a duplicate")
	t.Logf("live heap after %d shares %d KiB, after %d shares %d KiB; pool %+v", soakWarm, warm>>10, soakTotal, total>>10, st)
	return warm, total
}

// A long `clminer demo`: the built-in pool's memory stays flat however many
// shares it judges (its RSS grew by about 1 KB a share, issue 28).
func TestDemoPoolSoakFlat(t *testing.T) {
	pool := newDemoPool(soakDiff)
	require.NoError(t, pool.Start())
	defer pool.Close()
	warm, total := soak(t, pool, pool.Addr(), false)
	assert.Less(t, int64(total)-int64(warm), int64(soakSlack), "the demo pool's heap grew from %d to %d bytes", warm, total)
	assert.Equal(t, soakTotal, pool.Stats().Accepted)
	assert.Equal(t, pool.Stats().Accepted, pool.AcceptedBy("demo.soak"), "per-worker credit stays exact")
}

// The same through `demo --proxy`'s farm proxy and its upstream client:
// pool, client and proxy (its per-miner state included) stay flat together.
func TestDemoProxySoakFlat(t *testing.T) {
	pool := newDemoPool(soakDiff)
	require.NoError(t, pool.Start())
	defer pool.Close()
	logger := log.New(io.Discard)
	cfg := demoProxyConfig(logger)
	// The demo's miners send a few shares a second; the flood sends as many
	// as the proxy answers.
	cfg.Rate, cfg.Burst = 1e9, 1<<30
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv, err := newDemoProxy(ln, pool, logger, cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() {
		cancel()
		require.NoError(t, <-done)
	}()
	warm, total := soak(t, pool, srv.Addr(), true)
	assert.Less(t, int64(total)-int64(warm), int64(soakSlack), "pool, client and proxy heap grew from %d to %d bytes", warm, total)
	st := srv.Status()
	assert.EqualValues(t, soakTotal, st.Shares.Accepted, "every share counted once at the proxy: %+v", st.Shares)
	assert.Equal(t, soakTotal, pool.Stats().Accepted)
}
