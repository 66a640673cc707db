package stratum

import (
	"clminer/work/source"
)

func (c *Client) emitJob(j *source.Job) { c.enqueue(evJob, func(s source.Sink) { s.Job(j) }) }

func (c *Client) noWork(reason string) { c.enqueue(evOther, func(s source.Sink) { s.NoWork(reason) }) }

func (c *Client) event(e source.Event) {
	if e.Time.IsZero() {
		e.Time = c.now()
	}
	c.enqueue(evOther, func(s source.Sink) { s.Event(e) })
}

type evKind int

const (
	evJob evKind = iota
	evOther
)

type queued struct {
	kind evKind
	f    func()
}

// maxQueued bounds the callbacks waiting for a slow sink; past it the
// oldest events (not jobs) are dropped and counted.
const maxQueued = 1024

// enqueue queues a call to the sink for the dispatch goroutine; it never
// blocks, so a session's reader never waits on the consumer. A new job
// replaces any job not yet delivered (the consumer only ever mines the
// latest, and the order of the other events is kept), so a pool sending
// notifies or rising set_difficulty faster than the consumer takes them
// cannot grow the queue.
func (c *Client) enqueue(kind evKind, f func(source.Sink)) {
	c.evMu.Lock()
	sink := c.sink
	if sink != nil {
		q := queued{kind, func() { f(sink) }}
		if kind == evJob {
			for i, o := range c.evQ {
				if o.kind == evJob {
					c.evQ = append(c.evQ[:i], c.evQ[i+1:]...)
					break // at most one is ever queued
				}
			}
		}
		switch n := len(c.evQ); {
		case n >= maxQueued:
			for i, o := range c.evQ {
				if o.kind != evJob {
					c.evQ = append(c.evQ[:i], c.evQ[i+1:]...)
					c.evDropped++
					break
				}
			}
			c.evQ = append(c.evQ, q)
		default:
			c.evQ = append(c.evQ, q)
		}
	}
	c.evMu.Unlock()
	if sink == nil {
		return
	}
	select {
	case c.evSig <- struct{}{}:
	default:
	}
}

// dispatch runs callbacks in order on one goroutine, so a slow consumer
// never blocks a connection's reader; on stop it drains what is queued.
func (c *Client) dispatch(stop <-chan struct{}) {
	for {
		c.evMu.Lock()
		q := c.evQ
		c.evQ = nil
		c.evMu.Unlock()
		for _, f := range q {
			f.f()
		}
		if len(q) > 0 {
			continue
		}
		select {
		case <-c.evSig:
		case <-stop:
			c.evMu.Lock()
			q := c.evQ
			c.evQ = nil
			c.evMu.Unlock()
			for _, f := range q {
				f.f()
			}
			return
		}
	}
}
