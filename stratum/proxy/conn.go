package proxy

import (
	"bufio"
	"container/list"
	"context"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/charmbracelet/log"
	"golang.org/x/time/rate"

	"clminer/stratum"
	"clminer/stratum/wire"
	"clminer/work"
	"clminer/work/connlimit"
	"clminer/work/ledger"
	"clminer/work/source"
)

// maxGarbage is how many undecodable lines or unknown methods a miner may
// send before it is dropped.
const maxGarbage = 20

// workerWait bounds how long a miner's authorize waits for the pool's
// verdict on its worker name.
const workerWait = 5 * time.Second

// maxAuthFailures is how many refused authorizes a connection may try.
const maxAuthFailures = 5

// conn is one downstream miner. Its reader goroutine owns the protocol
// state; verdicts from the pool reach it only through the write queue.
type conn struct {
	s      *Server
	id     uint64
	nc     net.Conn
	remote string
	peer   string // connlimit.PeerKey of remote: what per-address limits count
	log    *log.Logger
	q      outQueue
	since  time.Time

	gotLine bool // the reader has read a line

	// guarded by s.mu
	authed   bool          // passed authorize once
	holdElem *list.Element // in holdList while it holds a prefix it has not earned
	holdList *list.List    // s.holders (not authenticated) or s.silent (no share yet)
	// earned is prefixSilent until the miner's first share goes to the
	// pool (prefixEarned); allocSlot may take a silent prefix for a
	// newcomer (prefixTaken). The swap decides a race between the two.
	earned atomic.Int32

	mu          sync.Mutex
	subscribed  bool
	authorized  bool
	slot        int
	prefix      []byte
	d           int // extranonce2_size the miner was told
	diff        float64
	rolling     bool
	reqMask     uint32            // the mask the miner asked for
	mask        uint32            // the mask it was granted
	extranonce  bool              // asked for mining.set_extranonce
	workers     map[string]string // authorized names -> upstream key ("": the pool user)
	unbound     map[string]string // names whose key is not authorized upstream yet -> the key
	claimed     bool              // sent the pool a share, the last in epoch claimEpoch
	claimEpoch  uint64
	pending     int
	garbage     int
	authFails   int
	agent       string
	counts      Counts
	rate        shareRate
	lastShare   time.Time
	closed      bool
	closeReason string
	closeAfter  error // why the writer closes once the queue is written
	// lim paces what the miner sends (Rate per second, Burst at most).
	lim          *rate.Limiter
	sentJobFirst bool
	// vd is its own difficulty, used on jobs of an upstream that takes
	// only blocks (a node); sent the difficulty each job was told at (the
	// lowest, when re-sent), by job sequence, for the last 2*keptJobs jobs.
	vd   vardiff
	sent map[uint64]toldDiff

	// jobMu orders job sends: the reader (first job after authorize) and
	// the upstream's goroutine (every new job) both send, and an older job
	// must never follow a newer one. Taken before mu.
	jobMu   sync.Mutex
	lastJob uint64
	sentJob uint64 // the job last written to the miner (guarded by mu)

	// ctx ends when the connection closes (or the server stops): what
	// waits on the miner's behalf stops waiting then.
	ctx       context.Context
	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

func newConn(s *Server, id uint64, nc net.Conn) *conn {
	remote := nc.RemoteAddr().String()
	ctx, cancel := context.WithCancel(s.ctx)
	return &conn{ctx: ctx, cancel: cancel, s: s, id: id, nc: nc, remote: remote, peer: connlimit.PeerKey(nc.RemoteAddr()), slot: -1,
		q: outQueue{wake: make(chan struct{}, 1)}, since: time.Now(),
		log: s.log.With("miner", id, "remote", remote), workers: map[string]string{}, unbound: map[string]string{}, done: make(chan struct{}),
		lim: rate.NewLimiter(rate.Limit(s.cfg.Rate), s.cfg.Burst), sent: map[uint64]toldDiff{},
		vd: vardiff{diff: s.cfg.StartDifficulty, since: time.Now()}}
}

// toldDiff is a difficulty a miner was told for a job, and its target.
type toldDiff struct {
	diff   float64
	target work.Target
}

func (c *conn) start() {
	c.s.wg.Add(2)
	go func() {
		defer c.s.wg.Done()
		c.readLoop()
	}()
	go func() {
		defer c.s.wg.Done()
		c.writeLoop()
	}()
}

// close drops the miner (the first reason wins) and frees its prefix.
func (c *conn) close(err error) {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.closeReason = err.Error()
		slot, hot, cool := c.slot, c.claimed, c.claimEpoch
		var names, keys []string
		for n, k := range c.workers {
			names = append(names, n)
			if k != "" {
				keys = append(keys, k)
			}
		}
		c.mu.Unlock()
		for _, k := range keys {
			c.s.releaseKey(k)
		}
		for _, n := range names {
			c.s.leaveWorker(n)
		}
		close(c.done)
		c.cancel()
		c.nc.Close()
		c.s.removeConn(c)
		c.s.releaseSlot(slot, c, hot, cool)
		c.q.drop()
		c.s.logConn.Info(c.log, "miner disconnected", "event", "proxy.miner_disconnected", "reason", err.Error())
	})
}

