package stratum

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/charmbracelet/log"

	"clminer/stratum/wire"
	"clminer/work"
	"clminer/work/health"
	"clminer/work/ledger"
	"clminer/work/ratelog"
	"clminer/work/source"
)

// Errors a caller can test for with errors.Is.
var (
	// ErrStaleSession: the job's connection is no longer the live one; the
	// share was not sent anywhere.
	ErrStaleSession = errors.New("stratum: job belongs to a session that is no longer live")
	// ErrAuthorize: the pool refused the worker.
	ErrAuthorize = errors.New("stratum: pool refused the worker")
	// ErrTimeout: the pool did not answer a call in time.
	ErrTimeout = errors.New("stratum: pool did not answer in time")
	// ErrSessionClosed: the connection ended while a call was waiting.
	ErrSessionClosed = errors.New("stratum: connection closed")
	// ErrReconnectRequested: the pool sent client.reconnect.
	ErrReconnectRequested = errors.New("stratum: pool asked to reconnect")
	// ErrThrottled: MaxInFlight shares already await a verdict; the share
	// was not sent.
	ErrThrottled = errors.New("stratum: too many shares awaiting a verdict")
	// ErrSick: the pool stops answering submits or rejects host-verified
	// shares in a streak; the client leaves it (SickError says which).
	ErrSick = errors.New("stratum: pool is sick")
	// ErrSilent: no line came from the pool for ReadTimeout; the client
	// counts it as the pool failing and tries the next one.
	ErrSilent          = errors.New("stratum: the pool went silent")
	errReturnToPrimary = errors.New("stratum: returning to a higher-priority pool")
)

// SickError says why a pool was left.
type SickError struct{ Reason string }

func (e *SickError) Error() string { return "pool is sick: " + e.Reason }

// Is makes errors.Is(err, ErrSick) true.
func (e *SickError) Is(target error) bool { return target == ErrSick }

var sessionCounter atomic.Uint64

type call struct {
	method string
	ch     chan *Message
	sub    *SubscribeResult // parsed by the reader for subscribe replies
	subErr error

	// Submits are answered through cb, by the reader, the monitor (timeout)
	// or close, so no goroutine waits per share.
	cb       func(*Message, error)
	submit   bool // a mining.submit: counts in inflight and the health rules
	sent     time.Time
	deadline time.Time
	entry    *ledger.Entry
}

// session is one connection to one pool. The reader goroutine owns all
// protocol state changes; the handshake and Submit only send calls and wait.
type session struct {
	c      *Client
	id     uint64
	pool   int
	pc     PoolConfig
	url    PoolURL
	addr   string
	conn   net.Conn
	log    *log.Logger
	worker string
	led    *ledger.Ledger // nil for a probe
	probe  bool

	wmu sync.Mutex

	mu          sync.Mutex
	nextID      uint64
	pending     map[uint64]*call
	subscribed  bool
	authorized  bool
	en1         string
	en2size     int
	pendingEN   *pendingExtranonce // set_extranonce waiting for the next notify
	diff        float64
	accDiff     float64 // highest difficulty in force since the previous notify
	notifies    int
	rolling     bool
	mask        uint32
	queued      []json.RawMessage
	latest      *source.Job
	prevHash    string
	emittedAny  bool
	sessionID   string
	garbage     int
	reconnect   *Reconnect
	authorizeAt time.Time
	// authOK: the reader has seen a true authorize reply. A client.reconnect
	// read after it but before ready() (the pool sent both in one segment)
	// is kept in deferredReconnect and obeyed by ready(): the pool accepted
	// the worker, so the redirect is legitimate, and ignoring it depended on
	// goroutine scheduling.
	authOK            bool
	retired           bool // being left by choice: its jobs go nowhere
	deferredReconnect *Reconnect
	// subWorkers: each sub-worker key's authorize on this connection.
	subWorkers map[string]*subWorker

	// submit accounting and health
	inflight     int
	health       health.Tracker // the pool's submits, judged by the client's rule
	offered      uint64         // shares handed to submitAsync, for suggest_difficulty
	offeredSince time.Time
	lastSuggest  time.Time

	logGarbage, logMessage, logJob, logThrottle *ratelog.Log

	done      chan struct{}
	closeOnce sync.Once
	err       error
	wg        sync.WaitGroup
}

