package stratum

import (
	"net"
	"time"

	"clminer/work/source"
)

// pick returns the highest-priority pool whose backoff has expired, or how
// long to wait for the first one.
func (c *Client) pick() (int, time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	var minWait time.Duration = -1
	sick := -1
	for i, p := range c.pools {
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

// failLocked records a failure and schedules the next attempt.
func (c *Client) failLocked(p *poolRec, err error) {
	p.fails++
	p.state = source.StateDown
	if err != nil {
		p.lastErr = err.Error()
	}
	p.nextAttempt = time.Now().Add(c.backoffLocked(p))
}

// sickLocked holds a sick pool down: SickHoldDown, doubled per sickness in
// a row (up to 16x), so a pool that authorizes but never answers submits
// is not returned to every minute.
func (c *Client) sickLocked(p *poolRec, reason string) {
	p.fails++
	p.sickCount++
	p.state = source.StateSick
	p.sickReason = reason
	p.lastErr = "sick: " + reason
	hold := c.opts.SickHoldDown << min(p.sickCount-1, 4)
	p.nextAttempt = time.Now().Add(hold)
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
func (c *Client) applyReconnectLocked(p *poolRec, s *session, r *Reconnect, healthy bool) {
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
	p.nextAttempt = time.Now().Add(wait)
	c.event(source.Event{Kind: source.EventReconnectRequested, Pool: s.pool, URL: p.url.String(), Session: s.id, Err: ErrReconnectRequested})
}
