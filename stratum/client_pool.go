package stratum

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"clminer/work/source"
)

func (c *Client) runPool(ctx context.Context, idx int) {
	c.mu.Lock()
	p := c.pools[idx]
	p.state = source.StateConnecting
	addr, redirected := p.dialAddr()
	resume, pc, u, led := p.resumeID, p.cfg, p.url, p.ledger
	c.mu.Unlock()
	c.event(source.Event{Kind: source.EventConnecting, Pool: idx, URL: u.String()})

	failed := func(err error) {
		c.mu.Lock()
		c.failLocked(p, err)
		if redirected {
			// The redirect target failed: the configured address is next.
			p.nextAttempt = time.Now()
		}
		c.mu.Unlock()
	}
	conn, err := dial(ctx, c.opts.Dialer, c.opts.DialTimeout, u, addr, pc)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		failed(fmt.Errorf("connect: %w", err))
		c.event(source.Event{Kind: source.EventDisconnected, Pool: idx, URL: u.String(), Err: err})
		return
	}
	s := newSession(c, idx, pc, u, addr, conn, led)
	c.mu.Lock()
	p.connects++
	c.mu.Unlock()
	c.event(source.Event{Kind: source.EventConnected, Pool: idx, URL: u.String(), Session: s.id})
	s.start()

	err = s.handshake(ctx, resume)
	if err != nil {
		s.close(err)
		s.wg.Wait()
		if ctx.Err() != nil {
			return
		}
		failed(err)
		kind := source.EventDisconnected
		if errors.Is(err, ErrAuthorize) {
			kind = source.EventAuthFailed
		}
		c.event(source.Event{Kind: kind, Pool: idx, URL: u.String(), Session: s.id, Err: err})
		return
	}

	c.mu.Lock()
	p.state = source.StateActive
	p.sickReason = ""
	p.resumeID = s.sessionID
	c.live = s
	c.mu.Unlock()
	c.event(source.Event{Kind: source.EventAuthorized, Pool: idx, URL: u.String(), Session: s.id})
	s.ready()

	sctx, cancel := context.WithCancel(ctx)
	back := make(chan struct{}, 1)
	var pwg sync.WaitGroup
	if idx > 0 {
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			c.probeHigher(sctx, idx, back)
		}()
	}
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
		c.noWork(fmt.Sprintf("no live pool (%s: %s)", u.String(), errString(err)))
	}

	diff, mask, en1, en2, _ := s.snapshot()
	rc := s.reconnectReq()
	c.mu.Lock()
	p.diff, p.mask, p.en1, p.en2size = diff, mask, en1, en2
	p.state = source.StateIdle
	healthy := time.Since(s.authorizeAt) >= c.opts.HoldDown
	var sick *SickError
	switch {
	case ctx.Err() != nil:
	case errors.Is(err, errReturnToPrimary):
		p.fails = 0
	case errors.As(err, &sick):
		if healthy {
			p.sickCount = 0 // sick again after working a while: not "in a row"
		}
		c.sickLocked(p, sick.Reason)
	case rc != nil:
		c.applyReconnectLocked(p, s, rc, healthy)
	case errors.Is(err, ErrSilent):
		// A pool that stops sending while its connection stays open is
		// hung, and its listener most likely is too: no immediate retry
		// (which waited out a subscribe it never answered), but the next
		// pool now, while this one backs off and is probed.
		if healthy {
			p.fails, p.sickCount = 0, 0
		}
		c.failLocked(p, err)
	default:
		if healthy {
			// One immediate retry after a session that worked for a while.
			p.fails, p.sickCount = 0, 0
			p.state = source.StateDown
			p.lastErr = errString(err)
			p.nextAttempt = time.Now()
		} else {
			c.failLocked(p, err)
		}
	}
	c.mu.Unlock()
	if sick != nil {
		c.event(source.Event{Kind: source.EventSick, Pool: idx, URL: u.String(), Session: s.id, Err: err})
	}
	c.event(source.Event{Kind: source.EventDisconnected, Pool: idx, URL: u.String(), Session: s.id, Err: err})
}
