package channel

import (
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

	"clminer/stratum/v2/codec"
	"clminer/stratum/v2/noise"
	"clminer/work"
	"clminer/work/health"
	"clminer/work/ledger"
	"clminer/work/option"
	"clminer/work/retry"
	"clminer/work/safetext"
	"clminer/work/source"
)

// Config is one V2 pool.
type Config struct {
	URL string
	// User is the user_identity (account.worker).
	User string
	// VersionRolling asks for REQUIRES_VERSION_ROLLING and rolls the BIP 320
	// bits.
	VersionRolling bool
	// Index is the pool's position in the upstream list, for logs.
	Index int
	// HashRate is the measured hashrate in H/s, read when the channel opens
	// and periodically for UpdateChannel (nil: NominalHashRate).
	HashRate func() float64
	// NominalHashRate is used until something is measured [1 GH/s].
	NominalHashRate float64
	// Extended always opens an extended channel, whatever the pool
	// prefers: a proxy carves each downstream miner's extranonce out of the
	// channel's, which a standard channel's fixed merkle root has none of.
	Extended bool
}

// Options tune the source; zero values get the defaults in brackets.
type Options struct {
	Logger      *log.Logger      // [discard]
	Now         func() time.Time // certificate clock [time.Now]
	DialTimeout time.Duration    // TCP connect [10 s]
	// Dial reaches the pool (a SOCKS5 proxy's dialer); nil: direct TCP.
	Dial           func(ctx context.Context, network, addr string) (net.Conn, error)
	SetupTimeout   time.Duration // handshake, setup, open channel [15 s]
	SubmitTimeout  time.Duration // a share's verdict; acks come in batches [5 min]
	UpdateInterval time.Duration // how often the hashrate is compared for UpdateChannel [1 min]
	Retry          retry.Backoff // between failed connects [1 s doubling to 60 s, ±20%]
	MaxInFlight    int           // shares awaiting a verdict [1024]
}

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = log.New(io.Discard)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	option.Default(&o.DialTimeout, 10*time.Second)
	option.Default(&o.SetupTimeout, 15*time.Second)
	option.Default(&o.SubmitTimeout, 5*time.Minute)
	option.Default(&o.UpdateInterval, time.Minute)
	o.Retry = o.Retry.WithDefaults()
	option.Default(&o.MaxInFlight, 1024)
}

// Limits on what the pool may make the client hold.
const (
	// minExtranonce is the extranonce an extended channel asks for: 2^64
	// coinbases per job is more than any rig can use.
	minExtranonce = 8

	maxFutureJobs = 64
	maxJobs       = 64
)

// Errors a session ends with.
var (
	ErrSetupRefused   = errors.New("sv2: the pool refused SetupConnection")
	ErrChannelRefused = errors.New("sv2: the pool refused to open a mining channel")
	ErrChannelClosed  = errors.New("sv2: the pool closed the channel")
	errReconnect      = errors.New("sv2: the pool asked to reconnect")
)

// Source mines one V2 pool.
type Source struct {
	cfg Config
	opt Options
	ep  Endpoint
	log *log.Logger

	ldgr *ledger.Ledger

	mu       sync.Mutex
	session  uint64
	live     *session // the session shares may go to
	st       source.UpstreamStatus
	redirect string // host:port from the last Reconnect, tried next
	// extendedOnly: the pool refused REQUIRES_STANDARD_JOBS; open extended
	// channels from now on.
	extendedOnly bool
}

// New validates cfg; it does not connect.
func New(cfg Config, opt Options) (*Source, error) {
	ep, err := ParseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if cfg.NominalHashRate <= 0 {
		cfg.NominalHashRate = 1e9
	}
	opt.defaults()
	s := &Source{cfg: cfg, opt: opt, ep: ep, log: opt.Logger, ldgr: ledger.New(maxJobs)}
	s.st = source.UpstreamStatus{URL: ep.String(), Protocol: "stratum2"}
	return s, nil
}

// Upstreams reports the pool.
func (s *Source) Upstreams() []source.UpstreamStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	if s.live != nil {
		st.InFlight = s.live.inFlight()
	}
	return []source.UpstreamStatus{st}
}

