package stratum

import (
	"context"
	"errors"
	"fmt"
	"time"

	"clminer/work/source"
)

// probe runs subscribe and authorize on a throwaway connection: a pool is
// only worth returning to when it accepts the worker, not when its port
// answers.
func (c *Client) probe(ctx context.Context, idx int) error {
	c.mu.Lock()
	p := c.pools[idx]
	addr, u, pc := p.url.Addr(), p.url, p.cfg
	c.mu.Unlock()
	conn, err := dial(ctx, c.opts.Dialer, c.opts.DialTimeout, u, addr, pc)
	if err != nil {
		return err
	}
	s := newSession(c, idx, pc, u, addr, conn, nil)
	s.log = s.log.With("probe", true)
	s.start()
	err = s.handshake(ctx, "")
	s.close(errors.New("probe done"))
	s.wg.Wait()
	return err
}

// probeHigher probes the pools above idx with subscribe+authorize while it
// mines on idx; once one has passed every probe for HoldDown, it signals
// back.
func (c *Client) probeHigher(ctx context.Context, idx int, back chan<- struct{}) {
	interval := c.opts.HoldDown / 4
	if interval < 50*time.Millisecond {
		interval = 50 * time.Millisecond
	}
	if interval > 15*time.Second {
		interval = 15 * time.Second
	}
	since := make([]time.Time, idx)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		for i := 0; i < idx; i++ {
			c.mu.Lock()
			p := c.pools[i]
			due := !c.now().Before(p.nextAttempt)
			u := p.url
			c.mu.Unlock()
			if !due {
				since[i] = time.Time{}
				continue
			}
			err := c.probe(ctx, i)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				since[i] = time.Time{}
				c.mu.Lock()
				if p.state != source.StateSick {
					c.failLocked(p, fmt.Errorf("probe: %w", err), c.now())
				} else {
					p.nextAttempt = c.now().Add(c.backoffLocked(p))
				}
				c.mu.Unlock()
				continue
			}
			now := c.now()
			if since[i].IsZero() {
				since[i] = now
			}
			if now.Sub(since[i]) >= c.opts.HoldDown {
				c.log.Info("higher-priority pool is back (subscribe and authorize pass)", "event", "pool.recovered", "pool", u.String())
				c.mu.Lock()
				p.nextAttempt = time.Time{}
				if p.state == source.StateSick {
					// It passed the probes: no longer last in pick's order.
					p.state = source.StateIdle
				}
				c.mu.Unlock()
				select {
				case back <- struct{}{}:
				default:
				}
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
