package failover

import (
	"context"
	"sync"
	"time"

	"clminer/work/source"
)

// Chain is a Source made of sources in priority order.
type Chain struct {
	kids []*kid

	mu     sync.Mutex
	sink   source.Sink
	active int // index into kids feeding the miner; -1: none
}

type kid struct {
	src    source.Source
	offset int // its first upstream's index in the whole list
	n      int
	job    *source.Job // its latest job, with global pool index
	work   bool        // it has a job and said no NoWork since
}

// New chains srcs, the first preferred. Each source's upstream count must
// not change after this (it fixes the global indexes).
func New(srcs ...source.Source) *Chain {
	c := &Chain{active: -1}
	off := 0
	for _, s := range srcs {
		n := len(s.Upstreams())
		c.kids = append(c.kids, &kid{src: s, offset: off, n: n})
		off += n
	}
	return c
}

// Run runs every source until ctx ends and they have all returned.
func (c *Chain) Run(ctx context.Context, sink source.Sink) error {
	c.mu.Lock()
	c.sink = sink
	c.mu.Unlock()
	var wg sync.WaitGroup
	for i, k := range c.kids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = k.src.Run(ctx, kidSink{c, i})
		}()
	}
	wg.Wait()
	return ctx.Err()
}

// Send routes the share to the source that issued its job.
func (c *Chain) Send(sh source.Share, done func(source.Reply)) {
	for _, k := range c.kids {
		if sh.Job.Pool >= k.offset && sh.Job.Pool < k.offset+k.n {
			j := *sh.Job
			j.Pool -= k.offset
			sh.Job = &j
			k.src.Send(sh, done)
			return
		}
	}
	done(source.Reply{Kind: source.NotSent, Reason: "no upstream issued this job"})
}

// Upstreams lists every source's upstreams under their global indexes.
func (c *Chain) Upstreams() []source.UpstreamStatus {
	var out []source.UpstreamStatus
	for _, k := range c.kids {
		for _, u := range k.src.Upstreams() {
			u.Index += k.offset
			out = append(out, u)
		}
	}
	return out
}

// bestLocked is the first source with work, or -1. A source whose job
// just died (clean jobs) without a NoWork is about to send the next one,
// so liveness is not tested here: that would bounce the miner to a backup
// for a moment on every new block.
func (c *Chain) bestLocked() int {
	for i, k := range c.kids {
		if k.work && k.job != nil {
			return i
		}
	}
	return -1
}

// switchLocked makes the best source the active one.
func (c *Chain) switchLocked() {
	if b := c.bestLocked(); b != c.active {
		c.handOverLocked(c.active, b, "")
	}
}

// handOverLocked moves the miner from source from to source to (-1: none,
// idle says why).
func (c *Chain) handOverLocked(from, to int, idle string) {
	c.active = to
	if to < 0 {
		c.sink.NoWork(idle)
		return
	}
	if from >= 0 && from != to {
		// The pools that really fed the miner, not their sources' first.
		fromPool, toPool := c.kids[from].offset, c.kids[to].job.Pool
		if j := c.kids[from].job; j != nil {
			fromPool = j.Pool
		}
		c.sink.Event(source.Event{Kind: source.EventFailover, Pool: toPool, URL: c.kids[to].job.PoolURL,
			From: fromPool, To: toPool, Time: time.Now()})
	}
	c.sink.Job(c.kids[to].job)
}

type kidSink struct {
	c *Chain
	i int
}

func (s kidSink) Job(j *source.Job) {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	k := c.kids[s.i]
	g := *j
	g.Pool += k.offset
	k.job, k.work = &g, true
	if s.i == c.active {
		c.sink.Job(&g)
		return
	}
	c.switchLocked()
}

func (s kidSink) NoWork(reason string) {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	c.kids[s.i].work = false
	if s.i == c.active {
		c.handOverLocked(s.i, c.bestLocked(), reason)
	}
}

func (s kidSink) Event(e source.Event) {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	off := c.kids[s.i].offset
	e.Pool += off
	if e.Kind == source.EventFailover {
		e.From += off
		e.To += off
	}
	c.sink.Event(e)
}

// SubWorkers gives the sub-workers of the chain's sources that have them
// (Stratum v1 pool lists), or nil when none does: a proxy authorizes each
// downstream name on all of them, so a failover to a v1 backup finds the
// names already there, and a source without sub-workers (a V2 channel, a
// node) credits the shares it is sent to its one account.
func (c *Chain) SubWorkers() source.Workers {
	w := &chainWorkers{c: c}
	for i, k := range c.kids {
		if kw := source.SubWorkers(k.src); kw != nil {
			w.kids = append(w.kids, kidWorkers{i, kw})
		}
	}
	if len(w.kids) == 0 {
		return nil
	}
	return w
}

type chainWorkers struct {
	c    *Chain
	kids []kidWorkers
}

type kidWorkers struct {
	i int
	w source.Workers
}

func (w *chainWorkers) AddWorker(key string) error {
	for n, k := range w.kids {
		if err := k.w.AddWorker(key); err != nil {
			for _, done := range w.kids[:n] {
				done.w.RemoveWorker(key)
			}
			return err
		}
	}
	return nil
}

func (w *chainWorkers) RemoveWorker(key string) {
	for _, k := range w.kids {
		k.w.RemoveWorker(key)
	}
}

// current is the sub-workers of the source feeding the consumer, else of
// the first source that has them: whose verdict and names count now.
func (w *chainWorkers) current() source.Workers {
	w.c.mu.Lock()
	active := w.c.active
	w.c.mu.Unlock()
	for _, k := range w.kids {
		if k.i == active {
			return k.w
		}
	}
	return w.kids[0].w
}

func (w *chainWorkers) WaitWorker(key string, d time.Duration) (string, string) {
	return w.current().WaitWorker(key, d)
}

func (w *chainWorkers) Workers() []source.WorkerStatus { return w.current().Workers() }
