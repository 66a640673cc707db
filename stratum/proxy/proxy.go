package proxy

import (
	"bytes"
	"container/list"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/charmbracelet/log"

	"clminer/stratum"
	"clminer/work"
	"clminer/work/connlimit"
	"clminer/work/ledger"
	"clminer/work/option"
	"clminer/work/ratelog"
	"clminer/work/retry"
	"clminer/work/source"
)

// Config tunes a Server; zero values get the defaults in brackets.
type Config struct {
	Logger *log.Logger // [discard]
	// PrefixSize is how many bytes of the pool's extranonce2 each miner's
	// unique prefix takes [1 when the pool's extranonce2_size is below 6,
	// else 2]. It is fixed when the first job arrives.
	PrefixSize int
	// MaxMiners bounds the miners served at once [1024, and at most
	// 256^PrefixSize].
	MaxMiners int
	// MaxConns bounds open connections, subscribed or not [MaxMiners + 64];
	// past it the oldest connection that has not authenticated is closed
	// to make room.
	MaxConns int
	// MaxConnsPerIP bounds the connections of one address (an IPv6 /64)
	// [64]; MaxUnauthPerIP those of them not yet authenticated, the oldest
	// closed to make room [16].
	MaxConnsPerIP  int
	MaxUnauthPerIP int
	MaxLineSize    int // bytes; a longer line drops the miner [16 KiB]
	// MaxPending bounds one connection's shares awaiting the pool's verdict;
	// beyond it a share is refused with "busy" [64].
	MaxPending int
	MaxWorkers int     // worker names one connection may authorize [8]
	Rate       float64 // messages a connection may send per second, sustained [200]
	Burst      int     // messages it may send at once [400]
	// Users, when set, is the list of downstream user -> password allowed
	// to authorize; nil accepts any name.
	Users map[string]string
	// FirstLineTimeout: a miner must send its first line within it [5 s].
	FirstLineTimeout time.Duration
	// HandshakeTimeout: a miner must subscribe and authorize within it; it
	// also bounds the wait for the pool's first job [15 s].
	HandshakeTimeout time.Duration
	// IdleTimeout: no line from an authorized miner for this long drops it
	// [none: a small miner at a high pool difficulty may submit once an
	// hour; TCP keepalive finds dead peers].
	IdleTimeout time.Duration
	// SilentGrace: when every prefix is taken, an authorized miner that
	// has sent no share for this long gives its prefix to a newcomer
	// [2 min: a real miner's first share comes sooner at any sane pool
	// difficulty, and a miner holding a prefix idle keeps others out].
	SilentGrace time.Duration
	// WriteQueueBytes bounds what waits to be written to a miner; past it
	// the miner is dropped as not reading (one line always fits an empty
	// queue) [64 KiB].
	WriteQueueBytes int
	WriteTimeout    time.Duration // one write to a miner [10 s]
	// NTimeRoll is how far above the job's ntime a share may be (btcpool's
	// window, the narrowest of stratum/PROTOCOL.md#rolling) [600].
	NTimeRoll uint32
	// WorkerKey turns a downstream worker name into the sub-worker key it is
	// authorized upstream as ("" puts it under the pool user) [with Users,
	// UserWorkerKey, which keeps users apart; else DefaultWorkerKey].
	WorkerKey func(downstream string) string

	// A node upstream takes only blocks, so the proxy sets each miner's
	// share difficulty itself: StartDifficulty for a new miner [1],
	// within MinDifficulty [0.001] and MaxDifficulty [0: none] (a miner's
	// mining.suggest_difficulty is honoured within them), never above the
	// network's; vardiff aims at SharesPerMinute [6] and lowers a miner
	// that found none within RetargetInterval [60 s].
	StartDifficulty  float64
	MinDifficulty    float64
	MaxDifficulty    float64
	SharesPerMinute  float64
	RetargetInterval time.Duration
}

