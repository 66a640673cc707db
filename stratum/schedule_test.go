package stratum

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"clminer/work/retry"
	"clminer/work/source"
)

// t0 is a fabricated instant: the pure halves of the client decide from
// the times they are given, never from the wall clock.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestOptionsDefaults(t *testing.T) {
	var zero Options
	zero.defaults()
	for name, c := range map[string]struct{ got, want any }{
		"ReadTimeout":      {zero.ReadTimeout, 90 * time.Second},
		"DialTimeout":      {zero.DialTimeout, 10 * time.Second},
		"CallTimeout":      {zero.CallTimeout, 5 * time.Second},
		"HandshakeTimeout": {zero.HandshakeTimeout, 30 * time.Second},
		"SubmitTimeout":    {zero.SubmitTimeout, 60 * time.Second},
		"HoldDown":         {zero.HoldDown, 60 * time.Second},
		"SickHoldDown":     {zero.SickHoldDown, 60 * time.Second},
		"UnansweredAfter":  {zero.UnansweredAfter, 30 * time.Second},
		"MaxLineSize":      {zero.MaxLineSize, DefaultMaxLineSize},
		"MaxInFlight":      {zero.MaxInFlight, 64},
		"UnansweredStreak": {zero.UnansweredStreak, 5},
		"RejectStreak":     {zero.RejectStreak, 5},
		"UserAgent":        {zero.UserAgent, defaultUserAgent},
		"WorkerName":       {zero.WorkerName("u", "k"), "u.k"},
	} {
		assert.Equal(t, c.want, c.got, name)
	}
	for _, f := range []any{zero.Logger, zero.Dialer, zero.Now} {
		assert.NotNil(t, f)
	}
	assert.WithinDuration(t, time.Now(), zero.Now(), time.Minute, "the default clock is the real one")

	// Set fields are kept; SickHoldDown follows a set HoldDown.
	clock := func() time.Time { return t0 }
	set := Options{HoldDown: 2 * time.Second, ReadTimeout: time.Second, MaxInFlight: 3, UserAgent: "x/1", Now: clock,
		WorkerName: func(u, k string) string { return k + "@" + u }}
	set.defaults()
	assert.Equal(t, 2*time.Second, set.SickHoldDown)
	assert.Equal(t, time.Second, set.ReadTimeout)
	assert.Equal(t, 3, set.MaxInFlight)
	assert.Equal(t, "x/1", set.UserAgent)
	assert.Equal(t, t0, set.Now())
	assert.Equal(t, "k@u", set.WorkerName("u", "k"))
	set = Options{HoldDown: 2 * time.Second, SickHoldDown: time.Hour}
	set.defaults()
	assert.Equal(t, time.Hour, set.SickHoldDown)
}

// The failover choice: the first pool in order whose next attempt is due
// and that is not sick; else the first due sick one; else the shortest wait.
func TestNextPool(t *testing.T) {
	type p struct {
		in   time.Duration // next attempt, from t0
		sick bool
	}
	for _, c := range []struct {
		name  string
		pools []p
		idx   int
		wait  time.Duration
	}{
		{"all due: the first", []p{{0, false}, {0, false}}, 0, 0},
		{"never tried (zero time) is due", []p{{-time.Duration(math.MaxInt64), false}}, 0, 0},
		{"first backing off: the second", []p{{time.Second, false}, {0, false}}, 1, 0},
		{"due exactly now", []p{{time.Second, false}, {0, false}, {0, false}}, 1, 0},
		{"healthy before sick, whatever the order", []p{{-time.Second, true}, {-time.Second, false}}, 1, 0},
		{"sick only when no healthy one is due", []p{{-time.Second, true}, {time.Second, false}}, 0, 0},
		{"the first due sick one", []p{{time.Minute, false}, {0, true}, {0, true}}, 1, 0},
		{"none due: the shortest wait, pool 0", []p{{3 * time.Second, false}, {time.Second, true}, {2 * time.Second, false}}, 0, time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			var pools []*poolRec
			for _, x := range c.pools {
				r := &poolRec{nextAttempt: t0.Add(x.in), state: source.StateIdle}
				if x.in == -time.Duration(math.MaxInt64) {
					r.nextAttempt = time.Time{}
				}
				if x.sick {
					r.state = source.StateSick
				}
				pools = append(pools, r)
			}
			idx, wait := nextPool(pools, t0)
			assert.Equal(t, c.idx, idx)
			assert.Equal(t, c.wait, wait)
		})
	}
}