func newSession(c *Client, pool int, pc PoolConfig, u PoolURL, addr string, conn net.Conn, led *ledger.Ledger) *session {
	id := sessionCounter.Add(1)
	return &session{
		c: c, id: id, pool: pool, pc: pc, url: u, addr: addr, conn: conn, worker: pc.User, led: led, probe: led == nil,
		log:         c.log.With("pool", u.String(), "session", id),
		pending:     map[uint64]*call{},
		diff:        1,
		accDiff:     1,
		logGarbage:  ratelog.New(10*time.Second, 5),
		logMessage:  ratelog.New(10*time.Second, 5),
		logJob:      ratelog.New(10*time.Second, 5),
		logThrottle: ratelog.New(10*time.Second, 1),
		done:        make(chan struct{}),
		health:      health.Tracker{Rule: c.opts.healthRule()},
	}
}

func (s *session) start() {
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		s.readLoop()
	}()
	go func() {
		defer s.wg.Done()
		s.monitor()
	}()
}

// close ends the session with err (the first error wins), wakes every
// waiter and answers every submit still waiting.
func (s *session) close(err error) {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.err = err
		// done closes under s.mu: sendCall checks it under the same lock, so
		// no call can be registered after the sweep below and never be
		// answered.
		close(s.done)
		var cbs []*call
		for id, cl := range s.pending {
			if cl.cb != nil {
				cbs = append(cbs, cl)
				delete(s.pending, id)
				if cl.submit {
					s.inflight--
				}
			}
		}
		s.mu.Unlock()
		s.conn.Close()
		for _, cl := range cbs {
			cl.cb(nil, fmt.Errorf("%w: %v", ErrSessionClosed, err))
		}
	})
}

func (s *session) closeErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *session) readLoop() {
	lr := newLineReader(s.conn, s.c.opts.MaxLineSize)
	for {
		_ = s.conn.SetReadDeadline(time.Now().Add(s.c.opts.ReadTimeout))
		line, err := lr.ReadLine()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				err = fmt.Errorf("%w: no line for %v", ErrSilent, s.c.opts.ReadTimeout)
			}
			s.close(err)
			return
		}
		if len(strings.TrimSpace(string(line))) == 0 {
			continue
		}
		m, err := DecodeLine(line)
		if err != nil {
			s.mu.Lock()
			s.garbage++
			n := s.garbage
			s.mu.Unlock()
			s.logGarbage.Warn(s.log, "ignoring a line that is not a stratum message", "event", "pool.garbage", "err", err)
			if n > 100 {
				s.close(errors.New("pool sends garbage: over 100 undecodable lines"))
				return
			}
			continue
		}
		s.handle(m)
	}
}

// monitor times out submits and judges the pool's health. One goroutine per
// session, whatever the share rate.
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
		case now := <-t.C:
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

func (s *session) write(b []byte) error {
	return s.writeWithin(b, s.c.opts.CallTimeout+5*time.Second)
}

// submitWriteTimeout bounds how long a device thread may wait to hand a
// share to the socket: a pool that leaves a one-line submit unread this long
// has stopped reading, and the connection is dropped rather than stall the
// device.
const submitWriteTimeout = time.Second

func (s *session) writeWithin(b []byte, d time.Duration) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	select {
	case <-s.done:
		return ErrSessionClosed
	default:
	}
	_ = s.conn.SetWriteDeadline(time.Now().Add(d))
	_, err := s.conn.Write(b)
	if err != nil {
		s.close(fmt.Errorf("write: %w", err))
	}
	return err
}

// send writes a request and registers its waiter.
func (s *session) send(method string, params []any) (*call, uint64, error) {
	return s.sendCall(&call{method: method, ch: make(chan *Message, 1)}, params)
}

