package sourcetest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"clminer/internal/testkit"
	"clminer/work/source"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// sink records what Run hands it.
type sink struct {
	mu     sync.Mutex
	jobs   []*source.Job
	idle   []string
	events []source.Event
}

func (k *sink) Job(j *source.Job)    { k.mu.Lock(); k.jobs = append(k.jobs, j); k.mu.Unlock() }
func (k *sink) NoWork(r string)      { k.mu.Lock(); k.idle = append(k.idle, r); k.mu.Unlock() }
func (k *sink) Event(e source.Event) { k.mu.Lock(); k.events = append(k.events, e); k.mu.Unlock() }
func (k *sink) counts() (jobs, idle, events int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.jobs), len(k.idle), len(k.events)
}

// run runs s into a new sink until the returned stop is called (or the
// test ends).
func run(t *testing.T, s *Source) (*sink, func()) {
	t.Helper()
	k := &sink{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, k) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				assert.ErrorIs(t, err, context.Canceled)
			case <-time.After(testkit.Timeout):
				t.Error("Run did not return")
			}
		})
	}
	t.Cleanup(stop)
	return k, stop
}

// share finds a share of j that meets its target (tests use tiny
// difficulties), or one that does not when valid is false.
func share(t *testing.T, j *source.Job, valid bool) source.Share {
	t.Helper()
	u, err := j.Entry.Next(j.Job, j.RollingMask)
	require.NoError(t, err)
	for n := uint32(0); n < 1<<24; n++ {
		if u.Check(n).MeetsShare == valid {
			return source.Share{Job: j, Unit: u, Nonce: n}
		}
	}
	t.Fatal("no share found")
	return source.Share{}
}

// send sends sh and returns a function giving its reply once it came.
func send(s *Source, sh source.Share) func() (source.Reply, int) {
	var mu sync.Mutex
	var got []source.Reply
	s.Send(sh, func(r source.Reply) { mu.Lock(); got = append(got, r); mu.Unlock() })
	return func() (source.Reply, int) {
		mu.Lock()
		defer mu.Unlock()
		if len(got) == 0 {
			return source.Reply{}, 0
		}
		return got[0], len(got)
	}
}

func TestJobsAndEventsArriveInOrder(t *testing.T) {
	s := New(2)
	a := s.MustJob(JobSpec{Difficulty: 1e-6})
	k, _ := run(t, s)
	s.Event(source.Event{Kind: source.EventFailover, From: 0, To: 1})
	b := s.MustJob(JobSpec{Pool: 1, Clean: true, Block: 1})
	s.NoWork("gone")
	testkit.Eventually(t, func() bool { j, i, e := k.counts(); return j == 2 && i == 1 && e == 1 }, "two jobs, an event and a NoWork")
	k.mu.Lock()
	defer k.mu.Unlock()
	assert.Equal(t, []*source.Job{a, b}, k.jobs)
	assert.Equal(t, 1, b.Pool)
	assert.NotEqual(t, a.PrevHash, b.PrevHash, "another block")
	assert.False(t, a.Received.IsZero(), "stamped when handed over")
	assert.False(t, k.events[0].Time.IsZero())
	_, err := s.Job(JobSpec{Pool: 2})
	assert.Error(t, err, "there is no third upstream")
}

func TestCleanJobKillsTheOthers(t *testing.T) {
	s := New(1)
	a := s.MustJob(JobSpec{})
	b := s.MustJob(JobSpec{})
	c := s.MustJob(JobSpec{Clean: true})
	assert.False(t, a.Entry.Live())
	assert.False(t, b.Entry.Live())
	assert.True(t, c.Entry.Live())
}

