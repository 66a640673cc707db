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

	"clminer/stratum/wire"
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

// session is one connection to one pool. The reader goroutine owns all
// protocol state changes; the handshake and Submit only send calls and wait.
type session struct {
	// fixed when the session is made
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

	mu sync.Mutex // guards the groups below, up to the lifecycle

	// the call table (session_calls.go)
	nextID  uint64
	pending map[uint64]*call

	// handshake and liveness (session_handshake.go)
	subscribed  bool
	authorized  bool
	sessionID   string
	authorizeAt time.Time
	// authOK: the reader has seen a true authorize reply. A client.reconnect
	// read after it but before ready() (the pool sent both in one segment)
	// is kept in deferredReconnect and obeyed by ready(): the pool accepted
	// the worker, so the redirect is legitimate, and ignoring it depended on
	// goroutine scheduling.
	authOK            bool
	retired           bool // being left by choice: its jobs go nowhere
	deferredReconnect *Reconnect

	// jobs and difficulty (session_jobs.go)
	en1        string
	en2size    int
	pendingEN  *pendingExtranonce // set_extranonce waiting for the next notify
	diff       float64
	accDiff    float64 // highest difficulty in force since the previous notify
	notifies   int
	rolling    bool
	mask       uint32
	queued     []json.RawMessage
	latest     *source.Job
	prevHash   string
	emittedAny bool

	// the pool's other messages (session_messages.go)
	garbage   int
	reconnect *Reconnect

	// subWorkers: each sub-worker key's authorize on this connection
	// (subworkers.go).
	subWorkers map[string]*subWorker

	// submit accounting and health (session_submit.go, session_health.go)
	inflight     int
	health       health.Tracker // the pool's submits, judged by the client's rule
	offered      uint64         // shares handed to submitAsync, for suggest_difficulty
	offeredSince time.Time
	lastSuggest  time.Time

	logGarbage, logMessage, logJob, logThrottle *ratelog.Log

	// lifecycle
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
		// A socket deadline is kept by the kernel on the real clock, not
		// Options.Now: a test fabricates silence with a short ReadTimeout.
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
		m, err := wire.Decode(line)
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

func (s *session) respond(id json.RawMessage, result any, rpcErr *wire.Error) {
	b, err := wire.EncodeResponse(id, result, rpcErr)
	if err == nil {
		_ = s.write(b)
	}
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

func (s *session) snapshot() (diff float64, mask uint32, en1 string, en2size int, inflight int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rolling {
		mask = s.mask
	}
	return s.diff, mask, s.en1, s.en2size, s.inflight
}