// outQueue is what waits to be written to a miner, bounded in bytes (not
// lines: one line may be a 15 KB echo or a 100 KB job). A job notify not
// yet written when a newer one comes is dropped: a miner that is behind
// needs only the latest job, so a burst of big jobs costs one job's bytes
// per miner, and a slow but reading miner is not taken for a dead one.
type outQueue struct {
	mu    sync.Mutex
	lines []qline
	bytes int  // queued (what the writer took is bounded by this bound too)
	last  bool // close once what is queued is written
	wake  chan struct{}
}

type qline struct {
	b     []byte
	job   bool // a mining.notify
	clean bool // its clean_jobs
}

// put queues b; false when it would pass max (a line always fits an
// empty queue).
func (q *outQueue) put(b []byte, max int) (ok bool, queued int) {
	return q.putLine(qline{b: b}, nil, max)
}

// putJob queues a notify made by enc, in place of any not yet written
// (clean when any of those was: the miner must still drop its work).
func (q *outQueue) putJob(enc func(clean bool) []byte, clean bool, max int) (ok bool, queued int) {
	return q.putLine(qline{job: true, clean: clean}, enc, max)
}

func (q *outQueue) putLine(l qline, enc func(clean bool) []byte, max int) (ok bool, queued int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.last {
		return true, q.bytes
	}
	if l.job {
		kept := q.lines[:0]
		for _, o := range q.lines {
			if o.job {
				l.clean = l.clean || o.clean
				q.bytes -= len(o.b)
				continue
			}
			kept = append(kept, o)
		}
		clear(q.lines[len(kept):])
		q.lines = kept
		l.b = enc(l.clean)
	}
	if q.bytes > 0 && q.bytes+len(l.b) > max {
		return false, q.bytes
	}
	q.lines = append(q.lines, l)
	q.bytes += len(l.b)
	q.signal()
	return true, q.bytes
}

func (q *outQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take hands the writer what is queued, in place of the spent batch, and
// whether the connection closes after it.
func (q *outQueue) take(spent []qline) ([]qline, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	clear(spent)
	lines := q.lines
	q.lines = spent[:0]
	q.bytes = 0
	return lines, q.last
}

// finish makes the writer close once what is queued is written.
func (q *outQueue) finish() {
	q.mu.Lock()
	q.last = true
	q.signal()
	q.mu.Unlock()
}

// drop forgets what was queued for a closed connection.
func (q *outQueue) drop() {
	q.mu.Lock()
	clear(q.lines)
	q.lines, q.bytes, q.last = nil, 0, true
	q.mu.Unlock()
}

// send queues a line without blocking; a miner with more than
// WriteQueueBytes waiting has stopped reading and is dropped.
func (c *conn) send(b []byte) {
	select {
	case <-c.done:
		return
	default:
	}
	if ok, queued := c.q.put(b, c.s.cfg.WriteQueueBytes); !ok {
		c.close(fmt.Errorf("not reading: %d bytes waiting to be written", queued))
	}
}

// sendNotify queues a job in place of any not yet written.
func (c *conn) sendNotify(enc func(clean bool) []byte, clean bool) {
	select {
	case <-c.done:
		return
	default:
	}
	if ok, queued := c.q.putJob(enc, clean, c.s.cfg.WriteQueueBytes); !ok {
		c.close(fmt.Errorf("not reading: %d bytes waiting to be written", queued))
	}
}

func (c *conn) notify(method string, params []any) {
	if b, err := wire.EncodeNotification(method, params); err == nil {
		c.send(b)
	}
}

func (c *conn) respond(id json.RawMessage, result any, rpcErr *wire.Error) {
	if b, err := wire.EncodeResponse(id, result, rpcErr); err == nil {
		c.send(b)
	}
}

func (c *conn) reject(id json.RawMessage, code int, msg string) {
	c.respond(id, false, wire.NewError(code, msg))
}

func (c *conn) writeLoop() {
	w := bufio.NewWriterSize(c.nc, 4096)
	var batch []qline
	for {
		select {
		case <-c.done:
			return
		case <-c.q.wake:
		}
		var last bool
		batch, last = c.q.take(batch)
		var err error
		for _, l := range batch {
			_ = c.nc.SetWriteDeadline(time.Now().Add(c.s.cfg.WriteTimeout))
			if _, err = w.Write(l.b); err != nil {
				break
			}
		}
		// One flush per batch: a burst of lines is one write.
		if err == nil {
			err = w.Flush()
		}
		if err != nil {
			c.close(fmt.Errorf("write: %w", err))
			return
		}
		if last {
			c.mu.Lock()
			why := c.closeAfter
			c.mu.Unlock()
			if why == nil {
				why = errors.New("sent its last reply")
			}
			c.close(why)
			return
		}
	}
}

// closeAfterSent closes the connection with why once what is queued is
// written.
func (c *conn) closeAfterSent(why error) {
	c.mu.Lock()
	if c.closeAfter == nil {
		c.closeAfter = why
	}
	c.mu.Unlock()
	c.q.finish()
}

func (c *conn) readLoop() {
	lr := stratum.NewLineReader(c.nc, c.s.cfg.MaxLineSize)
	cfg := &c.s.cfg
	for {
		c.mu.Lock()
		ready := c.authorized && c.subscribed
		c.mu.Unlock()
		var deadline time.Time
		why := ""
		switch {
		case ready:
			if cfg.IdleTimeout > 0 {
				deadline, why = time.Now().Add(cfg.IdleTimeout), fmt.Sprintf("no line for %v", cfg.IdleTimeout)
			}
		case !c.gotLine:
			deadline, why = c.since.Add(min(cfg.FirstLineTimeout, cfg.HandshakeTimeout)), fmt.Sprintf("no line within %v of connecting", min(cfg.FirstLineTimeout, cfg.HandshakeTimeout))
		default:
			deadline, why = c.since.Add(cfg.HandshakeTimeout), fmt.Sprintf("no subscribe and authorize within %v", cfg.HandshakeTimeout)
		}
		_ = c.nc.SetReadDeadline(deadline)
		line, err := lr.ReadLine()
		if err != nil {
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout():
				err = errors.New(why)
			case errors.Is(err, stratum.ErrLineTooLong):
				c.s.countRefused()
			}
			c.close(err)
			return
		}
		c.gotLine = true
		// Waiting for a token stops reading, so a flood slows only the
		// connection that sends it.
		if err := c.lim.Wait(c.ctx); err != nil {
			// Closed meanwhile, or the server is stopping (it closes every
			// connection with this reason; the first reason wins).
			c.close(errors.New("proxy shutting down"))
			return
		}
		if len(strings.TrimSpace(string(line))) == 0 {
			continue
		}
		if err := c.handleLine(line); err != nil {
			// Stop reading; the writer sends what is queued (the refusal
			// that explains the drop) and then closes.
			c.closeAfterSent(err)
			return
		}
	}
}