func TestVerdictsAsScripted(t *testing.T) {
	s := New(1)
	j := s.MustJob(JobSpec{Difficulty: 1e-6, RollingMask: 0x1fffe000})
	run(t, s)
	good := share(t, j, true)
	r, n := send(s, good)()
	require.Equal(t, 1, n, "answered at once, exactly once")
	assert.Equal(t, source.Accepted, r.Kind)
	assert.NotEmpty(t, r.Extranonce2)
	assert.NotEmpty(t, r.VersionBits, "the wire fields as a rolling client sends them")

	s.Script(Always(source.Rejected, "Stale"))
	r, _ = send(s, good)()
	assert.Equal(t, source.Rejected, r.Kind)
	assert.Equal(t, "Stale", r.Reason)
	s.Script(Always(source.Accepted, ""))
	send(s, share(t, j, false))

	sent := s.Sent()
	require.Len(t, sent, 3)
	assert.True(t, sent[0].Valid)
	assert.False(t, sent[0].Duplicate)
	assert.True(t, sent[1].Duplicate, "the same share twice")
	assert.False(t, sent[2].Valid, "a share below the target")
	for _, x := range sent {
		assert.True(t, x.Answered)
	}
	assert.Equal(t, uint64(2), s.Upstreams()[0].Accepted)
	assert.Equal(t, uint64(1), s.Upstreams()[0].Rejected)
}

func TestSharesOfAGoneSessionAreNotSent(t *testing.T) {
	s := New(1)
	j := s.MustJob(JobSpec{Difficulty: 1e-6})
	sh := share(t, j, true)
	k, _ := run(t, s)
	s.Hold()
	held := send(s, sh)
	s.Disconnect(0, errors.New("reset"))
	r, n := held()
	assert.Equal(t, 1, n)
	assert.Equal(t, source.NoReply, r.Kind, "its verdict was owed by the lost connection")
	assert.False(t, j.Entry.Live())
	r, _ = send(s, sh)()
	assert.Equal(t, source.NotSent, r.Kind, "the session that issued the job is gone")
	foreign := *j
	r, _ = send(s, source.Share{Job: &foreign, Unit: sh.Unit, Nonce: sh.Nonce})()
	assert.Equal(t, source.NotSent, r.Kind, "a job this source never issued")
	testkit.Eventually(t, func() bool { _, _, e := k.counts(); return e == 1 }, "the disconnect event")
	k.mu.Lock()
	ev := k.events[0]
	k.mu.Unlock()
	assert.Equal(t, source.EventDisconnected, ev.Kind)
	assert.Equal(t, j.Session, ev.Session)
	assert.NotEqual(t, j.Session, s.MustJob(JobSpec{}).Session, "a new session")
}

func TestHeldRepliesComeOnReleaseOrStop(t *testing.T) {
	s := New(1)
	j := s.MustJob(JobSpec{Difficulty: 1e-6})
	_, stop := run(t, s)
	sh := share(t, j, true)
	s.Hold()
	first := send(s, sh)
	_, n := first()
	assert.Zero(t, n, "held")
	assert.Equal(t, 1, s.Pending())
	assert.Equal(t, 1, s.Upstreams()[0].InFlight)
	s.Release()
	r, n := first()
	assert.Equal(t, 1, n)
	assert.Equal(t, source.Accepted, r.Kind)

	s.Hold()
	second := send(s, sh)
	stop()
	r, n = second()
	assert.Equal(t, 1, n, "Run answers what it owes before it returns")
	assert.Equal(t, source.NoReply, r.Kind)
	s.Release()
	_, n = second()
	assert.Equal(t, 1, n, "exactly once")
	r, _ = send(s, sh)()
	assert.Equal(t, source.NotSent, r.Kind, "nothing answers a share sent after Run returned")
}

func TestDelayedReplies(t *testing.T) {
	s := New(1)
	j := s.MustJob(JobSpec{Difficulty: 1e-6})
	_, stop := run(t, s)
	sh := share(t, j, true)
	s.Delay(time.Millisecond)
	r := send(s, sh)
	testkit.Eventually(t, func() bool { _, n := r(); return n == 1 }, "the delayed reply")

	s.Delay(time.Hour)
	var calls atomic.Int32
	s.Send(sh, func(source.Reply) { calls.Add(1) })
	stop()
	assert.Equal(t, int32(1), calls.Load(), "a stop answers a delayed reply at once, and only once")
}
