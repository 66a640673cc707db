package channel

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"clminer/internal/testkit"
	"clminer/stratum/v2/codec"
	"clminer/stratum/v2/noise"
	"clminer/stratum/v2/v2test"
	"clminer/work"
	"clminer/work/health"
	"clminer/work/ledger"
	"clminer/work/retry"
	"clminer/work/source"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const wait = 10 * time.Second

type sink struct {
	jobs   chan *source.Job
	events chan source.Event
	mu     sync.Mutex
	nowork []string
}

func newSink() *sink {
	return &sink{jobs: make(chan *source.Job, 64), events: make(chan source.Event, 64)}
}

func (s *sink) Job(j *source.Job) { s.jobs <- j }
func (s *sink) NoWork(r string) {
	s.mu.Lock()
	s.nowork = append(s.nowork, r)
	s.mu.Unlock()
}
func (s *sink) Event(e source.Event) {
	select {
	case s.events <- e:
	default:
	}
}

func (s *sink) job(t *testing.T) *source.Job {
	t.Helper()
	select {
	case j := <-s.jobs:
		return j
	case <-time.After(wait):
		t.Fatal("no job")
		return nil
	}
}

// waitEvent waits for an event of kind and returns it.
func (s *sink) waitEvent(t *testing.T, kind source.EventKind) source.Event {
	t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case e := <-s.events:
			if e.Kind == kind {
				return e
			}
		case <-deadline:
			t.Fatalf("no %v event", kind)
		}
	}
}

func run(t *testing.T, cfg Config, opt Options) (*Source, *sink) {
	t.Helper()
	if opt.Retry.Max == 0 {
		opt.Retry.Max = 50 * time.Millisecond
	}
	s, err := New(cfg, opt)
	require.NoError(t, err)
	sk := newSink()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, sk) }()
	t.Cleanup(func() {
		cancel()
		require.ErrorIs(t, <-done, context.Canceled)
	})
	return s, sk
}

type cursor struct {
	u    *work.Unit
	next uint32
}

var (
	cursorsMu sync.Mutex
	cursors   = map[*ledger.Entry]*cursor{}
)

// share finds the next nonce meeting the job's share target, on the
// entry's unit (a standard job without rolling has only one).
func share(t *testing.T, j *source.Job) source.Share {
	t.Helper()
	cursorsMu.Lock()
	defer cursorsMu.Unlock()
	c := cursors[j.Entry]
	if c == nil {
		u, err := j.Entry.Next(j.Job, j.RollingMask)
		require.NoError(t, err)
		c = &cursor{u: u}
		cursors[j.Entry] = c
	}
	for ; c.next < 1<<24; c.next++ {
		if ch := c.u.Check(c.next); ch.MeetsShare {
			c.next++
			return source.Share{Job: j, Unit: c.u, Nonce: c.next - 1}
		}
	}
	t.Fatal("no share found")
	return source.Share{}
}

func send(s *Source, sh source.Share) chan source.Reply {
	ch := make(chan source.Reply, 1)
	s.Send(sh, func(r source.Reply) { ch <- r })
	return ch
}

func reply(t *testing.T, ch chan source.Reply) source.Reply {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(wait):
		t.Fatal("no reply")
		return source.Reply{}
	}
}

