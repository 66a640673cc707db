package stratum

import (
	"context"
	"errors"
	"time"

	"clminer/work"
	"clminer/work/source"
)

// SubmitResult is the pool's verdict on a share.
type SubmitResult struct {
	Accepted bool
	Worker   string // the worker name the share went under
	Code     int    // error code when the pool gave one
	Reason   string // readable reject reason
	RTT      time.Duration
}

// Send implements source.Source: it submits sh on the connection that sent
// its job, without blocking. done is called exactly once.
func (c *Client) Send(sh source.Share, done func(source.Reply)) {
	j := sh.Job
	if j == nil || sh.Unit == nil {
		done(source.Reply{Kind: source.NotSent, Reason: "no job"})
		return
	}
	sub, err := sh.Unit.Submit(j.Worker, sh.Nonce, j.RollingMask)
	if err != nil {
		done(source.Reply{Kind: source.NotSent, Reason: err.Error()})
		return
	}
	reply := source.Reply{Extranonce2: sub.Extranonce2, NTime: sub.NTime, VersionBits: sub.VersionBits}
	key := sh.Worker
	if key == "" {
		key = c.opts.DeviceWorkers[sh.Device]
	}
	c.submitAsync(j, sub, key, func(res SubmitResult, err error) {
		done(outcome(reply, res, err))
	})
}

// outcome completes reply with the one counted outcome of a share that
// submitAsync answered with res or err.
func outcome(reply source.Reply, res SubmitResult, err error) source.Reply {
	reply.RTT = res.RTT
	switch {
	case errors.Is(err, ErrStaleSession):
		reply.Kind, reply.Reason = source.NotSent, "pool session ended before submit"
	case errors.Is(err, ErrThrottled):
		reply.Kind, reply.Reason = source.Throttled, "too many shares awaiting a verdict"
	case err != nil:
		reply.Kind, reply.Reason = source.NoReply, err.Error()
	case res.Accepted:
		reply.Kind = source.Accepted
	default:
		reply.Kind, reply.Reason, reply.Code = source.Rejected, res.Reason, res.Code
		if reply.Reason == "" {
			reply.Reason = "rejected without a reason"
		}
	}
	return reply
}

// submitAsync sends a share of j under sub-worker key (AddWorker; "" for
// the pool user) on the connection that sent j, without blocking: done is
// called exactly once with the verdict, ErrStaleSession (nothing sent: the
// connection is gone) or ErrThrottled. A key the pool has not (yet)
// accepted on that connection submits under the pool user, so a share is
// never lost to a worker name. Worker in done's result says which was used.
func (c *Client) submitAsync(j *source.Job, sub work.Submit, key string, done func(SubmitResult, error)) {
	c.mu.Lock()
	s := c.live
	wr := c.workers[key]
	c.mu.Unlock()
	if s == nil || s.id != j.Session {
		done(SubmitResult{}, ErrStaleSession)
		return
	}
	if sub.JobID == "" {
		sub.JobID = j.ID
	}
	if sub.Worker == "" {
		sub.Worker = s.worker
	}
	if wr != nil {
		if name, ok := s.workerName(key); ok {
			sub.Worker = name
		}
	}
	worker := sub.Worker
	s.submitAsync(sub, j.Entry, func(res SubmitResult, err error) {
		res.Worker = worker
		c.mu.Lock()
		switch {
		case errors.Is(err, ErrThrottled):
			c.pools[s.pool].throttled++
		case err != nil:
		case res.Accepted:
			c.pools[s.pool].accepted++
			if wr != nil && worker != s.worker {
				wr.accepted++
			}
		default:
			c.pools[s.pool].rejected++
			if wr != nil && worker != s.worker {
				wr.rejected++
			}
		}
		c.mu.Unlock()
		done(res, err)
	})
}

// Submit sends a share on the connection that sent j and waits for the
// verdict. If that connection is gone it returns ErrStaleSession without
// sending anything: a share is never sent to another pool. Safe for
// concurrent use.
func (c *Client) Submit(ctx context.Context, j *source.Job, sub work.Submit) (SubmitResult, error) {
	if j == nil {
		return SubmitResult{}, errors.New("stratum: nil job")
	}
	type verdict struct {
		res SubmitResult
		err error
	}
	ch := make(chan verdict, 1)
	c.submitAsync(j, sub, "", func(res SubmitResult, err error) { ch <- verdict{res, err} })
	select {
	case v := <-ch:
		return v.res, v.err
	case <-ctx.Done():
		return SubmitResult{}, ctx.Err()
	}
}