func (s *Source) event(k source.EventKind, err error) source.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.Event(k, s.session, err)
}

// Run mines until ctx ends, reconnecting with backoff (work/retry's loop).
func (s *Source) Run(ctx context.Context, sink source.Sink) error {
	c := retry.Counter{Backoff: s.opt.Retry}
	return c.Redial(ctx, func(ctx context.Context) (bool, error) {
		s.mu.Lock()
		// Sick, as a V1 pool, is a state that lasts until the next try.
		s.st.State, s.st.SickReason = source.StateConnecting, ""
		s.mu.Unlock()
		sink.Event(s.event(source.EventConnecting, nil))
		return s.runSession(ctx, sink)
	}, func(err error, worked bool, wait time.Duration) {
		if worked {
			sink.NoWork("stratum2: " + err.Error())
		}
		var sick *SickError
		isSick := errors.As(err, &sick)
		s.mu.Lock()
		s.st.State = source.StateDown
		if isSick {
			s.st.State, s.st.SickReason = source.StateSick, sick.Sickness.String()
		}
		s.st.LastError = err.Error()
		if !errors.Is(err, errReconnect) {
			s.st.Failures++
		}
		s.mu.Unlock()
		if isSick {
			sink.Event(s.event(source.EventSick, err))
		}
		kind := source.EventDisconnected
		switch {
		case errors.Is(err, errReconnect):
			kind = source.EventReconnectRequested
		case isAuthErr(err):
			kind = source.EventAuthFailed
		}
		sink.Event(s.event(kind, err))
		// A redirect is not counted as a failure, but it backs off like one
		// unless the session mined: a pool answering every connect with
		// Reconnect must not make a reconnect storm.
		s.log.Warn("stratum2 pool connection ended; reconnecting", "event", "pool.down", "pool", s.st.URL, "err", err, "retry_in", wait)
	})
}

