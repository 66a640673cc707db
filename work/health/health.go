package health

import (
	"fmt"
	"time"
)

// Rule says when an upstream is sick; a zero field turns its clause off.
type Rule struct {
	// TimeoutStreak: this many shares in a row expire without a verdict.
	TimeoutStreak int
	// Unanswered: no verdict for this long while some share waits for one.
	// With RejectStreak it is also the reject spell: two or more
	// host-verified shares rejected over this long with no accept between.
	Unanswered time.Duration
	// RejectStreak: this many host-verified shares rejected in a row.
	RejectStreak int
}

// Verdict is an upstream's answer to one share, as the rule counts it.
type Verdict int

const (
	// Accepted resets the reject streak.
	Accepted Verdict = iota
	// Rejected counts toward the reject streak: the share was verified by
	// the host, so a reject says the upstream is broken.
	Rejected
	// Stale is a reject of a share whose job the upstream had already
	// dropped while it was on the wire: routine, it counts for nothing
	// (but it is an answer).
	Stale
)

// Clause names which part of the rule a sickness comes from.
type Clause int

const (
	Healthy Clause = iota
	TimeoutStreak
	Unanswered
	RejectStreak
	RejectSpell
)

// Sickness is the rule's finding; the zero Sickness is healthy.
type Sickness struct {
	Clause Clause
	// Count is the shares behind the finding: timeouts or rejects in a row.
	Count int
	// For is how long the finding's window ran (Unanswered, RejectSpell).
	For time.Duration
}

// Sick reports whether the rule found the upstream sick.
func (s Sickness) Sick() bool { return s.Clause != Healthy }

// String is the reason an operator reads (status sick_reason, the WARN).
func (s Sickness) String() string {
	switch s.Clause {
	case TimeoutStreak:
		return fmt.Sprintf("%d submits in a row got no answer", s.Count)
	case Unanswered:
		return fmt.Sprintf("no submit answered for %v", s.For.Round(time.Millisecond))
	case RejectStreak:
		return fmt.Sprintf("%d host-verified shares in a row rejected", s.Count)
	case RejectSpell:
		return fmt.Sprintf("%d host-verified shares rejected over %v without an accept", s.Count, s.For.Round(time.Millisecond))
	}
	return ""
}

// Tracker applies a Rule to one session's shares. The zero Tracker with a
// Rule set is ready; the caller's lock guards it.
type Tracker struct {
	Rule Rule

	timeouts     int       // shares expired since the last verdict
	waitingSince time.Time // oldest share waiting since the last verdict (zero: none)
	rejects      int       // host-verified rejects since the last accept
	firstReject  time.Time // when the first of them was answered
}

// Sent records a share sent at now.
func (t *Tracker) Sent(now time.Time) {
	if t.waitingSince.IsZero() {
		t.waitingSince = now
	}
}

// Idle records that no share waits any more without a verdict or an
// expiry (one counted as sent could not be written after all).
func (t *Tracker) Idle() { t.waitingSince = time.Time{} }

// Answered records a verdict at now. oldest is when the oldest share still
// waiting was sent (zero when none): the unanswered window restarts from
// it. It is called only when the rule has that clause, since finding it
// may cost the caller a walk over its shares.
func (t *Tracker) Answered(now time.Time, v Verdict, oldest func() time.Time) {
	t.timeouts = 0
	if t.Rule.Unanswered > 0 {
		t.waitingSince = oldest()
	}
	switch v {
	case Accepted:
		t.rejects = 0
	case Rejected:
		if t.rejects == 0 {
			t.firstReject = now
		}
		t.rejects++
	}
}

// Expired records n shares given up at now without a verdict; oldest is as
// for Answered.
func (t *Tracker) Expired(now time.Time, n int, oldest func() time.Time) {
	if n <= 0 {
		return
	}
	t.timeouts += n
	// Nothing that expired waits any more: the unanswered window ends here,
	// unless it already ran its length. Without this, one expired share
	// made the upstream sick Unanswered after it was sent although nothing
	// had waited since it expired, and the next share, however late, was
	// judged from the old send time.
	if t.Rule.Unanswered > 0 && now.Sub(t.waitingSince) < t.Rule.Unanswered {
		t.waitingSince = oldest()
	}
}

// Check applies the rule at now.
func (t *Tracker) Check(now time.Time) Sickness {
	r := t.Rule
	switch {
	case r.TimeoutStreak > 0 && t.timeouts >= r.TimeoutStreak:
		return Sickness{Clause: TimeoutStreak, Count: t.timeouts}
	case r.Unanswered > 0 && !t.waitingSince.IsZero() && now.Sub(t.waitingSince) >= r.Unanswered:
		return Sickness{Clause: Unanswered, For: now.Sub(t.waitingSince)}
	case r.RejectStreak > 0 && t.rejects >= r.RejectStreak:
		return Sickness{Clause: RejectStreak, Count: t.rejects}
	case r.RejectStreak > 0 && r.Unanswered > 0 && t.rejects >= 2 && now.Sub(t.firstReject) >= r.Unanswered:
		return Sickness{Clause: RejectSpell, Count: t.rejects, For: now.Sub(t.firstReject)}
	}
	return Sickness{}
}
