package stratum

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/charmbracelet/log"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"clminer/internal/testkit"
	"clminer/stratum/pooltest"
	"clminer/stratum/wire"
	"clminer/work/retry"
	"clminer/work/source"
)

// ---- helpers ---------------------------------------------------------------

// mineShare finds a nonce meeting j's share target on extranonce2 en2(j, b)
// and returns it as the share a device would hand to Send.
func mineShare(t *testing.T, j *source.Job, b byte) source.Share {
	t.Helper()
	u, err := j.NewUnit(en2(j, b), j.Version, j.NTime)
	require.NoError(t, err)
	for n := uint32(0); n < 1<<24; n++ {
		if u.Check(n).MeetsShare {
			return source.Share{Job: j, Unit: u, Nonce: n}
		}
	}
	t.Fatal("no share found")
	return source.Share{}
}

// sendShare hands sh to the asynchronous Send and returns where its one
// reply lands.
func sendShare(c *Client, sh source.Share) <-chan source.Reply {
	ch := make(chan source.Reply, 1)
	c.Send(sh, func(r source.Reply) { ch <- r })
	return ch
}

func waitReply(t *testing.T, ch <-chan source.Reply) source.Reply {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no reply to a share within 10 s")
		return source.Reply{}
	}
}

func countMethod(reqs []pooltest.Request, method string) int {
	n := 0
	for _, r := range reqs {
		if r.Method == method {
			n++
		}
	}
	return n
}

func (r *recorder) eventsOf(kind source.EventKind, pool int) []source.Event {
	var out []source.Event
	for _, e := range r.eventList() {
		if e.Kind == kind && e.Pool == pool {
			out = append(out, e)
		}
	}
	return out
}

// drainJobs returns the jobs delivered so far without waiting.
func (r *recorder) drainJobs() []*source.Job {
	var out []*source.Job
	for {
		select {
		case j := <-r.jobs:
			out = append(out, j)
		default:
			return out
		}
	}
}

// barrier makes the pool ping the client and waits for the pong: every line
// the client wrote before it has then reached the server.
func barrier(t *testing.T, srv *pooltest.Server, tag string) {
	t.Helper()
	srv.SendRaw(`{"id":"` + tag + `","method":"mining.ping","params":[]}`)
	testkit.Eventually(t, func() bool {
		for _, q := range srv.Requests() {
			if q.Method == "" && strings.Contains(string(q.Params), `"`+tag+`"`) {
				return true
			}
		}
		return false
	}, "pong for "+tag)
}

// timedDialer records every dial in order and refuses chosen addresses.
type timedDialer struct {
	mu      sync.Mutex
	refused map[string]bool
	log     []dialRec
}

type dialRec struct {
	addr string
	at   time.Time
	err  error
}

func newTimedDialer() *timedDialer { return &timedDialer{refused: map[string]bool{}} }

func (d *timedDialer) refuse(addr string) {
	d.mu.Lock()
	d.refused[addr] = true
	d.mu.Unlock()
}

func (d *timedDialer) dials() []dialRec {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]dialRec(nil), d.log...)
}

func (d *timedDialer) count(addr string) int {
	n := 0
	for _, r := range d.dials() {
		if r.addr == addr {
			n++
		}
	}
	return n
}

func (d *timedDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	refused := d.refused[addr]
	d.mu.Unlock()
	var conn net.Conn
	err := errors.New("timed dialer: connection refused")
	if !refused {
		var nd net.Dialer
		conn, err = nd.DialContext(ctx, network, addr)
	}
	d.mu.Lock()
	d.log = append(d.log, dialRec{addr: addr, at: time.Now(), err: err})
	d.mu.Unlock()
	return conn, err
}

// deadAddr is a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// lockedBuffer is an io.Writer for a logger that tests read concurrently.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// fakePool is a scripted pool for behaviours pooltest does not have: the
// test decides what each client line gets.
type fakePool struct {
	ln     net.Listener
	onLine func(fc *fakeConn, m fakeMsg)
	conns  atomic.Int32
	mu     sync.Mutex
	open   []*fakeConn
	wg     sync.WaitGroup
}

type fakeMsg struct {
	ID     json.RawMessage   `json:"id"`
	Method string            `json:"method"`
	Params []json.RawMessage `json:"params"`
}

type fakeConn struct {
	c  net.Conn
	n  int // 1-based connection number
	mu sync.Mutex
}

// send writes lines in one write (a pool often sends several in one segment).
func (fc *fakeConn) send(lines ...string) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	_ = fc.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, _ = fc.c.Write([]byte(strings.Join(lines, "\n") + "\n"))
}