func isAuthErr(err error) bool {
	for _, e := range []error{noise.ErrAuthority, noise.ErrCertExpired, noise.ErrCertFuture, noise.ErrCertVersion, ErrChannelRefused, ErrSetupRefused} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// spec is a job as the pool sent it: standard (a fixed merkle root) or
// extended (a coinbase and path).
type spec struct {
	id      uint32
	root    [32]byte
	ver     uint32
	rolling bool
	ext     *codec.NewExtendedMiningJob
}

// job is one issued job of the channel.
type job struct {
	spec
	ntime  uint32
	issued *work.Job
	entry  *ledger.Entry
}

// session is one connection's state; the run loop owns everything but the
// pending map.
type session struct {
	id      uint64
	conn    *noise.Conn
	nc      net.Conn
	channel uint32
	mask    uint32
	// an extended channel rolls an extranonce of en2size after prefix
	extended bool
	en2size  int
	prefix   []byte

	// owned by the run loop
	prev     [32]byte
	nbits    uint32
	havePrev bool
	target   work.Target
	futures  map[uint32]spec
	current  *job
	space    string
	rate     float64

	pmu sync.Mutex
	// health judges the pool by its verdicts (guarded by pmu).
	health  health.Tracker
	seq     uint32
	pending map[uint32]*pending
	closed  bool
}

type pending struct {
	done  func(source.Reply)
	reply source.Reply
	sent  time.Time
	entry *ledger.Entry // its job's: a reject of a job the pool dropped is stale
}

func (ss *session) inFlight() int {
	ss.pmu.Lock()
	defer ss.pmu.Unlock()
	return len(ss.pending)
}

func (s *Source) hashRate() float64 {
	if s.cfg.HashRate != nil {
		if r := s.cfg.HashRate(); r > 0 {
			return r
		}
	}
	return s.cfg.NominalHashRate
}

// runSession is one connection's life.
func (s *Source) runSession(ctx context.Context, sink source.Sink) (worked bool, err error) {
	addr := s.ep.Addr()
	s.mu.Lock()
	if s.redirect != "" {
		addr, s.redirect = s.redirect, ""
	}
	s.mu.Unlock()
	dial := s.opt.Dial
	if dial == nil {
		d := net.Dialer{Timeout: s.opt.DialTimeout}
		dial = d.DialContext
	}
	dctx, dcancel := context.WithTimeout(ctx, s.opt.DialTimeout)
	nc, err := dial(dctx, "tcp", addr)
	dcancel()
	if err != nil {
		return false, fmt.Errorf("connect %s: %w", addr, err)
	}
	defer nc.Close()
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	_ = nc.SetDeadline(time.Now().Add(s.opt.SetupTimeout))
	conn, res, err := noise.Client(nc, s.ep.Authority, s.opt.Now(), 0)
	if err != nil {
		return false, err
	}
	ss := &session{conn: conn, nc: nc, futures: map[uint32]spec{}, pending: map[uint32]*pending{}, health: health.Tracker{Rule: healthRule}}
	s.mu.Lock()
	s.session++
	ss.id = s.session
	s.st.Connects++
	s.mu.Unlock()
	sink.Event(s.event(source.EventConnected, nil))
	s.log.Info("stratum2 pool authenticated", "event", "pool.connected", "pool", s.st.URL, "addr", addr,
		"server_key", hex.EncodeToString(res.ServerKey[:]),
		"cert_valid_until", time.Unix(int64(res.Certificate.NotValidAfter), 0).UTC().Format(time.RFC3339))
	if err := s.setup(ss, addr); err != nil {
		return false, err
	}
	_ = nc.SetDeadline(time.Time{})
	s.mu.Lock()
	s.live = ss
	s.st.State = source.StateActive
	s.st.RollingMask = ss.mask
	s.st.Extranonce1 = hex.EncodeToString(ss.prefix)
	s.st.Extranonce2Size = ss.en2size
	s.st.Channel = fmt.Sprintf("%s %d", ss.kind(), ss.channel)
	s.mu.Unlock()
	defer s.endSession(ss)
	sink.Event(s.event(source.EventAuthorized, nil))

	msgs := make(chan codec.Message)
	rerr := make(chan error, 1)
	quit := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(quit)
	defer nc.Close()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			m, h, err := conn.ReadMessage()
			if errors.Is(err, codec.ErrUnknown) {
				s.log.Debug("ignoring unknown stratum2 message", "event", "pool.unknown_message", "pool", s.st.URL, "ext", h.ExtensionType, "type", h.MsgType)
				continue
			}
			if err != nil {
				rerr <- err
				return
			}
			select {
			case msgs <- m:
			case <-quit:
				return
			}
		}
	}()
	tick := time.NewTicker(min(s.opt.UpdateInterval, s.opt.SubmitTimeout/4+time.Millisecond))
	defer tick.Stop()
	lastUpdate := time.Now()
	for {
		select {
		case <-ctx.Done():
			return worked, ctx.Err()
		case err := <-rerr:
			return worked, err
		case m := <-msgs:
			w, err := s.handle(ss, sink, m)
			worked = worked || w
			if err != nil {
				return worked, err
			}
		case now := <-tick.C:
			if err := s.expire(ss, now); err != nil {
				return worked, err
			}
			if now.Sub(lastUpdate) >= s.opt.UpdateInterval {
				lastUpdate = now
				s.maybeUpdate(ss)
			}
		}
	}
}

