package stratum

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/charmbracelet/log"

	"clminer/work"
	"clminer/work/health"
	"clminer/work/ledger"
	"clminer/work/option"
	"clminer/work/retry"
	"clminer/work/source"
)

// defaultUserAgent is sent when Options.UserAgent is empty: a program that
// knows its version (cmd/clminer) passes "clminer/<version>" itself.
const defaultUserAgent = "clminer/dev"

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
	// Proxy is a SOCKS5 proxy URL (socks5h://[user:pass@]host:port) the
	// pool is reached through; "" dials directly. It holds credentials:
	// never log it whole.
	Proxy string
}

// String prints the pool without its password, so a config can be logged.
func (p PoolConfig) String() string {
	return fmt.Sprintf("%s user=%s pass=<redacted> tls_insecure=%v pinned=%v rolling=%v", p.URL, p.User, p.TLSInsecure, p.Fingerprint != "", p.VersionRolling)
}

// Options tune the client; zero values get the defaults in brackets.
type Options struct {
	Dialer           Dialer        // [net.Dialer with DialTimeout and TCP keepalive]
	Logger           *log.Logger   // [discard]
	ReadTimeout      time.Duration // no line for this long => the pool is silent: left as failed (see doc.go) [90 s]
	DialTimeout      time.Duration // TCP connect plus TLS handshake [10 s]
	CallTimeout      time.Duration // optional calls (configure, extranonce.subscribe, ...) [5 s]
	HandshakeTimeout time.Duration // subscribe and authorize replies [30 s]
	SubmitTimeout    time.Duration // mining.submit reply; longer than UnansweredAfter, so a silent pool is left before its shares time out [60 s]
	HoldDown         time.Duration // a higher-priority pool must pass subscribe+authorize probes this long before we return to it [60 s]
	Retry            retry.Backoff // a failing pool's retry delay [1 s doubling to 60 s, ±20%]
	MaxLineSize      int           // bytes; a longer line drops the connection [1 MiB]
	UserAgent        string        // sent in mining.subscribe and client.get_version ["clminer/dev"]

	// MaxInFlight bounds the shares awaiting a verdict per connection; a
	// share found beyond it is not sent (ErrThrottled) [64].
	MaxInFlight int
	// UnansweredAfter: no submit answered for this long while some wait
	// marks the pool sick [30 s].
	UnansweredAfter time.Duration
	// UnansweredStreak: this many submit timeouts in a row mark it sick [5].
	UnansweredStreak int
	// RejectStreak: this many host-verified shares rejected in a row mark
	// it sick [5]; two or more over UnansweredAfter without an accept do too.
	RejectStreak int
	// SickHoldDown is how long a sick pool is left alone before it is
	// probed again; it doubles for each sickness in a row, up to 16x
	// [HoldDown].
	SickHoldDown time.Duration

	// DeviceWorkers maps a device id to a sub-worker key: a device's shares
	// go under that worker (see AddWorker), which every session authorizes
	// after the pool's own user. nil: every share goes under the pool user.
	DeviceWorkers map[string]string
	// WorkerName turns a pool user and a sub-worker key into the worker
	// name authorized on that pool [user + "." + key].
	WorkerName func(user, key string) string
}

// healthRule is the sick rule of the client's sessions: every clause of
// work/health, with the options' numbers.
func (o *Options) healthRule() health.Rule {
	return health.Rule{TimeoutStreak: o.UnansweredStreak, Unanswered: o.UnansweredAfter, RejectStreak: o.RejectStreak}
}

