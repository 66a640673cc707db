package stratum

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/charmbracelet/log"

	"clminer/work"
)

// Version is the miner version sent in the user agent ("clminer/<Version>");
// set it at link time with -ldflags "-X clminer/stratum.Version=...".
var Version = "dev"

// PoolConfig is one pool of the ordered failover list.
type PoolConfig struct {
	URL         string // stratum+tcp://host:port, stratum+tls://, stratum+ssl://
	User        string
	Pass        string
	TLSInsecure bool   // skip certificate verification
	Fingerprint string // SHA-256 of the pool certificate (hex, colons allowed); checked instead of the CA chain
	// VersionRolling asks for BIP 310 version rolling with mining.configure.
	VersionRolling bool
	// ExtranonceSubscribe sends mining.extranonce.subscribe (NiceHash).
	ExtranonceSubscribe bool
	// SuggestDifficulty, when > 0, is sent with mining.suggest_difficulty
	// after authorize.
	SuggestDifficulty float64
	// AllowReconnectAnyDomain lets client.reconnect move to another domain.
	AllowReconnectAnyDomain bool
}

// String prints the pool without its password, so a config can be logged.
func (p PoolConfig) String() string {
	return fmt.Sprintf("%s user=%s pass=<redacted> tls_insecure=%v pinned=%v rolling=%v", p.URL, p.User, p.TLSInsecure, p.Fingerprint != "", p.VersionRolling)
}

// Options tune the client; zero values get the defaults in brackets.
type Options struct {
	Dialer           Dialer        // [net.Dialer with DialTimeout and TCP keepalive]
	Logger           *log.Logger   // [discard]
	ReadTimeout      time.Duration // no line for this long => connection dead [120 s]
	DialTimeout      time.Duration // TCP connect plus TLS handshake [10 s]
	CallTimeout      time.Duration // optional calls (configure, extranonce.subscribe, ...) [5 s]
	HandshakeTimeout time.Duration // subscribe and authorize replies [30 s]
	SubmitTimeout    time.Duration // mining.submit reply [30 s]
	HoldDown         time.Duration // a higher-priority pool must be reachable this long before we return to it [60 s]
	BackoffMin       time.Duration // first retry delay of a failing pool [1 s]
	BackoffMax       time.Duration // cap of the doubling delay [60 s]
	MaxLineSize      int           // bytes; a longer line drops the connection [64 KiB]
	UserAgent        string        // ["clminer/" + Version]

	// OnJob receives every job, in order, from one goroutine. A job with
	// Clean set obsoletes all earlier jobs. A job may be re-issued with the
	// same ID and Clean false when the pool lowers the difficulty or changes
	// the rolling mask: it replaces the earlier one with that ID.
	OnJob func(j *Job)
	// OnPoolState receives pool events, in order, from the same goroutine.
	OnPoolState func(PoolEvent)
}

func (o *Options) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.ReadTimeout, 120*time.Second)
	def(&o.DialTimeout, 10*time.Second)
	def(&o.CallTimeout, 5*time.Second)
	def(&o.HandshakeTimeout, 30*time.Second)
	def(&o.SubmitTimeout, 30*time.Second)
	def(&o.HoldDown, 60*time.Second)
	def(&o.BackoffMin, time.Second)
	def(&o.BackoffMax, 60*time.Second)
	if o.BackoffMax < o.BackoffMin {
		o.BackoffMax = o.BackoffMin
	}
	if o.MaxLineSize <= 0 {
		o.MaxLineSize = 64 << 10
	}
	if o.UserAgent == "" {
		o.UserAgent = "clminer/" + Version
	}
	if o.Logger == nil {
		o.Logger = log.New(io.Discard)
	}
	if o.Dialer == nil {
		o.Dialer = defaultDialer(o.DialTimeout)
	}
}