// setup sends SetupConnection and opens the standard channel, reading
// replies synchronously (the deadline bounds them).
func (s *Source) setup(ss *session, addr string) error {
	host, portS, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portS)
	s.mu.Lock()
	extendedOnly := s.extendedOnly || s.cfg.Extended
	s.mu.Unlock()
	flags := uint32(0)
	if !extendedOnly {
		flags |= codec.FlagRequiresStandardJobs
	}
	if s.cfg.VersionRolling {
		flags |= codec.FlagRequiresVersionRolling
	}
	if err := ss.conn.WriteMessage(&codec.SetupConnection{
		Protocol: codec.ProtocolMining, MinVersion: 2, MaxVersion: 2, Flags: flags,
		EndpointHost: host, EndpointPort: uint16(port), Vendor: "clminer", HardwareVersion: "gpu", Firmware: "clminer",
	}); err != nil {
		return err
	}
	m, err := s.readSetup(ss)
	if err != nil {
		return err
	}
	switch r := m.(type) {
	case *codec.SetupConnectionSuccess:
		if r.UsedVersion != 2 {
			return fmt.Errorf("sv2: the pool chose protocol version %d, clminer speaks 2", r.UsedVersion)
		}
		ss.extended = r.Flags&codec.FlagRequiresExtendedChannels != 0
		if s.cfg.VersionRolling && r.Flags&codec.FlagRequiresFixedVersion == 0 {
			ss.mask = work.BIP320Mask
		}
	case *codec.SetupConnectionError:
		if r.Flags&codec.FlagRequiresStandardJobs != 0 && !extendedOnly {
			// The pool serves extended jobs only: say so next time and
			// open an extended channel.
			s.mu.Lock()
			s.extendedOnly = true
			s.mu.Unlock()
		}
		return fmt.Errorf("%w: %s (flags %#x)", ErrSetupRefused, safetext.Label(r.ErrorCode), r.Flags)
	default:
		return fmt.Errorf("sv2: %s before SetupConnection.Success", m.Name())
	}
	ss.rate = s.hashRate()
	open := codec.OpenStandardMiningChannel{RequestID: 1, UserIdentity: s.cfg.User, NominalHashRate: float32(ss.rate), MaxTarget: work.MaxTarget}
	var om codec.Message = &open
	if ss.extended || extendedOnly {
		ss.extended = true
		om = &codec.OpenExtendedMiningChannel{OpenStandardMiningChannel: open, MinExtranonceSize: minExtranonce}
	}
	if err := ss.conn.WriteMessage(om); err != nil {
		return err
	}
	if m, err = s.readSetup(ss); err != nil {
		return err
	}
	switch r := m.(type) {
	case *codec.OpenStandardMiningChannelSuccess:
		if r.RequestID != 1 {
			return fmt.Errorf("sv2: channel opened for request %d, asked 1", r.RequestID)
		}
		ss.channel, ss.prefix = r.ChannelID, r.ExtranoncePrefix
		ss.target = work.TargetFromU256(r.Target)
		if ss.extended {
			return fmt.Errorf("sv2: unexpected %s", m.Name())
		}
		ss.space = fmt.Sprintf("%d/%x", r.ChannelID, r.ExtranoncePrefix)
		s.log.Info("stratum2 channel open", "event", "pool.channel_open", "pool", s.st.URL, "channel", r.ChannelID, "kind", "standard",
			"difficulty", work.TargetDifficulty(ss.target), "rolling_mask", work.FormatUint32Hex(ss.mask))
	case *codec.OpenExtendedMiningChannelSuccess:
		if !ss.extended || r.RequestID != 1 {
			return fmt.Errorf("sv2: unexpected %s", m.Name())
		}
		size := int(r.ExtranonceSize)
		if size < work.MinExtranonce2Size || size > work.MaxExtranonce2Size {
			return fmt.Errorf("sv2: extended channel with a %d-byte extranonce; clminer rolls %d..%d bytes", size, work.MinExtranonce2Size, work.MaxExtranonce2Size)
		}
		ss.channel, ss.en2size, ss.prefix = r.ChannelID, size, r.ExtranoncePrefix
		ss.target = work.TargetFromU256(r.Target)
		ss.space = fmt.Sprintf("%d/%x", r.ChannelID, r.ExtranoncePrefix)
		s.log.Info("stratum2 channel open", "event", "pool.channel_open", "pool", s.st.URL, "channel", r.ChannelID, "kind", "extended",
			"extranonce_size", size, "difficulty", work.TargetDifficulty(ss.target), "rolling_mask", work.FormatUint32Hex(ss.mask))
	case *codec.OpenMiningChannelError:
		return fmt.Errorf("%w: %s", ErrChannelRefused, safetext.Label(r.ErrorCode))
	default:
		return fmt.Errorf("sv2: %s before the channel opened", m.Name())
	}
	if ss.target.Big().Sign() == 0 {
		// No hash meets a zero target: hashing would find nothing to send.
		return errors.New("sv2: the channel opened with a zero target")
	}
	if len(ss.prefix)+ss.en2size > 32 {
		return fmt.Errorf("sv2: extranonce prefix of %d bytes plus %d to roll is over the 32 the spec allows", len(ss.prefix), ss.en2size)
	}
	s.ldgr.Reset()
	s.mu.Lock()
	s.st.Difficulty = work.TargetDifficulty(ss.target)
	s.mu.Unlock()
	return nil
}

