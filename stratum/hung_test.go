package stratum

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"clminer/stratum/pooltest"
	"clminer/stratum/wire"
	"clminer/work/source"
)

// hungOptions scale the real timeouts down (ReadTimeout : HandshakeTimeout
// as 90 s : 30 s). HoldDown is tiny so that every session counts as one
// that worked (the case that used to retry the same pool at once), and
// large probe intervals are not needed: a stalled pool fails every probe.
func hungOptions(r *recorder) Options {
	o := testOptions(r)
	o.ReadTimeout = 600 * time.Millisecond
	o.HandshakeTimeout = 200 * time.Millisecond
	o.HoldDown = time.Nanosecond
	o.Retry.Initial = 20 * time.Millisecond
	return o
}

// connectsBefore counts pool's EventConnecting after the first event
// matching from and before the first EventConnecting of pool other.
func connectsBefore(events []source.Event, from func(source.Event) bool, pool, other int) (n int, reached bool) {
	started := false
	for _, e := range events {
		if !started {
			started = from(e)
			continue
		}
		if e.Kind == source.EventConnecting && e.Pool == other {
			return n, true
		}
		if e.Kind == source.EventConnecting && e.Pool == pool {
			n++
		}
	}
	return n, false
}

// A pool that hangs (its connection stays open, nothing more comes) behind
// a listener that still accepts and never answers: the silence ends the
// session, and the next connection goes to the backup, not back to the hung
// pool. It used to reconnect to the same pool (a session that had worked
// got one immediate retry) and wait out the subscribe twice (with the
// session id, then without), about 120 + 30 + 30 s against the 150 s a rig
// may lose.
func TestHungPoolLeftForTheBackup(t *testing.T) {
	primary := pooltest.Start(t, pooltest.Config{Difficulty: easy})
	backup := pooltest.Start(t, pooltest.Config{Difficulty: easy})
	r := newRecorder()
	runClient(t, []PoolConfig{pool(primary), pool(backup)}, hungOptions(r), r)
	require.Equal(t, 0, r.nextJob(t, nil).Pool)
	primary.Stall(true)
	j := r.nextJob(t, func(j *source.Job) bool { return j.Pool == 1 })
	assert.True(t, j.Clean)
	silent := func(e source.Event) bool {
		return e.Kind == source.EventDisconnected && e.Pool == 0 && errors.Is(e.Err, ErrSilent)
	}
	n, reached := connectsBefore(r.eventList(), silent, 0, 1)
	require.True(t, reached, "the silence ended the session, then the backup was tried: %+v", r.eventList())
	assert.Zero(t, n, "connections to the hung pool between its silence and the backup")
}

// A listener that accepts and never answers subscribe (the pool was never
// reached) costs one HandshakeTimeout, then the backup is used.
func TestUnansweredSubscribeFailsOver(t *testing.T) {
	primary := pooltest.Start(t, pooltest.Config{Difficulty: easy})
	primary.Stall(true)
	backup := pooltest.Start(t, pooltest.Config{Difficulty: easy})
	r := newRecorder()
	runClient(t, []PoolConfig{pool(primary), pool(backup)}, hungOptions(r), r)
	r.nextJob(t, func(j *source.Job) bool { return j.Pool == 1 })
	first := func(e source.Event) bool { return e.Kind == source.EventConnecting && e.Pool == 0 }
	n, reached := connectsBefore(r.eventList(), first, 0, 1)
	require.True(t, reached)
	assert.Zero(t, n, "a second connection to the pool that never answered")
	assert.Equal(t, 1, countMethod(primary.Requests(), wire.MethodSubscribe), "one unanswered subscribe")
}

// A session resumed with its id whose subscribe goes unanswered is not
// subscribed again without the id: that retry is for a pool that answered
// and refused the resume, not for one that does not answer.
func TestUnansweredResumeNotRetried(t *testing.T) {
	primary := pooltest.Start(t, pooltest.Config{Difficulty: easy})
	backup := pooltest.Start(t, pooltest.Config{Difficulty: easy})
	r := newRecorder()
	opts := hungOptions(r)
	opts.ReadTimeout = 10 * time.Second // the connection is dropped, not silent
	runClient(t, []PoolConfig{pool(primary), pool(backup)}, opts, r)
	require.Equal(t, 0, r.nextJob(t, nil).Pool)
	primary.Stall(true)
	primary.DropAll() // a session that worked ends: one retry of the same pool, with its id
	r.nextJob(t, func(j *source.Job) bool { return j.Pool == 1 })
	assert.Equal(t, 2, countMethod(primary.Requests(), wire.MethodSubscribe), "the first session's, then one with the id")
}

// A slow but live pool (a new job every 50 s against a 90 s silence rule,
// nothing else) is never left.
func TestSlowPoolIsKept(t *testing.T) {
	primary := pooltest.Start(t, pooltest.Config{Difficulty: easy})
	backup := pooltest.Start(t, pooltest.Config{Difficulty: easy})
	r := newRecorder()
	opts := hungOptions(r)
	opts.ReadTimeout = 900 * time.Millisecond
	runClient(t, []PoolConfig{pool(primary), pool(backup)}, opts, r)
	require.Equal(t, 0, r.nextJob(t, nil).Pool)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(opts.ReadTimeout * 50 / 90)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				primary.PushJob(false)
			}
		}
	}()
	for range 8 {
		require.Equal(t, 0, r.nextJob(t, nil).Pool)
	}
	close(stop)
	<-done
	assert.Empty(t, r.eventsOf(source.EventDisconnected, 0), "the slow pool was left")
	assert.Empty(t, r.eventsOf(source.EventConnecting, 1), "the backup was tried")
}

// The defaults keep the promise: a pool's last line to the next pool is at
// most ReadTimeout of silence, or (a pool that closed and whose listener
// then hangs) a dial and one unanswered subscribe after the close: within
// 150 s either way; and a pool sending a job every 50 s is not silent.
func TestSilenceDefaultsLeaveWithin150s(t *testing.T) {
	var o Options
	o.defaults()
	assert.LessOrEqual(t, o.ReadTimeout+o.DialTimeout+o.HandshakeTimeout, 150*time.Second)
	assert.GreaterOrEqual(t, o.ReadTimeout, 75*time.Second, "1.5 times a slow pool's 50 s between jobs")
}