// Job is a work.Job with where it came from. Shares for it go through
// Client.Submit, which only sends them on the connection that sent the job.
type Job struct {
	*work.Job
	Pool        int    // index in the pool list
	PoolURL     string // pool URL (without credentials)
	Session     uint64 // unique id of the connection that sent the job
	Worker      string
	RollingMask uint32 // work.RollingMask of the granted mask; 0 when rolling is off
	// Clean: drop all older work (clean_jobs, prevhash change, or a new
	// session or pool).
	Clean bool
}

// EventKind names a pool event.
type EventKind int

// Pool events.
const (
	EventConnecting EventKind = iota
	EventConnected
	EventAuthorized
	EventAuthFailed
	EventDisconnected
	EventFailover
	EventReconnectRequested
)

func (k EventKind) String() string {
	names := [...]string{"connecting", "connected", "authorized", "auth-failed", "disconnected", "failover", "reconnect-requested"}
	if k < 0 || int(k) >= len(names) {
		return fmt.Sprintf("event(%d)", int(k))
	}
	return names[k]
}

// PoolEvent reports a change of a pool's connection.
type PoolEvent struct {
	Kind    EventKind
	Pool    int
	URL     string
	Session uint64
	From    int // for EventFailover
	To      int // for EventFailover
	Err     error
	Time    time.Time
}

// PoolState is the state of one pool in Status.
type PoolState int

// Pool states.
const (
	StateIdle PoolState = iota
	StateConnecting
	StateActive
	StateDown
)

func (s PoolState) String() string {
	names := [...]string{"idle", "connecting", "active", "down"}
	if s < 0 || int(s) >= len(names) {
		return fmt.Sprintf("state(%d)", int(s))
	}
	return names[s]
}

// PoolStatus is a metrics snapshot of one pool.
type PoolStatus struct {
	Index           int
	URL             string
	State           PoolState
	Connects        uint64 // successful TCP/TLS connects
	Failovers       uint64 // times the client left this pool for another
	Failures        int    // consecutive failures (drives the backoff)
	LastError       string
	Difficulty      float64
	RollingMask     uint32
	Extranonce1     string
	Extranonce2Size int
	Accepted        uint64
	Rejected        uint64
}

// SubmitResult is the pool's verdict on a share.
type SubmitResult struct {
	Accepted bool
	Code     int    // error code when the pool gave one
	Reason   string // readable reject reason
	RTT      time.Duration
}

type poolRec struct {
	cfg         PoolConfig
	url         PoolURL
	addr        string // dial address; client.reconnect may change it
	resumeID    string
	state       PoolState
	fails       int
	nextAttempt time.Time
	connects    uint64
	failovers   uint64
	lastErr     string
	diff        float64
	mask        uint32
	en1         string
	en2size     int
	accepted    uint64
	rejected    uint64
}

// Client keeps one live session with the best reachable pool.
type Client struct {
	opts Options
	log  *log.Logger

	mu      sync.Mutex
	pools   []*poolRec
	live    *session
	running bool
	rnd     *rand.Rand

	evMu  sync.Mutex
	evQ   []func()
	evSig chan struct{}
}

// NewClient validates the pool list; nothing connects before Run.
func NewClient(pools []PoolConfig, opts Options) (*Client, error) {
	if len(pools) == 0 {
		return nil, errors.New("stratum: no pools configured")
	}
	opts.defaults()
	c := &Client{opts: opts, log: opts.Logger, evSig: make(chan struct{}, 1),
		rnd: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0x5eed))}
	for i, p := range pools {
		u, err := ParsePoolURL(p.URL)
		if err != nil {
			return nil, fmt.Errorf("pool %d: %w", i, err)
		}
		if p.Fingerprint != "" {
			if _, err := ParseFingerprint(p.Fingerprint); err != nil {
				return nil, fmt.Errorf("pool %d: %w", i, err)
			}
		}
		if p.User == "" {
			return nil, fmt.Errorf("pool %d (%s): user (worker name) is empty", i, u)
		}
		c.pools = append(c.pools, &poolRec{cfg: p, url: u, addr: u.Addr(), diff: 1})
	}
	return c, nil
}