// handleLine handles one line; an error drops the miner.
func (c *conn) handleLine(line []byte) error {
	m, err := wire.Decode(line)
	if err != nil {
		return c.junk("not a stratum message")
	}
	if len(m.ID) > maxIDLen {
		// No miner sends one: dropped at once, not echoed (300 connections
		// pinging with 15 KB ids and never reading made the proxy hold
		// hundreds of MB, and reading 20 of them per connection before the
		// garbage limit cost the honest miners' replies a second).
		c.s.countRefused()
		return fmt.Errorf("sends a request id over %d bytes", maxIDLen)
	}
	if m.Kind == wire.KindResponse {
		return nil // the proxy asks miners nothing that needs an answer
	}
	switch m.Method {
	case wire.MethodConfigure:
		c.onConfigure(m)
	case wire.MethodSubscribe:
		return c.onSubscribe(m)
	case wire.MethodAuthorize:
		return c.onAuthorize(m)
	case wire.MethodSubmit:
		c.onSubmit(m)
	case wire.MethodExtranonceSubscribe:
		c.mu.Lock()
		c.extranonce = true
		c.mu.Unlock()
		if m.Kind == wire.KindRequest {
			c.respond(m.ID, true, nil)
		}
	case wire.MethodSuggestDifficulty, wire.MethodSuggestTarget:
		return c.onSuggest(m)
	case wire.MethodPing:
		if m.Kind == wire.KindRequest {
			c.respond(m.ID, "pong", nil)
		}
	default:
		if m.Kind == wire.KindRequest {
			c.respond(m.ID, nil, wire.NewError(wire.CodeMethodNotFound, "Method not found"))
		}
		return c.junk("unknown method")
	}
	return nil
}

func (c *conn) junk(what string) error {
	c.mu.Lock()
	c.garbage++
	n := c.garbage
	c.mu.Unlock()
	if n > maxGarbage {
		c.s.countRefused()
		return fmt.Errorf("sends garbage: %d lines (%s)", n, what)
	}
	return nil
}

func (c *conn) onConfigure(m *wire.Message) {
	req, err := stratum.ParseConfigureParams(m.Params)
	if err != nil {
		if m.Kind == wire.KindRequest {
			c.respond(m.ID, nil, wire.NewError(wire.CodeOther, err.Error()))
		}
		_ = c.junk("bad configure")
		return
	}
	if !c.s.waitSpace(c.done, c.s.cfg.HandshakeTimeout) {
		c.respond(m.ID, nil, wire.NewError(wire.CodeOther, "the proxy has no pool job yet"))
		return
	}
	pj, _, _ := c.s.current()
	var up uint32
	if pj != nil {
		up = c.s.issue(pj).RollingMask
	}
	c.mu.Lock()
	rolling := req.VersionRolling && up&req.Mask != 0
	c.rolling, c.reqMask = rolling, req.Mask
	c.mask = 0
	if rolling {
		c.mask = up & req.Mask
	}
	mask := c.mask
	c.mu.Unlock()
	if m.Kind == wire.KindRequest {
		c.respond(m.ID, stratum.ConfigureResult(req, rolling, mask), nil)
	}
}

