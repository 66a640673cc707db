package main

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/charmbracelet/log"

	"clminer/work/observe"
)

// listen binds addr for the flag that names it, so that a busy port fails
// at start-up, before any device is opened.
func listen(flag, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", flag, addr, err)
	}
	return ln, nil
}

// crew runs the pieces that serve beside a command's main one (the miner,
// or the farm proxy): the HTTP and cgminer APIs, the status ticker, the
// thermal monitor, the webhook. They run until stop, which the command
// calls once its main piece has returned, so the API still answers while
// the miner drains; a piece that fails is logged, and the main one goes on
// (a scrape endpoint that dies is no reason to stop mining).
type crew struct {
	log    *log.Logger
	ctx    context.Context
	cancel func()
	wg     sync.WaitGroup
}

func newCrew(logger *log.Logger) *crew {
	ctx, cancel := context.WithCancel(context.Background())
	return &crew{log: logger, ctx: ctx, cancel: cancel}
}

// run starts fn; its error, other than at stop, is logged as msg with
// event.
func (c *crew) run(msg, event string, fn func(ctx context.Context) error) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		if err := fn(c.ctx); err != nil {
			c.log.Error(msg, "event", event, "err", err)
		}
	}()
}

// every calls fn each period until stop; a period of 0 is none.
func (c *crew) every(period time.Duration, fn func()) {
	if period <= 0 {
		return
	}
	c.run("", "", func(ctx context.Context) error {
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
				fn()
			}
		}
	})
}

// serveAPI runs the HTTP API and says where it listens and what it serves.
func (c *crew) serveAPI(srv *observe.Server, paths string) {
	c.run("API server stopped", "api.error", srv.Run)
	c.log.Info("API listening", "event", "api.listening", "addr", srv.Addr(), "paths", paths)
}

// stop ends every piece and waits for them.
func (c *crew) stop() {
	c.cancel()
	c.wg.Wait()
}