// Run connects, fails over and reconnects until ctx ends; it returns ctx's
// error after every goroutine it started has finished.
func (c *Client) Run(ctx context.Context) error {
	c.mu.Lock()
	if c.running {
		c.mu.Unlock()
		return errors.New("stratum: Run is already running")
	}
	c.running = true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.running = false
		c.mu.Unlock()
	}()

	stop := make(chan struct{})
	var dwg sync.WaitGroup
	dwg.Add(1)
	go func() {
		defer dwg.Done()
		c.dispatch(stop)
	}()
	defer func() {
		close(stop)
		dwg.Wait()
	}()

	cur := -1
	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		idx, wait := c.pick()
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
			continue
		}
		if cur >= 0 && idx != cur {
			c.mu.Lock()
			c.pools[cur].failovers++
			c.mu.Unlock()
			c.log.Warn("switching pool", "from", c.pools[cur].url.String(), "to", c.pools[idx].url.String())
			c.event(PoolEvent{Kind: EventFailover, Pool: idx, URL: c.pools[idx].url.String(), From: cur, To: idx})
		}
		cur = idx
		c.runPool(ctx, idx)
	}
}

// pick returns the highest-priority pool whose backoff has expired, or how
// long to wait for the first one.
func (c *Client) pick() (int, time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	var minWait time.Duration = -1
	for i, p := range c.pools {
		w := p.nextAttempt.Sub(now)
		if w <= 0 {
			return i, 0
		}
		if minWait < 0 || w < minWait {
			minWait = w
		}
	}
	return 0, minWait
}

// backoffDelay is BackoffMin doubled per consecutive failure, capped at
// BackoffMax, with ±20% jitter (never above the cap).
func backoffDelay(fails int, min, max time.Duration, jitter float64) time.Duration {
	if fails <= 0 {
		return 0
	}
	d := min
	for i := 1; i < fails && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	d = time.Duration(float64(d) * (0.8 + 0.4*jitter))
	if d > max {
		d = max
	}
	return d
}

// failLocked records a failure and schedules the next attempt.
func (c *Client) failLocked(p *poolRec, err error) {
	p.fails++
	p.state = StateDown
	if err != nil {
		p.lastErr = err.Error()
	}
	p.nextAttempt = time.Now().Add(backoffDelay(p.fails, c.opts.BackoffMin, c.opts.BackoffMax, c.rnd.Float64()))
}