func (c *conn) onSubscribe(m *wire.Message) error {
	agent, _, err := stratum.ParseSubscribeParams(m.Params)
	if err != nil {
		c.reject(m.ID, wire.CodeOther, err.Error())
		return c.junk("bad subscribe")
	}
	c.mu.Lock()
	again := c.subscribed
	c.mu.Unlock()
	if again {
		c.reject(m.ID, wire.CodeOther, "already subscribed")
		return nil
	}
	if !c.s.waitSpace(c.done, c.s.cfg.HandshakeTimeout) {
		c.reject(m.ID, wire.CodeOther, "the proxy has no pool job yet; try again")
		c.closeAfterSent(errors.New("no pool job to give it"))
		return nil
	}
	n, err := c.s.allocSlot(c)
	if err != nil {
		c.s.countRefused()
		c.s.logErr.Warn(c.log, "refusing a miner", "event", "proxy.full", "err", err)
		c.reject(m.ID, wire.CodeOther, err.Error())
		c.closeAfterSent(err)
		return nil
	}
	_, sp, prefix := c.s.current()
	pfx := make([]byte, prefix)
	for i := range pfx {
		pfx[prefix-1-i] = byte(n >> (8 * i))
	}
	d := min(sp.size-prefix, maxDownstreamEN2)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		c.s.releaseSlot(n, c, false, 0)
		return nil
	}
	c.subscribed, c.slot, c.prefix, c.d, c.agent = true, n, pfx, d, agent
	authorized := c.authorized
	c.mu.Unlock()
	sid := strconv.FormatUint(c.id, 16)
	res := stratum.SubscribeResult{Subscriptions: [][2]string{{wire.MethodSetDifficulty, sid}, {wire.MethodNotify, sid}},
		Extranonce1: hex.EncodeToString(pfx), Extranonce2Size: d}
	c.respond(m.ID, res.Result(), nil)
	c.s.logConn.Info(c.log, "miner subscribed", "event", "proxy.miner_subscribed", "extranonce1", res.Extranonce1, "extranonce2_size", d, "agent", agent)
	if authorized {
		// It authorized first: its work starts now.
		if pj, _, _ := c.s.current(); pj != nil {
			c.sendJob(pj, true)
		}
	}
	return nil
}

func (c *conn) onAuthorize(m *wire.Message) error {
	user, pass, err := stratum.ParseAuthorizeParams(m.Params)
	if err != nil {
		c.reject(m.ID, wire.CodeOther, err.Error())
		return c.junk("bad authorize")
	}
	if users := c.s.cfg.Users; users != nil {
		if !c.s.fails.Allow(c.peer) {
			// No password is checked: guessing is limited per address, not
			// only per connection.
			c.reject(m.ID, wire.CodeUnauthorized, "too many refused authorizes from this address; try again later")
			c.s.countRefused()
			return errors.New("too many refused authorizes from its address")
		}
		want, ok := users[user]
		if !ok || subtle.ConstantTimeCompare([]byte(want), []byte(pass)) != 1 {
			c.s.fails.Take(c.peer)
			c.mu.Lock()
			c.authFails++
			n := c.authFails
			c.mu.Unlock()
			c.reject(m.ID, wire.CodeUnauthorized, "Unauthorized worker")
			c.s.logErr.Warn(c.log, "miner authorize refused", "event", "proxy.auth_refused", "worker", user)
			if n >= maxAuthFailures {
				c.s.countRefused()
				return fmt.Errorf("%d refused authorizes", n)
			}
			return nil
		}
	}
	c.mu.Lock()
	_, had := c.workers[user]
	if !had && len(c.workers) >= c.s.cfg.MaxWorkers {
		c.mu.Unlock()
		c.reject(m.ID, wire.CodeOther, fmt.Sprintf("at most %d workers per connection", c.s.cfg.MaxWorkers))
		return nil
	}
	subscribed := c.subscribed
	c.mu.Unlock()
	c.s.authenticated(c)
	key := ""
	if !had {
		c.s.joinWorker(user)
		key = c.s.cfg.WorkerKey(user)
		if key != "" && !c.bindKey(user, key, subscribed) {
			key = ""
		}
	}
	c.mu.Lock()
	if c.closed {
		// close ran meanwhile and did not see this name: release it here.
		c.mu.Unlock()
		if !had {
			if key != "" {
				c.s.releaseKey(key)
			}
			c.s.leaveWorker(user)
		}
		return nil
	}
	if !had {
		c.workers[user] = key
		if key == "" && c.s.wk != nil && c.s.cfg.WorkerKey(user) != "" {
			c.unbound[user] = c.s.cfg.WorkerKey(user)
		}
	}
	key = c.workers[user]
	first := !c.authorized
	c.authorized = true
	c.mu.Unlock()
	c.respond(m.ID, true, nil)
	c.s.logConn.Info(c.log, "miner authorized", "event", "proxy.miner_authorized", "worker", user, "upstream_key", key)
	if first && subscribed {
		if pj, _, _ := c.s.current(); pj != nil {
			c.sendJob(pj, true)
		}
	}
	return nil
}

// bindKey authorizes user's key upstream for this connection and, when
// wait, waits for the pool's verdict so that the miner's first share goes
// under its own name. A miner that has not subscribed is not worth an
// upstream authorize yet (false: its first share binds it), nor is a new
// name past the budget of its address or of everyone.
func (c *conn) bindKey(user, key string, wait bool) bool {
	if !wait || c.s.wk == nil {
		return false
	}
	if !c.s.acquireKey(key, c.peer) {
		c.s.logErr.Warn(c.log, "new worker names arrive too fast; this one's shares go under the pool user for now", "event", "proxy.worker_budget", "worker", user)
		return false
	}
	name, st := c.s.wk.WaitWorker(key, workerWait)
	if st == stratum.WorkerRefused {
		// The miner may mine on: its shares go under the pool user.
		c.s.logErr.Warn(c.log, "the pool refused this worker; its shares go under the pool user", "event", "proxy.worker_refused", "worker", user)
	}
	c.s.noteUpstreamName(user, name)
	return true
}