func (o *Options) defaults() {
	option.Default(&o.ReadTimeout, 90*time.Second)
	option.Default(&o.DialTimeout, 10*time.Second)
	option.Default(&o.CallTimeout, 5*time.Second)
	option.Default(&o.HandshakeTimeout, 30*time.Second)
	option.Default(&o.SubmitTimeout, 60*time.Second)
	option.Default(&o.HoldDown, 60*time.Second)
	o.Retry = o.Retry.WithDefaults()
	option.Default(&o.UnansweredAfter, 30*time.Second)
	option.Default(&o.SickHoldDown, o.HoldDown)
	option.Default(&o.MaxLineSize, DefaultMaxLineSize)
	option.Default(&o.MaxInFlight, 64)
	option.Default(&o.UnansweredStreak, 5)
	option.Default(&o.RejectStreak, 5)
	if o.UserAgent == "" {
		o.UserAgent = defaultUserAgent
	}
	if o.Logger == nil {
		o.Logger = log.New(io.Discard)
	}
	if o.Dialer == nil {
		o.Dialer = defaultDialer(o.DialTimeout)
	}
	if o.WorkerName == nil {
		o.WorkerName = func(user, key string) string { return user + "." + key }
	}
}

// DefaultMaxLineSize is the default line cap. It must hold the largest job
// the limits in package work allow (two 64 KiB coinbase parts are 256 KiB of
// hex, plus the branch): pools with many payout outputs send 50-100 KB
// notify lines. It still bounds what a pool that never sends a newline can
// make the miner buffer.
const DefaultMaxLineSize = 1 << 20

// SubmitResult is the pool's verdict on a share.
type SubmitResult struct {
	Accepted bool
	Worker   string // the worker name the share went under
	Code     int    // error code when the pool gave one
	Reason   string // readable reject reason
	RTT      time.Duration
}

type poolRec struct {
	cfg         PoolConfig
	url         PoolURL
	redirect    string // client.reconnect target for the next attempt only
	resumeID    string
	ledger      *ledger.Ledger
	state       source.State
	fails       int
	sickCount   int
	sickReason  string
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
	throttled   uint64
}

// Client keeps one live session with the best reachable pool. It is a
// source.Source.
type Client struct {
	opts Options
	log  *log.Logger

	mu      sync.Mutex
	pools   []*poolRec
	live    *session
	running bool
	rnd     *rand.Rand

	// sub-workers (AddWorker), in the order added; guarded by mu
	workers   map[string]*workerRec
	workerSeq []string

	evMu      sync.Mutex // guards sink and evQ; taken inside c.mu, never around it
	sink      source.Sink
	evQ       []queued
	evDropped uint64 // events dropped by maxQueued
	evSig     chan struct{}
}