func (c *Client) runPool(ctx context.Context, idx int) {
	c.mu.Lock()
	p := c.pools[idx]
	p.state = StateConnecting
	addr, resume, pc, u := p.addr, p.resumeID, p.cfg, p.url
	c.mu.Unlock()
	c.event(PoolEvent{Kind: EventConnecting, Pool: idx, URL: u.String()})

	conn, err := dial(ctx, c.opts.Dialer, c.opts.DialTimeout, u, addr, pc)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		c.log.Warn("cannot connect to pool", "pool", u.String(), "err", err)
		c.mu.Lock()
		c.failLocked(p, fmt.Errorf("connect: %w", err))
		c.mu.Unlock()
		c.event(PoolEvent{Kind: EventDisconnected, Pool: idx, URL: u.String(), Err: err})
		return
	}
	s := newSession(c, idx, pc, u, addr, conn)
	c.mu.Lock()
	p.connects++
	c.mu.Unlock()
	c.event(PoolEvent{Kind: EventConnected, Pool: idx, URL: u.String(), Session: s.id})
	s.start()

	err = s.handshake(ctx, resume)
	if err != nil {
		s.close(err)
		s.wg.Wait()
		if ctx.Err() != nil {
			return
		}
		c.mu.Lock()
		if r := s.reconnect; r != nil {
			c.applyReconnectLocked(p, s, r)
		} else {
			c.failLocked(p, err)
		}
		c.mu.Unlock()
		kind := EventDisconnected
		if errors.Is(err, ErrAuthorize) {
			kind = EventAuthFailed
			c.log.Error("pool refused the worker", "pool", u.String(), "user", pc.User, "err", err)
		} else {
			c.log.Warn("pool handshake failed", "pool", u.String(), "err", err)
		}
		c.event(PoolEvent{Kind: kind, Pool: idx, URL: u.String(), Session: s.id, Err: err})
		return
	}

	c.mu.Lock()
	p.state = StateActive
	p.resumeID = s.sessionID
	c.live = s
	c.mu.Unlock()
	c.log.Info("pool ready", "pool", u.String(), "user", pc.User)
	c.event(PoolEvent{Kind: EventAuthorized, Pool: idx, URL: u.String(), Session: s.id})
	s.ready()

	sctx, cancel := context.WithCancel(ctx)
	back := make(chan struct{}, 1)
	var pwg sync.WaitGroup
	if idx > 0 {
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			c.probeHigher(sctx, idx, back)
		}()
	}
	select {
	case <-s.done:
		err = s.closeErr()
	case <-ctx.Done():
		err = ctx.Err()
	case <-back:
		err = errReturnToPrimary
	}
	cancel()
	pwg.Wait()
	c.mu.Lock()
	c.live = nil
	c.mu.Unlock()
	s.close(err)
	s.wg.Wait()

	diff, mask, en1, en2 := s.snapshot()
	c.mu.Lock()
	p.diff, p.mask, p.en1, p.en2size = diff, mask, en1, en2
	p.state = StateIdle
	healthy := time.Since(s.authorizeAt) >= c.opts.HoldDown
	switch {
	case ctx.Err() != nil:
	case errors.Is(err, errReturnToPrimary):
		p.fails = 0
	case s.reconnect != nil:
		c.applyReconnectLocked(p, s, s.reconnect)
	default:
		if healthy {
			// One immediate retry after a session that worked for a while.
			p.fails = 0
			p.state = StateDown
			p.lastErr = errString(err)
			p.nextAttempt = time.Now()
		} else {
			c.failLocked(p, err)
		}
	}
	c.mu.Unlock()
	if ctx.Err() == nil {
		c.log.Warn("pool connection ended", "pool", u.String(), "err", err)
	}
	c.event(PoolEvent{Kind: EventDisconnected, Pool: idx, URL: u.String(), Session: s.id, Err: err})
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func (c *Client) applyReconnectLocked(p *poolRec, s *session, r *Reconnect) {
	p.addr = net.JoinHostPort(r.Host, r.Port)
	p.fails = 0
	p.state = StateIdle
	wait := time.Duration(r.Wait) * time.Second
	if wait > c.opts.BackoffMax {
		wait = c.opts.BackoffMax
	}
	p.nextAttempt = time.Now().Add(wait)
	c.event(PoolEvent{Kind: EventReconnectRequested, Pool: s.pool, URL: p.url.String(), Session: s.id, Err: ErrReconnectRequested})
}