// rebind tries again to give an authorized name its upstream key (one
// authorized before subscribing, or past the new-name budget), without
// waiting: until the pool accepts it, its shares go under the pool user.
func (c *conn) rebind(user string) string {
	c.mu.Lock()
	key, ok := c.unbound[user]
	c.mu.Unlock()
	if !ok || !c.s.acquireKey(key, c.peer) {
		return ""
	}
	c.mu.Lock()
	if c.closed || c.workers[user] != "" {
		// close, or another share of the name, got there first.
		got := c.workers[user]
		c.mu.Unlock()
		c.s.releaseKey(key)
		return got
	}
	delete(c.unbound, user)
	c.workers[user] = key
	c.mu.Unlock()
	return key
}

// sendJob sends a job, after whatever it needs first: a changed
// extranonce2_size, version mask or difficulty.
func (c *conn) sendJob(pj *pjob, clean bool) {
	c.jobMu.Lock()
	defer c.jobMu.Unlock()
	if pj.seq < c.lastJob {
		return
	}
	c.lastJob = pj.seq
	_, _, prefix := c.s.current()
	up, told := c.s.issueTold(pj)
	var lines []struct {
		method string
		params []any
	}
	add := func(method string, params []any) {
		lines = append(lines, struct {
			method string
			params []any
		}{method, params})
	}
	c.mu.Lock()
	if !c.subscribed || !c.authorized || c.closed {
		c.mu.Unlock()
		return
	}
	room := pj.sp.size - prefix
	if c.d > room {
		if !c.extranonce {
			c.mu.Unlock()
			// The miner cannot be told a smaller extranonce2_size on this
			// connection: ask it back here, where its new subscribe gets one.
			c.log.Info("pool's extranonce2 is smaller; asking the miner to reconnect to the proxy", "event", "proxy.miner_reconnect", "size", room)
			c.notify(wire.MethodReconnect, stratum.ReconnectParams(stratum.Reconnect{}))
			c.closeAfterSent(errors.New("asked to reconnect for a smaller extranonce2"))
			return
		}
		c.d = min(room, maxDownstreamEN2)
		add(wire.MethodSetExtranonce, stratum.SetExtranonceParams(hex.EncodeToString(c.prefix), c.d))
		clean = true
	}
	if c.rolling {
		if want := up.RollingMask & c.reqMask; want != c.mask {
			c.mask = want
			add(wire.MethodSetVersionMask, stratum.VersionMaskParams(want))
		}
	}
	diff := told
	if pj.local {
		if c.vd.retarget(time.Now(), &c.s.cfg) {
			c.log.Debug("vardiff", "event", "proxy.vardiff", "difficulty", c.vd.diff)
		}
		// Above the network's, every share is a block anyway.
		diff = min(c.vd.diff, up.Difficulty)
	}
	if diff != c.diff || !c.sentJobFirst {
		c.diff = diff
		add(wire.MethodSetDifficulty, stratum.DifficultyParams(diff))
	}
	if pj.seq == c.sentJob && len(lines) == 0 {
		// The job this miner already has, with nothing it sees changed: a
		// re-issue (a mask it does not roll, a V2 lowering not yet due), or
		// the pool's broadcast of the job that its own subscribe or
		// authorize just sent it (both ask for clean). A second notify of
		// the same job would only make it restart its work. A changed
		// extranonce, mask or difficulty comes with a line, and is sent.
		c.mu.Unlock()
		return
	}
	c.sentJob = pj.seq
	c.noteToldLocked(pj.seq, diff)
	c.sentJobFirst = true
	d := c.d
	c.mu.Unlock()
	for _, l := range lines {
		c.notify(l.method, l.params)
	}
	p := c.s.paramsFor(pj, d, clean)
	c.sendNotify(func(clean bool) []byte {
		p.CleanJobs = clean
		b, _ := wire.EncodeNotification(wire.MethodNotify, stratum.NotifyParams(p))
		return b
	}, clean)
}

// onSubmit judges a share on the host (judgeShare) and forwards what the
// pool would accept; every share gets exactly one answer and one count.
func (c *conn) onSubmit(m *wire.Message) {
	id := m.ID
	if m.Kind != wire.KindRequest {
		_ = c.junk("submit without an id")
		return
	}
	sub, err := stratum.ParseSubmitParams(m.Params)
	if err != nil {
		c.verdict(id, "", Invalid, wire.CodeOther, err.Error())
		return
	}
	st, key := c.shareState(sub)
	d := judgeShare(sub, st)
	switch d.action {
	case refuseShare:
		c.verdict(id, d.worker, d.outcome, d.code, d.reason)
	case keepLocal:
		c.localShare(id, d.worker, key, st.pj, st.upj, d.unit, d.nonce, d.chk)
	case forwardShare:
		c.forward(id, key, st.pj, st.upj, d)
	}
}

// shareState reads what sub is judged against, and the upstream key its
// worker's shares go under (binding the name now when it was left unbound).
func (c *conn) shareState(sub work.Submit) (shareState, string) {
	c.mu.Lock()
	st := shareState{subscribed: c.subscribed, en2Size: c.d, rolling: c.rolling, mask: c.mask, prefix: c.prefix, ntimeRoll: c.s.cfg.NTimeRoll}
	key := ""
	if st.subscribed {
		key, st.authorized = c.workers[sub.Worker]
	}
	_, unbound := c.unbound[sub.Worker]
	c.mu.Unlock()
	if st.authorized && unbound {
		key = c.rebind(sub.Worker)
	}
	if st.subscribed && st.authorized {
		st.pj, st.upj, st.sp = c.s.lookup(sub.JobID)
	}
	return st, key
}

