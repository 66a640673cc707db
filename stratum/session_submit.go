package stratum

import (
	"errors"
	"math"
	"time"

	"clminer/work"
	"clminer/work/ledger"
)

// submitAsync sends a share and calls done exactly once with the verdict:
// from the reader, the monitor (timeout) or close. At most MaxInFlight
// shares wait at once; beyond that done gets ErrThrottled at once and
// nothing is sent.
func (s *session) submitAsync(sub work.Submit, entry *ledger.Entry, done func(SubmitResult, error)) {
	if sub.Worker == "" {
		sub.Worker = s.worker
	}
	params := sub.Params()
	now := s.c.now()
	s.mu.Lock()
	rolling := s.rolling
	s.offered++
	if s.inflight >= s.c.opts.MaxInFlight {
		suggest := s.suggestLocked(now)
		n := s.inflight
		s.mu.Unlock()
		s.logThrottle.Warn(s.log, "shares found faster than the pool answers; not sending more until replies come",
			"event", "share.throttled", "in_flight", n, "difficulty", s.currentDiff())
		if suggest > 0 {
			s.log.Warn("pool difficulty gives an absurd share rate; asking for a higher one", "event", "pool.suggest_difficulty", "suggest", suggest)
			s.optional(MethodSuggestDifficulty, []any{suggest})
		}
		done(SubmitResult{}, ErrThrottled)
		return
	}
	s.inflight++
	s.health.Sent(now)
	s.mu.Unlock()
	if !rolling && len(params) > 5 {
		params = params[:5]
	}
	cl := &call{method: MethodSubmit, submit: true, sent: now, deadline: now.Add(s.c.opts.SubmitTimeout), entry: entry}
	cl.cb = func(m *Message, err error) {
		if err != nil {
			done(SubmitResult{}, err)
			return
		}
		done(submitVerdict(m, s.c.now().Sub(now)), nil)
	}
	if _, _, err := s.sendCall(cl, params); err != nil {
		s.mu.Lock()
		s.inflight--
		if s.inflight == 0 {
			s.health.Idle()
		}
		s.mu.Unlock()
		if errors.Is(err, ErrSessionClosed) {
			err = ErrStaleSession
		}
		done(SubmitResult{}, err)
	}
}

// suggestLocked returns a difficulty to ask for when shares come faster
// than a pool can sensibly take them (about one share per 5 s at the rate
// seen since the last suggestion), at most once a minute; 0 otherwise.
func (s *session) suggestLocked(now time.Time) float64 {
	if now.Sub(s.lastSuggest) < time.Minute {
		return 0
	}
	el := now.Sub(s.offeredSince).Seconds()
	if el < 0.5 || s.offered < 10 {
		return 0
	}
	rate := float64(s.offered) / el
	s.lastSuggest, s.offered, s.offeredSince = now, 0, now
	d := s.diff * rate * 5
	if d < s.diff || math.IsInf(d, 0) || math.IsNaN(d) {
		return 0
	}
	// Round to a value pools take as a plain number.
	return math.Max(d, 1e-8)
}

func submitVerdict(m *Message, rtt time.Duration) SubmitResult {
	res := SubmitResult{RTT: rtt}
	if IsTrue(m.Result) {
		res.Accepted = true
		return res
	}
	if e := ParseError(m.Error, m.RejectReason); e != nil {
		res.Code, res.Reason = e.Code, e.Message
	} else {
		res.Reason = "rejected without a reason (result " + clip(string(m.Result)) + ")"
		if len(m.Result) == 0 {
			res.Reason = "rejected without a reason (no result)"
		}
	}
	return res
}