func (s *Source) readSetup(ss *session) (codec.Message, error) {
	for {
		m, _, err := ss.conn.ReadMessage()
		if errors.Is(err, codec.ErrUnknown) {
			continue
		}
		return m, err
	}
}

// handle applies one pool message; worked reports a job handed out.
func (s *Source) handle(ss *session, sink source.Sink, m codec.Message) (bool, error) {
	switch m := m.(type) {
	case *codec.NewMiningJob:
		if m.ChannelID != ss.channel || ss.extended {
			return false, fmt.Errorf("sv2: NewMiningJob for channel %d, ours is %d (%s)", m.ChannelID, ss.channel, ss.kind())
		}
		return s.newJob(ss, sink, spec{id: m.JobID, root: m.MerkleRoot, ver: m.Version, rolling: true}, m.MinNTime)
	case *codec.NewExtendedMiningJob:
		if m.ChannelID != ss.channel || !ss.extended {
			return false, fmt.Errorf("sv2: NewExtendedMiningJob for channel %d, ours is %d (%s)", m.ChannelID, ss.channel, ss.kind())
		}
		return s.newJob(ss, sink, spec{id: m.JobID, ver: m.Version, rolling: m.VersionRollingAllowed, ext: m}, m.MinNTime)
	case *codec.SetNewPrevHash:
		if m.ChannelID != ss.channel {
			return false, fmt.Errorf("sv2: SetNewPrevHash for channel %d, ours is %d", m.ChannelID, ss.channel)
		}
		f, ok := ss.futures[m.JobID]
		if !ok {
			return false, fmt.Errorf("sv2: SetNewPrevHash names job %d, which was not sent as a future job", m.JobID)
		}
		ss.prev, ss.nbits, ss.havePrev = m.PrevHash, m.NBits, true
		clear(ss.futures)
		s.ldgr.Reset()
		return true, s.publish(ss, sink, f, m.MinNTime, true)
	case *codec.SetTarget:
		if m.ChannelID != ss.channel {
			return false, nil
		}
		t := work.TargetFromU256(m.MaximumTarget)
		if t.Big().Sign() == 0 {
			return false, errors.New("sv2: SetTarget to zero")
		}
		ss.target = t
		s.ldgr.SetTarget(t)
		s.mu.Lock()
		s.st.Difficulty = work.TargetDifficulty(t)
		s.mu.Unlock()
		s.log.Info("stratum2 target set", "event", "pool.difficulty", "pool", s.st.URL, "channel", ss.channel, "difficulty", work.TargetDifficulty(t))
		if c := ss.current; c != nil {
			return true, s.publish(ss, sink, c.spec, c.ntime, false)
		}
		return false, nil
	case *codec.SubmitSharesSuccess:
		s.acknowledge(ss, m)
		return false, nil
	case *codec.SubmitSharesError:
		s.reject(ss, m)
		return false, nil
	case *codec.SetExtranoncePrefix:
		// A standard channel's later jobs carry roots built with it, so
		// nothing changes here. An extended channel builds its coinbases
		// with it from the next job on; that job's new share space makes
		// the ledger forget the older jobs, so no share mixes the two.
		if m.ChannelID != ss.channel || len(m.ExtranoncePrefix)+ss.en2size > codec.MaxExtranoncePrefix {
			return false, fmt.Errorf("sv2: SetExtranoncePrefix of %d bytes for channel %d (ours %d, extranonce %d bytes)", len(m.ExtranoncePrefix), m.ChannelID, ss.channel, ss.en2size)
		}
		if ss.extended {
			ss.prefix = m.ExtranoncePrefix
			ss.space = fmt.Sprintf("%d/%x", ss.channel, m.ExtranoncePrefix)
		}
		s.log.Info("stratum2 extranonce prefix set", "event", "pool.extranonce", "pool", s.st.URL, "channel", m.ChannelID, "prefix", hex.EncodeToString(m.ExtranoncePrefix))
		return false, nil
	case *codec.UpdateChannelError:
		s.log.Warn("pool refused UpdateChannel", "event", "pool.update_refused", "pool", s.st.URL, "channel", m.ChannelID, "reason", safetext.Label(m.ErrorCode))
		return false, nil
	case *codec.CloseChannel:
		if m.ChannelID == ss.channel {
			return false, fmt.Errorf("%w %d: %s", ErrChannelClosed, m.ChannelID, safetext.Label(m.ReasonCode))
		}
		return false, nil
	case *codec.Reconnect:
		host, port := m.NewHost, m.NewPort
		if host == "" {
			host = s.ep.Host
		}
		if port == 0 {
			port = s.ep.Port
		}
		addr := net.JoinHostPort(host, strconv.Itoa(int(port)))
		s.mu.Lock()
		s.redirect = addr
		s.mu.Unlock()
		s.log.Info("stratum2 pool asked to reconnect; the new server must prove the same authority key", "event", "pool.reconnect", "pool", s.st.URL, "to", addr)
		return false, fmt.Errorf("%w to %s", errReconnect, addr)
	default:
		s.log.Debug("ignoring stratum2 message", "event", "pool.ignored_message", "pool", s.st.URL, "msg", m.Name())
		return false, nil
	}
}

