package stratum

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"clminer/work/ledger"
	"clminer/work/source"
)

// attempt is one try of one pool: what runPool's steps share.
type attempt struct {
	idx        int
	p          *poolRec
	addr       string
	redirected bool // addr is a client.reconnect target, used once
	resume     string
	pc         PoolConfig
	u          PoolURL
	led        *ledger.Ledger
}

// runPool is one try of pool idx, from the dial to the schedule of its next
// try. A step that fails records the failure and ends the try.
func (c *Client) runPool(ctx context.Context, idx int) {
	a := c.beginAttempt(idx)
	s := c.connect(ctx, a)
	if s == nil {
		return
	}
	if !c.authorize(ctx, a, s) {
		return
	}
	c.goLive(a, s)
	err := c.mine(ctx, a, s)
	c.leave(ctx, a, s, err)
	c.settle(ctx, a, s, err)
}

// beginAttempt marks the pool connecting and takes what the try needs.
func (c *Client) beginAttempt(idx int) *attempt {
	c.mu.Lock()
	p := c.pools[idx]
	p.state = source.StateConnecting
	addr, redirected := p.dialAddr()
	a := &attempt{idx: idx, p: p, addr: addr, redirected: redirected, resume: p.resumeID, pc: p.cfg, u: p.url, led: p.ledger}
	c.mu.Unlock()
	c.event(source.Event{Kind: source.EventConnecting, Pool: idx, URL: a.u.String()})
	return a
}

// failed records a failure of the try before its session went live.
func (c *Client) failed(a *attempt, err error) {
	c.mu.Lock()
	now := c.now()
	c.failLocked(a.p, err, now)
	if a.redirected {
		// The redirect target failed: the configured address is next.
		a.p.nextAttempt = now
	}
	c.mu.Unlock()
}

// connect dials the pool and starts a session on the connection; nil when
// the dial failed (recorded) or ctx ended.
func (c *Client) connect(ctx context.Context, a *attempt) *session {
	conn, err := dial(ctx, c.opts.Dialer, c.opts.DialTimeout, a.u, a.addr, a.pc)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		c.failed(a, fmt.Errorf("connect: %w", err))
		c.event(source.Event{Kind: source.EventDisconnected, Pool: a.idx, URL: a.u.String(), Err: err})
		return nil
	}
	s := newSession(c, a.idx, a.pc, a.u, a.addr, conn, a.led)
	c.mu.Lock()
	a.p.connects++
	c.mu.Unlock()
	c.event(source.Event{Kind: source.EventConnected, Pool: a.idx, URL: a.u.String(), Session: s.id})
	s.start()
	return s
}

// authorize runs the session's handshake (subscribe, authorize); on failure
// the session is closed, the failure recorded (unless ctx ended) and it
// returns false.
func (c *Client) authorize(ctx context.Context, a *attempt, s *session) bool {
	err := s.handshake(ctx, a.resume)
	if err == nil {
		return true
	}
	s.close(err)
	s.wg.Wait()
	if ctx.Err() != nil {
		return false
	}
	c.failed(a, err)
	kind := source.EventDisconnected
	if errors.Is(err, ErrAuthorize) {
		kind = source.EventAuthFailed
	}
	c.event(source.Event{Kind: kind, Pool: a.idx, URL: a.u.String(), Session: s.id, Err: err})
	return false
}

// goLive makes s the live session, then sends its latest job and optional
// calls (session.ready), so a consumer can submit on the first job it gets.
func (c *Client) goLive(a *attempt, s *session) {
	c.mu.Lock()
	a.p.state = source.StateActive
	a.p.sickReason = ""
	a.p.resumeID = s.sessionID
	c.live = s
	c.mu.Unlock()
	c.event(source.Event{Kind: source.EventAuthorized, Pool: a.idx, URL: a.u.String(), Session: s.id})
	s.ready()
}

// mine waits, probing the pools above this one, until the session ends,
// ctx ends or a higher pool is back (errReturnToPrimary); it returns why.
func (c *Client) mine(ctx context.Context, a *attempt, s *session) error {
	sctx, cancel := context.WithCancel(ctx)
	back := make(chan struct{}, 1)
	var pwg sync.WaitGroup
	if a.idx > 0 {
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			c.probeHigher(sctx, a.idx, back)
		}()
	}
	var err error
	select {
	case <-s.done:
		err = s.closeErr()
	case <-ctx.Done():
		err = ctx.Err()
	case <-back:
		err = errReturnToPrimary
	}
	cancel()
	pwg.Wait()
	return err
}

// leave takes s off the live slot and closes it with err, then tells the
// consumer that no work is live.
func (c *Client) leave(ctx context.Context, a *attempt, s *session, err error) {
	c.mu.Lock()
	c.live = nil
	c.mu.Unlock()
	if errors.Is(err, errReturnToPrimary) {
		// Leaving a working pool by choice: its verdicts on shares already
		// sent still count. Devices idle meanwhile (usually one round trip)
		// rather than hash work that can no longer be sent.
		s.retire()
		c.noWork("switching to " + c.pools[0].url.String())
		s.drain(ctx, min(c.opts.SubmitTimeout, 5*time.Second))
	}
	s.close(err)
	s.wg.Wait()
	if ctx.Err() == nil {
		// Nothing can be submitted on this session any more: devices stop
		// until a pool sends a live job. Queued after its reader ended, so
		// no job of this session can follow it.
		c.noWork(fmt.Sprintf("no live pool (%s: %s)", a.u.String(), errString(err)))
	}
}

// settle keeps the ended session's last state for Status and schedules the
// pool's next try (endedLocked).
func (c *Client) settle(ctx context.Context, a *attempt, s *session, err error) {
	diff, mask, en1, en2, _ := s.snapshot()
	rc := s.reconnectReq()
	c.mu.Lock()
	p := a.p
	p.diff, p.mask, p.en1, p.en2size = diff, mask, en1, en2
	now := c.now()
	sick := c.endedLocked(p, sessionEnd{pool: a.idx, session: s.id, err: err, reconnect: rc,
		worked: now.Sub(s.authorizeAt), stopping: ctx.Err() != nil}, now)
	c.mu.Unlock()
	if sick != nil {
		c.event(source.Event{Kind: source.EventSick, Pool: a.idx, URL: a.u.String(), Session: s.id, Err: err})
	}
	c.event(source.Event{Kind: source.EventDisconnected, Pool: a.idx, URL: a.u.String(), Session: s.id, Err: err})
}
