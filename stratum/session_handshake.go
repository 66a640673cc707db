package stratum

import (
	"context"
	"errors"
	"fmt"
	"time"

	"clminer/stratum/wire"
	"clminer/work"
)

// handshake runs configure (pipelined), subscribe (with resume), authorize
// and the optional calls.
func (s *session) handshake(ctx context.Context, resumeID string) error {
	o := &s.c.opts
	var cfgCall *call
	var cfgID uint64
	var cfgSent time.Time
	if s.pc.VersionRolling {
		var err error
		cfgCall, cfgID, err = s.send(wire.MethodConfigure, []any{
			[]any{"version-rolling"},
			map[string]any{"version-rolling.mask": fmt.Sprintf("%08x", work.BIP320Mask), "version-rolling.min-bit-count": 2},
		})
		if err != nil {
			return err
		}
		cfgSent = time.Now() // real time: it only sizes the wait below, a real timer
	}
	sub, err := s.subscribe(ctx, resumeID)
	// Subscribing again without the id is for a pool that answered and
	// refused the resume; one that did not answer at all is failing, and
	// waiting for it twice kept the miner off the next pool.
	if err != nil && resumeID != "" && !errors.Is(err, ErrSessionClosed) && !errors.Is(err, ErrTimeout) && ctx.Err() == nil {
		s.log.Info("session resume refused; subscribing afresh", "event", "pool.resume_refused", "err", err)
		sub, err = s.subscribe(ctx, "")
	}
	if err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	s.log.Debug("subscribed", "event", "pool.subscribed", "extranonce1", sub.Extranonce1, "extranonce2_size", sub.Extranonce2Size)
	if sub.Extranonce2Size > 8 {
		s.log.Warn("pool extranonce2_size is above 8; many miners cannot handle it", "event", "pool.extranonce", "size", sub.Extranonce2Size)
	}
	cl, id, err := s.send(wire.MethodAuthorize, []any{s.pc.User, s.pc.Pass})
	if err != nil {
		return fmt.Errorf("authorize: %w", err)
	}
	m, err := s.wait(ctx, cl, id, o.HandshakeTimeout)
	if err != nil {
		return fmt.Errorf("authorize: %w", err)
	}
	if !IsTrue(m.Result) {
		reason := "result is not true"
		if e := ParseError(m.Error, m.RejectReason); e != nil {
			reason = e.Error()
		}
		return fmt.Errorf("%w %q: %s", ErrAuthorize, s.pc.User, reason)
	}
	if cfgCall != nil {
		left := o.CallTimeout - time.Since(cfgSent)
		if left < 0 {
			left = 0
		}
		if _, err := s.wait(ctx, cfgCall, cfgID, left+time.Millisecond); err != nil {
			if ctx.Err() != nil || errors.Is(err, ErrSessionClosed) {
				return err
			}
			s.log.Warn("pool did not answer mining.configure; version rolling off", "event", "pool.configure_failed", "err", err)
		}
	}
	return nil
}

// ready marks the session authorized and live: the latest job goes out,
// then the optional calls. The client makes the session live first, so a
// consumer can submit on the first job it gets.
func (s *session) ready() {
	s.mu.Lock()
	s.authorized = true
	s.authorizeAt = s.c.now()
	s.offeredSince = s.authorizeAt
	if s.latest != nil {
		s.emitLocked(s.latest)
	}
	deferred := s.deferredReconnect
	s.deferredReconnect = nil
	s.mu.Unlock()
	if deferred != nil {
		s.onReconnect(*deferred)
	}
	s.authorizeWorkers(s.c.workerKeys())
	if s.pc.ExtranonceSubscribe {
		s.optional(wire.MethodExtranonceSubscribe, []any{})
	}
	if s.pc.SuggestDifficulty > 0 {
		s.optional(wire.MethodSuggestDifficulty, []any{s.pc.SuggestDifficulty})
	}
}

func (s *session) subscribe(ctx context.Context, resumeID string) (*SubscribeResult, error) {
	params := []any{s.c.opts.UserAgent}
	if resumeID != "" {
		params = append(params, resumeID)
	}
	cl, id, err := s.send(wire.MethodSubscribe, params)
	if err != nil {
		return nil, err
	}
	if _, err := s.wait(ctx, cl, id, s.c.opts.HandshakeTimeout); err != nil {
		return nil, err
	}
	if cl.subErr != nil {
		return nil, cl.subErr
	}
	return cl.sub, nil
}