var (
	_ source.Source  = (*Client)(nil)
	_ source.Workers = (*Client)(nil)
)

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
		c.pools = append(c.pools, &poolRec{cfg: p, url: u, diff: 1, ledger: ledger.New(0)})
	}
	// In device order, so the status lists workers the same way each run.
	for _, dev := range slices.Sorted(maps.Keys(opts.DeviceWorkers)) {
		if err := c.AddWorker(opts.DeviceWorkers[dev]); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Run connects, fails over and reconnects until ctx ends, handing jobs and
// events to sink from one goroutine; it returns ctx's error after every
// goroutine it started has finished.
func (c *Client) Run(ctx context.Context, sink source.Sink) error {
	if sink == nil {
		return errors.New("stratum: Run needs a sink")
	}
	c.mu.Lock()
	if c.running {
		c.mu.Unlock()
		return errors.New("stratum: Run is already running")
	}
	c.running = true
	c.mu.Unlock()
	c.evMu.Lock()
	c.sink = sink
	c.evMu.Unlock()
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
			// Every pool is in its backoff: say when the next try is, after
			// the events already queued (the failure that caused the wait).
			c.enqueue(evOther, func(source.Sink) {
				c.log.Info(fmt.Sprintf("no pool reachable; retrying in %s", wait.Round(100*time.Millisecond)), "event", "pool.retry", "retry_in_s", wait.Seconds())
			})
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
			c.event(source.Event{Kind: source.EventFailover, Pool: idx, URL: c.pools[idx].url.String(), From: cur, To: idx})
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
	sick := -1
	for i, p := range c.pools {
		w := p.nextAttempt.Sub(now)
		if w <= 0 {
			if p.state != source.StateSick {
				return i, 0
			}
			if sick < 0 {
				sick = i
			}
			continue
		}
		if minWait < 0 || w < minWait {
			minWait = w
		}
	}
	// A sick pool whose hold-down ended is used only when no healthy pool
	// can be: otherwise probeHigher brings it back once it passes probes.
	if sick >= 0 {
		return sick, 0
	}
	return 0, minWait
}

// backoffLocked is the wait after p's failures in a row. The count is the
// pool's own (status shows it), so the delay comes from DelayAt with the
// client's random source, which c.mu guards.
func (c *Client) backoffLocked(p *poolRec) time.Duration {
	return c.opts.Retry.DelayAt(p.fails, c.rnd.Float64())
}

// failLocked records a failure and schedules the next attempt.
func (c *Client) failLocked(p *poolRec, err error) {
	p.fails++
	p.state = source.StateDown
	if err != nil {
		p.lastErr = err.Error()
	}
	p.nextAttempt = time.Now().Add(c.backoffLocked(p))
}

// sickLocked holds a sick pool down: SickHoldDown, doubled per sickness in
// a row (up to 16x), so a pool that authorizes but never answers submits
// is not returned to every minute.
func (c *Client) sickLocked(p *poolRec, reason string) {
	p.fails++
	p.sickCount++
	p.state = source.StateSick
	p.sickReason = reason
	p.lastErr = "sick: " + reason
	hold := c.opts.SickHoldDown << min(p.sickCount-1, 4)
	p.nextAttempt = time.Now().Add(hold)
}

// dialAddr is where the next attempt goes: a pending redirect once, else the
// configured address. A redirect is consumed by the attempt, so when its
// target fails the configured pool is next.
func (p *poolRec) dialAddr() (addr string, redirected bool) {
	if p.redirect != "" {
		addr, p.redirect = p.redirect, ""
		return addr, true
	}
	return p.url.Addr(), false
}

func (c *Client) runPool(ctx context.Context, idx int) {
	c.mu.Lock()
	p := c.pools[idx]
	p.state = source.StateConnecting
	addr, redirected := p.dialAddr()
	resume, pc, u, led := p.resumeID, p.cfg, p.url, p.ledger
	c.mu.Unlock()
	c.event(source.Event{Kind: source.EventConnecting, Pool: idx, URL: u.String()})

	failed := func(err error) {
		c.mu.Lock()
		c.failLocked(p, err)
		if redirected {
			// The redirect target failed: the configured address is next.
			p.nextAttempt = time.Now()
		}
		c.mu.Unlock()
	}
	conn, err := dial(ctx, c.opts.Dialer, c.opts.DialTimeout, u, addr, pc)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		failed(fmt.Errorf("connect: %w", err))
		c.event(source.Event{Kind: source.EventDisconnected, Pool: idx, URL: u.String(), Err: err})
		return
	}
	s := newSession(c, idx, pc, u, addr, conn, led)
	c.mu.Lock()
	p.connects++
	c.mu.Unlock()
	c.event(source.Event{Kind: source.EventConnected, Pool: idx, URL: u.String(), Session: s.id})
	s.start()

	err = s.handshake(ctx, resume)
	if err != nil {
		s.close(err)
		s.wg.Wait()
		if ctx.Err() != nil {
			return
		}
		failed(err)
		kind := source.EventDisconnected
		if errors.Is(err, ErrAuthorize) {
			kind = source.EventAuthFailed
		}
		c.event(source.Event{Kind: kind, Pool: idx, URL: u.String(), Session: s.id, Err: err})
		return
	}

	c.mu.Lock()
	p.state = source.StateActive
	p.sickReason = ""
	p.resumeID = s.sessionID
	c.live = s
	c.mu.Unlock()
	c.event(source.Event{Kind: source.EventAuthorized, Pool: idx, URL: u.String(), Session: s.id})
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
	if errors.Is(err, errReturnToPrimary) {
		// Leaving a working pool by choice: its verdicts on shares already
		// sent still count. Devices idle meanwhile (usually one round trip)
		// rather than hash work that can no longer be sent.
		s.retire()
		c.noWork("switching to " + c.pools[0].url.String())
		s.drain(ctx, min(c.opts.SubmitTimeout, 5*time.Second))
	}
	s.close(err)
	s.wg.Wait()
	if ctx.Err() == nil {
		// Nothing can be submitted on this session any more: devices stop
		// until a pool sends a live job. Queued after its reader ended, so
		// no job of this session can follow it.
		c.noWork(fmt.Sprintf("no live pool (%s: %s)", u.String(), errString(err)))
	}

	diff, mask, en1, en2, _ := s.snapshot()
	rc := s.reconnectReq()
	c.mu.Lock()
	p.diff, p.mask, p.en1, p.en2size = diff, mask, en1, en2
	p.state = source.StateIdle
	healthy := time.Since(s.authorizeAt) >= c.opts.HoldDown
	var sick *SickError
	switch {
	case ctx.Err() != nil:
	case errors.Is(err, errReturnToPrimary):
		p.fails = 0
	case errors.As(err, &sick):
		if healthy {
			p.sickCount = 0 // sick again after working a while: not "in a row"
		}
		c.sickLocked(p, sick.Reason)
	case rc != nil:
		c.applyReconnectLocked(p, s, rc, healthy)
	case errors.Is(err, ErrSilent):
		// A pool that stops sending while its connection stays open is
		// hung, and its listener most likely is too: no immediate retry
		// (which waited out a subscribe it never answered), but the next
		// pool now, while this one backs off and is probed.
		if healthy {
			p.fails, p.sickCount = 0, 0
		}
		c.failLocked(p, err)
	default:
		if healthy {
			// One immediate retry after a session that worked for a while.
			p.fails, p.sickCount = 0, 0
			p.state = source.StateDown
			p.lastErr = errString(err)
			p.nextAttempt = time.Now()
		} else {
			c.failLocked(p, err)
		}
	}
	c.mu.Unlock()
	if sick != nil {
		c.event(source.Event{Kind: source.EventSick, Pool: idx, URL: u.String(), Session: s.id, Err: err})
	}
	c.event(source.Event{Kind: source.EventDisconnected, Pool: idx, URL: u.String(), Session: s.id, Err: err})
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// applyReconnectLocked schedules the redirect for the next attempt only. A
// session that ends in a reconnect before it worked for HoldDown counts as a
// failure, so a pool that redirects every connection is retried no faster
// than the backoff allows, whatever wait it asks for.
func (c *Client) applyReconnectLocked(p *poolRec, s *session, r *Reconnect, healthy bool) {
	if addr := net.JoinHostPort(r.Host, r.Port); addr != p.url.Addr() {
		p.redirect = addr
	}
	p.state = source.StateIdle
	wait := time.Duration(r.Wait) * time.Second
	if wait > c.opts.Retry.Max {
		wait = c.opts.Retry.Max
	}
	if healthy {
		p.fails = 0
	} else {
		p.fails++
		wait = max(wait, c.backoffLocked(p))
	}
	p.nextAttempt = time.Now().Add(wait)
	c.event(source.Event{Kind: source.EventReconnectRequested, Pool: s.pool, URL: p.url.String(), Session: s.id, Err: ErrReconnectRequested})
}

// probe runs subscribe and authorize on a throwaway connection: a pool is
// only worth returning to when it accepts the worker, not when its port
// answers.
func (c *Client) probe(ctx context.Context, idx int) error {
	c.mu.Lock()
	p := c.pools[idx]
	addr, u, pc := p.url.Addr(), p.url, p.cfg
	c.mu.Unlock()
	conn, err := dial(ctx, c.opts.Dialer, c.opts.DialTimeout, u, addr, pc)
	if err != nil {
		return err
	}
	s := newSession(c, idx, pc, u, addr, conn, nil)
	s.log = s.log.With("probe", true)
	s.start()
	err = s.handshake(ctx, "")
	s.close(errors.New("probe done"))
	s.wg.Wait()
	return err
}

// probeHigher probes the pools above idx with subscribe+authorize while it
// mines on idx; once one has passed every probe for HoldDown, it signals
// back.
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
			u := p.url
			c.mu.Unlock()
			if !due {
				since[i] = time.Time{}
				continue
			}
			err := c.probe(ctx, i)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				since[i] = time.Time{}
				c.mu.Lock()
				if p.state != source.StateSick {
					c.failLocked(p, fmt.Errorf("probe: %w", err))
				} else {
					p.nextAttempt = time.Now().Add(c.backoffLocked(p))
				}
				c.mu.Unlock()
				continue
			}
			now := time.Now()
			if since[i].IsZero() {
				since[i] = now
			}
			if now.Sub(since[i]) >= c.opts.HoldDown {
				c.log.Info("higher-priority pool is back (subscribe and authorize pass)", "event", "pool.recovered", "pool", u.String())
				c.mu.Lock()
				p.nextAttempt = time.Time{}
				if p.state == source.StateSick {
					// It passed the probes: no longer last in pick's order.
					p.state = source.StateIdle
				}
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

// Send implements source.Source: it submits sh on the connection that sent
// its job, without blocking. done is called exactly once.
func (c *Client) Send(sh source.Share, done func(source.Reply)) {
	j := sh.Job
	if j == nil || sh.Unit == nil {
		done(source.Reply{Kind: source.NotSent, Reason: "no job"})
		return
	}
	sub, err := sh.Unit.Submit(j.Worker, sh.Nonce, j.RollingMask)
	if err != nil {
		done(source.Reply{Kind: source.NotSent, Reason: err.Error()})
		return
	}
	reply := source.Reply{Extranonce2: sub.Extranonce2, NTime: sub.NTime, VersionBits: sub.VersionBits}
	key := sh.Worker
	if key == "" {
		key = c.opts.DeviceWorkers[sh.Device]
	}
	c.submitAsync(j, sub, key, func(res SubmitResult, err error) {
		reply.RTT = res.RTT
		switch {
		case errors.Is(err, ErrStaleSession):
			reply.Kind, reply.Reason = source.NotSent, "pool session ended before submit"
		case errors.Is(err, ErrThrottled):
			reply.Kind, reply.Reason = source.Throttled, "too many shares awaiting a verdict"
		case err != nil:
			reply.Kind, reply.Reason = source.NoReply, err.Error()
		case res.Accepted:
			reply.Kind = source.Accepted
		default:
			reply.Kind, reply.Reason, reply.Code = source.Rejected, res.Reason, res.Code
			if reply.Reason == "" {
				reply.Reason = "rejected without a reason"
			}
		}
		done(reply)
	})
}

// submitAsync sends a share of j under sub-worker key (AddWorker; "" for
// the pool user) on the connection that sent j, without blocking: done is
// called exactly once with the verdict, ErrStaleSession (nothing sent: the
// connection is gone) or ErrThrottled. A key the pool has not (yet)
// accepted on that connection submits under the pool user, so a share is
// never lost to a worker name. Worker in done's result says which was used.
func (c *Client) submitAsync(j *source.Job, sub work.Submit, key string, done func(SubmitResult, error)) {
	c.mu.Lock()
	s := c.live
	wr := c.workers[key]
	c.mu.Unlock()
	if s == nil || s.id != j.Session {
		done(SubmitResult{}, ErrStaleSession)
		return
	}
	if sub.JobID == "" {
		sub.JobID = j.ID
	}
	if sub.Worker == "" {
		sub.Worker = s.worker
	}
	if wr != nil {
		if name, ok := s.workerName(key); ok {
			sub.Worker = name
		}
	}
	worker := sub.Worker
	s.submitAsync(sub, j.Entry, func(res SubmitResult, err error) {
		res.Worker = worker
		c.mu.Lock()
		switch {
		case errors.Is(err, ErrThrottled):
			c.pools[s.pool].throttled++
		case err != nil:
		case res.Accepted:
			c.pools[s.pool].accepted++
			if wr != nil && worker != s.worker {
				wr.accepted++
			}
		default:
			c.pools[s.pool].rejected++
			if wr != nil && worker != s.worker {
				wr.rejected++
			}
		}
		c.mu.Unlock()
		done(res, err)
	})
}

// Submit sends a share on the connection that sent j and waits for the
// verdict. If that connection is gone it returns ErrStaleSession without
// sending anything: a share is never sent to another pool. Safe for
// concurrent use.
func (c *Client) Submit(ctx context.Context, j *source.Job, sub work.Submit) (SubmitResult, error) {
	if j == nil {
		return SubmitResult{}, errors.New("stratum: nil job")
	}
	type verdict struct {
		res SubmitResult
		err error
	}
	ch := make(chan verdict, 1)
	c.submitAsync(j, sub, "", func(res SubmitResult, err error) { ch <- verdict{res, err} })
	select {
	case v := <-ch:
		return v.res, v.err
	case <-ctx.Done():
		return SubmitResult{}, ctx.Err()
	}
}

// Status returns a snapshot of every pool, for metrics.
func (c *Client) Status() []source.UpstreamStatus {
	c.mu.Lock()
	live := c.live
	out := make([]source.UpstreamStatus, len(c.pools))
	for i, p := range c.pools {
		out[i] = source.UpstreamStatus{Index: i, URL: p.url.String(), Protocol: "stratum", State: p.state, Connects: p.connects, Failovers: p.failovers,
			Failures: p.fails, LastError: p.lastErr, SickReason: p.sickReason, Difficulty: p.diff, RollingMask: p.mask,
			Extranonce1: p.en1, Extranonce2Size: p.en2size, Accepted: p.accepted, Rejected: p.rejected, Throttled: p.throttled}
		if p.state != source.StateSick {
			out[i].SickReason = ""
		}
	}
	c.mu.Unlock()
	if live != nil {
		d, m, e1, e2, inf := live.snapshot()
		st := &out[live.pool]
		st.Difficulty, st.RollingMask, st.Extranonce1, st.Extranonce2Size, st.InFlight = d, m, e1, e2, inf
		if ws := c.Workers(); len(ws) > 0 {
			st.Workers = ws
		}
	}
	return out
}

// Upstreams implements source.Source.
func (c *Client) Upstreams() []source.UpstreamStatus { return c.Status() }

func (c *Client) emitJob(j *source.Job) { c.enqueue(evJob, func(s source.Sink) { s.Job(j) }) }

func (c *Client) noWork(reason string) { c.enqueue(evOther, func(s source.Sink) { s.NoWork(reason) }) }

func (c *Client) event(e source.Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	c.enqueue(evOther, func(s source.Sink) { s.Event(e) })
}

type evKind int

const (
	evJob evKind = iota
	evOther
)

type queued struct {
	kind evKind
	f    func()
}

// maxQueued bounds the callbacks waiting for a slow sink; past it the
// oldest events (not jobs) are dropped and counted.
const maxQueued = 1024

// enqueue queues a call to the sink for the dispatch goroutine; it never
// blocks, so a session's reader never waits on the consumer. A new job
// replaces any job not yet delivered (the consumer only ever mines the
// latest, and the order of the other events is kept), so a pool sending
// notifies or rising set_difficulty faster than the consumer takes them
// cannot grow the queue.
func (c *Client) enqueue(kind evKind, f func(source.Sink)) {
	c.evMu.Lock()
	sink := c.sink
	if sink != nil {
		q := queued{kind, func() { f(sink) }}
		if kind == evJob {
			for i, o := range c.evQ {
				if o.kind == evJob {
					c.evQ = append(c.evQ[:i], c.evQ[i+1:]...)
					break // at most one is ever queued
				}
			}
		}
		switch n := len(c.evQ); {
		case n >= maxQueued:
			for i, o := range c.evQ {
				if o.kind != evJob {
					c.evQ = append(c.evQ[:i], c.evQ[i+1:]...)
					c.evDropped++
					break
				}
			}
			c.evQ = append(c.evQ, q)
		default:
			c.evQ = append(c.evQ, q)
		}
	}
	c.evMu.Unlock()
	if sink == nil {
		return
	}
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
			f.f()
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
				f.f()
			}
			return
		}
	}
}

