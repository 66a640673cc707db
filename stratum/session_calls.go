package stratum

import (
	"context"
	"fmt"
	"time"

	"clminer/stratum/wire"
	"clminer/work/ledger"
)

type call struct {
	method string
	ch     chan *wire.Message
	sub    *SubscribeResult // parsed by the reader for subscribe replies
	subErr error

	// Submits are answered through cb, by the reader, the monitor (timeout)
	// or close, so no goroutine waits per share.
	cb       func(*wire.Message, error)
	submit   bool // a mining.submit: counts in inflight and the health rules
	sent     time.Time
	deadline time.Time
	entry    *ledger.Entry
}

// send writes a request and registers its waiter.
func (s *session) send(method string, params []any) (*call, uint64, error) {
	return s.sendCall(&call{method: method, ch: make(chan *wire.Message, 1)}, params)
}

func (s *session) sendCall(cl *call, params []any) (*call, uint64, error) {
	s.mu.Lock()
	select {
	case <-s.done:
		s.mu.Unlock()
		return nil, 0, ErrSessionClosed
	default:
	}
	s.nextID++
	id := s.nextID
	s.pending[id] = cl
	s.mu.Unlock()
	b, err := wire.EncodeRequest(id, cl.method, params)
	if err == nil {
		d := s.c.opts.CallTimeout + 5*time.Second
		if cl.submit {
			d = submitWriteTimeout
		}
		err = s.writeWithin(b, d)
	}
	if err != nil {
		s.mu.Lock()
		_, still := s.pending[id]
		delete(s.pending, id)
		s.mu.Unlock()
		if !still && cl.cb != nil {
			// close() (run by the failed write, or racing it) has already
			// answered the callback: reporting the error too would answer
			// it twice.
			return cl, id, nil
		}
		return nil, 0, err
	}
	return cl, id, nil
}

func (s *session) forget(id uint64) {
	s.mu.Lock()
	delete(s.pending, id)
	s.mu.Unlock()
}

// wait waits for the reply to a call, the timeout, ctx or the end of the
// session.
func (s *session) wait(ctx context.Context, cl *call, id uint64, timeout time.Duration) (*wire.Message, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case m := <-cl.ch:
		return m, nil
	case <-t.C:
		s.forget(id)
		return nil, fmt.Errorf("%w: %s after %v", ErrTimeout, cl.method, timeout)
	case <-ctx.Done():
		s.forget(id)
		return nil, ctx.Err()
	case <-s.done:
		if err := s.closeErr(); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrSessionClosed, err)
		}
		return nil, ErrSessionClosed
	}
}

func (s *session) handleResponse(m *wire.Message) {
	id, ok := m.NumID()
	s.mu.Lock()
	cl := s.pending[id]
	if ok && cl != nil {
		delete(s.pending, id)
		if cl.submit {
			s.onSubmitReplyLocked(cl, m)
		}
	}
	s.mu.Unlock()
	if !ok || cl == nil {
		s.log.Debug("reply to an unknown or expired call", "event", "pool.unknown_reply", "id", clip(string(m.ID)))
		return
	}
	if cl.cb != nil {
		cl.cb(m, nil)
		return
	}
	switch cl.method {
	case wire.MethodAuthorize:
		if IsTrue(m.Result) {
			s.mu.Lock()
			s.authOK = true
			s.mu.Unlock()
		}
	case wire.MethodSubscribe:
		if e := ParseError(m.Error, m.RejectReason); e != nil && !IsTrue(m.Result) {
			cl.subErr = e
			break
		}
		r, err := ParseSubscribeResult(m.Result)
		if err != nil {
			cl.subErr = err
			break
		}
		cl.sub = &r
		s.applySubscribe(r)
	case wire.MethodConfigure:
		if rolling, mask, err := ParseConfigureResult(m.Result); err != nil {
			s.log.Warn("bad mining.configure reply; version rolling off", "event", "pool.configure_failed", "err", err)
		} else if rolling {
			s.setMask(mask, true)
		}
	}
	cl.ch <- m
}

// optional sends a call that pools may ignore; its reply (or silence) is
// only logged. Nobody waits on it: the reader, the monitor or close answers
// its callback, so it may be sent from any goroutine at any time.
func (s *session) optional(method string, params []any) {
	now := s.c.now()
	cl := &call{method: method, sent: now, deadline: now.Add(s.c.opts.CallTimeout)}
	cl.cb = func(m *wire.Message, err error) {
		switch {
		case err != nil:
			s.log.Debug("optional call got no reply", "event", "pool.optional_call", "method", method, "err", err)
		case !IsTrue(m.Result):
			s.log.Debug("pool declined optional call", "event", "pool.optional_call", "method", method, "err", ParseError(m.Error, m.RejectReason))
		}
	}
	_, _, _ = s.sendCall(cl, params)
}