// shareState is what a share is judged against, read once: the miner's
// session as it stood and the job the share's id names.
type shareState struct {
	subscribed bool
	authorized bool   // the share's worker
	en2Size    int    // the extranonce2_size the miner was told
	rolling    bool   // version rolling negotiated
	mask       uint32 // the version mask granted
	prefix     []byte // the miner's extranonce prefix
	ntimeRoll  uint32 // Config.NTimeRoll
	// The job (Server.lookup of the share's job id; pj nil when unknown)
	// and the extranonce space now in force.
	pj  *pjob
	upj *source.Job
	sp  *space
}

// shareAction is what becomes of a judged share.
type shareAction int

const (
	refuseShare  shareAction = iota // answered at once, counted as outcome
	forwardShare                    // meets the pool's difficulty: claim it and send it
	keepLocal                       // a blocks-only upstream's job: judged at the miner's own difficulty
)

// shareDecision is the host's verdict on a share before anything is
// claimed or sent. A duplicate is found only when the share is claimed
// (Entry.Claim reserves it atomically), so it is no decision here.
type shareDecision struct {
	action shareAction
	// refuseShare: how it is counted and answered.
	outcome Outcome
	code    int
	reason  string
	worker  string // whose share: "" until its worker is known authorized
	// forwardShare and keepLocal: the work the share solves.
	unit   *work.Unit
	nonce  uint32
	chk    work.Check
	judged float64 // forwardShare: the difficulty the upstream credits it at
}

// judgeShare decides a share on what the miner and the job say, without
// touching either: the answer it gets today for each way it can be wrong,
// or the unit it solves.
func judgeShare(sub work.Submit, st shareState) shareDecision {
	refuse := func(worker string, o Outcome, code int, reason string) shareDecision {
		return shareDecision{action: refuseShare, outcome: o, code: code, reason: reason, worker: worker}
	}
	switch {
	case !st.subscribed:
		return refuse("", Invalid, wire.CodeNotSubscribed, "Not subscribed")
	case !st.authorized:
		return refuse("", Invalid, wire.CodeUnauthorized, "Unauthorized worker")
	}
	worker := sub.Worker
	pj, upj, sp := st.pj, st.upj, st.sp
	if pj == nil {
		return refuse(worker, Stale, wire.CodeJobNotFound, "Job not found")
	}
	entry := upj.Entry
	if pj.sp != sp || !entry.Live() {
		return refuse(worker, Stale, wire.CodeJobNotFound, "Stale")
	}
	if len(sub.Extranonce2) != 2*st.en2Size {
		return refuse(worker, Invalid, wire.CodeOther, "Incorrect size of extranonce2")
	}
	en2, err := hex.DecodeString(sub.Extranonce2)
	if err != nil {
		return refuse(worker, Invalid, wire.CodeOther, "extranonce2 is not hex")
	}
	if len(sub.NTime) != 8 || len(sub.Nonce) != 8 {
		return refuse(worker, Invalid, wire.CodeOther, "ntime and nonce must be 8 hex chars")
	}
	ntime, err1 := work.ParseUint32Hex("ntime", sub.NTime)
	nonce, err2 := work.ParseUint32Hex("nonce", sub.Nonce)
	if err1 != nil || err2 != nil {
		return refuse(worker, Invalid, wire.CodeOther, "ntime and nonce must be hex")
	}
	j := upj.Job
	if ntime < j.NTime || ntime-j.NTime > st.ntimeRoll {
		return refuse(worker, Invalid, wire.CodeOther, "Ntime out of range")
	}
	version := j.Version
	if sub.VersionBits != "" {
		if !st.rolling {
			return refuse(worker, Invalid, wire.CodeVersionMask, "version rolling not negotiated")
		}
		bits, err := work.ParseUint32Hex("version_bits", sub.VersionBits)
		if err != nil || bits&^st.mask != 0 || bits&^upj.RollingMask != 0 {
			return refuse(worker, Invalid, wire.CodeVersionMask, "Invalid version mask")
		}
		version = j.Version&^st.mask | bits
	}
	// The miner's sizes are its current ones; the job's extranonce space
	// may be another pool's (a failover the miner has not been told of
	// yet), and a share that does not fit it is stale, never a panic.
	if len(st.prefix)+len(en2) > sp.size {
		return refuse(worker, Stale, wire.CodeJobNotFound, "Stale: the pool changed its extranonce space")
	}
	full := make([]byte, 0, sp.size)
	full = append(full, st.prefix...)
	full = append(full, en2...)
	full = append(full, make([]byte, sp.size-len(full))...)
	u, err := j.NewUnit(full, version, ntime)
	if err != nil {
		return refuse(worker, Invalid, wire.CodeOther, err.Error())
	}
	chk := u.Check(nonce)
	if pj.local {
		return shareDecision{action: keepLocal, worker: worker, unit: u, nonce: nonce, chk: chk}
	}
	ok, judged := entry.Judge(chk.Hash)
	if !ok {
		return refuse(worker, LowDifficulty, wire.CodeLowDifficulty, fmt.Sprintf("Low difficulty share of %.6g", chk.Difficulty))
	}
	return shareDecision{action: forwardShare, worker: worker, unit: u, nonce: nonce, chk: chk, judged: judged}
}