func (s *session) sendCall(cl *call, params []any) (*call, uint64, error) {
	s.mu.Lock()
	select {
	case <-s.done:
		s.mu.Unlock()
		return nil, 0, ErrSessionClosed
	default:
	}
	s.nextID++
	id := s.nextID
	s.pending[id] = cl
	s.mu.Unlock()
	b, err := wire.EncodeRequest(id, cl.method, params)
	if err == nil {
		d := s.c.opts.CallTimeout + 5*time.Second
		if cl.submit {
			d = submitWriteTimeout
		}
		err = s.writeWithin(b, d)
	}
	if err != nil {
		s.mu.Lock()
		_, still := s.pending[id]
		delete(s.pending, id)
		s.mu.Unlock()
		if !still && cl.cb != nil {
			// close() (run by the failed write, or racing it) has already
			// answered the callback: reporting the error too would answer
			// it twice.
			return cl, id, nil
		}
		return nil, 0, err
	}
	return cl, id, nil
}

// retire stops the session's jobs from reaching the consumer.
func (s *session) retire() {
	s.mu.Lock()
	s.retired = true
	s.mu.Unlock()
}

// drain waits, up to d, until no submit awaits a verdict, so that leaving a
// pool by choice does not turn shares it accepts into lost ones.
func (s *session) drain(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		s.mu.Lock()
		n := s.inflight
		s.mu.Unlock()
		if n == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-s.done:
			return
		case <-t.C:
			return
		case <-tick.C:
		}
	}
}

func (s *session) forget(id uint64) {
	s.mu.Lock()
	delete(s.pending, id)
	s.mu.Unlock()
}

// wait waits for the reply to a call, the timeout, ctx or the end of the
// session.
func (s *session) wait(ctx context.Context, cl *call, id uint64, timeout time.Duration) (*Message, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case m := <-cl.ch:
		return m, nil
	case <-t.C:
		s.forget(id)
		return nil, fmt.Errorf("%w: %s after %v", ErrTimeout, cl.method, timeout)
	case <-ctx.Done():
		s.forget(id)
		return nil, ctx.Err()
	case <-s.done:
		if err := s.closeErr(); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrSessionClosed, err)
		}
		return nil, ErrSessionClosed
	}
}

func (s *session) respond(id json.RawMessage, result any, rpcErr *wire.Error) {
	b, err := wire.EncodeResponse(id, result, rpcErr)
	if err == nil {
		_ = s.write(b)
	}
}

func (s *session) handle(m *Message) {
	if m.Kind == KindResponse {
		s.handleResponse(m)
		return
	}
	switch m.Method {
	case MethodNotify:
		s.onNotify(m.Params)
	case MethodSetDifficulty:
		d, err := ParseDifficulty(m.Params)
		if err != nil {
			s.logJob.Warn(s.log, "ignoring set_difficulty", "event", "pool.bad_message", "err", err)
			break
		}
		s.onDifficulty(d)
	case MethodSetExtranonce:
		en1, size, err := ParseSetExtranonce(m.Params)
		if err != nil {
			s.logJob.Warn(s.log, "ignoring set_extranonce", "event", "pool.bad_message", "err", err)
			break
		}
		s.mu.Lock()
		if size == 0 {
			size = s.en2size
			if s.pendingEN != nil {
				size = s.pendingEN.size
			}
		}
		s.pendingEN = &pendingExtranonce{en1: en1, size: size}
		s.mu.Unlock()
		s.logJob.Info(s.log, "pool changed extranonce; applies from the next job", "event", "pool.extranonce", "extranonce1", en1, "extranonce2_size", size)
		if m.Kind == KindRequest {
			s.respond(m.ID, true, nil)
		}
	case MethodSetVersionMask:
		mask, err := ParseVersionMask(m.Params)
		if err != nil {
			s.logJob.Warn(s.log, "ignoring set_version_mask", "event", "pool.bad_message", "err", err)
			break
		}
		s.setMask(mask, s.isRolling())
	case MethodReconnect:
		r, err := ParseReconnect(m.Params)
		if err != nil {
			s.logJob.Warn(s.log, "ignoring client.reconnect", "event", "pool.bad_message", "err", err)
			break
		}
		s.onReconnect(r)
	case MethodShowMessage:
		s.logMessage.Info(s.log, "message from pool", "event", "pool.message", "text", clip(ParseShowMessage(m.Params)))
		if m.Kind == KindRequest {
			s.respond(m.ID, true, nil)
		}
	case MethodGetVersion:
		if m.Kind == KindRequest {
			s.respond(m.ID, s.c.opts.UserAgent, nil)
		}
	case MethodPing:
		if m.Kind == KindRequest {
			s.respond(m.ID, "pong", nil)
		}
	default:
		s.log.Debug("unknown method from pool", "event", "pool.unknown_method", "method", clip(m.Method))
		if m.Kind == KindRequest {
			s.respond(m.ID, nil, wire.NewError(wire.CodeMethodNotFound, "Method '"+clip(m.Method)+"' not found"))
		}
	}
}