func (ss *session) kind() string {
	if ss.extended {
		return "extended"
	}
	return "standard"
}

// newJob keeps a future job for its SetNewPrevHash, or mines an active one
// on the current prevhash.
func (s *Source) newJob(ss *session, sink source.Sink, sp spec, minNTime *uint32) (bool, error) {
	if minNTime == nil {
		if _, ok := ss.futures[sp.id]; !ok && len(ss.futures) >= maxFutureJobs {
			return false, fmt.Errorf("sv2: over %d future jobs without a SetNewPrevHash", maxFutureJobs)
		}
		ss.futures[sp.id] = sp
		return false, nil
	}
	if !ss.havePrev {
		return false, errors.New("sv2: an active job before any SetNewPrevHash")
	}
	return true, s.publish(ss, sink, sp, *minNTime, false)
}

// publish hands the miner one job of the channel.
func (s *Source) publish(ss *session, sink source.Sink, sp spec, ntime uint32, clean bool) error {
	id := sp.id
	sid := strconv.FormatUint(uint64(id), 10)
	var j *work.Job
	var err error
	if sp.ext != nil {
		j, err = work.NewExtendedJob(work.ExtendedParams{
			ID: sid, PrevHash: ss.prev, CoinbasePrefix: sp.ext.CoinbaseTxPrefix, ExtranoncePrefix: ss.prefix,
			CoinbaseSuffix: sp.ext.CoinbaseTxSuffix, MerklePath: sp.ext.MerklePath, Version: sp.ver, NBits: ss.nbits,
			NTime: ntime, ExtranonceSize: ss.en2size, Target: work.U256FromTarget(ss.target),
		})
	} else {
		j, err = work.NewHeaderJob(work.HeaderParams{
			ID: sid, PrevHash: ss.prev, MerkleRoot: sp.root, Version: sp.ver, NBits: ss.nbits, NTime: ntime,
			Target: work.U256FromTarget(ss.target),
		})
	}
	if err != nil {
		return fmt.Errorf("sv2 job %d: %w", id, err)
	}
	entry, err := s.ldgr.JobAtTarget(ss.space, sid, ss.en2size, ss.target)
	if err != nil {
		return err
	}
	mask := ss.mask
	if !sp.rolling {
		mask = 0
	}
	jb := &job{spec: sp, ntime: ntime, issued: j, entry: entry}
	ss.current = jb
	s.mu.Lock()
	s.st.Failures, s.st.LastError = 0, ""
	url := s.st.URL
	s.mu.Unlock()
	if clean {
		s.log.Info("stratum2 new block", "event", "pool.new_block", "pool", url, "channel", ss.channel, "job", id, "nbits", work.FormatUint32Hex(ss.nbits))
	}
	sink.Job(&source.Job{
		Job: j, Entry: entry, RollingMask: mask, Clean: clean, Received: time.Now(),
		Pool: 0, PoolURL: url, Session: ss.id, Worker: s.cfg.User, TargetAtOnce: true,
	})
	return nil
}