func startFakePool(t *testing.T, onLine func(fc *fakeConn, m fakeMsg)) *fakePool {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &fakePool{ln: ln, onLine: onLine}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fc := &fakeConn{c: c, n: int(p.conns.Add(1))}
			p.mu.Lock()
			p.open = append(p.open, fc)
			p.mu.Unlock()
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				defer c.Close()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					var m fakeMsg
					if json.Unmarshal(sc.Bytes(), &m) == nil {
						p.onLine(fc, m)
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, fc := range p.open {
			fc.c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *fakePool) addr() string { return p.ln.Addr().String() }

func (p *fakePool) url() string { return "stratum+tcp://" + p.addr() }

func fakeReply(id json.RawMessage, result string) string {
	return fmt.Sprintf(`{"id":%s,"result":%s,"error":null}`, id, result)
}

func fakeSubscribeReply(id json.RawMessage) string {
	return fakeReply(id, `[[["mining.set_difficulty","s1"],["mining.notify","s1"]],"0a0b0c0d",4]`)
}

func fakeNotification(method string, params ...any) string {
	b, _ := json.Marshal(map[string]any{"id": nil, "method": method, "params": params})
	return string(b)
}

func fakeNotify(p pooltest.NotifyParams) string {
	return fakeNotification(wire.MethodNotify, p.Array()...)
}

// ---- reconnect -------------------------------------------------------------

// A redirect (same host, another port) to a dead port is tried once; the
// configured URL is dialled right after it fails, not after a backoff, and
// a new job arrives from the configured pool.
func TestReconnectDeadRedirectReturnsToConfigured(t *testing.T) {
	srv := pooltest.Start(t, pooltest.Config{Difficulty: easy})
	dead := deadAddr(t)
	d := newTimedDialer()
	r := newRecorder()
	opts := testOptions(r)
	opts.Dialer = d.dial
	// Long enough that "dialled again at once" and "dialled again after a
	// backoff" cannot be confused.
	opts.Retry = retry.Backoff{Initial: 400 * time.Millisecond, Max: 2 * time.Second}
	c := runClient(t, []PoolConfig{pool(srv)}, opts, r)
	j := r.nextJob(t, nil)

	_, port, _ := net.SplitHostPort(dead)
	srv.Reconnect("127.0.0.1", port, 0)
	j2 := r.nextJob(t, func(x *source.Job) bool { return x.Session != j.Session })
	assert.Equal(t, 0, j2.Pool)
	assert.True(t, j2.Clean)
	assert.True(t, r.hasEvent(source.EventReconnectRequested, 0))

	dl := d.dials()
	require.Len(t, dl, 3, "configured, redirect, configured: %+v", dl)
	assert.Equal(t, srv.Addr(), dl[0].addr)
	assert.Equal(t, dead, dl[1].addr)
	assert.Error(t, dl[1].err)
	assert.Equal(t, srv.Addr(), dl[2].addr, "the redirect is used for one attempt only")
	assert.NoError(t, dl[2].err)
	gap := dl[2].at.Sub(dl[1].at)
	assert.Less(t, gap, 300*time.Millisecond, "configured URL dialled %v after the redirect failed (backoff is >= 640 ms)", gap)

	res, err := c.Submit(context.Background(), j2, mine(t, j2, en2(j2, 1), j2.Version))
	require.NoError(t, err)
	assert.True(t, res.Accepted, res.Reason)
	assert.Equal(t, 2, srv.Stats().Connections)
}

// A pool that answers every subscribe with client.reconnect and a close is
// retried no faster than the backoff: 6 connections need at least
// 0.8*(50+100+200+400+400) ms, never hundreds.
func TestReconnectOnSubscribeLoopIsBackedOff(t *testing.T) {
	srv := pooltest.Start(t, pooltest.Config{Difficulty: easy, Behavior: pooltest.Behavior{ReconnectOnSubscribe: true}})
	r := newRecorder()
	opts := testOptions(r)
	opts.Retry = retry.Backoff{Initial: 50 * time.Millisecond, Max: 400 * time.Millisecond}
	start := time.Now()
	c := runClient(t, []PoolConfig{pool(srv)}, opts, r)
	testkit.Eventually(t, func() bool { return srv.Stats().Connections >= 6 }, "6 connections")
	el := time.Since(start)
	assert.GreaterOrEqual(t, el, 900*time.Millisecond, "6 connections in %v", el)
	assert.LessOrEqual(t, srv.Stats().Connections, 7)
	assert.False(t, r.hasEvent(source.EventAuthorized, 0))
	assert.False(t, r.hasEvent(source.EventReconnectRequested, 0), "a reconnect before authorize is not obeyed")
	assert.Zero(t, srv.Stats().Authorized)
	assert.GreaterOrEqual(t, c.Status()[0].Failures, 5)
}

// The same after authorize: a pool that redirects every authorized session
// back to itself with wait 0 is still retried at the backoff rate, because a
// session shorter than HoldDown counts as a failure.
func TestReconnectAfterAuthorizeLoopIsBackedOff(t *testing.T) {
	job := pooltest.GenerateJob("loop", 4, 4, true)
	fp := startFakePool(t, func(fc *fakeConn, m fakeMsg) {
		switch m.Method {
		case wire.MethodSubscribe:
			fc.send(fakeSubscribeReply(m.ID))
		case wire.MethodAuthorize:
			fc.send(fakeReply(m.ID, "true"), fakeNotification(wire.MethodSetDifficulty, easy), fakeNotify(job))
		case wire.MethodExtranonceSubscribe:
			// sent once the session is live: now redirect to ourselves
			fc.send(fakeReply(m.ID, "true"), fakeNotification(wire.MethodReconnect, "", nil, 0))
		}
	})
	r := newRecorder()
	opts := testOptions(r)
	opts.Retry = retry.Backoff{Initial: 50 * time.Millisecond, Max: 400 * time.Millisecond}
	p := PoolConfig{URL: fp.url(), User: "w", ExtranonceSubscribe: true}
	start := time.Now()
	runClient(t, []PoolConfig{p}, opts, r)
	testkit.Eventually(t, func() bool { return fp.conns.Load() >= 6 }, "6 connections")
	el := time.Since(start)
	assert.GreaterOrEqual(t, el, 900*time.Millisecond, "6 connections in %v", el)
	assert.LessOrEqual(t, fp.conns.Load(), int32(7))
	assert.GreaterOrEqual(t, len(r.eventsOf(source.EventReconnectRequested, 0)), 4, "every session was redirected")
}

// client.reconnect before the authorize reply (and before the subscribe
// reply) is ignored: the session continues, is authorized and mines; the
// redirect target is never dialled.
func TestReconnectBeforeAuthorizeIgnored(t *testing.T) {
	other := deadAddr(t)
	_, otherPort, _ := net.SplitHostPort(other)
	job := pooltest.GenerateJob("j1", 4, 4, true)
	var live atomic.Pointer[fakeConn]
	fp := startFakePool(t, func(fc *fakeConn, m fakeMsg) {
		switch m.Method {
		case wire.MethodSubscribe:
			fc.send(fakeNotification(wire.MethodReconnect, "127.0.0.1", otherPort, 0), fakeSubscribeReply(m.ID),
				fakeNotification(wire.MethodSetDifficulty, easy), fakeNotify(job))
		case wire.MethodAuthorize:
			fc.send(fakeNotification(wire.MethodReconnect, "127.0.0.1", otherPort, 0), fakeReply(m.ID, "true"))
			live.Store(fc)
		case wire.MethodSubmit:
			fc.send(fakeReply(m.ID, "true"))
		}
	})
	d := newTimedDialer()
	r := newRecorder()
	opts := testOptions(r)
	opts.Dialer = d.dial
	c := runClient(t, []PoolConfig{{URL: fp.url(), User: "w"}}, opts, r)
	j := r.nextJob(t, nil)
	assert.Equal(t, "j1", j.ID)
	assert.True(t, r.hasEvent(source.EventAuthorized, 0))
	res, err := c.Submit(context.Background(), j, mine(t, j, en2(j, 1), j.Version))
	require.NoError(t, err)
	assert.True(t, res.Accepted)

	// the session goes on: a later job on the same connection arrives
	job2 := pooltest.GenerateJob("j2", 4, 4, true)
	live.Load().send(fakeNotify(job2))
	j2 := r.nextJob(t, nil)
	assert.Equal(t, "j2", j2.ID)
	assert.Equal(t, j.Session, j2.Session)
	assert.Equal(t, int32(1), fp.conns.Load())
	assert.Zero(t, d.count(other), "redirect target never dialled")
	assert.False(t, r.hasEvent(source.EventReconnectRequested, 0))
	assert.Equal(t, source.StateActive, c.Status()[0].State)
}

// A pool that redirects right after accepting the worker (the reconnect in
// the same segment as the authorize reply, as a load balancer does) is
// followed: the worker was accepted, whether or not the client has finished
// its own bookkeeping when the line is read.
func TestReconnectRightAfterAuthorizeReplyFollowed(t *testing.T) {
	target := pooltest.Start(t, pooltest.Config{Difficulty: easy})
	_, port, _ := net.SplitHostPort(target.Addr())
	job := pooltest.GenerateJob("lb", 4, 4, true)
	fp := startFakePool(t, func(fc *fakeConn, m fakeMsg) {
		switch m.Method {
		case wire.MethodSubscribe:
			fc.send(fakeSubscribeReply(m.ID), fakeNotification(wire.MethodSetDifficulty, easy), fakeNotify(job))
		case wire.MethodAuthorize:
			fc.send(fakeReply(m.ID, "true"), fakeNotification(wire.MethodReconnect, "127.0.0.1", port, 0))
		}
	})
	r := newRecorder()
	c := runClient(t, []PoolConfig{{URL: fp.url(), User: "w"}}, testOptions(r), r)
	jt := r.nextJob(t, func(x *source.Job) bool { return x.ID != "lb" })
	assert.Equal(t, target.CurrentJob().JobID, jt.ID)
	assert.True(t, r.hasEvent(source.EventReconnectRequested, 0))
	res, err := c.Submit(context.Background(), jt, mine(t, jt, en2(jt, 1), jt.Version))
	require.NoError(t, err)
	assert.True(t, res.Accepted)
	assert.Equal(t, int32(1), fp.conns.Load())
}

// client.reconnect with a null host means "this host": after a redirect
// to localhost:P2, a reconnect(null, P3) goes to localhost:P3, not to the
// configured host with P3.
func TestReconnectNullHostKeepsCurrentHost(t *testing.T) {
	srv := pooltest.Start(t, pooltest.Config{Difficulty: easy})
	second := pooltest.Start(t, pooltest.Config{Difficulty: easy})
	third := pooltest.Start(t, pooltest.Config{Difficulty: easy})
	_, p2, _ := net.SplitHostPort(second.Addr())
	_, p3, _ := net.SplitHostPort(third.Addr())
	d := newTimedDialer()
	r := newRecorder()
	opts := testOptions(r)
	opts.Dialer = d.dial
	p := pool(srv)
	p.AllowReconnectAnyDomain = true
	runClient(t, []PoolConfig{p}, opts, r)
	j := r.nextJob(t, nil)
	srv.Reconnect("localhost", p2, 0)
	j2 := r.nextJob(t, func(x *source.Job) bool { return x.Session != j.Session })
	require.Equal(t, 1, d.count(net.JoinHostPort("localhost", p2)))
	second.Reconnect("", p3, 0)
	r.nextJob(t, func(x *source.Job) bool { return x.Session != j2.Session })
	assert.Equal(t, 1, d.count(net.JoinHostPort("localhost", p3)), "dials: %+v", d.dials())
	assert.Zero(t, d.count(net.JoinHostPort("127.0.0.1", p3)))
	assert.Equal(t, 1, third.Stats().Authorized)
}

// ---- health ----------------------------------------------------------------

func sickEvent(t *testing.T, r *recorder, pool int) source.Event {
	t.Helper()
	testkit.Eventually(t, func() bool { return r.hasEvent(source.EventSick, pool) }, "pool marked sick")
	e := r.eventsOf(source.EventSick, pool)[0]
	require.ErrorIs(t, e.Err, ErrSick)
	var se *SickError
	require.ErrorAs(t, e.Err, &se)
	return e
}

// A pool that never answers submits is sick once UnansweredAfter has passed
// since the first unanswered share, and not before: EventSick, StateSick
// with a reason, and the share's reply is NoReply.
func TestSilentSubmitsMakePoolSick(t *testing.T) {
	srv := pooltest.Start(t, pooltest.Config{Difficulty: easy, Behavior: pooltest.Behavior{NeverReply: []string{wire.MethodSubmit}}})
	r := newRecorder()
	clk := newFakeClock()
	opts := testOptions(r)
	opts.Now = clk.Now
	opts.UnansweredAfter = 300 * time.Millisecond
	opts.SubmitTimeout = 5 * time.Second // only the "none answered for" rule
	opts.SickHoldDown = time.Minute
	c := runClient(t, []PoolConfig{pool(srv)}, opts, r)
	j := r.nextJob(t, nil)
	sh := mineShare(t, j, 1)
	start := clk.Now()
	ch := sendShare(c, sh)
	clk.Advance(opts.UnansweredAfter - time.Millisecond)
	clk.waitReads(t, 2)
	assert.False(t, r.hasEvent(source.EventSick, 0), "sick before UnansweredAfter")
	clk.Advance(time.Millisecond)
	e := sickEvent(t, r, 0)
	assert.Equal(t, opts.UnansweredAfter, e.Time.Sub(start), "judged at the clock's time")
	assert.Contains(t, e.Err.Error(), "no submit answered")
	rep := waitReply(t, ch)
	assert.Equal(t, source.NoReply, rep.Kind, rep.Reason)
	st := c.Status()[0]
	assert.Equal(t, source.StateSick, st.State)
	assert.Contains(t, st.SickReason, "no submit answered")
	assert.Equal(t, 1, srv.Stats().Connections, "held down, not reconnected")
	assert.Equal(t, 1, countMethod(srv.Requests(), wire.MethodSubmit))
}

// UnansweredStreak timeouts in a row make the pool sick too.
func TestSubmitTimeoutStreakMakesPoolSick(t *testing.T) {
	srv := pooltest.Start(t, pooltest.Config{Difficulty: easy, Behavior: pooltest.Behavior{NeverReply: []string{wire.MethodSubmit}}})
	r := newRecorder()
	opts := testOptions(r)
	opts.SubmitTimeout = 150 * time.Millisecond
	opts.UnansweredAfter = time.Minute
	opts.UnansweredStreak = 3
	opts.SickHoldDown = time.Minute
	c := runClient(t, []PoolConfig{pool(srv)}, opts, r)
	j := r.nextJob(t, nil)
	var chs []<-chan source.Reply
	for i := 0; i < 3; i++ {
		chs = append(chs, sendShare(c, mineShare(t, j, byte(i+1))))
	}
	for _, ch := range chs {
		rep := waitReply(t, ch)
		assert.Equal(t, source.NoReply, rep.Kind)
		assert.Contains(t, rep.Reason, "did not answer")
	}
	e := sickEvent(t, r, 0)
	assert.Contains(t, e.Err.Error(), "3 submits in a row")
	assert.Equal(t, source.StateSick, c.Status()[0].State)
}

// One submit that timed out, with nothing else waiting, is not "no submit
// answered for UnansweredAfter while some wait": the pool stays, and the
// next share is judged from its own send time.
func TestTimedOutSubmitAloneIsNotSick(t *testing.T) {
	srv := pooltest.Start(t, pooltest.Config{Difficulty: easy, Behavior: pooltest.Behavior{NeverReply: []string{wire.MethodSubmit}}})
	r := newRecorder()
	clk := newFakeClock()
	opts := testOptions(r)
	opts.Now = clk.Now
	opts.SubmitTimeout = 100 * time.Millisecond
	opts.UnansweredAfter = 300 * time.Millisecond
	opts.UnansweredStreak = 5
	c := runClient(t, []PoolConfig{pool(srv)}, opts, r)
	j := r.nextJob(t, nil)
	ch := sendShare(c, mineShare(t, j, 1))
	clk.Advance(opts.SubmitTimeout + time.Millisecond)
	rep := waitReply(t, ch)
	require.Equal(t, source.NoReply, rep.Kind)
	// A negative assertion needs a window: the clock moves well past
	// UnansweredAfter since the share was sent, and the monitor judges the
	// pool at that time.
	clk.Advance(10 * opts.UnansweredAfter)
	clk.waitReads(t, 2)
	assert.False(t, r.hasEvent(source.EventSick, 0), "sick with nothing waiting: %+v", r.eventsOf(source.EventSick, 0))
	assert.Equal(t, source.StateActive, c.Status()[0].State)
	// the pool answers again: a share now is accepted on the same session
	srv.SetBehavior(func(b *pooltest.Behavior) { b.NeverReply = nil })
	rep = waitReply(t, sendShare(c, mineShare(t, j, 2)))
	assert.Equal(t, source.Accepted, rep.Kind, rep.Reason)
	assert.Equal(t, 1, srv.Stats().Connections)
}

// Rejects of shares for jobs the pool has dropped (routine stales) do not
// count toward the reject streak; RejectStreak rejects of live jobs do.
func TestStaleRejectsDoNotCountTowardSick(t *testing.T) {
	srv := pooltest.Start(t, pooltest.Config{Difficulty: easy, Behavior: pooltest.Behavior{RejectAll: true}})
	r := newRecorder()
	opts := testOptions(r)
	opts.UnansweredAfter = time.Minute
	opts.RejectStreak = 5
	opts.SickHoldDown = time.Minute
	c := runClient(t, []PoolConfig{pool(srv)}, opts, r)
	j := r.nextJob(t, nil)
	ctx := context.Background()
	for i := 0; i < 4; i++ {
		res, err := c.Submit(ctx, j, mine(t, j, en2(j, byte(i+1)), j.Version))
		require.NoError(t, err)
		require.False(t, res.Accepted)
	}
	srv.PushJob(true)
	j2 := r.nextJob(t, func(x *source.Job) bool { return x.ID != j.ID })
	require.False(t, j.Entry.Live())
	for i := 0; i < 3; i++ {
		res, err := c.Submit(ctx, j, mine(t, j, en2(j, byte(10+i)), j.Version))
		require.NoError(t, err)
		require.False(t, res.Accepted)
	}
	assert.Equal(t, source.StateActive, c.Status()[0].State, "stale rejects are not a sick pool")
	assert.False(t, r.hasEvent(source.EventSick, 0))
	res, err := c.Submit(ctx, j2, mine(t, j2, en2(j2, 1), j2.Version))
	require.NoError(t, err)
	require.False(t, res.Accepted)
	e := sickEvent(t, r, 0)
	assert.Contains(t, e.Err.Error(), "5 host-verified shares in a row rejected")
}

// Two rejects over UnansweredAfter without an accept are enough.
func TestSlowRejectsMakePoolSick(t *testing.T) {
	srv := pooltest.Start(t, pooltest.Config{Difficulty: easy, Behavior: pooltest.Behavior{RejectAll: true}})
	r := newRecorder()
	opts := testOptions(r)
	opts.UnansweredAfter = 300 * time.Millisecond
	opts.RejectStreak = 100
	opts.SickHoldDown = time.Minute
	clk := newFakeClock()
	opts.Now = clk.Now
	c := runClient(t, []PoolConfig{pool(srv)}, opts, r)
	j := r.nextJob(t, nil)
	start := clk.Now()
	for i := 0; i < 2; i++ {
		res, err := c.Submit(context.Background(), j, mine(t, j, en2(j, byte(i+1)), j.Version))
		require.NoError(t, err)
		require.False(t, res.Accepted)
	}
	clk.Advance(opts.UnansweredAfter - time.Millisecond)
	clk.waitReads(t, 2)
	assert.False(t, r.hasEvent(source.EventSick, 0), "sick before UnansweredAfter")
	clk.Advance(time.Millisecond)
	e := sickEvent(t, r, 0)
	assert.Equal(t, opts.UnansweredAfter, e.Time.Sub(start))
	assert.Contains(t, e.Err.Error(), "without an accept")
}

// A primary that rejects every host-verified share is left for the backup
// after RejectStreak rejects. While the primary refuses the worker, the
// client stays on the backup across several HoldDown periods although the
// primary's port accepts (probes run subscribe and authorize); once it
// authorizes again and has passed probes for HoldDown, the client returns.
func TestRejectStreakFailsOverAndReturnsOnlyAfterAuthorize(t *testing.T) {
	primary := pooltest.Start(t, pooltest.Config{Difficulty: easy, Behavior: pooltest.Behavior{RejectAll: true}})
	backup := pooltest.Start(t, pooltest.Config{Difficulty: easy})
	r := newRecorder()
	opts := testOptions(r)
	opts.UnansweredAfter = time.Minute // only the streak rule
	opts.RejectStreak = 5
	opts.HoldDown = 300 * time.Millisecond
	opts.SickHoldDown = 200 * time.Millisecond
	c := runClient(t, []PoolConfig{pool(primary), pool(backup)}, opts, r)
	j := r.nextJob(t, nil)
	require.Equal(t, 0, j.Pool)
	ctx := context.Background()
	for i := 0; i < 4; i++ {
		res, err := c.Submit(ctx, j, mine(t, j, en2(j, byte(i+1)), j.Version))
		require.NoError(t, err)
		require.False(t, res.Accepted)
	}
	assert.Equal(t, source.StateActive, c.Status()[0].State, "4 rejects are not a streak of 5")
	assert.False(t, r.hasEvent(source.EventSick, 0))

	primary.SetBehavior(func(b *pooltest.Behavior) { b.RefuseAuth = true })
	res, err := c.Submit(ctx, j, mine(t, j, en2(j, 5), j.Version))
	require.NoError(t, err)
	require.False(t, res.Accepted)
	e := sickEvent(t, r, 0)
	assert.Contains(t, e.Err.Error(), "5 host-verified shares in a row rejected")

	jb := r.nextJob(t, func(x *source.Job) bool { return x.Pool == 1 })
	assert.True(t, jb.Clean)
	assert.True(t, r.hasEvent(source.EventAuthorized, 1))
	assert.True(t, r.hasEvent(source.EventFailover, 1))
	res, err = c.Submit(ctx, jb, mine(t, jb, en2(jb, 1), jb.Version))
	require.NoError(t, err)
	assert.True(t, res.Accepted)

	// Refusing: probes connect and authorize, and fail, for several HoldDown
	// periods; the client stays where it is.
	refusing := time.Now()
	auth0 := countMethod(primary.Requests(), wire.MethodAuthorize)
	conns0 := primary.Stats().Connections
	testkit.Eventually(t, func() bool {
		return countMethod(primary.Requests(), wire.MethodAuthorize) >= auth0+4 && time.Since(refusing) >= 3*opts.HoldDown
	}, "primary probed while it refuses")
	assert.Greater(t, primary.Stats().Connections, conns0, "the primary's port accepts")
	assert.Equal(t, 1, primary.Stats().Authorized, "no probe passed")
	for _, x := range r.drainJobs() {
		assert.NotEqual(t, 0, x.Pool, "job from the refusing primary")
	}
	assert.Len(t, r.eventsOf(source.EventAuthorized, 0), 1)
	st := c.Status()
	assert.Equal(t, source.StateSick, st[0].State)
	assert.Equal(t, source.StateActive, st[1].State)

	// The primary takes the worker (and shares) again.
	primary.SetBehavior(func(b *pooltest.Behavior) { b.RefuseAuth, b.RejectAll = false, false })
	ok := time.Now()
	j0 := r.nextJob(t, func(x *source.Job) bool { return x.Pool == 0 })
	assert.GreaterOrEqual(t, time.Since(ok), opts.HoldDown, "returned before the probes passed for HoldDown")
	assert.True(t, j0.Clean)
	// (a fresh extranonce2: pooltest remembers the rejected shares of the
	// same job as seen)
	res, err = c.Submit(ctx, j0, mine(t, j0, en2(j0, 20), j0.Version))
	require.NoError(t, err)
	assert.True(t, res.Accepted, res.Reason)
	assert.True(t, r.hasEvent(source.EventFailover, 0))
	assert.Equal(t, source.StateActive, c.Status()[0].State)
}

// ---- throttle --------------------------------------------------------------

// With MaxInFlight 4 and slow submit replies, the 5th concurrent Send gets
// Throttled before Send returns and nothing is sent for it; once replies
// came, sends go out again.
func TestThrottleAtMaxInFlight(t *testing.T) {
	srv := pooltest.Start(t, pooltest.Config{Difficulty: easy, Behavior: pooltest.Behavior{
		ReplyDelay: map[string]time.Duration{wire.MethodSubmit: 300 * time.Millisecond}}})
	r := newRecorder()
	opts := testOptions(r)
	opts.MaxInFlight = 4
	c := runClient(t, []PoolConfig{pool(srv)}, opts, r)
	j := r.nextJob(t, nil)
	var shares []source.Share
	for i := 0; i < 6; i++ {
		shares = append(shares, mineShare(t, j, byte(i+1)))
	}
	var chs []<-chan source.Reply
	for i := 0; i < 4; i++ {
		chs = append(chs, sendShare(c, shares[i]))
	}
	assert.Equal(t, 4, c.Status()[0].InFlight)
	var fifth *source.Reply
	c.Send(shares[4], func(rep source.Reply) { fifth = &rep })
	require.NotNil(t, fifth, "a throttled share is answered before Send returns")
	assert.Equal(t, source.Throttled, fifth.Kind)
	assert.Equal(t, uint64(1), c.Status()[0].Throttled)
	for _, ch := range chs {
		rep := waitReply(t, ch)
		assert.Equal(t, source.Accepted, rep.Kind, rep.Reason)
	}
	assert.Equal(t, 4, countMethod(srv.Requests(), wire.MethodSubmit), "nothing sent for the throttled share")
	assert.Zero(t, c.Status()[0].InFlight)

	rep := waitReply(t, sendShare(c, shares[5]))
	assert.Equal(t, source.Accepted, rep.Kind, rep.Reason)
	assert.Equal(t, 5, countMethod(srv.Requests(), wire.MethodSubmit))
	assert.Equal(t, 5, srv.Stats().Accepted)
}

// While shares are throttled, mining.suggest_difficulty goes out once (with
// a difficulty above the current one), not again within the minute, and
// again after it.
func TestThrottleSuggestsDifficultyOncePerMinute(t *testing.T) {
	srv := pooltest.Start(t, pooltest.Config{Difficulty: easy, Behavior: pooltest.Behavior{
		ReplyDelay: map[string]time.Duration{wire.MethodSubmit: 10 * time.Second}}})
	r := newRecorder()
	clk := newFakeClock()
	opts := testOptions(r)
	opts.Now = clk.Now
	opts.MaxInFlight = 2
	// Nothing expires and the pool is not judged while the clock moves.
	opts.SubmitTimeout = time.Hour
	opts.UnansweredAfter = time.Hour
	c := runClient(t, []PoolConfig{pool(srv)}, opts, r)
	j := r.nextJob(t, nil)
	sh := mineShare(t, j, 1)
	sendShare(c, mineShare(t, j, 2))
	sendShare(c, mineShare(t, j, 3))
	throttled := 0
	throttle := func(n int) {
		for range n {
			rep := waitReply(t, sendShare(c, sh))
			require.Equal(t, source.Throttled, rep.Kind)
			throttled++
		}
	}
	suggests := func(tag string) int {
		barrier(t, srv, tag)
		return countMethod(srv.Requests(), wire.MethodSuggestDifficulty)
	}
	// Suggest needs 10 shares offered over at least 0.5 s since authorize.
	throttle(10)
	assert.Zero(t, suggests("too-soon"), "12 shares offered in no time")
	clk.Advance(time.Second)
	throttle(1)
	assert.Equal(t, 1, suggests("first"))
	clk.Advance(59 * time.Second)
	throttle(20)
	assert.Equal(t, 1, suggests("within-the-minute"))
	clk.Advance(time.Second)
	throttle(1)
	assert.Equal(t, 2, suggests("after-the-minute"))
	reqs := srv.Requests()
	assert.Equal(t, 2, countMethod(reqs, wire.MethodSubmit))
	for _, q := range reqs {
		if q.Method == wire.MethodSuggestDifficulty {
			var p []float64
			require.NoError(t, json.Unmarshal(q.Params, &p))
			require.Len(t, p, 1)
			assert.Greater(t, p[0], easy)
		}
	}
	assert.Equal(t, uint64(throttled), c.Status()[0].Throttled)
}

func bigNotify(srv *pooltest.Server, id string, n int) pooltest.NotifyParams {
	p := srv.CurrentJob()
	p.JobID, p.CleanJobs = id, true
	tag := []byte("/pooltest/") // coinb1's script length counts it
	var b strings.Builder
	b.WriteString(hex.EncodeToString(append([]byte{byte(len(tag))}, tag...)))
	b.WriteString("ffffffff")
	b.WriteString(fmt.Sprintf("fd%02x%02x", n&0xff, n>>8))
	for i := 0; i < n; i++ {
		b.WriteString("00f2052a01000000")
		b.WriteString(fmt.Sprintf("1976a914%040x88ac", i+1))
	}
	b.WriteString("00000000")
	p.Coinb2 = b.String()
	return p
}

func notifyLineLen(p pooltest.NotifyParams) int { return len(fakeNotify(p)) + 1 }

// A ~100 KB notify (1,500 payout outputs) is a job under the default line
// cap, and a share on it is accepted.
func TestBigNotifyAccepted(t *testing.T) {
	srv := pooltest.Start(t, pooltest.Config{Difficulty: easy})
	r := newRecorder()
	c := runClient(t, []PoolConfig{pool(srv)}, testOptions(r), r)
	j := r.nextJob(t, nil)
	big := bigNotify(srv, "big", 1500)
	require.Greater(t, notifyLineLen(big), 100_000)
	require.Less(t, notifyLineLen(big), DefaultMaxLineSize)
	srv.PushJobParams(big)
	jb := r.nextJob(t, func(x *source.Job) bool { return x.ID == "big" })
	assert.Equal(t, j.Session, jb.Session, "no reconnect")
	assert.Greater(t, len(jb.Coinb2), 50_000)
	res, err := c.Submit(context.Background(), jb, mine(t, jb, en2(jb, 1), jb.Version))
	require.NoError(t, err)
	assert.True(t, res.Accepted, res.Reason)
}

func lineTooLongSeen(r *recorder) bool {
	for _, e := range r.eventList() {
		if e.Kind == source.EventDisconnected && errors.Is(e.Err, ErrLineTooLong) {
			return true
		}
	}
	return false
}

// A line above MaxLineSize still drops the connection: the same 100 KB
// notify under a 64 KiB cap, and a 1 MiB+ line under the default cap.
func TestLineAboveCapDrops(t *testing.T) {
	t.Run("100 KB notify, 64 KiB cap", func(t *testing.T) {
		srv := pooltest.Start(t, pooltest.Config{Difficulty: easy})
		r := newRecorder()
		opts := testOptions(r)
		opts.MaxLineSize = 64 << 10
		runClient(t, []PoolConfig{pool(srv)}, opts, r)
		j := r.nextJob(t, nil)
		// raw, so that the server's current job (sent on reconnect) stays small
		srv.SendRaw(fakeNotify(bigNotify(srv, "big", 1500)))
		j2 := r.nextJob(t, func(x *source.Job) bool { return x.Session != j.Session })
		assert.NotEqual(t, "big", j2.ID)
		assert.True(t, lineTooLongSeen(r))
	})
	t.Run("default cap", func(t *testing.T) {
		srv := pooltest.Start(t, pooltest.Config{Difficulty: easy})
		r := newRecorder()
		runClient(t, []PoolConfig{pool(srv)}, testOptions(r), r)
		j := r.nextJob(t, nil)
		srv.SendRaw(`{"id":null,"method":"client.show_message","params":["` + strings.Repeat("a", DefaultMaxLineSize) + `"]}`)
		r.nextJob(t, func(x *source.Job) bool { return x.Session != j.Session })
		assert.True(t, lineTooLongSeen(r))
	})
}

// ---- log flood ---------------------------------------------------------------

// 5,000 show_message lines and 5,000 bad notifies produce a handful of log
// lines, and the session carries on.
func TestPoolTextLogFloodIsBounded(t *testing.T) {
	srv := pooltest.Start(t, pooltest.Config{Difficulty: easy})
	var buf lockedBuffer
	r := newRecorder()
	opts := testOptions(r)
	opts.Logger = log.New(&buf)
	runClient(t, []PoolConfig{pool(srv)}, opts, r)
	j := r.nextJob(t, nil)
	before := strings.Count(buf.String(), "\n")

	msg := `{"id":null,"method":"client.show_message","params":["buy more hashrate"]}`
	srv.SendRaw(strings.TrimSuffix(strings.Repeat(msg+"\n", 5000), "\n"))
	bad := `{"id":null,"method":"mining.notify","params":["x",1,2]}`
	srv.SendRaw(strings.TrimSuffix(strings.Repeat(bad+"\n", 5000), "\n"))
	next := srv.PushJob(true)
	jn := r.nextJob(t, nil)
	require.Equal(t, next, jn.ID, "every flood line was read before the job")
	assert.Equal(t, j.Session, jn.Session)

	out := buf.String()
	shown := strings.Count(out, "message from pool")
	assert.GreaterOrEqual(t, shown, 1, "the first messages reach the operator")
	assert.LessOrEqual(t, shown, 6)
	assert.LessOrEqual(t, strings.Count(out, "ignoring bad mining.notify"), 6)
	assert.LessOrEqual(t, strings.Count(out, "\n")-before, 15, "log:\n%s", out)
}

// ---- job ids -----------------------------------------------------------------

// A job id that is not valid UTF-8 (raw \xff bytes, or a lone surrogate
// escape) yields no job: it would be echoed back rewritten and every share
// rejected. The next normal job arrives.
func TestInvalidUTF8JobIDRefused(t *testing.T) {
	srv := pooltest.Start(t, pooltest.Config{Difficulty: easy})
	var buf lockedBuffer
	r := newRecorder()
	opts := testOptions(r)
	opts.Logger = log.New(&buf)
	c := runClient(t, []PoolConfig{pool(srv)}, opts, r)
	j := r.nextJob(t, nil)
	n := srv.CurrentJob()
	n.JobID, n.CleanJobs = "PLACEHOLDER", true
	line := fakeNotify(n)
	srv.SendRaw(strings.Replace(line, `"PLACEHOLDER"`, "\"ab\xffcd\"", 1))
	srv.SendRaw(strings.Replace(line, `"PLACEHOLDER"`, `"\ud800zz"`, 1))
	good := srv.PushJob(true)
	jn := r.nextJob(t, nil)
	assert.Equal(t, good, jn.ID, "the first job after the bad ones is the good one")
	assert.True(t, utf8.ValidString(jn.ID))
	assert.Equal(t, j.Session, jn.Session)
	assert.Contains(t, buf.String(), "not valid UTF-8")
	res, err := c.Submit(context.Background(), jn, mine(t, jn, en2(jn, 1), jn.Version))
	require.NoError(t, err)
	assert.True(t, res.Accepted)
}

// failingConn fails the first write of a mining.submit once armed.
type failingConn struct {
	net.Conn
	arm *atomic.Bool
}

func (c *failingConn) Write(b []byte) (int, error) {
	if bytes.Contains(b, []byte(wire.MethodSubmit)) && c.arm.CompareAndSwap(true, false) {
		c.Conn.Close()
		return 0, errors.New("failing conn: write refused")
	}
	return c.Conn.Write(b)
}

// A submit whose write fails is answered exactly once (the failed write
// closes the session, which answers every waiting call) and leaves nothing
// counted in flight; the client reconnects and mines on.
func TestSubmitWriteFailureAnsweredOnce(t *testing.T) {
	srv := pooltest.Start(t, pooltest.Config{Difficulty: easy})
	var arm atomic.Bool
	r := newRecorder()
	opts := testOptions(r)
	opts.Dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &failingConn{Conn: c, arm: &arm}, nil
	}
	c := runClient(t, []PoolConfig{pool(srv)}, opts, r)
	j := r.nextJob(t, nil)
	arm.Store(true)
	var answers atomic.Int32
	got := make(chan source.Reply, 4)
	c.Send(mineShare(t, j, 1), func(rep source.Reply) {
		answers.Add(1)
		got <- rep
	})
	rep := waitReply(t, got)
	assert.Contains(t, []source.ReplyKind{source.NoReply, source.NotSent}, rep.Kind, rep.Reason)
	assert.Equal(t, int32(1), answers.Load(), "answered more than once")
	j2 := r.nextJob(t, func(x *source.Job) bool { return x.Session != j.Session })
	assert.Equal(t, int32(1), answers.Load())
	assert.Zero(t, c.Status()[0].InFlight)
	rep = waitReply(t, sendShare(c, mineShare(t, j2, 1)))
	assert.Equal(t, source.Accepted, rep.Kind, rep.Reason)
	assert.Zero(t, countMethod(srv.Requests(), wire.MethodSubmit)-1, "only the second share reached the pool")
}
