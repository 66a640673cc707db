package stratum

import (
	"errors"
	"math"
	"time"

	"clminer/stratum/wire"
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
			s.optional(wire.MethodSuggestDifficulty, []any{suggest})
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
	cl := &call{method: wire.MethodSubmit, submit: true, sent: now, deadline: now.Add(s.c.opts.SubmitTimeout), entry: entry}
	cl.cb = func(m *wire.Message, err error) {
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
// than a pool can sensibly take them, and starts the next window when this
// one was measured; 0 when nothing is to be asked.
func (s *session) suggestLocked(now time.Time) float64 {
	d, measured := suggestDifficulty(s.diff, s.offered, s.offeredSince, s.lastSuggest, now)
	if measured {
		s.lastSuggest, s.offered, s.offeredSince = now, 0, now
	}
	return d
}

// suggestDifficulty is the difficulty to suggest at now for a pool at diff
// that was offered shares since the window began (about one share per 5 s
// at that rate), at most once a minute after the last suggestion; 0 when
// none. measured: the window had enough shares and time to be judged, so
// the caller starts a new one whatever the answer.
func suggestDifficulty(diff float64, offered uint64, since, last, now time.Time) (d float64, measured bool) {
	if now.Sub(last) < time.Minute {
		return 0, false
	}
	el := now.Sub(since).Seconds()
	if el < 0.5 || offered < 10 {
		return 0, false
	}
	rate := float64(offered) / el
	d = diff * rate * 5
	if d < diff || math.IsInf(d, 0) || math.IsNaN(d) {
		return 0, true
	}
	// Round to a value pools take as a plain number.
	return math.Max(d, 1e-8), true
}

func submitVerdict(m *wire.Message, rtt time.Duration) SubmitResult {
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