func TestMineAccepted(t *testing.T) {
	p := v2test.Start(t, v2test.Config{})
	s, sk := run(t, Config{URL: p.URL(), User: "acct.rig1", VersionRolling: true}, Options{})
	c := p.Next(wait)
	require.Equal(t, "acct.rig1", c.Open.UserIdentity)
	require.NotZero(t, c.Setup.Flags&codec.FlagRequiresVersionRolling)
	require.NotZero(t, c.Setup.Flags&codec.FlagRequiresStandardJobs)
	j := sk.job(t)
	require.True(t, j.Clean)
	require.NotZero(t, j.RollingMask)
	for range 3 {
		r := reply(t, send(s, share(t, j)))
		require.Equal(t, source.Accepted, r.Kind, r.Reason)
	}
	// An active job on the same prevhash, then a new block.
	require.NoError(t, c.NewJob())
	j2 := sk.job(t)
	require.False(t, j2.Clean)
	require.Equal(t, source.Accepted, reply(t, send(s, share(t, j2))).Kind)
	require.True(t, j.Entry.Live(), "an active job does not end the others")
	require.NoError(t, c.NewBlock())
	j3 := sk.job(t)
	require.True(t, j3.Clean)
	require.False(t, j.Entry.Live())
	require.False(t, j2.Entry.Live())
	st := s.Upstreams()[0]
	require.Equal(t, "stratum2", st.Protocol)
	require.Equal(t, "standard 7", st.Channel)
	require.Equal(t, "aabb", st.Extranonce1)
	require.EqualValues(t, 4, st.Accepted)
	for _, sh := range p.Shares() {
		require.True(t, sh.Accepted, sh.Reason)
	}
	seqs := map[uint32]bool{}
	for _, sh := range p.Shares() {
		require.False(t, seqs[sh.Msg.SequenceNumber], "sequence numbers are unique")
		seqs[sh.Msg.SequenceNumber] = true
	}
}

// Batched acknowledgements: one Success covers every share up to its
// last sequence number; an error names one share.
func TestBatchedVerdicts(t *testing.T) {
	p := v2test.Start(t, v2test.Config{BatchSize: 3})
	s, sk := run(t, Config{URL: p.URL(), User: "u"}, Options{})
	c := p.Next(wait)
	j := sk.job(t)
	r1, r2 := send(s, share(t, j)), send(s, share(t, j))
	// A share on a job the pool never sent: rejected by sequence number.
	bad := share(t, j)
	bad.Nonce ^= 0x80000000 // almost surely misses the target now
	for bad.Unit.Check(bad.Nonce).MeetsShare {
		bad.Nonce++
	}
	rb := send(s, bad)
	require.Equal(t, source.Rejected, reply(t, rb).Kind)
	select {
	case <-r1:
		t.Fatal("acknowledged before the batch was full")
	default:
	}
	r3 := send(s, share(t, j))
	for _, ch := range []chan source.Reply{r1, r2, r3} {
		require.Equal(t, source.Accepted, reply(t, ch).Kind)
	}
	_ = c
	st := s.Upstreams()[0]
	require.EqualValues(t, 3, st.Accepted)
	require.EqualValues(t, 1, st.Rejected)
	require.Zero(t, st.InFlight)
}

func TestSetTargetRejudgesLiveJobs(t *testing.T) {
	p := v2test.Start(t, v2test.Config{})
	_, sk := run(t, Config{URL: p.URL(), User: "u"}, Options{})
	c := p.Next(wait)
	j := sk.job(t)
	d0 := j.Entry.Difficulty()
	hard := v2test.EasyTarget()
	hard[31] = 0x00
	hard[30] = 0x0f
	require.NoError(t, c.SetTarget(hard))
	j2 := sk.job(t)
	require.Equal(t, j.Job.ID, j2.Job.ID, "the current job is re-issued")
	require.Same(t, j.Entry, j2.Entry, "and continues where it stopped")
	require.InDelta(t, 256, j2.Job.Difficulty/d0, 1, "the target is 256 times harder")
	require.InDelta(t, j2.Job.Difficulty, j.Entry.Difficulty(), 1e-9, "and the live entry is judged at it")
	var h [32]byte
	h[31] = 0x01 // meets the easy target, not the hard one
	ok, _ := j.Entry.Judge(h)
	require.False(t, ok)
}

func TestConnectionLossAnswersEveryShare(t *testing.T) {
	p := v2test.Start(t, v2test.Config{BatchSize: 1000})
	s, sk := run(t, Config{URL: p.URL(), User: "u"}, Options{})
	c := p.Next(wait)
	j := sk.job(t)
	r := send(s, share(t, j))
	old := share(t, j)
	// The pool's record is the event; no verdict is sent.
	testkit.Eventually(t, func() bool { return len(p.Shares()) > 0 }, "the pool's record of the share")
	c.Drop()
	require.Equal(t, source.NoReply, reply(t, r).Kind)
	sk.waitEvent(t, source.EventDisconnected)
	// Shares of the old session are never sent to the new one.
	p.Next(wait)
	nj := sk.job(t)
	require.Equal(t, source.NotSent, reply(t, send(s, old)).Kind)
	require.True(t, nj.Entry.Live())
}