// MaxWorkers bounds the sub-workers one client authorizes on each session:
// a proxy adds one per downstream worker name, and a pool is not asked to
// authorize an unbounded list on every reconnect.
const MaxWorkers = 4096

// ErrTooManyWorkers is returned by AddWorker past MaxWorkers.
var ErrTooManyWorkers = errors.New("stratum: too many sub-workers")

// workerRec is one sub-worker's counters across sessions and pools.
type workerRec struct {
	key      string
	accepted uint64
	rejected uint64
}

// Sub-worker states (WorkerStatus.State).
const (
	WorkerPending    = "pending"    // authorize sent, no answer yet (or no live session)
	WorkerAuthorized = "authorized" // its shares go under its own name
	WorkerRefused    = "refused"    // the pool said no: its shares go under the pool user
)

// AddWorker registers sub-worker key: every session, the live one at once,
// authorizes WorkerName(pool user, key) after the pool user, and shares
// submitted under key (Send with Share.Worker, or a device of DeviceWorkers) carry that
// name once the pool accepted it. Adding a key twice is a no-op.
func (c *Client) AddWorker(key string) error {
	if key == "" || len(key) > MaxWorkerLen {
		return fmt.Errorf("stratum: sub-worker key %q: want 1..%d bytes", clip(key), MaxWorkerLen)
	}
	c.mu.Lock()
	if c.workers == nil {
		c.workers = map[string]*workerRec{}
	}
	if c.workers[key] != nil {
		c.mu.Unlock()
		return nil
	}
	if len(c.workers) >= MaxWorkers {
		c.mu.Unlock()
		return fmt.Errorf("%w: %d already", ErrTooManyWorkers, MaxWorkers)
	}
	c.workers[key] = &workerRec{key: key}
	c.workerSeq = append(c.workerSeq, key)
	s := c.live
	c.mu.Unlock()
	if s != nil {
		s.authorizeWorkers([]string{key})
	}
	return nil
}