// forward claims a share judgeShare passed and sends it to the pool under
// key; the pool's verdict answers the miner.
func (c *conn) forward(id json.RawMessage, key string, pj *pjob, upj *source.Job, d shareDecision) {
	worker, u, nonce, judged := d.worker, d.unit, d.nonce, d.judged
	rate := c.toldFor(pj.seq, judged).diff
	if !c.claim(id, worker, upj.Entry, ledger.ShareKey(u, nonce), true) {
		return
	}
	if d.chk.MeetsNetwork {
		c.log.Info("block found by a miner", "event", "block.found", "worker", worker, "hash", work.HashDisplay(d.chk.Hash))
	}
	sent := time.Now()
	c.s.up.Send(source.Share{Job: upj, Unit: u, Nonce: nonce, Worker: key}, func(r source.Reply) {
		c.unpend()
		switch r.Kind {
		case source.Accepted:
			c.accepted(id, worker, judged, rate, time.Since(sent))
		case source.NotSent:
			c.verdict(id, worker, Stale, wire.CodeJobNotFound, "Stale: the pool session that issued the job ended")
		case source.Throttled:
			c.verdict(id, worker, Busy, wire.CodeOther, "too many shares awaiting the pool's verdict")
		case source.NoReply:
			c.verdict(id, worker, Lost, wire.CodeOther, "no verdict from the pool: "+r.Reason)
		default:
			code := r.Code
			if code == 0 {
				code = wire.CodeOther
			}
			c.verdict(id, worker, Rejected, code, r.Reason)
		}
	})
}

// localShare judges a share of a job from an upstream that takes only
// blocks (a node): at the difficulty the miner was told, kept here when it
// is no block; a block goes to the node, once (its source sends one block
// per tip), and its verdict is counted for the miner. The share itself
// met its difficulty either way, so it is accepted unless its block could
// not be sent (the tip already had one: stale).
func (c *conn) localShare(id json.RawMessage, worker, key string, pj *pjob, upj *source.Job, u *work.Unit, nonce uint32, chk work.Check) {
	// The network target decides a block, not a float difficulty near it.
	block, _ := upj.Entry.Judge(chk.Hash)
	c.mu.Lock()
	told := c.toldForLocked(pj.seq)
	c.mu.Unlock()
	if !block && !told.target.Met(chk.Hash) {
		c.verdict(id, worker, LowDifficulty, wire.CodeLowDifficulty, fmt.Sprintf("Low difficulty share of %.6g", chk.Difficulty))
		return
	}
	if !c.claim(id, worker, upj.Entry, ledger.ShareKey(u, nonce), block) {
		return
	}
	c.mu.Lock()
	c.vd.shares++
	retarget := c.vd.retarget(time.Now(), &c.s.cfg)
	c.mu.Unlock()
	if !block {
		c.accepted(id, worker, told.diff, told.diff, 0)
	} else {
		c.log.Info("block found by a miner; sending it to the node", "event", "block.found", "worker", worker, "hash", work.HashDisplay(chk.Hash))
		sent := time.Now()
		c.s.up.Send(source.Share{Job: upj, Unit: u, Nonce: nonce, Worker: key}, func(r source.Reply) {
			c.unpend()
			if r.Kind == source.NotSent {
				c.verdict(id, worker, Stale, wire.CodeJobNotFound, "Stale: the block was not sent: "+r.Reason)
				return
			}
			c.blockVerdict(worker, r)
			c.accepted(id, worker, told.diff, told.diff, time.Since(sent))
		})
	}
	if retarget {
		c.resendLocal()
	}
}

// claim reserves a share for sending (pend: it awaits an upstream verdict,
// within the miner's MaxPending): the miner's prefix is marked as having
// sent shares, and the ledger's duplicate check takes it. False means the
// share was answered (busy, stale or duplicate).
func (c *conn) claim(id json.RawMessage, worker string, entry *ledger.Entry, key ledger.Key, pend bool) bool {
	epoch := c.s.curEpoch()
	c.mu.Lock()
	if pend && c.pending >= c.s.cfg.MaxPending {
		c.mu.Unlock()
		c.verdict(id, worker, Busy, wire.CodeOther, "too many shares awaiting the pool's verdict; slow down")
		return false
	}
	if c.closed {
		// Its prefix may already be free: nothing of it goes to the pool.
		c.mu.Unlock()
		c.verdict(id, worker, Stale, wire.CodeJobNotFound, "Stale: the miner disconnected")
		return false
	}
	if !c.s.earnPrefix(c) {
		// Its prefix went to a newcomer: nothing of it goes to the pool.
		c.mu.Unlock()
		c.verdict(id, worker, Stale, wire.CodeJobNotFound, "Stale: the miner's prefix went to another miner")
		return false
	}
	// Marked before the claim, under the lock close reads it with: the
	// prefix of a miner that sent shares cools down (releaseSlot).
	c.claimed, c.claimEpoch = true, epoch
	if pend {
		c.pending++
	}
	c.mu.Unlock()
	if !entry.Claim(key) {
		if pend {
			c.unpend()
		}
		if !entry.Live() {
			c.verdict(id, worker, Stale, wire.CodeJobNotFound, "Stale")
		} else {
			c.verdict(id, worker, Duplicate, wire.CodeDuplicate, "Duplicate share")
		}
		return false
	}
	return true
}

// noteToldLocked records that the miner was told diff for job seq (the
// lowest, when the job is re-sent) and forgets jobs the proxy no longer
// knows.
func (c *conn) noteToldLocked(seq uint64, diff float64) {
	if t, ok := c.sent[seq]; ok && t.diff <= diff {
		return
	}
	target, err := work.TargetForDifficulty(diff)
	if err != nil {
		return
	}
	c.sent[seq] = toldDiff{diff, target}
	for k := range c.sent {
		if k+2*keptJobs < seq {
			delete(c.sent, k)
		}
	}
}