func (s *session) isRolling() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rolling
}

func (s *session) handleResponse(m *Message) {
	id, ok := m.NumID()
	s.mu.Lock()
	cl := s.pending[id]
	if ok && cl != nil {
		delete(s.pending, id)
		if cl.submit {
			s.onSubmitReplyLocked(cl, m)
		}
	}
	s.mu.Unlock()
	if !ok || cl == nil {
		s.log.Debug("reply to an unknown or expired call", "event", "pool.unknown_reply", "id", clip(string(m.ID)))
		return
	}
	if cl.cb != nil {
		cl.cb(m, nil)
		return
	}
	switch cl.method {
	case MethodAuthorize:
		if IsTrue(m.Result) {
			s.mu.Lock()
			s.authOK = true
			s.mu.Unlock()
		}
	case MethodSubscribe:
		if e := ParseError(m.Error, m.RejectReason); e != nil && !IsTrue(m.Result) {
			cl.subErr = e
			break
		}
		r, err := ParseSubscribeResult(m.Result)
		if err != nil {
			cl.subErr = err
			break
		}
		cl.sub = &r
		s.applySubscribe(r)
	case MethodConfigure:
		if rolling, mask, err := ParseConfigureResult(m.Result); err != nil {
			s.log.Warn("bad mining.configure reply; version rolling off", "event", "pool.configure_failed", "err", err)
		} else if rolling {
			s.setMask(mask, true)
		}
	}
	cl.ch <- m
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
func (s *session) onSubmitReplyLocked(cl *call, m *Message) {
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
	s.health.Answered(time.Now(), v, s.oldestPendingSubmitLocked)
}

func (s *session) applySubscribe(r SubscribeResult) {
	s.mu.Lock()
	s.subscribed = true
	s.en1, s.en2size = r.Extranonce1, r.Extranonce2Size
	s.sessionID = r.SessionID
	queued := s.queued
	s.queued = nil
	s.mu.Unlock()
	for _, q := range queued {
		s.onNotify(q)
	}
}

// jobIDRoundTrips reports whether a job id survives being echoed back: a
// JSON string that held invalid UTF-8 or a lone surrogate decodes to U+FFFD
// and would be sent back rewritten, so every share for it is rejected.
func jobIDRoundTrips(id string) bool {
	return utf8.ValidString(id) && !strings.ContainsRune(id, utf8.RuneError)
}

func (s *session) onNotify(raw json.RawMessage) {
	p, err := ParseNotify(raw)
	if err != nil {
		s.logJob.Warn(s.log, "ignoring bad mining.notify", "event", "pool.job_refused", "err", err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.subscribed {
		if len(s.queued) >= 8 {
			s.queued = s.queued[1:]
		}
		s.queued = append(s.queued, raw)
		return
	}
	if s.pendingEN != nil {
		s.en1, s.en2size = s.pendingEN.en1, s.pendingEN.size
		s.pendingEN = nil
	}
	// A prevhash change is a new block whatever the flag says (cgminer does
	// the same): hashing on the old one only makes stale shares.
	clean := p.CleanJobs || s.prevHash != "" && !strings.EqualFold(s.prevHash, p.PrevHash)
	refuse := func(msg string, kv ...any) {
		s.logJob.Warn(s.log, msg, append(kv, "event", "pool.job_refused", "job", fmt.Sprintf("%q", clip(p.JobID)))...)
		if clean && !s.probe {
			// The pool moved on to a job we cannot mine: everything we hold
			// is stale, so stop rather than hash for rejects.
			s.prevHash = p.PrevHash
			s.led.Reset()
			s.latest = nil
			if s.authorized && !s.retired {
				s.c.noWork("the pool's new job is unusable: " + msg)
			}
		}
	}
	if !jobIDRoundTrips(p.JobID) {
		refuse("refusing a job whose id cannot be sent back unchanged (not valid UTF-8)")
		return
	}
	space := s.en1 + "/" + fmt.Sprint(s.en2size)
	var known *ledger.Entry
	if !s.probe {
		known = s.led.Lookup(space, p.JobID)
	}
	// The difficulty this notify is judged at: the highest in force since
	// the previous notify (stratum/PROTOCOL.md#difficulty). A lowering therefore applies
	// from the second job after it, which is what ckpool enforces; a raise
	// applies at once (onDifficulty). A job the pool sends again keeps what
	// it was judged at, and does not count as the next job: only a new job
	// moves the window on.
	judged := math.Max(s.accDiff, s.diff)
	if known != nil {
		judged = math.Max(judged, known.Difficulty())
	}
	p.Extranonce1, p.Extranonce2Size, p.Difficulty = s.en1, s.en2size, judged
	wj, err := work.NewJob(p)
	if err != nil {
		refuse("ignoring invalid job from pool", "err", err)
		return
	}
	s.notifies++
	if known == nil {
		s.accDiff = s.diff
	}
	if s.probe {
		return
	}
	entry, err := s.led.Job(space, p.JobID, s.en2size, judged)
	if err != nil {
		refuse("ignoring job the ledger cannot hold", "err", err)
		return
	}
	s.prevHash = p.PrevHash
	if clean {
		s.led.Retain(p.JobID)
	}
	j := s.newJobLocked(wj, entry, clean)
	s.latest = j
	if s.authorized {
		s.emitLocked(j)
	}
}

func (s *session) newJobLocked(wj *work.Job, entry *ledger.Entry, clean bool) *source.Job {
	var mask uint32
	if s.rolling {
		mask = s.mask
	}
	return &source.Job{Job: wj, Entry: entry, Pool: s.pool, PoolURL: s.url.String(), Session: s.id, Worker: s.worker,
		RollingMask: mask, Clean: clean, Received: time.Now()}
}

// emitLocked hands a job to the consumer. The first job of a session says
// Clean: work from another connection cannot be submitted here (its
// ledger entries stay, so a resumed session continues where it stopped).
func (s *session) emitLocked(j *source.Job) {
	if s.retired {
		return
	}
	if !s.emittedAny {
		j.Clean = true
		s.emittedAny = true
	}
	s.c.emitJob(j)
}

// onDifficulty stamps the new value on later jobs. A raise also applies to
// every job the pool holds (public-pool enforces it at once): their ledger
// entries are raised and the latest job is re-issued with the harder target,
// continuing from the same position. A lowering changes nothing already sent:
// the pool may judge current and next jobs at the old value (ckpool does).
func (s *session) onDifficulty(d float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.notifies == 0 {
		s.accDiff = d // nothing judged yet: the value before any job does not count
	} else {
		s.accDiff = math.Max(s.accDiff, d)
	}
	s.diff = d
	if s.probe {
		return
	}
	s.led.RaiseDifficulty(d)
	if s.latest == nil || d <= s.latest.Difficulty || !s.latest.Entry.Live() {
		return
	}
	// Re-issue by copy: the header fields are the job's, only the target
	// changes, so a stream of set_difficulty costs no re-parse of the job.
	wj := *s.latest.Job
	wj.Difficulty = s.latest.Entry.Difficulty()
	t, err := work.TargetForDifficulty(wj.Difficulty)
	if err != nil {
		return
	}
	wj.ShareTarget = t
	j := s.newJobLocked(&wj, s.latest.Entry, false)
	j.RollingMask = s.latest.RollingMask
	s.latest = j
	if s.authorized {
		s.emitLocked(j)
	}
}

// setMask applies a granted mask at once and re-issues the latest job with
// it; the ledger moves that job to a fresh extranonce2, so no version is
// hashed twice.
func (s *session) setMask(granted uint32, rolling bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !rolling {
		s.log.Debug("set_version_mask without negotiated rolling; ignored", "event", "pool.bad_message", "mask", fmt.Sprintf("%08x", granted))
		return
	}
	s.rolling = true
	s.mask = work.RollingMask(granted)
	if s.latest != nil && s.latest.RollingMask != s.mask {
		j := *s.latest
		j.RollingMask = s.mask
		j.Clean = false
		j.Received = time.Now()
		s.latest = &j
		if s.authorized {
			s.emitLocked(&j)
		}
	}
}

func (s *session) onReconnect(r Reconnect) {
	s.mu.Lock()
	authorized := s.authorized
	if !authorized && s.authOK && !s.probe {
		// Accepted but not yet live: ready() obeys it (see authOK).
		s.deferredReconnect = &r
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	if !authorized {
		// A pool may only move a worker it accepted; before that the request
		// is a redirect loop or a man in the middle.
		s.logJob.Warn(s.log, "ignoring client.reconnect before the worker is authorized", "event", "pool.reconnect_refused")
		return
	}
	// A null host or port means "unchanged": the connection's own, which
	// after an earlier redirect is not the configured one. (The host used to
	// come from the configured URL while the port came from the connection,
	// so reconnect(null, P) after a redirect mixed the two.)
	cur, curPort, _ := net.SplitHostPort(s.addr)
	host := r.Host
	if host == "" {
		host = cur
	}
	port := r.Port
	if port == "" {
		port = curPort
	}
	if !s.pc.AllowReconnectAnyDomain && !sameDomain(cur, host) && !sameDomain(s.url.Host, host) {
		s.logJob.Warn(s.log, "refusing client.reconnect to another domain", "event", "pool.reconnect_refused", "to", net.JoinHostPort(host, port))
		return
	}
	s.log.Debug("client.reconnect target", "event", "pool.reconnect_target", "to", net.JoinHostPort(host, port), "wait_s", r.Wait)
	s.mu.Lock()
	s.reconnect = &Reconnect{Host: host, Port: port, Wait: r.Wait}
	s.mu.Unlock()
	s.close(ErrReconnectRequested)
}

func (s *session) reconnectReq() *Reconnect {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reconnect
}

// sameDomain compares the last two labels of host names (cgminer's rule);
// IP addresses must be equal.
func sameDomain(a, b string) bool {
	a, b = strings.ToLower(strings.TrimSuffix(a, ".")), strings.ToLower(strings.TrimSuffix(b, "."))
	if a == b {
		return true
	}
	if net.ParseIP(a) != nil || net.ParseIP(b) != nil {
		return false
	}
	return baseDomain(a) == baseDomain(b) && baseDomain(a) != ""
}

func baseDomain(h string) string {
	labels := strings.Split(h, ".")
	if len(labels) < 2 {
		return h
	}
	return strings.Join(labels[len(labels)-2:], ".")
}

// handshake runs configure (pipelined), subscribe (with resume), authorize
// and the optional calls.
func (s *session) handshake(ctx context.Context, resumeID string) error {
	o := &s.c.opts
	var cfgCall *call
	var cfgID uint64
	var cfgSent time.Time
	if s.pc.VersionRolling {
		var err error
		cfgCall, cfgID, err = s.send(MethodConfigure, []any{
			[]any{"version-rolling"},
			map[string]any{"version-rolling.mask": fmt.Sprintf("%08x", work.BIP320Mask), "version-rolling.min-bit-count": 2},
		})
		if err != nil {
			return err
		}
		cfgSent = time.Now()
	}
	sub, err := s.subscribe(ctx, resumeID)
	// Subscribing again without the id is for a pool that answered and
	// refused the resume; one that did not answer at all is failing, and
	// waiting for it twice kept the miner off the next pool.
	if err != nil && resumeID != "" && !errors.Is(err, ErrSessionClosed) && !errors.Is(err, ErrTimeout) && ctx.Err() == nil {
		s.log.Info("session resume refused; subscribing afresh", "event", "pool.resume_refused", "err", err)
		sub, err = s.subscribe(ctx, "")
	}
	if err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	s.log.Debug("subscribed", "event", "pool.subscribed", "extranonce1", sub.Extranonce1, "extranonce2_size", sub.Extranonce2Size)
	if sub.Extranonce2Size > 8 {
		s.log.Warn("pool extranonce2_size is above 8; many miners cannot handle it", "event", "pool.extranonce", "size", sub.Extranonce2Size)
	}
	cl, id, err := s.send(MethodAuthorize, []any{s.pc.User, s.pc.Pass})
	if err != nil {
		return fmt.Errorf("authorize: %w", err)
	}
	m, err := s.wait(ctx, cl, id, o.HandshakeTimeout)
	if err != nil {
		return fmt.Errorf("authorize: %w", err)
	}
	if !IsTrue(m.Result) {
		reason := "result is not true"
		if e := ParseError(m.Error, m.RejectReason); e != nil {
			reason = e.Error()
		}
		return fmt.Errorf("%w %q: %s", ErrAuthorize, s.pc.User, reason)
	}
	if cfgCall != nil {
		left := o.CallTimeout - time.Since(cfgSent)
		if left < 0 {
			left = 0
		}
		if _, err := s.wait(ctx, cfgCall, cfgID, left+time.Millisecond); err != nil {
			if ctx.Err() != nil || errors.Is(err, ErrSessionClosed) {
				return err
			}
			s.log.Warn("pool did not answer mining.configure; version rolling off", "event", "pool.configure_failed", "err", err)
		}
	}
	return nil
}

// ready marks the session authorized and live: the latest job goes out,
// then the optional calls. The client makes the session live first, so a
// consumer can submit on the first job it gets.
func (s *session) ready() {
	s.mu.Lock()
	s.authorized = true
	s.authorizeAt = time.Now()
	s.offeredSince = s.authorizeAt
	if s.latest != nil {
		s.emitLocked(s.latest)
	}
	deferred := s.deferredReconnect
	s.deferredReconnect = nil
	s.mu.Unlock()
	if deferred != nil {
		s.onReconnect(*deferred)
	}
	s.authorizeWorkers(s.c.workerKeys())
	if s.pc.ExtranonceSubscribe {
		s.optional(MethodExtranonceSubscribe, []any{})
	}
	if s.pc.SuggestDifficulty > 0 {
		s.optional(MethodSuggestDifficulty, []any{s.pc.SuggestDifficulty})
	}
}

func (s *session) subscribe(ctx context.Context, resumeID string) (*SubscribeResult, error) {
	params := []any{s.c.opts.UserAgent}
	if resumeID != "" {
		params = append(params, resumeID)
	}
	cl, id, err := s.send(MethodSubscribe, params)
	if err != nil {
		return nil, err
	}
	if _, err := s.wait(ctx, cl, id, s.c.opts.HandshakeTimeout); err != nil {
		return nil, err
	}
	if cl.subErr != nil {
		return nil, cl.subErr
	}
	return cl.sub, nil
}

// optional sends a call that pools may ignore; its reply (or silence) is
// only logged. Nobody waits on it: the reader, the monitor or close answers
// its callback, so it may be sent from any goroutine at any time.
func (s *session) optional(method string, params []any) {
	now := time.Now()
	cl := &call{method: method, sent: now, deadline: now.Add(s.c.opts.CallTimeout)}
	cl.cb = func(m *Message, err error) {
		switch {
		case err != nil:
			s.log.Debug("optional call got no reply", "event", "pool.optional_call", "method", method, "err", err)
		case !IsTrue(m.Result):
			s.log.Debug("pool declined optional call", "event", "pool.optional_call", "method", method, "err", ParseError(m.Error, m.RejectReason))
		}
	}
	_, _, _ = s.sendCall(cl, params)
}

// submitAsync sends a share and calls done exactly once with the verdict:
// from the reader, the monitor (timeout) or close. At most MaxInFlight
// shares wait at once; beyond that done gets ErrThrottled at once and
// nothing is sent.
func (s *session) submitAsync(sub work.Submit, entry *ledger.Entry, done func(SubmitResult, error)) {
	if sub.Worker == "" {
		sub.Worker = s.worker
	}
	params := sub.Params()
	now := time.Now()
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
		done(submitVerdict(m, time.Since(now)), nil)
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

func (s *session) currentDiff() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.diff
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

func (s *session) snapshot() (diff float64, mask uint32, en1 string, en2size int, inflight int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rolling {
		mask = s.mask
	}
	return s.diff, mask, s.en1, s.en2size, s.inflight
}

// pendingExtranonce is a mining.set_extranonce that applies from the next job.
type pendingExtranonce struct {
	en1  string
	size int
}

// subWorker is one sub-worker's authorize on one connection.
type subWorker struct {
	name   string
	state  string
	reason string
	done   chan struct{} // closed once the pool answered (or did not in time)
}

// authorizeWorkers sends mining.authorize for each key not yet asked on this
// connection. Nobody waits: the reply (or the timeout) sets the state, and
// until it is authorized the key's shares go under the pool user.
func (s *session) authorizeWorkers(keys []string) {
	for _, key := range keys {
		name := s.c.opts.WorkerName(s.pc.User, key)
		s.mu.Lock()
		if s.subWorkers == nil {
			s.subWorkers = map[string]*subWorker{}
		}
		if s.subWorkers[key] != nil {
			s.mu.Unlock()
			continue
		}
		w := &subWorker{name: name, state: WorkerPending, done: make(chan struct{})}
		s.subWorkers[key] = w
		s.mu.Unlock()
		now := time.Now()
		cl := &call{method: MethodAuthorize, sent: now, deadline: now.Add(s.c.opts.HandshakeTimeout)}
		cl.cb = func(m *Message, err error) {
			reason := ""
			switch {
			case err != nil:
				reason = err.Error()
			case !IsTrue(m.Result):
				reason = "result is not true"
				if e := ParseError(m.Error, m.RejectReason); e != nil {
					reason = e.Error()
				}
			}
			s.mu.Lock()
			if reason == "" {
				w.state = WorkerAuthorized
			} else {
				w.state, w.reason = WorkerRefused, reason
			}
			close(w.done)
			s.mu.Unlock()
			if reason != "" && !errors.Is(err, ErrSessionClosed) {
				s.log.Warn("pool refused a sub-worker; its shares go under the pool user", "event", "pool.worker_refused",
					"worker", name, "user", s.pc.User, "err", reason)
			} else if reason == "" {
				s.log.Debug("sub-worker authorized", "event", "pool.worker_authorized", "worker", name)
			}
		}
		if _, _, err := s.sendCall(cl, AuthorizeParams(name, s.pc.Pass)); err != nil {
			return
		}
	}
}

// workerName is the name to submit key's shares under on this connection:
// only once the pool accepted it.
func (s *session) workerName(key string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w := s.subWorkers[key]; w != nil && w.state == WorkerAuthorized {
		return w.name, true
	}
	return "", false
}

// forgetWorker drops key from this connection: its shares go under the
// pool user. (The pool keeps it authorized; Stratum has no way back.)
func (s *session) forgetWorker(key string) {
	s.mu.Lock()
	delete(s.subWorkers, key)
	s.mu.Unlock()
}

// workerDone is closed once the pool answered key's authorize here; nil
// when it was never asked on this connection.
func (s *session) workerDone(key string) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w := s.subWorkers[key]; w != nil {
		return w.done
	}
	return nil
}

func (s *session) workerStatus(key string) (string, string, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w := s.subWorkers[key]; w != nil {
		return w.name, w.state, w.reason
	}
	return s.c.opts.WorkerName(s.pc.User, key), WorkerPending, ""
}
