package health

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// v1 is the V1 client's rule at its defaults.
var v1 = Rule{TimeoutStreak: 5, Unanswered: 30 * time.Second, RejectStreak: 5}

// step is one thing that happens to a session's shares at a time offset
// from t0; oldest is the send time (offset) of the oldest share still
// waiting afterwards, -1 for none.
type step struct {
	at     time.Duration
	what   string // sent, accepted, rejected, stale, expired, idle, check
	n      int    // expired: how many
	oldest time.Duration
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func run(r Rule, steps []step) Sickness {
	tr := Tracker{Rule: r}
	var last Sickness
	for _, s := range steps {
		now := t0.Add(s.at)
		oldest := func() time.Time {
			if s.oldest < 0 {
				return time.Time{}
			}
			return t0.Add(s.oldest)
		}
		switch s.what {
		case "sent":
			tr.Sent(now)
		case "accepted":
			tr.Answered(now, Accepted, oldest)
		case "rejected":
			tr.Answered(now, Rejected, oldest)
		case "stale":
			tr.Answered(now, Stale, oldest)
		case "expired":
			tr.Expired(now, s.n, oldest)
		case "idle":
			tr.Idle()
		}
		last = tr.Check(now)
	}
	return last
}

func TestRule(t *testing.T) {
	s := time.Second
	none := time.Duration(-1)
	rejects := func(n int, every time.Duration, v string) []step {
		var out []step
		for i := range n {
			at := time.Duration(i) * every
			out = append(out, step{at: at, what: "sent", oldest: at}, step{at: at, what: v, oldest: none})
		}
		return out
	}
	for _, c := range []struct {
		name  string
		rule  Rule
		steps []step
		want  Sickness
	}{
		{"nothing sent is healthy", v1, []step{{at: time.Hour, what: "check"}}, Sickness{}},
		{"timeouts streak", v1, []step{
			{0, "sent", 0, 0}, {s, "expired", 3, 0}, {2 * s, "expired", 2, none},
		}, Sickness{Clause: TimeoutStreak, Count: 5}},
		{"a verdict ends the timeouts streak", v1, []step{
			{0, "sent", 0, 0}, {s, "expired", 4, 0}, {2 * s, "stale", 0, 0}, {3 * s, "expired", 4, none},
		}, Sickness{}},
		{"the streak clause off: timeouts alone are healthy", Rule{Unanswered: time.Hour}, []step{
			{0, "sent", 0, 0}, {s, "expired", 100, none},
		}, Sickness{}},
		{"unanswered window: no verdict for 30 s while a share waits", v1, []step{
			{0, "sent", 0, 0}, {10 * s, "sent", 0, 0}, {30 * s, "check", 0, 0},
		}, Sickness{Clause: Unanswered, For: 30 * s}},
		{"unanswered: 29 s is not yet", v1, []step{
			{0, "sent", 0, 0}, {29 * s, "check", 0, 0},
		}, Sickness{}},
		{"a verdict restarts the window from the oldest share still waiting", v1, []step{
			{0, "sent", 0, 0}, {20 * s, "sent", 0, 0}, {25 * s, "accepted", 0, 20 * s}, {49 * s, "check", 0, 0},
		}, Sickness{}},
		{"... and it runs from there", v1, []step{
			{0, "sent", 0, 0}, {20 * s, "sent", 0, 0}, {25 * s, "accepted", 0, 20 * s}, {50 * s, "check", 0, 0},
		}, Sickness{Clause: Unanswered, For: 30 * s}},
		{"an expiry ends the window when nothing else waits", v1, []step{
			{0, "sent", 0, 0}, {20 * s, "expired", 1, none}, {2 * time.Minute, "check", 0, 0},
		}, Sickness{}},
		{"an expiry after the window ran its length keeps it", v1, []step{
			{0, "sent", 0, 0}, {31 * s, "expired", 1, none},
		}, Sickness{Clause: Unanswered, For: 31 * s}},
		{"idle: the share counted as sent never went", v1, []step{
			{0, "sent", 0, 0}, {s, "idle", 0, 0}, {time.Hour, "check", 0, 0},
		}, Sickness{}},
		{"the window clause off", Rule{TimeoutStreak: 5}, []step{
			{0, "sent", 0, 0}, {time.Hour, "check", 0, 0},
		}, Sickness{}},
		{"reject streak", v1, rejects(5, s, "rejected"), Sickness{Clause: RejectStreak, Count: 5}},
		{"four rejects within the window are not", v1, rejects(4, s, "rejected"), Sickness{}},
		{"stale rejects are not counted", v1, rejects(50, s, "stale"), Sickness{}},
		{"an accept ends the reject streak", v1, append(rejects(4, s, "rejected"),
			step{10 * s, "sent", 0, 10 * s}, step{10 * s, "accepted", 0, none}, step{11 * s, "sent", 0, 11 * s}, step{11 * s, "rejected", 0, none}), Sickness{}},
		{"a stale between rejects neither counts nor ends the streak", v1, append(rejects(4, s, "rejected"),
			step{10 * s, "sent", 0, 10 * s}, step{10 * s, "stale", 0, none}, step{11 * s, "sent", 0, 11 * s}, step{11 * s, "rejected", 0, none}), Sickness{Clause: RejectStreak, Count: 5}},
		{"reject spell: two rejects over the window without an accept", v1, rejects(2, 30*s, "rejected"), Sickness{Clause: RejectSpell, Count: 2, For: 30 * s}},
		{"reject spell needs two", v1, append(rejects(1, s, "rejected"), step{time.Hour, "check", 0, 0}), Sickness{}},
		{"reject spell needs the window", Rule{RejectStreak: 5}, rejects(3, time.Hour, "rejected"), Sickness{}},
		{"reject streak clause off", Rule{TimeoutStreak: 5}, rejects(100, s, "rejected"), Sickness{}},
		{"the zero rule finds nothing", Rule{}, append(rejects(100, s, "rejected"),
			step{time.Hour, "sent", 0, time.Hour}, step{time.Hour, "expired", 100, time.Hour}, step{3 * time.Hour, "check", 0, 0}), Sickness{}},
		{"timeouts are judged first", v1, []step{
			{0, "sent", 0, 0}, {time.Minute, "expired", 5, 0},
		}, Sickness{Clause: TimeoutStreak, Count: 5}},
	} {
		got := run(c.rule, c.steps)
		assert.Equal(t, c.want, got, c.name)
		assert.Equal(t, c.want.Sick(), got.Sick(), c.name)
	}
}

func TestExpiredNothing(t *testing.T) {
	tr := Tracker{Rule: v1}
	tr.Sent(t0)
	tr.Expired(t0.Add(time.Second), 0, func() time.Time { panic("nothing expired: no walk over the shares") })
	assert.Equal(t, Sickness{Clause: Unanswered, For: 30 * time.Second}, tr.Check(t0.Add(30*time.Second)))
}

// The reasons an operator reads, unchanged from the V1 client's.
func TestSicknessString(t *testing.T) {
	assert.Equal(t, "5 submits in a row got no answer", Sickness{Clause: TimeoutStreak, Count: 5}.String())
	assert.Equal(t, "no submit answered for 30.001s", Sickness{Clause: Unanswered, For: 30*time.Second + 1234*time.Microsecond}.String())
	assert.Equal(t, "5 host-verified shares in a row rejected", Sickness{Clause: RejectStreak, Count: 5}.String())
	assert.Equal(t, "2 host-verified shares rejected over 31s without an accept", Sickness{Clause: RejectSpell, Count: 2, For: 31 * time.Second}.String())
	assert.Empty(t, Sickness{}.String())
	assert.False(t, Sickness{}.Sick())
}

// FuzzTracker: whatever an upstream does with the shares and whenever (the
// bytes pick events and clock steps, the clock may even step back), the
// rule never panics, a zero Rule finds nothing, and a finding names the
// clause and counts that its rule has.
func FuzzTracker(f *testing.F) {
	f.Add(byte(5), byte(30), byte(5), []byte{0, 1, 0, 2, 0, 3, 4, 5, 6})
	f.Add(byte(0), byte(0), byte(0), []byte{0, 0, 4, 4, 4, 4, 4})
	f.Add(byte(1), byte(1), byte(1), []byte{255, 0, 2, 128, 2, 7})
	f.Fuzz(func(t *testing.T, streak, window, rejects byte, ops []byte) {
		r := Rule{TimeoutStreak: int(streak % 8), Unanswered: time.Duration(window%64) * time.Second, RejectStreak: int(rejects % 8)}
		tr := Tracker{Rule: r}
		now := t0
		var sent []time.Time // shares waiting, oldest first
		oldest := func() time.Time {
			if len(sent) == 0 {
				return time.Time{}
			}
			return sent[0]
		}
		for _, op := range ops {
			now = now.Add(time.Duration(int8(op)) * 500 * time.Millisecond)
			switch op % 7 {
			case 0:
				sent = append(sent, now)
				tr.Sent(now)
			case 1, 2, 3:
				if len(sent) > 0 {
					sent = sent[1:]
				}
				tr.Answered(now, Verdict(op%7-1), oldest)
			case 4:
				n := min(int(op>>4), len(sent))
				sent = sent[n:]
				tr.Expired(now, n, oldest)
			case 5:
				sent = nil
				tr.Idle()
			}
			s := tr.Check(now)
			switch s.Clause {
			case Healthy:
				continue
			case TimeoutStreak:
				if r.TimeoutStreak == 0 || s.Count < r.TimeoutStreak {
					t.Fatalf("%+v under %+v", s, r)
				}
			case Unanswered:
				if r.Unanswered == 0 || s.For < r.Unanswered {
					t.Fatalf("%+v under %+v", s, r)
				}
			case RejectStreak:
				if r.RejectStreak == 0 || s.Count < r.RejectStreak {
					t.Fatalf("%+v under %+v", s, r)
				}
			case RejectSpell:
				if r.RejectStreak == 0 || r.Unanswered == 0 || s.Count < 2 || s.For < r.Unanswered {
					t.Fatalf("%+v under %+v", s, r)
				}
			default:
				t.Fatalf("unknown clause %+v", s)
			}
			if s.String() == "" {
				t.Fatalf("a finding without a reason: %+v", s)
			}
		}
	})
}