// Send submits a share of a job of the live session.
func (s *Source) Send(sh source.Share, done func(source.Reply)) {
	if sh.Job == nil || sh.Unit == nil {
		done(source.Reply{Kind: source.NotSent, Reason: "no job"})
		return
	}
	reply := source.Reply{NTime: work.FormatUint32Hex(sh.Unit.NTime), Extranonce2: hex.EncodeToString(sh.Unit.Extranonce2)}
	if sh.Job.RollingMask != 0 {
		reply.VersionBits = work.FormatUint32Hex(work.VersionBits(sh.Unit.Version, sh.Job.RollingMask))
	}
	id, err := strconv.ParseUint(sh.Job.ID, 10, 32)
	s.mu.Lock()
	ss := s.live
	s.mu.Unlock()
	if err != nil || ss == nil || ss.id != sh.Job.Session {
		reply.Kind, reply.Reason = source.NotSent, "pool session ended before submit"
		done(reply)
		return
	}
	ss.pmu.Lock()
	if ss.closed {
		ss.pmu.Unlock()
		reply.Kind, reply.Reason = source.NotSent, "pool session ended before submit"
		done(reply)
		return
	}
	if len(ss.pending) >= s.opt.MaxInFlight {
		ss.pmu.Unlock()
		s.mu.Lock()
		s.st.Throttled++
		s.mu.Unlock()
		reply.Kind, reply.Reason = source.Throttled, "too many shares awaiting a verdict"
		done(reply)
		return
	}
	ss.seq++
	seq := ss.seq
	now := time.Now()
	ss.pending[seq] = &pending{done: done, reply: reply, sent: now, entry: sh.Job.Entry}
	ss.health.Sent(now)
	ss.pmu.Unlock()
	std := codec.SubmitSharesStandard{ChannelID: ss.channel, SequenceNumber: seq, JobID: uint32(id),
		Nonce: sh.Nonce, NTime: sh.Unit.NTime, Version: sh.Unit.Version}
	var msg codec.Message = &std
	if ss.extended {
		msg = &codec.SubmitSharesExtended{SubmitSharesStandard: std, Extranonce: sh.Unit.Extranonce2}
	}
	if err := s.write(ss, msg); err != nil {
		s.finish(ss, seq, source.NoReply, "send failed: "+err.Error())
	}
}

// write sends m with a deadline. A failed write may have sent part of a
// frame, after which the stream is out of step: the connection is closed,
// which ends the session.
func (s *Source) write(ss *session, m codec.Message) error {
	_ = ss.nc.SetWriteDeadline(time.Now().Add(s.opt.SetupTimeout))
	err := ss.conn.WriteMessage(m)
	if err != nil {
		ss.nc.Close()
	}
	return err
}

// finish ends one pending share with kind, once.
func (s *Source) finish(ss *session, seq uint32, kind source.ReplyKind, reason string) {
	ss.pmu.Lock()
	p := ss.pending[seq]
	delete(ss.pending, seq)
	if p != nil {
		switch kind {
		case source.Accepted:
			ss.health.Answered(time.Now(), health.Accepted, ss.oldestLocked)
		case source.Rejected:
			v := health.Rejected
			if p.entry != nil && !p.entry.Live() {
				v = health.Stale
			}
			ss.health.Answered(time.Now(), v, ss.oldestLocked)
		case source.NotSent:
			if len(ss.pending) == 0 {
				ss.health.Idle()
			}
		}
	}
	ss.pmu.Unlock()
	if p == nil {
		return
	}
	s.count(kind)
	p.reply.Kind, p.reply.Reason, p.reply.RTT = kind, reason, time.Since(p.sent)
	p.done(p.reply)
}

func (s *Source) count(kind source.ReplyKind) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch kind {
	case source.Accepted:
		s.st.Accepted++
	case source.Rejected:
		s.st.Rejected++
	}
}

// acknowledge accepts every pending share up to the batch's last sequence
// number (serial arithmetic: the counter may wrap on a long session).
func (s *Source) acknowledge(ss *session, m *codec.SubmitSharesSuccess) {
	if m.ChannelID != ss.channel {
		return
	}
	ss.pmu.Lock()
	var acked []uint32
	for seq := range ss.pending {
		if int32(seq-m.LastSequenceNumber) <= 0 {
			acked = append(acked, seq)
		}
	}
	ss.pmu.Unlock()
	for _, seq := range acked {
		s.finish(ss, seq, source.Accepted, "")
	}
}

