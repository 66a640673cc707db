package proxy

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/charmbracelet/log"

	"clminer/stratum"
	"clminer/work"
	"clminer/work/ledger"
	"clminer/work/ratelog"
	"clminer/work/source"
)

// Config tunes a Server; zero values get the defaults in brackets.
type Config struct {
	Listen string      // host:port for miners [127.0.0.1:3334]
	Logger *log.Logger // [discard]
	// PrefixSize is how many bytes of the pool's extranonce2 each miner's
	// unique prefix takes [1 when the pool's extranonce2_size is below 6,
	// else 2]. It is fixed when the first job arrives.
	PrefixSize int
	// MaxMiners bounds the miners served at once [1024, and at most
	// 256^PrefixSize].
	MaxMiners int
	// MaxConns bounds open connections, subscribed or not [MaxMiners + 64].
	MaxConns    int
	MaxLineSize int // bytes; a longer line drops the miner [16 KiB]
	// MaxPending bounds one connection's shares awaiting the pool's verdict;
	// beyond it a share is refused with "busy" [64].
	MaxPending int
	MaxWorkers int     // worker names one connection may authorize [8]
	Rate       float64 // messages a connection may send per second, sustained [200]
	Burst      int     // messages it may send at once [400]
	// Users, when set, is the list of downstream user -> password allowed
	// to authorize; nil accepts any name.
	Users map[string]string
	// HandshakeTimeout: a miner must subscribe and authorize within it; it
	// also bounds the wait for the pool's first job [30 s].
	HandshakeTimeout time.Duration
	// IdleTimeout: no line from an authorized miner for this long drops it
	// [none: a small miner at a high pool difficulty may submit once an
	// hour; TCP keepalive finds dead peers].
	IdleTimeout  time.Duration
	WriteQueue   int           // lines queued for a miner before it is dropped as not reading [256]
	WriteTimeout time.Duration // one write to a miner [10 s]
	// NTimeRoll is how far above the job's ntime a share may be (btcpool's
	// window, the narrowest of stratum-v1.md §6) [600].
	NTimeRoll uint32
	// WorkerKey turns a downstream worker name into the sub-worker key it is
	// authorized upstream as ("" puts it under the pool user) [the part after
	// the last '.', letters, digits, '-' and '_' only, at most 32 bytes].
	WorkerKey func(downstream string) string
}

func (c *Config) defaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:3334"
	}
	if c.Logger == nil {
		c.Logger = log.New(io.Discard)
	}
	if c.MaxMiners <= 0 {
		c.MaxMiners = 1024
	}
	if c.MaxConns <= 0 {
		c.MaxConns = c.MaxMiners + 64
	}
	if c.MaxLineSize <= 0 {
		c.MaxLineSize = 16 << 10
	}
	if c.MaxPending <= 0 {
		c.MaxPending = 64
	}
	if c.MaxWorkers <= 0 {
		c.MaxWorkers = 8
	}
	if c.Rate <= 0 {
		c.Rate = 200
	}
	if c.Burst <= 0 {
		c.Burst = 400
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.HandshakeTimeout, 30*time.Second)
	def(&c.WriteTimeout, 10*time.Second)
	if c.WriteQueue <= 0 {
		c.WriteQueue = 256
	}
	if c.NTimeRoll == 0 {
		c.NTimeRoll = 600
	}
	if c.WorkerKey == nil {
		c.WorkerKey = DefaultWorkerKey
	}
}

// DefaultWorkerKey keeps the rig part of a downstream name ("wallet.rig1"
// and "rig1" both give "rig1") in the characters every pool takes.
func DefaultWorkerKey(name string) string {
	if i := bytes.LastIndexByte([]byte(name), '.'); i >= 0 {
		name = name[i+1:]
	}
	out := make([]byte, 0, len(name))
	for i := 0; i < len(name) && len(out) < 32; i++ {
		c := name[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			out = append(out, c)
		}
	}
	return string(out)
}

// Upstream is what the proxy needs of the pool side: a stratum.Client.
type Upstream interface {
	Run(ctx context.Context, sink source.Sink) error
	SubmitAsync(j *stratum.Job, sub work.Submit, key string, done func(stratum.SubmitResult, error))
	AddWorker(key string) error
	RemoveWorker(key string)
	WaitWorker(key string, d time.Duration) (name, state string)
	Status() []stratum.PoolStatus
	Workers() []stratum.WorkerStatus
}

// maxDownstreamEN2 is the largest extranonce2_size given to a miner:
// cgminer refuses to submit above 8 and WhatsMiners fail (stratum-v1.md §8).
const maxDownstreamEN2 = 8