// scheduleClient is a client whose backoff is 1 s doubling to 8 s with
// ±20%, sick hold-down 1 min, hold-down 1 min, and a seeded random source.
func scheduleClient(t *testing.T) *Client {
	t.Helper()
	c, err := NewClient([]PoolConfig{{URL: "stratum+tcp://pool.example.com:3333", User: "w"}},
		Options{Retry: retry.Backoff{Initial: time.Second, Max: 8 * time.Second}, HoldDown: time.Minute, Now: func() time.Time { return t0 }})
	require.NoError(t, err)
	c.rnd = rand.New(rand.NewPCG(1, 2))
	return c
}

// How a live session ended decides when its pool is tried next.
func TestEndedSchedule(t *testing.T) {
	silent := fmt.Errorf("%w: no line for 90s", ErrSilent)
	type want struct {
		state     source.State
		fails     int
		sickCount int
		// the next attempt lies in [lo, hi] after t0
		lo, hi   time.Duration
		redirect string
		sick     bool
	}
	for _, c := range []struct {
		name        string
		fails, sick int // the pool's counts before
		end         sessionEnd
		want        want
	}{
		{"stopping: nothing scheduled", 3, 1, sessionEnd{err: errors.New("x"), stopping: true},
			want{state: source.StateIdle, fails: 3, sickCount: 1}},
		{"returning to a higher pool: fails reset", 3, 0, sessionEnd{err: errReturnToPrimary},
			want{state: source.StateIdle}},
		{"worked a while, dropped: one immediate retry", 3, 2, sessionEnd{err: errors.New("EOF"), worked: time.Minute},
			want{state: source.StateDown}},
		{"dropped before HoldDown: backoff", 1, 0, sessionEnd{err: errors.New("EOF"), worked: time.Second},
			want{state: source.StateDown, fails: 2, lo: 1600 * time.Millisecond, hi: 2400 * time.Millisecond}},
		{"silent after working: backoff from the first step, not at once", 4, 1, sessionEnd{err: silent, worked: time.Hour},
			want{state: source.StateDown, fails: 1, lo: 800 * time.Millisecond, hi: 1200 * time.Millisecond}},
		{"silent early: backoff grows", 2, 0, sessionEnd{err: silent},
			want{state: source.StateDown, fails: 3, lo: 3200 * time.Millisecond, hi: 4800 * time.Millisecond}},
		{"sick in a row: hold-down doubles", 0, 2, sessionEnd{err: &SickError{Reason: "r"}, worked: time.Second},
			want{state: source.StateSick, fails: 1, sickCount: 3, lo: 4 * time.Minute, hi: 4 * time.Minute, sick: true}},
		{"sick in a row: capped at 16x", 0, 9, sessionEnd{err: &SickError{Reason: "r"}},
			want{state: source.StateSick, fails: 1, sickCount: 10, lo: 16 * time.Minute, hi: 16 * time.Minute, sick: true}},
		{"sick after working: not in a row", 0, 3, sessionEnd{err: &SickError{Reason: "r"}, worked: 2 * time.Minute},
			want{state: source.StateSick, fails: 1, sickCount: 1, lo: time.Minute, hi: time.Minute, sick: true}},
		{"reconnect after working: its wait, capped at Retry.Max", 2, 0,
			sessionEnd{err: ErrReconnectRequested, worked: time.Hour, reconnect: &Reconnect{Host: "b.example.com", Port: "4444", Wait: 600}},
			want{state: source.StateIdle, lo: 8 * time.Second, hi: 8 * time.Second, redirect: "b.example.com:4444"}},
		{"reconnect at once to the same address: no redirect", 0, 0,
			sessionEnd{err: ErrReconnectRequested, worked: time.Hour, reconnect: &Reconnect{Host: "pool.example.com", Port: "3333"}},
			want{state: source.StateIdle}},
		{"reconnect before HoldDown: no faster than the backoff", 2, 0,
			sessionEnd{err: ErrReconnectRequested, worked: time.Second, reconnect: &Reconnect{Host: "b.example.com", Port: "4444"}},
			want{state: source.StateIdle, fails: 3, lo: 3200 * time.Millisecond, hi: 4800 * time.Millisecond, redirect: "b.example.com:4444"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cl := scheduleClient(t)
			p := cl.pools[0]
			p.fails, p.sickCount, p.state = c.fails, c.sick, source.StateActive
			p.nextAttempt = t0.Add(-time.Hour)
			sick := cl.endedLocked(p, c.end, t0)
			assert.Equal(t, c.want.sick, sick != nil)
			assert.Equal(t, c.want.state, p.state)
			assert.Equal(t, c.want.fails, p.fails)
			assert.Equal(t, c.want.sickCount, p.sickCount)
			assert.Equal(t, c.want.redirect, p.redirect)
			if c.end.stopping || errors.Is(c.end.err, errReturnToPrimary) {
				assert.Equal(t, t0.Add(-time.Hour), p.nextAttempt, "not rescheduled")
				return
			}
			in := p.nextAttempt.Sub(t0)
			assert.True(t, in >= c.want.lo && in <= c.want.hi, "next attempt in %v, want [%v, %v]", in, c.want.lo, c.want.hi)
		})
	}
}

