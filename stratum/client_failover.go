package stratum

import (
	"errors"
	"net"
	"time"

	"clminer/work/source"
)

// pick returns the highest-priority pool whose backoff has expired, or how
// long to wait for the first one.
func (c *Client) pick() (int, time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return nextPool(c.pools, c.now())
}

// nextPool is pick's choice at now, read from each pool's state and next
// attempt alone, so the order is table-tested with fabricated times.
func nextPool(pools []*poolRec, now time.Time) (int, time.Duration) {
	var minWait time.Duration = -1
	sick := -1
	for i, p := range pools {
		w := p.nextAttempt.Sub(now)
		if w <= 0 {
			if p.state != source.StateSick {
				return i, 0
			}
			if sick < 0 {
				sick = i
			}
			continue
		}
		if minWait < 0 || w < minWait {
			minWait = w
		}
	}
	// A sick pool whose hold-down ended is used only when no healthy pool
	// can be: otherwise probeHigher brings it back once it passes probes.
	if sick >= 0 {
		return sick, 0
	}
	return 0, minWait
}

// backoffLocked is the wait after p's failures in a row. The count is the
// pool's own (status shows it), so the delay comes from DelayAt with the
// client's random source, which c.mu guards.
func (c *Client) backoffLocked(p *poolRec) time.Duration {
	return c.opts.Retry.DelayAt(p.fails, c.rnd.Float64())
}

// failLocked records a failure at now and schedules the next attempt.
func (c *Client) failLocked(p *poolRec, err error, now time.Time) {
	p.fails++
	p.state = source.StateDown
	if err != nil {
		p.lastErr = err.Error()
	}
	p.nextAttempt = now.Add(c.backoffLocked(p))
}

// sickLocked holds a sick pool down: SickHoldDown, doubled per sickness in
// a row (up to 16x), so a pool that authorizes but never answers submits
// is not returned to every minute.
func (c *Client) sickLocked(p *poolRec, reason string, now time.Time) {
	p.fails++
	p.sickCount++
	p.state = source.StateSick
	p.sickReason = reason
	p.lastErr = "sick: " + reason
	hold := c.opts.SickHoldDown << min(p.sickCount-1, 4)
	p.nextAttempt = now.Add(hold)
}

// dialAddr is where the next attempt goes: a pending redirect once, else the
// configured address. A redirect is consumed by the attempt, so when its
// target fails the configured pool is next.
func (p *poolRec) dialAddr() (addr string, redirected bool) {
	if p.redirect != "" {
		addr, p.redirect = p.redirect, ""
		return addr, true
	}
	return p.url.Addr(), false
}

// applyReconnectLocked schedules the redirect for the next attempt only. A
// session that ends in a reconnect before it worked for HoldDown counts as a
// failure, so a pool that redirects every connection is retried no faster
// than the backoff allows, whatever wait it asks for.
func (c *Client) applyReconnectLocked(p *poolRec, e sessionEnd, healthy bool, now time.Time) {
	r := e.reconnect
	if addr := net.JoinHostPort(r.Host, r.Port); addr != p.url.Addr() {
		p.redirect = addr
	}
	p.state = source.StateIdle
	wait := time.Duration(r.Wait) * time.Second
	if wait > c.opts.Retry.Max {
		wait = c.opts.Retry.Max
	}
	if healthy {
		p.fails = 0
	} else {
		p.fails++
		wait = max(wait, c.backoffLocked(p))
	}
	p.nextAttempt = now.Add(wait)
	c.event(source.Event{Kind: source.EventReconnectRequested, Pool: e.pool, URL: p.url.String(), Session: e.session, Err: ErrReconnectRequested})
}

// sessionEnd is how a session that went live ended, as the schedule of the
// pool's next attempt reads it.
type sessionEnd struct {
	pool      int
	session   uint64
	err       error
	reconnect *Reconnect    // the pool's client.reconnect, if it sent one
	worked    time.Duration // from authorize to the end
	stopping  bool          // Run's ctx ended: nothing is scheduled
}

// endedLocked schedules p's next attempt after a live session ended at now,
// and says whether the pool was found sick. It decides from e and now alone
// (and the client's random source for the backoff), so each way a session
// ends is table-tested with fabricated times.
func (c *Client) endedLocked(p *poolRec, e sessionEnd, now time.Time) (sick *SickError) {
	p.state = source.StateIdle
	healthy := e.worked >= c.opts.HoldDown
	err := e.err
	switch {
	case e.stopping:
	case errors.Is(err, errReturnToPrimary):
		p.fails = 0
	case errors.As(err, &sick):
		if healthy {
			p.sickCount = 0 // sick again after working a while: not "in a row"
		}
		c.sickLocked(p, sick.Reason, now)
	case e.reconnect != nil:
		c.applyReconnectLocked(p, e, healthy, now)
	case errors.Is(err, ErrSilent):
		// A pool that stops sending while its connection stays open is
		// hung, and its listener most likely is too: no immediate retry
		// (which waited out a subscribe it never answered), but the next
		// pool now, while this one backs off and is probed.
		if healthy {
			p.fails, p.sickCount = 0, 0
		}
		c.failLocked(p, err, now)
	default:
		if healthy {
			// One immediate retry after a session that worked for a while.
			p.fails, p.sickCount = 0, 0
			p.state = source.StateDown
			p.lastErr = errString(err)
			p.nextAttempt = now
		} else {
			c.failLocked(p, err, now)
		}
	}
	return sick
}