// keptJobs is how many jobs stay known so that late shares are answered
// "stale" rather than "job not found".
const keptJobs = 32

// space is one upstream share space: what the jobs of one pool session
// have in common.
type space struct {
	session uint64
	en1     []byte
	size    int // upstream extranonce2_size
}

// pjob is a job as the miners see it, under the proxy's own id: job ids of
// two pools (or two sessions) may collide, and a share must go back to the
// session that issued its job.
type pjob struct {
	id  string
	seq uint64
	up  *source.Job // the latest issue (a difficulty raise re-issues it)
	sp  *space
	// params per downstream extranonce2_size (the padding differs)
	params map[int]work.JobParams
}

// Server is the farm proxy.
type Server struct {
	cfg Config
	up  Upstream
	log *log.Logger
	ln  net.Listener

	mu       sync.Mutex
	conns    map[uint64]*conn
	nextConn uint64
	sp       *space
	spReady  chan struct{} // closed once the first space is known
	prefix   int
	capacity int
	slots    []slot
	nextSlot int
	epoch    uint64 // bumped by clean jobs and new spaces: frees quarantined prefixes
	jobs     map[string]*pjob
	order    []*pjob
	byEntry  map[*ledger.Entry]*pjob
	cur      *pjob
	jobSeq   uint64
	idle     string // why there is no job to mine ("" when there is one)
	totals   Counts
	workers  map[string]*Counts // by downstream worker name, bounded
	refused  uint64             // miners turned away (full, bad auth, limits)
	keyRefs  map[string]int     // connections using each upstream sub-worker key
	upNames  map[string]string  // downstream worker -> the name last authorized upstream for it
	started  time.Time

	// logErr limits warnings a miner can cause; logConn the connection
	// lines, so a reconnect storm cannot flood the log.
	logErr, logConn *ratelog.Log

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type slot struct {
	used     bool
	released uint64 // epoch at release; reusable once epoch moved past it
	ever     bool
}

// New checks cfg and binds nothing.
func New(cfg Config, up Upstream) (*Server, error) {
	cfg.defaults()
	if up == nil {
		return nil, errors.New("proxy: no upstream")
	}
	if cfg.PrefixSize < 0 || cfg.PrefixSize > 4 {
		return nil, fmt.Errorf("proxy: extranonce prefix size %d: want 1..4 bytes (0: automatic)", cfg.PrefixSize)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{cfg: cfg, up: up, log: cfg.Logger, conns: map[uint64]*conn{}, spReady: make(chan struct{}),
		jobs: map[string]*pjob{}, byEntry: map[*ledger.Entry]*pjob{}, workers: map[string]*Counts{}, keyRefs: map[string]int{}, upNames: map[string]string{},
		logErr: ratelog.New(10*time.Second, 5), logConn: ratelog.New(10*time.Second, 20), ctx: ctx, cancel: cancel, idle: "no job from the pool yet", started: time.Now()}, nil
}

// Listen binds the miners' address, so a busy port fails at start-up.
func (s *Server) Listen() error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("proxy listen %s: %w", s.cfg.Listen, err)
	}
	s.ln = ln
	return nil
}

// Addr is the bound address (with the real port when listening on :0).
func (s *Server) Addr() string {
	if s.ln == nil {
		return s.cfg.Listen
	}
	return s.ln.Addr().String()
}

// Run serves miners and runs the upstream until ctx ends, then closes every
// connection and returns once every goroutine it started has finished.
func (s *Server) Run(ctx context.Context) error {
	if s.ln == nil {
		if err := s.Listen(); err != nil {
			return err
		}
	}
	upCtx, stopUp := context.WithCancel(context.Background())
	upDone := make(chan error, 1)
	go func() { upDone <- s.up.Run(upCtx, sink{s}) }()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.accept()
	}()
	var err error
	select {
	case <-ctx.Done():
	case err = <-upDone:
		upDone <- err
	}
	s.cancel()
	s.ln.Close()
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.close(errors.New("proxy shutting down"))
	}
	stopUp()
	upErr := <-upDone
	s.wg.Wait()
	if err == nil && upErr != nil && !errors.Is(upErr, context.Canceled) {
		err = upErr
	}
	if err != nil && errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