// RemoveWorker forgets sub-worker key: later sessions do not authorize it,
// and its shares go under the pool user. A proxy removes the name of a
// miner that left, so that a reconnect does not authorize every name ever
// seen.
func (c *Client) RemoveWorker(key string) {
	c.mu.Lock()
	if c.workers[key] == nil {
		c.mu.Unlock()
		return
	}
	delete(c.workers, key)
	for i, k := range c.workerSeq {
		if k == key {
			c.workerSeq = append(c.workerSeq[:i], c.workerSeq[i+1:]...)
			break
		}
	}
	s := c.live
	c.mu.Unlock()
	if s != nil {
		s.forgetWorker(key)
	}
}

// WaitWorker waits up to d for the live session's verdict on sub-worker
// key (AddWorker first) and returns its state: a proxy answers a miner's
// authorize once the pool has, so that the miner's first share already
// goes under its own name.
func (c *Client) WaitWorker(key string, d time.Duration) (name, state string) {
	c.mu.Lock()
	s := c.live
	c.mu.Unlock()
	if s == nil {
		return "", WorkerPending
	}
	if ch := s.workerDone(key); ch != nil {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ch:
		case <-t.C:
		case <-s.done:
		}
	}
	name, state, _ = s.workerStatus(key)
	return name, state
}

func (c *Client) workerKeys() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.workerSeq...)
}

// Workers returns every sub-worker, in the order added, with its standing
// on the live session.
func (c *Client) Workers() []source.WorkerStatus {
	c.mu.Lock()
	live := c.live
	out := make([]source.WorkerStatus, 0, len(c.workerSeq))
	for _, k := range c.workerSeq {
		w := c.workers[k]
		out = append(out, source.WorkerStatus{Key: k, State: WorkerPending, Accepted: w.accepted, Rejected: w.rejected})
	}
	c.mu.Unlock()
	for i := range out {
		if live != nil {
			out[i].Name, out[i].State, out[i].Reason = live.workerStatus(out[i].Key)
		}
	}
	return out
}