// probeHigher dials the pools above idx while it mines on idx; once one
// has answered every probe for HoldDown, it signals back.
func (c *Client) probeHigher(ctx context.Context, idx int, back chan<- struct{}) {
	interval := c.opts.HoldDown / 4
	if interval < 50*time.Millisecond {
		interval = 50 * time.Millisecond
	}
	if interval > 15*time.Second {
		interval = 15 * time.Second
	}
	since := make([]time.Time, idx)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		for i := 0; i < idx; i++ {
			c.mu.Lock()
			p := c.pools[i]
			due := !time.Now().Before(p.nextAttempt)
			addr, u, pc := p.addr, p.url, p.cfg
			c.mu.Unlock()
			if !due {
				since[i] = time.Time{}
				continue
			}
			conn, err := dial(ctx, c.opts.Dialer, c.opts.DialTimeout, u, addr, pc)
			if ctx.Err() != nil {
				if conn != nil {
					conn.Close()
				}
				return
			}
			if err != nil {
				since[i] = time.Time{}
				c.mu.Lock()
				c.failLocked(p, fmt.Errorf("probe: %w", err))
				c.mu.Unlock()
				continue
			}
			conn.Close()
			now := time.Now()
			if since[i].IsZero() {
				since[i] = now
			}
			if now.Sub(since[i]) >= c.opts.HoldDown {
				c.log.Info("higher-priority pool is back", "pool", u.String())
				c.mu.Lock()
				p.nextAttempt = time.Time{}
				c.mu.Unlock()
				select {
				case back <- struct{}{}:
				default:
				}
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Submit sends a share on the connection that sent j and waits for the
// verdict. If that connection is gone it returns ErrStaleSession without
// sending anything: a share is never sent to another pool. Safe for
// concurrent use.
func (c *Client) Submit(ctx context.Context, j *Job, sub work.Submit) (SubmitResult, error) {
	if j == nil {
		return SubmitResult{}, errors.New("stratum: nil job")
	}
	c.mu.Lock()
	s := c.live
	c.mu.Unlock()
	if s == nil || s.id != j.Session {
		return SubmitResult{}, ErrStaleSession
	}
	if sub.JobID == "" {
		sub.JobID = j.ID
	}
	res, err := s.submit(ctx, sub)
	if err == nil {
		c.mu.Lock()
		if res.Accepted {
			c.pools[s.pool].accepted++
		} else {
			c.pools[s.pool].rejected++
		}
		c.mu.Unlock()
	}
	return res, err
}

// Status returns a snapshot of every pool, for metrics.
func (c *Client) Status() []PoolStatus {
	c.mu.Lock()
	live := c.live
	out := make([]PoolStatus, len(c.pools))
	for i, p := range c.pools {
		out[i] = PoolStatus{Index: i, URL: p.url.String(), State: p.state, Connects: p.connects, Failovers: p.failovers,
			Failures: p.fails, LastError: p.lastErr, Difficulty: p.diff, RollingMask: p.mask, Extranonce1: p.en1,
			Extranonce2Size: p.en2size, Accepted: p.accepted, Rejected: p.rejected}
	}
	c.mu.Unlock()
	if live != nil {
		d, m, e1, e2 := live.snapshot()
		st := &out[live.pool]
		st.Difficulty, st.RollingMask, st.Extranonce1, st.Extranonce2Size = d, m, e1, e2
	}
	return out
}

func (c *Client) emitJob(j *Job) {
	if c.opts.OnJob == nil {
		return
	}
	f := c.opts.OnJob
	c.enqueue(func() { f(j) })
}

func (c *Client) event(e PoolEvent) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	if c.opts.OnPoolState == nil {
		return
	}
	f := c.opts.OnPoolState
	c.enqueue(func() { f(e) })
}

func (c *Client) enqueue(f func()) {
	c.evMu.Lock()
	c.evQ = append(c.evQ, f)
	c.evMu.Unlock()
	select {
	case c.evSig <- struct{}{}:
	default:
	}
}

// dispatch runs callbacks in order on one goroutine, so a slow consumer
// never blocks a connection's reader; on stop it drains what is queued.
func (c *Client) dispatch(stop <-chan struct{}) {
	for {
		c.evMu.Lock()
		q := c.evQ
		c.evQ = nil
		c.evMu.Unlock()
		for _, f := range q {
			f()
		}
		if len(q) > 0 {
			continue
		}
		select {
		case <-c.evSig:
		case <-stop:
			c.evMu.Lock()
			q := c.evQ
			c.evQ = nil
			c.evMu.Unlock()
			for _, f := range q {
				f()
			}
			return
		}
	}
}