func (s *Server) accept() {
	backoff := 5 * time.Millisecond
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait rather than spin.
			s.logErr.Warn(s.log, "accepting a miner failed", "event", "proxy.accept_error", "err", err)
			select {
			case <-s.ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		s.mu.Lock()
		if s.ctx.Err() != nil {
			// Run is closing the connections it knows: this one is not
			// among them.
			s.mu.Unlock()
			nc.Close()
			return
		}
		if len(s.conns) >= s.cfg.MaxConns {
			s.refused++
			s.mu.Unlock()
			s.logErr.Warn(s.log, "refusing a connection: too many open", "event", "proxy.refused", "remote", nc.RemoteAddr().String(), "max_conns", s.cfg.MaxConns)
			nc.Close()
			continue
		}
		s.nextConn++
		c := newConn(s, s.nextConn, nc)
		s.conns[c.id] = c
		s.mu.Unlock()
		c.start()
	}
}

// sink receives the upstream's jobs and events, in order, on one goroutine.
type sink struct{ s *Server }

func (k sink) Job(j *source.Job) { k.s.onJob(j) }
func (k sink) NoWork(reason string) {
	k.s.mu.Lock()
	k.s.idle = reason
	k.s.mu.Unlock()
	k.s.log.Warn("no live job from any pool; miners' shares are stale until one comes", "event", "proxy.idle", "reason", reason)
}
func (k sink) Event(e source.Event) {
	kv := []any{"pool", e.URL}
	if e.Err != nil {
		kv = append(kv, "err", e.Err)
	}
	switch {
	case errors.Is(e.Err, context.Canceled):
		k.s.log.Info("upstream pool session closed", append(kv, "event", "proxy.upstream_closed")...)
		return
	}
	switch e.Kind {
	case source.EventAuthorized:
		k.s.log.Info("upstream pool connected and authorized", append(kv, "event", "proxy.upstream_connected")...)
	case source.EventDisconnected, source.EventSick, source.EventAuthFailed:
		k.s.log.Warn("upstream pool "+e.Kind.String(), append(kv, "event", "proxy.upstream_"+e.Kind.String())...)
	case source.EventFailover:
		k.s.log.Warn("upstream failover; miners keep their connections", append(kv, "event", "proxy.upstream_failover", "from", e.From, "to", e.To)...)
	default:
		k.s.log.Debug("upstream "+e.Kind.String(), append(kv, "event", "proxy.upstream_"+e.Kind.String())...)
	}
}

func autoPrefix(size int) int {
	if size < 6 {
		return 1
	}
	return 2
}

// onJob turns an upstream job into the miners' job and sends it.
func (s *Server) onJob(j *source.Job) {
	s.mu.Lock()
	if s.prefix == 0 {
		s.prefix = s.cfg.PrefixSize
		if s.prefix == 0 {
			s.prefix = autoPrefix(j.Extranonce2Size)
		}
		s.capacity = s.cfg.MaxMiners
		if max := 1 << (8 * min(s.prefix, 3)); s.capacity > max {
			s.capacity = max
		}
		s.slots = make([]slot, s.capacity)
		s.log.Info(fmt.Sprintf("extranonce split: %d byte prefix per miner, up to %d miners", s.prefix, s.capacity),
			"event", "proxy.split", "prefix_bytes", s.prefix, "pool_extranonce2_size", j.Extranonce2Size, "max_miners", s.capacity)
	}
	if j.Extranonce2Size-s.prefix < 1 {
		s.idle = fmt.Sprintf("pool extranonce2_size %d leaves nothing after the %d byte miner prefix", j.Extranonce2Size, s.prefix)
		s.mu.Unlock()
		s.logErr.Warn(s.log, "cannot split this pool's extranonce2 space; its jobs are not forwarded", "event", "proxy.split_impossible",
			"pool", j.PoolURL, "pool_extranonce2_size", j.Extranonce2Size, "prefix_bytes", s.prefix)
		return
	}
	newSpace := s.sp == nil || s.sp.session != j.Session || !bytes.Equal(s.sp.en1, j.Extranonce1) || s.sp.size != j.Extranonce2Size
	if newSpace {
		first := s.sp == nil
		s.sp = &space{session: j.Session, en1: append([]byte(nil), j.Extranonce1...), size: j.Extranonce2Size}
		s.epoch++
		if first {
			close(s.spReady)
		}
	}
	s.idle = ""
	pj := s.byEntry[j.Entry]
	reissue := pj != nil && pj.sp == s.sp
	clean := newSpace || j.Clean
	if reissue {
		pj.up = j
		pj.params = map[int]work.JobParams{}
	} else {
		if clean {
			s.epoch++
		}
		s.jobSeq++
		pj = &pjob{id: strconv.FormatUint(s.jobSeq, 16), seq: s.jobSeq, up: j, sp: s.sp, params: map[int]work.JobParams{}}
		s.jobs[pj.id] = pj
		s.byEntry[j.Entry] = pj
		s.order = append(s.order, pj)
		for len(s.order) > keptJobs {
			old := s.order[0]
			s.order = s.order[1:]
			delete(s.jobs, old.id)
			if s.byEntry[old.up.Entry] == old {
				delete(s.byEntry, old.up.Entry)
			}
		}
	}
	s.cur = pj
	conns := make([]*conn, 0, len(s.conns))
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.sendJob(pj, clean && !reissue)
	}
}