func TestHandshakeRefusals(t *testing.T) {
	p := v2test.Start(t, v2test.Config{})
	other, err := btcec.NewPrivateKey()
	require.NoError(t, err)
	wrong := "stratum2+tcp://" + p.Addr() + "/" + noise.AuthorityOf(other).String()
	_, sk := run(t, Config{URL: wrong, User: "u"}, Options{})
	e := sk.waitEvent(t, source.EventAuthFailed)
	require.ErrorIs(t, e.Err, noise.ErrAuthority)

	expired := v2test.Start(t, v2test.Config{CertFrom: time.Now().Add(-2 * time.Hour), CertUntil: time.Now().Add(-time.Hour)})
	_, sk = run(t, Config{URL: expired.URL(), User: "u"}, Options{})
	e = sk.waitEvent(t, source.EventAuthFailed)
	require.ErrorIs(t, e.Err, noise.ErrCertExpired)

	refuse := v2test.Start(t, v2test.Config{RefuseChannel: "unknown-user"})
	_, sk = run(t, Config{URL: refuse.URL(), User: "u"}, Options{})
	e = sk.waitEvent(t, source.EventAuthFailed)
	require.ErrorIs(t, e.Err, ErrChannelRefused)
	require.ErrorContains(t, e.Err, "unknown-user")

}

// Reconnect moves to another server of the same pool; a server of another
// authority is refused there.
func TestReconnect(t *testing.T) {
	auth, err := btcec.NewPrivateKey()
	require.NoError(t, err)
	a := v2test.StartWith(t, v2test.Config{}, auth)
	b := v2test.StartWith(t, v2test.Config{}, auth)
	evil := v2test.Start(t, v2test.Config{})
	_, sk := run(t, Config{URL: a.URL(), User: "u"}, Options{})
	c := a.Next(wait)
	sk.job(t)
	host, port := splitAddr(t, b.Addr())
	require.NoError(t, c.Send(&codec.Reconnect{NewHost: host, NewPort: port}))
	sk.waitEvent(t, source.EventReconnectRequested)
	cb := b.Next(wait)
	require.True(t, sk.job(t).Clean)
	// Now b redirects to a server whose certificate another authority
	// signed: refused, and the next attempt goes back to the pinned URL.
	host, port = splitAddr(t, evil.Addr())
	require.NoError(t, cb.Send(&codec.Reconnect{NewHost: host, NewPort: port}))
	e := sk.waitEvent(t, source.EventAuthFailed)
	require.ErrorIs(t, e.Err, noise.ErrAuthority)
	a.Next(wait)
	require.True(t, sk.job(t).Clean)
}

func TestCloseChannel(t *testing.T) {
	p := v2test.Start(t, v2test.Config{})
	_, sk := run(t, Config{URL: p.URL(), User: "u"}, Options{})
	c := p.Next(wait)
	j := sk.job(t)
	require.NoError(t, c.Send(&codec.CloseChannel{ChannelID: 7, ReasonCode: "maintenance"}))
	e := sk.waitEvent(t, source.EventDisconnected)
	require.ErrorIs(t, e.Err, ErrChannelClosed)
	require.False(t, j.Entry.Live())
	p.Next(wait) // and back, with backoff
}

func TestUpdateChannel(t *testing.T) {
	p := v2test.Start(t, v2test.Config{})
	var mu sync.Mutex
	rate := 1e6
	get := func() float64 { mu.Lock(); defer mu.Unlock(); return rate }
	_, sk := run(t, Config{URL: p.URL(), User: "u", HashRate: get}, Options{UpdateInterval: 10 * time.Millisecond})
	c := p.Next(wait)
	sk.job(t)
	require.InDelta(t, 1e6, c.Open.NominalHashRate, 1)
	mu.Lock()
	rate = 5e6
	mu.Unlock()
	select {
	case u := <-c.Updates:
		require.InDelta(t, 5e6, u.NominalHashRate, 1)
		require.EqualValues(t, 7, u.ChannelID)
	case <-time.After(wait):
		t.Fatal("no UpdateChannel")
	}
}

