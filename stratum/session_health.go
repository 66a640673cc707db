package stratum

import (
	"fmt"
	"time"

	"clminer/stratum/wire"
	"clminer/work/health"
)

// monitor times out submits and judges the pool's health. One goroutine per
// session, whatever the share rate. The ticker only paces the checks; what
// they decide reads the client's clock (Options.Now), so a test moves time
// by setting it.
func (s *session) monitor() {
	o := &s.c.opts
	tick := min(o.SubmitTimeout, o.UnansweredAfter) / 8
	tick = max(5*time.Millisecond, min(tick, time.Second))
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			now := s.c.now()
			s.expire(now)
			if reason := s.sickReason(now); reason != "" {
				s.close(&SickError{Reason: reason})
				return
			}
		}
	}
}

func (s *session) expire(now time.Time) {
	var late []*call
	submits := 0
	s.mu.Lock()
	for id, cl := range s.pending {
		if cl.cb != nil && now.After(cl.deadline) {
			late = append(late, cl)
			delete(s.pending, id)
			if cl.submit {
				s.inflight--
				submits++
			}
		}
	}
	s.health.Expired(now, submits, s.oldestPendingSubmitLocked)
	s.mu.Unlock()
	for _, cl := range late {
		cl.cb(nil, fmt.Errorf("%w: %s after %v", ErrTimeout, cl.method, cl.deadline.Sub(cl.sent).Round(time.Millisecond)))
	}
}

// sickReason applies the client's health rule (work/health) at now: "" is
// healthy, else the reason an operator reads.
func (s *session) sickReason(now time.Time) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.health.Check(now).String()
}

// oldestPendingSubmitLocked is when the oldest submit still awaiting a
// verdict was sent (zero when none waits).
func (s *session) oldestPendingSubmitLocked() time.Time {
	var t time.Time
	for _, p := range s.pending {
		if p.submit && (t.IsZero() || p.sent.Before(t)) {
			t = p.sent
		}
	}
	return t
}

// onSubmitReplyLocked tells the health rule of a submit verdict.
func (s *session) onSubmitReplyLocked(cl *call, m *wire.Message) {
	s.inflight--
	v := health.Rejected
	switch {
	case IsTrue(m.Result):
		v = health.Accepted
	case cl.entry != nil && !cl.entry.Live():
		// The pool dropped the job while the share was on the wire: a
		// routine stale, not a sign of a broken pool.
		v = health.Stale
	}
	s.health.Answered(s.c.now(), v, s.oldestPendingSubmitLocked)
}
