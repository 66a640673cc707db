package stratum

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/charmbracelet/log"

	"clminer/work"
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
	errReturnToPrimary    = errors.New("stratum: returning to a higher-priority pool")
)

var sessionCounter atomic.Uint64

const maxKeptJobs = 32

type call struct {
	method string
	ch     chan *Message
	sub    *SubscribeResult // parsed by the reader for subscribe replies
	subErr error
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
	rolling     bool
	granted     uint32
	mask        uint32
	queued      []json.RawMessage
	jobs        map[string]work.JobParams
	latest      *Job
	prevHash    string
	emittedAny  bool
	sessionID   string
	garbage     int
	reconnect   *Reconnect
	authorizeAt time.Time

	done      chan struct{}
	closeOnce sync.Once
	err       error
	wg        sync.WaitGroup
}

func newSession(c *Client, pool int, pc PoolConfig, u PoolURL, addr string, conn net.Conn) *session {
	id := sessionCounter.Add(1)
	return &session{
		c: c, id: id, pool: pool, pc: pc, url: u, addr: addr, conn: conn, worker: pc.User,
		log:     c.log.With("pool", u.String(), "session", id),
		pending: map[uint64]*call{},
		diff:    1,
		jobs:    map[string]work.JobParams{},
		done:    make(chan struct{}),
	}
}

func (s *session) start() {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.readLoop()
	}()
}

// close ends the session with err (the first error wins) and wakes every
// waiter.
func (s *session) close(err error) {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.err = err
		s.mu.Unlock()
		close(s.done)
		s.conn.Close()
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
				err = fmt.Errorf("no line from the pool for %v: %w", s.c.opts.ReadTimeout, err)
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
			s.log.Warn("ignoring a line that is not a stratum message", "err", err)
			if n > 100 {
				s.close(errors.New("pool sends garbage: over 100 undecodable lines"))
				return
			}
			continue
		}
		s.handle(m)
	}
}

func (s *session) write(b []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	select {
	case <-s.done:
		return ErrSessionClosed
	default:
	}
	_ = s.conn.SetWriteDeadline(time.Now().Add(s.c.opts.CallTimeout + 5*time.Second))
	_, err := s.conn.Write(b)
	if err != nil {
		s.close(fmt.Errorf("write: %w", err))
	}
	return err
}