// paramsFor builds the notify a miner with extranonce2_size d is sent: the
// upstream extranonce1 folded into coinb1, the upstream extranonce2 bytes
// beyond prefix and d zero-padded at the head of coinb2.
func (s *Server) paramsFor(pj *pjob, d int, clean bool) work.JobParams {
	s.mu.Lock()
	p, ok := pj.params[d]
	prefix := s.prefix
	j := pj.up.Job
	s.mu.Unlock()
	if !ok {
		pad := pj.sp.size - prefix - d
		branch := make([]string, len(j.Branch))
		for i, b := range j.Branch {
			branch[i] = hex.EncodeToString(b[:])
		}
		p = work.JobParams{
			JobID:        pj.id,
			PrevHash:     j.PrevHashHex(),
			Coinb1:       hex.EncodeToString(j.Coinb1) + hex.EncodeToString(j.Extranonce1),
			Coinb2:       hex.EncodeToString(make([]byte, pad)) + hex.EncodeToString(j.Coinb2),
			MerkleBranch: branch,
			Version:      work.FormatUint32Hex(j.Version),
			NBits:        work.FormatUint32Hex(j.NBits),
			NTime:        work.FormatUint32Hex(j.NTime),
		}
		s.mu.Lock()
		pj.params[d] = p
		s.mu.Unlock()
	}
	p.CleanJobs = clean
	return p
}

// waitSpace waits for the pool's first job, up to d.
func (s *Server) waitSpace(done <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-s.spReady:
		return true
	case <-t.C:
	case <-done:
	case <-s.ctx.Done():
	}
	return false
}

// ErrFull is the refusal of a miner when every prefix is taken.
var ErrFull = errors.New("proxy full")

// allocSlot hands out a free prefix index, round robin, skipping any given
// up since the last clean job (its jobs may still be live, and a newcomer
// starting at extranonce2 0 would repeat its predecessor's shares).
func (s *Server) allocSlot() (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 0; i < s.capacity; i++ {
		n := (s.nextSlot + i) % s.capacity
		sl := &s.slots[n]
		if sl.used || sl.ever && sl.released >= s.epoch {
			continue
		}
		sl.used, sl.ever = true, true
		s.nextSlot = (n + 1) % s.capacity
		return n, nil
	}
	return 0, fmt.Errorf("%w: all %d extranonce prefixes (%d bytes of the pool's extranonce2) are in use or cooling down until the next clean job", ErrFull, s.capacity, s.prefix)
}

func (s *Server) releaseSlot(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n >= 0 && n < len(s.slots) {
		s.slots[n].used = false
		s.slots[n].released = s.epoch
	}
}

func (s *Server) removeConn(c *conn) {
	s.mu.Lock()
	delete(s.conns, c.id)
	s.mu.Unlock()
}

// current returns the job miners should work on, the space and the
// prefix size.
func (s *Server) current() (*pjob, *space, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur, s.sp, s.prefix
}

// lookup returns the job the miners know as id, its latest issue and the
// current space.
func (s *Server) lookup(id string) (*pjob, *source.Job, *space) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pj := s.jobs[id]
	if pj == nil {
		return nil, nil, s.sp
	}
	return pj, pj.up, s.sp
}

// issue is pj's latest upstream issue.
func (s *Server) issue(pj *pjob) *source.Job {
	s.mu.Lock()
	defer s.mu.Unlock()
	return pj.up
}

// useKey records a connection's use of sub-worker key and registers it
// upstream on first use.
func (s *Server) useKey(key string) error {
	s.mu.Lock()
	n := s.keyRefs[key]
	s.mu.Unlock()
	if n == 0 {
		if err := s.up.AddWorker(key); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.keyRefs[key]++
	s.mu.Unlock()
	return nil
}

// dropKey releases a connection's use of key; the last one removes it
// upstream, so the set authorized on every new pool session is the
// workers connected now, not every name ever seen.
func (s *Server) dropKey(key string) {
	s.mu.Lock()
	s.keyRefs[key]--
	last := s.keyRefs[key] <= 0
	if last {
		delete(s.keyRefs, key)
	}
	s.mu.Unlock()
	if last {
		s.up.RemoveWorker(key)
	}
}
