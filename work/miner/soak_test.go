package miner_test

import (
	"context"
	"io"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/charmbracelet/log"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"clminer/internal/testkit"
	"clminer/stratum"
	"clminer/stratum/pooltest"
	"clminer/work/device"
	"clminer/work/ledger"
	"clminer/work/miner"
)

// budgetDevice reports nonces as found without hashing them (at difficulty
// 1e-12 every hash is a share, and the host re-verifies each) until its
// budget is spent, then waits for more: the miner gets exactly the shares
// the test hands out, and is quiet between rounds.
type budgetDevice struct {
	mu     sync.Mutex
	budget int
	more   chan struct{}
}

func newBudgetDevice() *budgetDevice { return &budgetDevice{more: make(chan struct{}, 1)} }

func (d *budgetDevice) give(n int) {
	d.mu.Lock()
	d.budget += n
	d.mu.Unlock()
	select {
	case d.more <- struct{}{}:
	default:
	}
}

func (d *budgetDevice) Info() device.Info {
	return device.Info{ID: "budget0", Kind: "test", Name: "budget device", Detail: "reports every nonce"}
}

func (d *budgetDevice) Sweep(ctx context.Context, s device.Sweep) (device.Result, error) {
	for {
		d.mu.Lock()
		n := min(d.budget, 8, int(s.Count))
		d.budget -= n
		d.mu.Unlock()
		if n > 0 {
			for i := 0; i < n; i++ {
				s.Found(s.Start + uint32(i))
			}
			return device.Result{Hashes: s.Count}, nil
		}
		select {
		case <-ctx.Done():
			return device.Result{}, ctx.Err()
		case <-d.more:
		}
	}
}

func (d *budgetDevice) Close() error { return nil }

func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// A miner over a long run (work/miner, the stratum client and its work
// ledger together): nothing is kept per share beyond the bounds, so the
// heap read at rest after 3,000 shares and after 8,000 is the same (the
// ledger's key ring held references to forgotten jobs' shares up to 65,536
// of them, issue 28). Counted in shares, not time; a clean job every 1,000
// shares, as the demo's pool sends them.
func TestMinerSoakFlat(t *testing.T) {
	const (
		round = 1000
		warm  = 3 * round
		total = 8 * round
		slack = 32 * (total - warm) // bytes: 32 a share would exceed it
	)
	pool := pooltest.Start(t, pooltest.Config{Difficulty: 1e-12, Records: 16})
	// Fill the job histories (the pool's and the ledger's, bounded by job
	// count) so that both readings see them full.
	for i := 0; i < 2*ledger.DefaultMaxJobs; i++ {
		pool.PushJob(false)
	}
	dev := newBudgetDevice()
	// The device reports shares faster than any pool answers them: let
	// them all be sent rather than throttled.
	client, err := stratum.NewClient([]stratum.PoolConfig{poolConf(pool)}, stratum.Options{MaxInFlight: 2 * round})
	require.NoError(t, err)
	m, err := miner.New(miner.Config{Source: client, Devices: []device.Device{dev}, Logger: log.New(io.Discard), DrainTimeout: 3 * time.Second})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	defer func() {
		cancel()
		require.NoError(t, <-done)
	}()
	outcomes := func() uint64 {
		c := m.Snapshot().Shares
		return c.Accepted + c.Rejected + c.Stale + c.Duplicate + c.HWErrors + c.Lost + c.Throttled
	}
	var heapWarm, heapTotal uint64
	for n := round; n <= total; n += round {
		dev.give(round)
		testkit.EventuallyWithin(t, 60*time.Second, func() bool { return outcomes() >= uint64(n) }, "a verdict on every share of the round")
		id := pool.PushJob(true)
		testkit.Eventually(t, func() bool { j := m.Snapshot().Job; return j != nil && j.ID == id }, "the miner on the clean job")
		// At rest: the device waits for budget, every share has its
		// verdict, and the clean job made every earlier one stale.
		if n == warm {
			heapWarm = liveHeap()
		}
		if n == total {
			heapTotal = liveHeap()
		}
	}
	c := m.Snapshot().Shares
	t.Logf("live heap after %d shares %d KiB, after %d shares %d KiB; miner %+v; pool %+v", warm, heapWarm>>10, total, heapTotal>>10, c, pool.Stats())
	assert.Less(t, int64(heapTotal)-int64(heapWarm), int64(slack), "the miner's heap grew from %d to %d bytes", heapWarm, heapTotal)
	assert.EqualValues(t, total, outcomes(), "every share has exactly one outcome")
	assert.EqualValues(t, pool.Stats().Accepted, c.Accepted)
	assert.Zero(t, pool.Stats().Duplicate)
}