func (s *Source) reject(ss *session, m *codec.SubmitSharesError) {
	if m.ChannelID != ss.channel {
		return
	}
	// The code is up to 255 bytes the pool chose, and becomes a label.
	reason := safetext.Label(m.ErrorCode)
	if reason == "" {
		reason = "rejected without a reason"
	}
	s.finish(ss, m.SequenceNumber, source.Rejected, reason)
}

// expire gives up on shares whose verdict is overdue.
func (s *Source) expire(ss *session, now time.Time) error {
	ss.pmu.Lock()
	var late []uint32
	for seq, p := range ss.pending {
		if now.Sub(p.sent) > s.opt.SubmitTimeout {
			late = append(late, seq)
		}
	}
	ss.pmu.Unlock()
	for _, seq := range late {
		s.finish(ss, seq, source.NoReply, "no verdict within "+s.opt.SubmitTimeout.String())
	}
	ss.pmu.Lock()
	ss.health.Expired(now, len(late), ss.oldestLocked)
	sick := ss.health.Check(now)
	ss.pmu.Unlock()
	if sick.Sick() {
		return &SickError{Sickness: sick}
	}
	return nil
}

// oldestLocked is when the oldest share still waiting for a verdict was
// sent (zero when none waits); pmu is held.
func (ss *session) oldestLocked() time.Time {
	var t time.Time
	for _, p := range ss.pending {
		if t.IsZero() || p.sent.Before(t) {
			t = p.sent
		}
	}
	return t
}

// UnansweredStreak is how many shares in a row may go without a verdict
// before the session is dropped, so a pool that holds the connection open
// but stopped answering is left for the next upstream.
const UnansweredStreak = 5

// healthRule is the V1 client's sick rule (work/health) as far as it fits
// V2. The streak of shares without a verdict applies as it is. The
// unanswered window does not: a V2 pool acknowledges in batches, minutes
// apart, so any window short enough to matter would fire on a healthy pool
// before SubmitTimeout does, and a longer one adds nothing to the streak.
// Nor does the reject streak: V2's SetTarget judges the shares already on
// the wire at the new target, so a raise rejects a burst of them as
// difficulty-too-low, host-verified shares but no sign of a broken pool.
var healthRule = health.Rule{TimeoutStreak: UnansweredStreak}

// SickError ends a session the health rule judged sick; the pool is left
// as a V1 pool is (an EventSick, the reason in status), then redialed.
type SickError struct{ Sickness health.Sickness }

func (e *SickError) Error() string { return "sv2: the pool is sick: " + e.Sickness.String() }

// maybeUpdate tells the pool of a hashrate that moved by a fifth or more.
func (s *Source) maybeUpdate(ss *session) {
	r := s.hashRate()
	if r <= 0 || (r > ss.rate*0.8 && r < ss.rate*1.25) {
		return
	}
	ss.rate = r
	if err := s.write(ss, &codec.UpdateChannel{ChannelID: ss.channel, NominalHashRate: float32(r), MaximumTarget: work.MaxTarget}); err != nil {
		s.log.Debug("UpdateChannel not sent", "event", "pool.update_failed", "pool", s.st.URL, "err", err)
		return
	}
	s.log.Info("stratum2 hashrate updated", "event", "pool.update_channel", "pool", s.st.URL, "channel", ss.channel, "hashrate", r)
}

// endSession answers every share still waiting: the connection is gone.
func (s *Source) endSession(ss *session) {
	s.mu.Lock()
	if s.live == ss {
		s.live = nil
	}
	s.mu.Unlock()
	s.ldgr.Reset()
	ss.pmu.Lock()
	ss.closed = true
	seqs := make([]uint32, 0, len(ss.pending))
	for seq := range ss.pending {
		seqs = append(seqs, seq)
	}
	ss.pmu.Unlock()
	for _, seq := range seqs {
		s.finish(ss, seq, source.NoReply, "connection lost before the verdict")
	}
}