func TestSuggestDifficulty(t *testing.T) {
	for _, c := range []struct {
		name        string
		diff        float64
		offered     uint64
		since, last time.Duration // before now
		want        float64
		measured    bool
	}{
		{"a minute not passed since the last", 1, 1000, 10 * time.Second, 59 * time.Second, 0, false},
		{"too few shares", 1, 9, 10 * time.Second, time.Hour, 0, false},
		{"too short a window", 1, 1000, 400 * time.Millisecond, time.Hour, 0, false},
		{"10 shares in 1 s: one per 5 s is 50x", 1, 10, time.Second, time.Hour, 50, true},
		{"never suggested before (zero last)", 2, 100, 10 * time.Second, -1, 100, true},
		{"slower than one per 5 s: nothing, window measured", 1, 10, time.Minute, time.Hour, 0, true},
		{"tiny difficulty floors at 1e-8", 1e-12, 10, time.Second, time.Hour, 1e-8, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			last := t0.Add(-c.last)
			if c.last < 0 {
				last = time.Time{}
			}
			d, measured := suggestDifficulty(c.diff, c.offered, t0.Add(-c.since), last, t0)
			assert.InDelta(t, c.want, d, c.want*1e-9)
			assert.Equal(t, c.measured, measured)
		})
	}
}

// Every answer of submitAsync ends as exactly one outcome.
func TestOutcome(t *testing.T) {
	base := source.Reply{Extranonce2: "00000001", NTime: "5f5e1000"}
	for _, c := range []struct {
		name   string
		res    SubmitResult
		err    error
		kind   source.ReplyKind
		reason string
		code   int
	}{
		{"accepted", SubmitResult{Accepted: true, RTT: time.Millisecond}, nil, source.Accepted, "", 0},
		{"rejected with a reason", SubmitResult{Code: 23, Reason: "low difficulty"}, nil, source.Rejected, "low difficulty", 23},
		{"rejected without one", SubmitResult{}, nil, source.Rejected, "rejected without a reason", 0},
		{"stale session: not sent", SubmitResult{}, ErrStaleSession, source.NotSent, "pool session ended before submit", 0},
		{"throttled", SubmitResult{}, ErrThrottled, source.Throttled, "too many shares awaiting a verdict", 0},
		{"timed out: no reply", SubmitResult{}, fmt.Errorf("%w: mining.submit after 60s", ErrTimeout), source.NoReply, "stratum: pool did not answer in time: mining.submit after 60s", 0},
		{"closed: no reply", SubmitResult{}, ErrSessionClosed, source.NoReply, ErrSessionClosed.Error(), 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := outcome(base, c.res, c.err)
			assert.Equal(t, c.kind, r.Kind)
			assert.Equal(t, c.reason, r.Reason)
			assert.Equal(t, c.code, r.Code)
			assert.Equal(t, c.res.RTT, r.RTT)
			assert.Equal(t, base.Extranonce2, r.Extranonce2)
			assert.Equal(t, base.NTime, r.NTime)
		})
	}
}
