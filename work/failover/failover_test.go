package failover

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"clminer/work"
	"clminer/work/ledger"
	"clminer/work/source"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fake is a source driven by the test: it hands its sink out and records
// the shares sent to it.
type fake struct {
	n     int
	sinks chan source.Sink
	mu    sync.Mutex
	sent  []source.Share
}

func newFake(n int) *fake { return &fake{n: n, sinks: make(chan source.Sink, 1)} }

func (f *fake) Run(ctx context.Context, s source.Sink) error {
	f.sinks <- s
	<-ctx.Done()
	return ctx.Err()
}
func (f *fake) Send(sh source.Share, done func(source.Reply)) {
	f.mu.Lock()
	f.sent = append(f.sent, sh)
	f.mu.Unlock()
	done(source.Reply{Kind: source.Accepted})
}
func (f *fake) Upstreams() []source.UpstreamStatus {
	out := make([]source.UpstreamStatus, f.n)
	for i := range out {
		out[i].Index = i
	}
	return out
}

type rec struct {
	mu     sync.Mutex
	jobs   []*source.Job
	idle   []string
	events []source.Event
}

func (r *rec) Job(j *source.Job)    { r.mu.Lock(); r.jobs = append(r.jobs, j); r.mu.Unlock() }
func (r *rec) NoWork(s string)      { r.mu.Lock(); r.idle = append(r.idle, s); r.mu.Unlock() }
func (r *rec) Event(e source.Event) { r.mu.Lock(); r.events = append(r.events, e); r.mu.Unlock() }
func (r *rec) last() *source.Job    { r.mu.Lock(); defer r.mu.Unlock(); return r.jobs[len(r.jobs)-1] }
func (r *rec) counts() (int, int)   { r.mu.Lock(); defer r.mu.Unlock(); return len(r.jobs), len(r.idle) }

func job(t *testing.T, pool int, id string) *source.Job {
	e, err := ledger.New(0).Job("", id, 4, 1)
	require.NoError(t, err)
	return &source.Job{Job: &work.Job{ID: id}, Entry: e, Pool: pool, PoolURL: id}
}

// The first source with work feeds the miner; losing it hands the miner
// the next one's latest job at once; shares go back to the source that
// issued their job, under its own pool index.
func TestPriorityAndRouting(t *testing.T) {
	a, b := newFake(2), newFake(1) // a: a pool list of two; b: a node
	c := New(a, b)
	r := &rec{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = c.Run(ctx, r); close(done) }()
	sa, sb := <-a.sinks, <-b.sinks

	sb.Job(job(t, 0, "node-1"))
	require.Equal(t, "node-1", r.last().ID)
	assert.Equal(t, 2, r.last().Pool, "global index: after a's two pools")

	sa.Job(job(t, 1, "pool-1"))
	require.Equal(t, "pool-1", r.last().ID, "the preferred source takes over")
	assert.Equal(t, 1, r.last().Pool)
	sb.Job(job(t, 0, "node-2"))
	assert.Equal(t, "pool-1", r.last().ID, "a backup's job does not displace the active one")

	sa.NoWork("pool down")
	assert.Equal(t, "node-2", r.last().ID, "the backup's latest job, at once")
	sb.NoWork("node down")
	_, idle := r.counts()
	assert.Equal(t, 1, idle, "idle only when no source has work")

	sb.Job(job(t, 0, "node-3"))
	ch := make(chan source.Reply, 1)
	c.Send(source.Share{Job: r.last()}, func(rp source.Reply) { ch <- rp })
	assert.Equal(t, source.Accepted, (<-ch).Kind)
	require.Len(t, b.sent, 1)
	assert.Equal(t, 0, b.sent[0].Job.Pool, "the source sees its own index")
	assert.Empty(t, a.sent)

	ups := c.Upstreams()
	require.Len(t, ups, 3)
	assert.Equal(t, []int{0, 1, 2}, []int{ups[0].Index, ups[1].Index, ups[2].Index})
	r.mu.Lock()
	var failovers int
	for _, e := range r.events {
		if e.Kind == source.EventFailover {
			failovers++
		}
	}
	r.mu.Unlock()
	assert.Equal(t, 2, failovers, "node->pool and pool->node")
	var moves [][2]int
	r.mu.Lock()
	for _, e := range r.events {
		if e.Kind == source.EventFailover {
			moves = append(moves, [2]int{e.From, e.To})
		}
	}
	r.mu.Unlock()
	assert.Equal(t, [][2]int{{2, 1}, {1, 2}}, moves, "the pools that fed the miner: a's second pool (1) and the node (2)")
	cancel()
	<-done
}

// workerFake is a source with sub-workers (a Stratum v1 client's).
type workerFake struct {
	*fake
	keys map[string]bool
	full bool // AddWorker fails
}

func (w *workerFake) AddWorker(k string) error {
	if w.full {
		return assert.AnError
	}
	w.keys[k] = true
	return nil
}
func (w *workerFake) RemoveWorker(k string) { delete(w.keys, k) }
func (w *workerFake) WaitWorker(k string, _ time.Duration) (string, string) {
	return fmt.Sprintf("%p.%s", w, k), "authorized"
}
func (w *workerFake) Workers() []source.WorkerStatus { return nil }

// A chain's sub-workers are all its v1 sources': a name goes on every one
// (or on none), and the verdict asked for is the feeding source's when it
// has sub-workers, else the first's. A chain without any has none.
func TestChainSubWorkers(t *testing.T) {
	assert.Nil(t, source.SubWorkers(New(newFake(1), newFake(1))))
	a := &workerFake{fake: newFake(1), keys: map[string]bool{}}
	b := &workerFake{fake: newFake(1), keys: map[string]bool{}}
	c := New(newFake(1), a, b)
	w := source.SubWorkers(c)
	require.NotNil(t, w)
	require.NoError(t, w.AddWorker("rig1"))
	assert.True(t, a.keys["rig1"] && b.keys["rig1"])
	name, _ := w.WaitWorker("rig1", 0)
	assert.Equal(t, fmt.Sprintf("%p.rig1", a), name, "no v1 source feeds: the first one's")
	c.mu.Lock()
	c.active = 2
	c.mu.Unlock()
	name, _ = w.WaitWorker("rig1", 0)
	assert.Equal(t, fmt.Sprintf("%p.rig1", b), name, "the feeding source's")
	b.full = true
	require.Error(t, w.AddWorker("rig2"))
	assert.False(t, a.keys["rig2"], "added on none when one refuses")
	w.RemoveWorker("rig1")
	assert.Empty(t, a.keys)
	assert.Empty(t, b.keys)
}