func (c *Config) defaults() {
	if c.Logger == nil {
		c.Logger = log.New(io.Discard)
	}
	if c.MaxMiners <= 0 {
		c.MaxMiners = 1024
	}
	if c.MaxConns <= 0 {
		c.MaxConns = c.MaxMiners + 64
	}
	if c.MaxConnsPerIP <= 0 {
		c.MaxConnsPerIP = 64
	}
	if c.MaxUnauthPerIP <= 0 {
		c.MaxUnauthPerIP = 16
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
	option.Default(&c.FirstLineTimeout, 5*time.Second)
	option.Default(&c.HandshakeTimeout, 15*time.Second)
	option.Default(&c.SilentGrace, 2*time.Minute)
	option.Default(&c.WriteTimeout, 10*time.Second)
	if c.WriteQueueBytes <= 0 {
		c.WriteQueueBytes = 64 << 10
	}
	if c.NTimeRoll == 0 {
		c.NTimeRoll = 600
	}
	if c.WorkerKey == nil {
		c.WorkerKey = DefaultWorkerKey
		if c.Users != nil {
			c.WorkerKey = UserWorkerKey
		}
	}
	if c.MinDifficulty <= 0 {
		c.MinDifficulty = 0.001
	}
	if c.StartDifficulty <= 0 {
		c.StartDifficulty = max(1, c.MinDifficulty)
		if c.MaxDifficulty > 0 {
			c.StartDifficulty = min(c.StartDifficulty, c.MaxDifficulty)
		}
	}
	if c.SharesPerMinute <= 0 {
		c.SharesPerMinute = 6
	}
	option.Default(&c.RetargetInterval, 60*time.Second)
}

// checkDifficulty refuses difficulty settings that contradict each other.
func (c *Config) checkDifficulty() error {
	for _, d := range []float64{c.StartDifficulty, c.MinDifficulty, c.MaxDifficulty, c.SharesPerMinute} {
		if math.IsNaN(d) || math.IsInf(d, 0) || d < 0 {
			return fmt.Errorf("proxy: difficulty settings must be finite and not negative (start %v, min %v, max %v, shares per minute %v)",
				c.StartDifficulty, c.MinDifficulty, c.MaxDifficulty, c.SharesPerMinute)
		}
	}
	if c.MaxDifficulty > 0 && c.MinDifficulty > c.MaxDifficulty {
		return fmt.Errorf("proxy: minimum difficulty %v is above the maximum %v", c.MinDifficulty, c.MaxDifficulty)
	}
	if c.StartDifficulty < c.MinDifficulty || c.MaxDifficulty > 0 && c.StartDifficulty > c.MaxDifficulty {
		return fmt.Errorf("proxy: start difficulty %v is outside %v..%v", c.StartDifficulty, c.MinDifficulty, c.MaxDifficulty)
	}
	return nil
}

// DefaultWorkerKey keeps the rig part of a downstream name ("wallet.rig1"
// and "rig1" both give "rig1") in the characters every pool takes.
func DefaultWorkerKey(name string) string {
	if i := bytes.LastIndexByte([]byte(name), '.'); i >= 0 {
		name = name[i+1:]
	}
	return stratum.PoolSafe(name, 0)
}

// UserWorkerKey is the key of a --miner-users user: the whole name, '.'
// written '_' ("alice.rig1" gives "alice_rig1"), so that two users' rigs of
// one name are two workers at the pool, not one that mixes their shares.
// New refuses a user list in which two users would still meet.
func UserWorkerKey(name string) string {
	return stratum.PoolSafe(strings.ReplaceAll(name, ".", "_"), 0)
}

// Upstream is what the proxy needs of the pool side: any work source, as
// the miner takes (a Stratum v1 pool list, a Stratum V2 extended channel,
// a node, or a failover chain of them). Jobs must carry an extranonce to
// split (Extranonce2Size of 2 or more; a V2 channel must be extended).
// Where the source has sub-workers (source.SubWorkers: Stratum v1), each
// downstream worker name is authorized as one.
type Upstream = source.Source

// maxDownstreamEN2 is the largest extranonce2_size given to a miner:
// cgminer refuses to submit above 8 and WhatsMiners fail (stratum/PROTOCOL.md#quirks).
const maxDownstreamEN2 = 8

// keptJobs is how many jobs stay known so that late shares are answered
// "stale" rather than "job not found".
const keptJobs = 32

// Bounds on what names cost (issue 22): upstream sub-workers no miner uses
// any more stay authorized, the most recent keptUpstreamWorkers of them, so
// that a returning name costs the pool nothing; a new name costs one
// authorize, at most newNamesBurst at once from one address and one per
// 1/newNamesRate seconds after that, and allNamesBurst/allNamesRate from
// everyone (a name past them goes under the pool user until a later share
// finds budget). Failed authorizations are failedAuthBurst at once from one
// address, one per 1/failedAuthRate seconds after that. The per-address
// tables keep at most peerTable addresses.
const (
	keptUpstreamWorkers = 256
	newNamesBurst       = 32
	newNamesRate        = 0.2
	allNamesBurst       = 1024
	allNamesRate        = 10
	failedAuthBurst     = 10
	failedAuthRate      = 0.1
	peerTable           = 4096
)

// maxIDLen bounds a request id: an id is a number or a short string, and a
// longer one is garbage, never echoed back.
const maxIDLen = 64

// space is one upstream share space: what the jobs of one pool session
// have in common.
type space struct {
	pool    int // upstream index: sessions of two sources may share a number
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
	// told is the difficulty miners are told for it: the upstream's, under
	// the v1 rule for an upstream that lowers at once (TargetAtOnce).
	told float64
	// local: the upstream takes only blocks (BlocksOnly); miners' shares
	// are judged at their own (vardiff) difficulty and kept here.
	local bool
	// bump is added to the ntime miners are sent: an upstream job that
	// comes back after miners were moved off it (a failover chain hands
	// the backup's latest job back) is sent as a new job, on which miners
	// start their extranonce2 at zero again; a later ntime makes their
	// work new instead of repeating the shares they sent on it before.
	bump uint32
	// params per downstream extranonce2_size (the padding differs)
	params map[int]work.JobParams
}

// Server is the farm proxy.
type Server struct {
	cfg Config
	up  Upstream
	wk  source.Workers // up's sub-workers, nil when it has none
	log *log.Logger
	ln  net.Listener // nil: Run refuses (tests drive connections themselves)

	mu       sync.Mutex
	conns    map[uint64]*conn
	nextConn uint64
	sp       *space
	spReady  chan struct{} // closed once the first space is known
	prefix   int
	capacity int
	slots    []slot
	nextSlot int
	// holders are the slot holders not yet authenticated (holdRec),
	// oldest first: when every prefix is taken, the first makes room.
	// silent are those authenticated that have sent no share yet, oldest
	// first: past SilentGrace, the next to make room.
	holders, silent *list.List
	epoch           uint64 // bumped by clean jobs and new spaces: frees quarantined prefixes
	jobs            map[string]*pjob
	order           []*pjob
	byEntry         map[*ledger.Entry]*pjob
	cur             *pjob
	jobSeq          uint64
	// atOnce is the highest difficulty an upstream that lowers at once
	// (V2's SetTarget) had since its last new job: the next new job is
	// told at least that, so a lowering reaches miners from the second job
	// after it, as from a v1 pool.
	atOnce  float64
	idle    string // why there is no job to mine ("" when there is one)
	totals  Counts
	workers map[string]*workerStat // by downstream worker name: those connected and the last keptWorkerStats that left
	gone    *list.List             // names no miner uses, oldest first
	refused uint64                 // miners turned away (full, bad auth, limits)
	started time.Time

	// keyMu orders the upstream sub-worker set: keys and the AddWorker and
	// RemoveWorker calls that keep the client's set equal to it.
	keyMu    sync.Mutex
	keys     map[string]*upKey
	idleKeys *list.List // keys no connection uses, least recently used first

	names, allNames, fails *connlimit.Buckets

	// logErr limits warnings a miner can cause; logConn the connection
	// lines, so a reconnect storm cannot flood the log.
	logErr, logConn *ratelog.Log

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// slot is one extranonce prefix. A prefix whose last holder sent the pool
// a share of a job still live (hot, in epoch cool) is not handed out again
// before a clean job: a newcomer starting at extranonce2 0 would repeat
// those shares. One whose holder sent none is free at once, so sessions
// that subscribe and leave, or authorize and leave, cannot use prefixes up.
type slot struct {
	holder *conn
	hot    bool
	cool   uint64
}

type holdRec struct {
	c     *conn
	n     int
	since time.Time // when it joined its list
}

// upKey is one upstream sub-worker key.
type upKey struct {
	refs   int           // connections using it
	idle   *list.Element // in idleKeys while refs is 0
	adding bool          // AddWorker in progress
}

// New checks cfg and serves up's work to the miners that connect to ln
// once Run is called. The caller binds ln, so that a busy port fails at
// start-up; the server owns it from here and Run closes it.
func New(ln net.Listener, cfg Config, up Upstream) (*Server, error) {
	cfg.defaults()
	if up == nil {
		return nil, errors.New("proxy: no upstream")
	}
	if cfg.PrefixSize < 0 || cfg.PrefixSize > 4 {
		return nil, fmt.Errorf("proxy: extranonce prefix size %d: want 1..4 bytes (0: automatic)", cfg.PrefixSize)
	}
	if err := checkUserKeys(cfg.Users, cfg.WorkerKey); err != nil {
		return nil, err
	}
	if err := cfg.checkDifficulty(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, up: up, wk: source.SubWorkers(up), log: cfg.Logger, conns: map[uint64]*conn{}, spReady: make(chan struct{}), holders: list.New(), silent: list.New(),
		jobs: map[string]*pjob{}, byEntry: map[*ledger.Entry]*pjob{}, workers: map[string]*workerStat{}, gone: list.New(),
		keys: map[string]*upKey{}, idleKeys: list.New(),
		names:    connlimit.NewBuckets(newNamesRate, newNamesBurst, peerTable),
		allNames: connlimit.NewBuckets(allNamesRate, allNamesBurst, 1),
		fails:    connlimit.NewBuckets(failedAuthRate, failedAuthBurst, peerTable),
		logErr:   ratelog.New(10*time.Second, 5), logConn: ratelog.New(10*time.Second, 20), ctx: ctx, cancel: cancel, idle: "no job from the pool yet", started: time.Now()}
	if ln != nil {
		s.ln = connlimit.Wrap(ln, connlimit.Limits{Total: cfg.MaxConns, PerPeer: cfg.MaxConnsPerIP, IdlePerPeer: cfg.MaxUnauthPerIP,
			OnDrop: func(remote net.Addr, why string) {
				s.countRefused()
				s.logErr.Warn(s.log, "dropping a connection: "+why, "event", "proxy.refused", "remote", remote.String())
			}})
	}
	return s, nil
}

// CheckUsers refuses a user list that New would refuse with the default
// WorkerKey.
func CheckUsers(users map[string]string) error { return checkUserKeys(users, UserWorkerKey) }

// checkUserKeys refuses a user list in which two users would be one worker
// upstream, or a user would have no worker name at all: their shares would
// be credited together.
func checkUserKeys(users map[string]string, key func(string) string) error {
	names := make([]string, 0, len(users))
	for u := range users {
		names = append(names, u)
	}
	sort.Strings(names)
	seen := map[string]string{}
	for _, u := range names {
		k := key(u)
		if k == "" {
			return fmt.Errorf("--miner-users: user %q has no letter, digit, '-' or '_' to name its worker at the pool; rename it", u)
		}
		if other, ok := seen[k]; ok {
			return fmt.Errorf("--miner-users: users %q and %q would both be worker %q at the pool (names keep letters, digits, '-' and '_', '.' becomes '_', at most 32 bytes); rename one", other, u, k)
		}
		seen[k] = u
	}
	return nil
}

// Addr is the bound address (with the real port when listening on :0).
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Run serves miners and runs the upstream until ctx ends, then closes every
// connection and returns once every goroutine it started has finished.
func (s *Server) Run(ctx context.Context) error {
	if s.ln == nil {
		return errors.New("proxy: no listener")
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

// acceptBackoff spaces accepts that fail (out of descriptors): short, as a
// descriptor may free up any moment, but no spin.
var acceptBackoff = retry.Backoff{Initial: 5 * time.Millisecond, Max: time.Second}

func (s *Server) accept() {
	wait := retry.Counter{Backoff: acceptBackoff}
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait rather than spin.
			s.logErr.Warn(s.log, "accepting a miner failed", "event", "proxy.accept_error", "err", err)
			if retry.Sleep(s.ctx, wait.Failed()) != nil {
				return
			}
			continue
		}
		wait.Reset()
		s.mu.Lock()
		if s.ctx.Err() != nil {
			// Run is closing the connections it knows: this one is not
			// among them.
			s.mu.Unlock()
			nc.Close()
			return
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
	newSpace := s.sp == nil || s.sp.pool != j.Pool || s.sp.session != j.Session || !bytes.Equal(s.sp.en1, j.Extranonce1) || s.sp.size != j.Extranonce2Size
	if newSpace {
		first := s.sp == nil
		s.sp = &space{pool: j.Pool, session: j.Session, en1: append([]byte(nil), j.Extranonce1...), size: j.Extranonce2Size}
		s.epoch++
		s.atOnce = 0
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
		if j.TargetAtOnce {
			// A raise applies at once; a lowering waits for new jobs.
			pj.told = max(pj.told, j.Difficulty)
			s.atOnce = max(s.atOnce, j.Difficulty)
		} else {
			pj.told = j.Difficulty
		}
	} else {
		if clean {
			s.epoch++
		}
		told := j.Difficulty
		if j.TargetAtOnce {
			told = max(told, s.atOnce)
			s.atOnce = j.Difficulty
		}
		var bump uint32
		if pj != nil && pj.bump < s.cfg.NTimeRoll/2 {
			bump = pj.bump + 1
		}
		s.jobSeq++
		pj = &pjob{id: strconv.FormatUint(s.jobSeq, 16), seq: s.jobSeq, up: j, sp: s.sp, params: map[int]work.JobParams{},
			told: told, local: j.BlocksOnly, bump: bump}
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
			NTime:        work.FormatUint32Hex(j.NTime + pj.bump),
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

// handshakeGrace is how long a miner that has subscribed but not yet
// authorized is passed over when a prefix must be freed: a handshake is
// one round trip, well under a second on any real link.
const handshakeGrace = 2 * time.Second

// ErrFull is the refusal of a miner when every prefix is taken.
var ErrFull = errors.New("proxy full")

// allocSlot hands c a free prefix index, round robin, skipping any whose
// last holder sent shares on jobs still live. When none is free, a holder
// that has not earned its prefix makes room: the oldest that has not
// authenticated (it was never sent a job) for handshakeGrace, else the
// oldest authenticated one that has sent no share in SilentGrace, else the
// oldest still in its handshake. Sessions that never authorize, or
// authorize and never mine, cannot keep miners out, nor take the prefix of
// one in the middle of its handshake while another can make room.
func (s *Server) allocSlot(c *conn) (int, error) {
	s.mu.Lock()
	n, victim := -1, (*conn)(nil)
	for i := 0; i < s.capacity; i++ {
		k := (s.nextSlot + i) % s.capacity
		sl := &s.slots[k]
		if sl.holder != nil || sl.hot && sl.cool >= s.epoch {
			continue
		}
		n = k
		s.nextSlot = (k + 1) % s.capacity
		break
	}
	unauthed := func(minAge time.Duration) {
		if e := s.holders.Front(); n < 0 && e != nil && e.Value.(holdRec).c != c && time.Since(e.Value.(holdRec).since) >= minAge {
			h := e.Value.(holdRec)
			s.unholdLocked(h.c)
			n, victim = h.n, h.c
		}
	}
	// A holder still in its handshake (one round trip between subscribe
	// and authorize) goes last: otherwise a burst of subscribes takes the
	// prefix of every honest newcomer waiting for its subscribe reply,
	// while authorized squatters keep theirs.
	unauthed(handshakeGrace)
	for n < 0 {
		e := s.silent.Front()
		if e == nil || time.Since(e.Value.(holdRec).since) < s.cfg.SilentGrace {
			break
		}
		h := e.Value.(holdRec)
		s.unholdLocked(h.c)
		// A share of its own may be on its way to the pool right now:
		// the swap decides, and a miner that earned its prefix keeps it.
		if h.c.earned.CompareAndSwap(prefixSilent, prefixTaken) {
			n, victim = h.n, h.c
		}
	}
	unauthed(0)
	if n < 0 {
		s.mu.Unlock()
		return 0, fmt.Errorf("%w: all %d extranonce prefixes (%d bytes of the pool's extranonce2) are in use or cooling down until the next clean job", ErrFull, s.capacity, s.prefix)
	}
	s.slots[n] = slot{holder: c}
	if !c.authed {
		s.holdLocked(c, s.holders, n)
	}
	s.mu.Unlock()
	if victim != nil {
		why := "as it had not authorized"
		if victim.authed {
			why = fmt.Sprintf("as it had sent no share in %v", s.cfg.SilentGrace)
		}
		victim.close(fmt.Errorf("%w: its prefix went to a new miner, %s", ErrFull, why))
	}
	return n, nil
}

// Prefix states (conn.earned).
const (
	prefixSilent = iota
	prefixEarned
	prefixTaken
)

// earnPrefix records c's first share to the pool: its prefix is its own
// from now on. False when the prefix was taken for a newcomer first.
func (s *Server) earnPrefix(c *conn) bool {
	switch c.earned.Load() {
	case prefixEarned:
		return true
	case prefixTaken:
		return false
	}
	if !c.earned.CompareAndSwap(prefixSilent, prefixEarned) {
		return c.earned.Load() == prefixEarned
	}
	s.mu.Lock()
	if c.holdList == s.silent {
		s.unholdLocked(c)
	}
	s.mu.Unlock()
	return true
}

func (s *Server) holdLocked(c *conn, l *list.List, n int) {
	c.holdElem, c.holdList = l.PushBack(holdRec{c: c, n: n, since: time.Now()}), l
}

func (s *Server) unholdLocked(c *conn) {
	if c.holdElem != nil {
		c.holdList.Remove(c.holdElem)
		c.holdElem, c.holdList = nil, nil
	}
}

// releaseSlot frees c's prefix n; hot says c sent the pool shares, the
// last in epoch cool.
func (s *Server) releaseSlot(n int, c *conn, hot bool, cool uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unholdLocked(c)
	if n >= 0 && n < len(s.slots) && s.slots[n].holder == c {
		s.slots[n] = slot{hot: hot, cool: cool}
	}
}

// authenticated records that c passed authorize: its connection is no
// longer dropped to make room, and its prefix only once it has sent no
// share for SilentGrace. It reports whether this is the first time.
func (s *Server) authenticated(c *conn) bool {
	s.mu.Lock()
	first := !c.authed
	c.authed = true
	if c.holdList == s.holders {
		n := c.holdElem.Value.(holdRec).n
		s.unholdLocked(c)
		if c.earned.Load() == prefixSilent {
			s.holdLocked(c, s.silent, n)
		}
	}
	s.mu.Unlock()
	if a, ok := c.nc.(interface{ Activate() }); first && ok {
		a.Activate()
	}
	return first
}

func (s *Server) curEpoch() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.epoch
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

// issueTold is pj's latest upstream issue and the difficulty miners are
// told for it.
func (s *Server) issueTold(pj *pjob) (*source.Job, float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return pj.up, pj.told
}

// acquireKey records a connection's use of sub-worker key, authorizing it
// upstream when it is new and the budget for new names (of peer, and of
// everyone) allows; false leaves the name under the pool user for now.
func (s *Server) acquireKey(key, peer string) bool {
	s.keyMu.Lock()
	if k := s.keys[key]; k != nil {
		if k.idle != nil {
			s.idleKeys.Remove(k.idle)
			k.idle = nil
		}
		k.refs++
		s.keyMu.Unlock()
		return true
	}
	if s.wk == nil || len(s.keys) >= stratum.MaxWorkers && s.idleKeys.Len() == 0 || !s.names.Allow(peer) || !s.allNames.Allow("") {
		s.keyMu.Unlock()
		return false
	}
	s.names.Take(peer)
	s.allNames.Take("")
	if len(s.keys) >= stratum.MaxWorkers {
		s.evictKeyLocked()
	}
	// AddWorker may wait on the pool connection's write: not under the
	// lock. An entry being added is never evicted.
	k := &upKey{refs: 1, adding: true}
	s.keys[key] = k
	s.keyMu.Unlock()
	err := s.wk.AddWorker(key)
	s.keyMu.Lock()
	defer s.keyMu.Unlock()
	k.adding = false
	if err != nil {
		s.logErr.Warn(s.log, "worker not authorized upstream; its shares go under the pool user", "event", "proxy.worker_upstream", "key", key, "err", err)
		delete(s.keys, key)
		return false
	}
	if k.refs == 0 {
		s.idleLocked(key, k)
	}
	return true
}

// releaseKey releases a connection's use of key. The key stays authorized
// upstream, among the keptUpstreamWorkers most recently used, so a miner
// that comes back costs the pool nothing; the least recently used beyond
// them is removed, so the set authorized on every new pool session stays
// bounded.
func (s *Server) releaseKey(key string) {
	s.keyMu.Lock()
	defer s.keyMu.Unlock()
	k := s.keys[key]
	if k == nil || k.refs <= 0 {
		return
	}
	k.refs--
	if k.refs == 0 && !k.adding {
		s.idleLocked(key, k)
	}
}

func (s *Server) idleLocked(key string, k *upKey) {
	k.idle = s.idleKeys.PushBack(key)
	for s.idleKeys.Len() > keptUpstreamWorkers {
		s.evictKeyLocked()
	}
}

// evictKeyLocked removes the least recently used idle key (RemoveWorker
// does not wait).
func (s *Server) evictKeyLocked() {
	e := s.idleKeys.Front()
	key := e.Value.(string)
	s.idleKeys.Remove(e)
	delete(s.keys, key)
	s.wk.RemoveWorker(key)
}