func TestParseURL(t *testing.T) {
	const key = "9bXiEd8boQVhq7WddEcERUL5tyyJVFYdU8th3HfbNXK3Yw6GRXh"
	e, err := ParseURL("stratum2+tcp://thepool.com:34254/" + key)
	require.NoError(t, err)
	require.Equal(t, "thepool.com:34254", e.Addr())
	require.Equal(t, "stratum2+tcp://thepool.com:34254/"+key, e.String())
	for _, bad := range []string{
		"stratum2+tcp://thepool.com:34254",
		"stratum2+tcp://thepool.com/" + key,
		"stratum2+tcp://u:p@thepool.com:1/" + key,
		"stratum2+tcp://thepool.com:0/" + key,
		"stratum2+tcp://thepool.com:1/" + key[:len(key)-1],
		"stratum+tcp://thepool.com:1/" + key,
	} {
		_, err := ParseURL(bad)
		require.Error(t, err, bad)
		require.NotContains(t, err.Error(), ":p@", "no password in errors")
	}
}

func splitAddr(t *testing.T, addr string) (string, uint16) {
	e, err := ParseURL("stratum2+tcp://" + addr + "/9bXiEd8boQVhq7WddEcERUL5tyyJVFYdU8th3HfbNXK3Yw6GRXh")
	require.NoError(t, err)
	return e.Host, e.Port
}

// A pool that keeps the connection but stops giving verdicts is left as
// sick (work/health's timeouts streak, V1's rule) after UnansweredStreak
// shares in a row expire, so failover can move on.
func TestSilentPoolIsLeft(t *testing.T) {
	p := v2test.Start(t, v2test.Config{BatchSize: 1000}) // never acknowledges
	// No redial before the status is read: it would clear the reason.
	s, sk := run(t, Config{URL: p.URL(), User: "u"}, Options{SubmitTimeout: 50 * time.Millisecond, Retry: retry.Backoff{Initial: time.Minute}})
	p.Next(wait)
	j := sk.job(t)
	var rs []chan source.Reply
	for range UnansweredStreak {
		rs = append(rs, send(s, share(t, j)))
	}
	for _, r := range rs {
		require.Equal(t, source.NoReply, reply(t, r).Kind)
	}
	e := sk.waitEvent(t, source.EventSick)
	var sick *SickError
	require.ErrorAs(t, e.Err, &sick)
	require.Equal(t, health.Sickness{Clause: health.TimeoutStreak, Count: UnansweredStreak}, sick.Sickness)
	require.ErrorContains(t, e.Err, "5 submits in a row got no answer")
	st := s.Upstreams()[0]
	require.Equal(t, sick.Sickness.String(), st.SickReason, "the reason in status, as a V1 pool's")
	require.Equal(t, source.StateSick, st.State)
	e = sk.waitEvent(t, source.EventDisconnected)
	require.ErrorAs(t, e.Err, &sick)
}

// A listener that accepts and never answers (a hung pool daemon, a load
// balancer in front of a dead backend) is left after SetupTimeout: the
// handshake, SetupConnection and OpenChannel share that one deadline, so
// the source reports the pool down (and the failover chain, which never got
// a job from it, mines on the next upstream).
func TestHungListenerIsLeft(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	accepted := make(chan net.Conn, 8)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c // held open, never answered
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		for c := range accepted {
			c.Close()
		}
	})
	key := v2test.Start(t, v2test.Config{}).Authority
	_, sk := run(t, Config{URL: Scheme + "://" + ln.Addr().String() + "/" + key.String(), User: "u"}, Options{SetupTimeout: 100 * time.Millisecond})
	e := sk.waitEvent(t, source.EventDisconnected)
	var ne net.Error
	require.ErrorAs(t, e.Err, &ne)
	require.True(t, ne.Timeout(), "%v", e.Err)
}