// send writes a request and registers its waiter.
func (s *session) send(method string, params []any) (*call, uint64, error) {
	s.mu.Lock()
	s.nextID++
	id := s.nextID
	cl := &call{method: method, ch: make(chan *Message, 1)}
	s.pending[id] = cl
	s.mu.Unlock()
	b, err := encodeRequest(id, method, params)
	if err == nil {
		err = s.write(b)
	}
	if err != nil {
		s.forget(id)
		return nil, 0, err
	}
	return cl, id, nil
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

func (s *session) respond(id json.RawMessage, result any, rpcErr any) {
	b, err := encodeResponse(id, result, rpcErr)
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
			s.log.Warn("ignoring set_difficulty", "err", err)
			break
		}
		s.onDifficulty(d)
	case MethodSetExtranonce:
		en1, size, err := ParseSetExtranonce(m.Params)
		if err != nil {
			s.log.Warn("ignoring set_extranonce", "err", err)
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
		s.log.Info("pool changed extranonce; applies from the next job", "extranonce1", en1, "extranonce2_size", size)
		if m.Kind == KindRequest {
			s.respond(m.ID, true, nil)
		}
	case MethodSetVersionMask:
		mask, err := ParseVersionMask(m.Params)
		if err != nil {
			s.log.Warn("ignoring set_version_mask", "err", err)
			break
		}
		s.setMask(mask, s.isRolling())
	case MethodReconnect:
		r, err := ParseReconnect(m.Params)
		if err != nil {
			s.log.Warn("ignoring client.reconnect", "err", err)
			break
		}
		s.onReconnect(r)
	case MethodShowMessage:
		s.log.Info("message from pool", "text", ParseShowMessage(m.Params))
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
		s.log.Debug("unknown method from pool", "method", clip(m.Method))
		if m.Kind == KindRequest {
			s.respond(m.ID, nil, []any{-3, "Method '" + clip(m.Method) + "' not found", nil})
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
	}
	s.mu.Unlock()
	if !ok || cl == nil {
		s.log.Debug("reply to an unknown or expired call", "id", clip(string(m.ID)))
		return
	}
	switch cl.method {
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
			s.log.Warn("bad mining.configure reply; version rolling off", "err", err)
		} else if rolling {
			s.setMask(mask, true)
		}
	}
	cl.ch <- m
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

func (s *session) onNotify(raw json.RawMessage) {
	p, err := ParseNotify(raw)
	if err != nil {
		s.log.Warn("ignoring bad mining.notify", "err", err)
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
	p.Extranonce1, p.Extranonce2Size, p.Difficulty = s.en1, s.en2size, s.diff
	wj, err := work.NewJob(p)
	if err != nil {
		s.log.Warn("ignoring invalid job from pool", "job", clip(p.JobID), "err", err)
		return
	}
	prevChanged := s.prevHash != "" && !strings.EqualFold(s.prevHash, p.PrevHash)
	clean := p.CleanJobs || prevChanged
	s.prevHash = p.PrevHash
	if clean || len(s.jobs) >= maxKeptJobs {
		s.jobs = map[string]work.JobParams{}
	}
	s.jobs[p.JobID] = p
	j := s.newJobLocked(wj, clean)
	s.latest = j
	if s.authorized {
		s.emitLocked(j)
	}
}

func (s *session) newJobLocked(wj *work.Job, clean bool) *Job {
	var mask uint32
	if s.rolling {
		mask = s.mask
	}
	return &Job{Job: wj, Pool: s.pool, PoolURL: s.url.String(), Session: s.id, Worker: s.worker, RollingMask: mask, Clean: clean}
}

// emitLocked hands a job to the consumer; the first job of a session is
// always clean, since work from another connection is worthless here.
func (s *session) emitLocked(j *Job) {
	if !s.emittedAny {
		j.Clean = true
		s.emittedAny = true
	}
	s.c.emitJob(j)
}

// onDifficulty stamps the new value on later jobs. A lower value also
// re-issues the latest job (same id, not clean) with the lower target, so
// shares meeting it are not thrown away.
func (s *session) onDifficulty(d float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.diff = d
	if s.latest == nil || d >= s.latest.Difficulty {
		return
	}
	p, ok := s.jobs[s.latest.ID]
	if !ok {
		return
	}
	p.Difficulty = d
	wj, err := work.NewJob(p)
	if err != nil {
		return
	}
	j := s.newJobLocked(wj, false)
	j.RollingMask = s.latest.RollingMask
	s.latest = j
	if s.authorized {
		s.emitLocked(j)
	}
}

// setMask applies a granted mask at once and re-issues the latest job with
// it.
func (s *session) setMask(granted uint32, rolling bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.granted = granted
	if !rolling {
		s.log.Debug("set_version_mask without negotiated rolling; ignored", "mask", fmt.Sprintf("%08x", granted))
		return
	}
	s.rolling = true
	s.mask = work.RollingMask(granted)
	if s.latest != nil && s.latest.RollingMask != s.mask {
		j := *s.latest
		j.RollingMask = s.mask
		j.Clean = false
		s.latest = &j
		if s.authorized {
			s.emitLocked(&j)
		}
	}
}

func (s *session) onReconnect(r Reconnect) {
	host := r.Host
	if host == "" {
		host = s.url.Host
	}
	port := r.Port
	if port == "" {
		_, port, _ = net.SplitHostPort(s.addr)
	}
	cur, _, _ := net.SplitHostPort(s.addr)
	if !s.pc.AllowReconnectAnyDomain && !sameDomain(cur, host) && !sameDomain(s.url.Host, host) {
		s.log.Warn("refusing client.reconnect to another domain", "to", net.JoinHostPort(host, port))
		return
	}
	s.log.Info("pool asked to reconnect", "to", net.JoinHostPort(host, port), "wait_s", r.Wait)
	s.mu.Lock()
	s.reconnect = &Reconnect{Host: host, Port: port, Wait: r.Wait}
	s.mu.Unlock()
	s.close(ErrReconnectRequested)
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
	if err != nil && resumeID != "" && !errors.Is(err, ErrSessionClosed) && ctx.Err() == nil {
		s.log.Info("session resume refused; subscribing afresh", "err", err)
		sub, err = s.subscribe(ctx, "")
	}
	if err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	s.log.Debug("subscribed", "extranonce1", sub.Extranonce1, "extranonce2_size", sub.Extranonce2Size)
	if sub.Extranonce2Size > 8 {
		s.log.Warn("pool extranonce2_size is above 8; many miners cannot handle it", "size", sub.Extranonce2Size)
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
			s.log.Warn("pool did not answer mining.configure; version rolling off", "err", err)
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
	if s.latest != nil {
		s.emitLocked(s.latest)
	}
	s.mu.Unlock()
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
// only logged, and the session never waits on it.
func (s *session) optional(method string, params []any) {
	cl, id, err := s.send(method, params)
	if err != nil {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		m, err := s.wait(context.Background(), cl, id, s.c.opts.CallTimeout)
		switch {
		case err != nil:
			s.log.Debug("optional call got no reply", "method", method, "err", err)
		case !IsTrue(m.Result):
			s.log.Debug("pool declined optional call", "method", method, "err", ParseError(m.Error, m.RejectReason))
		}
	}()
}

func (s *session) submit(ctx context.Context, sub work.Submit) (SubmitResult, error) {
	if sub.Worker == "" {
		sub.Worker = s.worker
	}
	params := sub.Params()
	s.mu.Lock()
	rolling := s.rolling
	s.mu.Unlock()
	if !rolling && len(params) > 5 {
		params = params[:5]
	}
	start := time.Now()
	cl, id, err := s.send(MethodSubmit, params)
	if err != nil {
		if errors.Is(err, ErrSessionClosed) {
			return SubmitResult{}, ErrStaleSession
		}
		return SubmitResult{}, err
	}
	m, err := s.wait(ctx, cl, id, s.c.opts.SubmitTimeout)
	if err != nil {
		return SubmitResult{}, err
	}
	res := SubmitResult{RTT: time.Since(start)}
	if IsTrue(m.Result) {
		res.Accepted = true
		return res, nil
	}
	if e := ParseError(m.Error, m.RejectReason); e != nil {
		res.Code, res.Reason = e.Code, e.Message
	} else {
		res.Reason = "rejected without a reason (result " + clip(string(m.Result)) + ")"
		if len(m.Result) == 0 {
			res.Reason = "rejected without a reason (no result)"
		}
	}
	return res, nil
}

func (s *session) snapshot() (diff float64, mask uint32, en1 string, en2size int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rolling {
		mask = s.mask
	}
	return s.diff, mask, s.en1, s.en2size
}

// pendingExtranonce is a mining.set_extranonce that applies from the next job.
type pendingExtranonce struct {
	en1  string
	size int
}