// toldForLocked is what the miner was told for job seq; a job it was
// never sent (a guessed id) is judged at its current difficulty.
func (c *conn) toldForLocked(seq uint64) toldDiff {
	if t, ok := c.sent[seq]; ok {
		return t
	}
	d := c.diff
	if d <= 0 {
		d = c.vd.diff
	}
	t, err := work.TargetForDifficulty(d)
	if err != nil {
		t, _ = work.TargetForDifficulty(c.s.cfg.StartDifficulty)
	}
	return toldDiff{d, t}
}

// toldFor is the difficulty the miner was told for job seq (for its
// hashrate), else def.
func (c *conn) toldFor(seq uint64, def float64) toldDiff {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.sent[seq]; ok {
		return t
	}
	return toldDiff{diff: def}
}

// resendLocal re-sends the current job after the miner's own difficulty
// changed, so that the change applies now rather than at the node's next
// template (up to 30 s away).
func (c *conn) resendLocal() {
	if pj, _, _ := c.s.current(); pj != nil && pj.local {
		c.sendJob(pj, false)
	}
}

// onSuggest takes mining.suggest_difficulty (or suggest_target): with a
// node upstream it becomes the miner's difficulty, within the configured
// bounds; a pool's difficulty is every miner's (a higher one would cut
// the pool's credit, a lower one send shares it rejects), so there it is
// only kept for a failover to a node.
func (c *conn) onSuggest(m *wire.Message) error {
	if m.Kind == wire.KindRequest {
		c.respond(m.ID, true, nil)
	}
	d, err := suggested(m)
	if err != nil {
		return c.junk("bad " + m.Method)
	}
	c.mu.Lock()
	c.vd.set(d, time.Now(), &c.s.cfg)
	ready := c.subscribed && c.authorized && !c.closed
	c.mu.Unlock()
	if ready {
		c.resendLocal()
	}
	return nil
}

// suggested reads the difficulty a suggest_difficulty or suggest_target
// asks for.
func suggested(m *wire.Message) (float64, error) {
	if m.Method != wire.MethodSuggestTarget {
		d, err := stratum.ParseDifficulty(m.Params)
		if err == nil && (d <= 0 || math.IsInf(d, 0) || math.IsNaN(d)) {
			err = fmt.Errorf("difficulty %v", d)
		}
		return d, err
	}
	var params []json.RawMessage
	var hexT string
	if err := json.Unmarshal(m.Params, &params); err != nil || len(params) == 0 {
		return 0, errors.New("want [target]")
	}
	if err := json.Unmarshal(params[0], &hexT); err != nil {
		return 0, errors.New("want a hex target")
	}
	t, err := work.ParseTarget("target", hexT)
	if err != nil {
		return 0, err
	}
	d := work.TargetDifficulty(t)
	if d <= 0 || math.IsInf(d, 0) || math.IsNaN(d) {
		return 0, fmt.Errorf("target %s", hexT)
	}
	return d, nil
}

func (c *conn) unpend() {
	c.mu.Lock()
	c.pending--
	c.mu.Unlock()
}

// verdict answers a refused share and counts it once.
func (c *conn) verdict(id json.RawMessage, worker string, o Outcome, code int, reason string) {
	c.count(worker, o, 0, 0)
	c.reject(id, code, reason)
	if o == Rejected || o == Lost {
		c.s.logErr.Warn(c.log, "share "+string(o), "event", "proxy.share_"+string(o), "worker", worker, "reason", reason)
	} else {
		c.log.Debug("share refused locally", "event", "proxy.share_"+string(o), "worker", worker, "reason", reason)
	}
}

// accepted answers an accepted share: credit is the difficulty the
// upstream credits it at, rate the one the miner was told (what its
// hashrate is estimated from).
func (c *conn) accepted(id json.RawMessage, worker string, credit, rate float64, rtt time.Duration) {
	c.count(worker, Accepted, credit, rate)
	c.respond(id, true, nil)
	c.log.Debug("share accepted", "event", "proxy.share_accepted", "worker", worker, "diff", credit, "rtt", rtt)
}

func (c *conn) count(worker string, o Outcome, credit, rate float64) {
	now := time.Now()
	c.mu.Lock()
	c.counts.add(o, credit)
	if o == Accepted {
		c.rate.add(now, rate)
		c.lastShare = now
	}
	c.mu.Unlock()
	c.s.count(worker, o, credit)
}

// blockVerdict counts what the node made of a block the miner found.
func (c *conn) blockVerdict(worker string, r source.Reply) {
	c.mu.Lock()
	c.counts.addBlock(r.Kind)
	c.mu.Unlock()
	c.s.countBlock(worker, r.Kind)
	switch r.Kind {
	case source.Accepted:
		c.log.Info("the node accepted a block found by a miner", "event", "proxy.block_accepted", "worker", worker, "rtt", r.RTT)
	case source.Rejected:
		c.log.Error("the node rejected a block found by a miner", "event", "proxy.block_rejected", "worker", worker, "reason", r.Reason)
	default:
		c.log.Error("no verdict from the node on a block found by a miner", "event", "proxy.block_"+r.Kind.String(), "worker", worker, "reason", r.Reason)
	}
}
