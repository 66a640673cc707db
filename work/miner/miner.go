package miner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/charmbracelet/log"

	"clminer/work"
	"clminer/work/device"
	"clminer/work/dispatch"
	"clminer/work/ledger"
	"clminer/work/ratelog"
	"clminer/work/retry"
	"clminer/work/source"
)

// Config configures a Miner.
type Config struct {
	// Source gives jobs and takes shares: a Stratum pool list, a node, a V2
	// channel. The miner does not know which.
	Source  source.Source
	Devices []device.Device
	Logger  *log.Logger
	// StatusInterval is how often a status line is logged (0: never).
	StatusInterval time.Duration
	// DrainTimeout bounds the wait for replies to shares already sent when
	// mining stops (default 5 s).
	DrainTimeout time.Duration
	// Observer, when set, is told of every share and latency (metrics,
	// share log).
	Observer Observer
}

// Observer receives events as they happen; calls may be concurrent.
type Observer interface {
	Share(ShareEvent)
	NotifyLatency(device string, d time.Duration)
	PoolEvent(source.Event)
}

// ShareEvent describes the fate of one candidate.
type ShareEvent struct {
	Time        time.Time     `json:"time"`
	Device      string        `json:"device"`
	Pool        int           `json:"pool"`
	PoolURL     string        `json:"pool_url"`
	JobID       string        `json:"job_id"`
	Extranonce2 string        `json:"extranonce2,omitempty"`
	NTime       string        `json:"ntime,omitempty"`
	Nonce       string        `json:"nonce"`
	VersionBits string        `json:"version_bits,omitempty"`
	PoolDiff    float64       `json:"pool_difficulty"`
	ShareDiff   float64       `json:"share_difficulty"`
	Hash        string        `json:"hash"`
	Outcome     Outcome       `json:"outcome"`
	Reason      string        `json:"reason,omitempty"`
	RTT         time.Duration `json:"rtt_ns,omitempty"`
	Block       bool          `json:"block,omitempty"`
}

// Miner runs the mining loop. Create it with New and call Run once.
type Miner struct {
	cfg   Config
	log   *log.Logger
	src   source.Source
	disp  *dispatch.Dispatcher
	start time.Time

	devs  []*deviceAcct
	total Counts
	mu    sync.Mutex // guards total, pools, rejects and blocks
	pools map[int]*poolAcct
	// rejects are the latest rejected and lost shares, for the status
	// page's "why" next to the counts.
	rejects rejectRing
	// blocks are the previous-block hashes of recent jobs, so a pool
	// switch to the same tip is not counted as a new network block.
	blocks   [8][32]byte
	nblocks  int
	newBlock uint64
	// blockHash is the newest block the jobs named, first seen at blockSeen.
	blockHash [32]byte
	blockSeen time.Time
	jobs      uint64
	// units counts the work units handed to devices (cgminer's Local Work).
	units atomic.Uint64

	notifyLat latencies
	submitLat latencies

	// submits counts shares handed to the source whose reply has not come;
	// the source answers each exactly once, so no goroutine waits per share.
	submits sync.WaitGroup

	logNotSent, logThrottled, logIdle *ratelog.Log

	// explained is the session whose end a sick or reconnect line already
	// logged, so its disconnect is not logged again. Only the source's
	// goroutine touches it.
	explained uint64
}

// New checks the configuration.
func New(cfg Config) (*Miner, error) {
	if len(cfg.Devices) == 0 {
		return nil, errors.New("no device to mine with")
	}
	if cfg.Source == nil {
		return nil, errors.New("no work source (pool list or node) to mine for")
	}
	if cfg.Logger == nil {
		cfg.Logger = log.New(nil)
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 5 * time.Second
	}
	m := &Miner{cfg: cfg, log: cfg.Logger, src: cfg.Source, disp: dispatch.New(), start: time.Now(), pools: map[int]*poolAcct{},
		logNotSent: ratelog.New(10*time.Second, 10), logThrottled: ratelog.New(10*time.Second, 1), logIdle: ratelog.New(10*time.Second, 2)}
	for range cfg.Devices {
		m.devs = append(m.devs, &deviceAcct{meter: newRateMeter(m.start)})
	}
	return m, nil
}

// Run mines until ctx ends, then drains: hashing stops at once, replies to
// shares already sent are awaited up to DrainTimeout, and the summary is
// logged. It returns nil on a normal shutdown.
func (m *Miner) Run(ctx context.Context) error {
	clientCtx, stopClient := context.WithCancel(context.Background())
	clientDone := make(chan error, 1)
	go func() { clientDone <- m.src.Run(clientCtx, sink{m}) }()
	devCtx, stopDevices := context.WithCancel(ctx)
	defer stopDevices()

	var wg sync.WaitGroup
	for i, dev := range m.cfg.Devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.runDevice(devCtx, i, dev)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		m.tick(devCtx)
	}()

	var clientErr error
	select {
	case <-ctx.Done():
	case clientErr = <-clientDone:
		// The source only returns early on a fatal configuration problem.
		clientDone <- clientErr
	}
	stopDevices()
	wg.Wait() // devices stopped: no new shares from here on
	m.drain()
	stopClient()
	err := <-clientDone
	// A stopped source has answered every share; the bound only guards
	// against a source that breaks that promise.
	if !waitTimeout(&m.submits, m.cfg.DrainTimeout+5*time.Second) {
		m.log.Error("work source did not answer every share after stopping", "event", "miner.drain_incomplete")
	}
	if clientErr == nil && err != nil && !errors.Is(err, context.Canceled) {
		clientErr = err
	}
	m.logSummary()
	if clientErr != nil && !errors.Is(clientErr, context.Canceled) {
		return clientErr
	}
	return nil
}

// waitTimeout waits for wg up to d and reports whether it finished.
func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// drain waits up to DrainTimeout for the verdicts of shares already sent;
// stopping the source afterwards answers the rest (as lost).
func (m *Miner) drain() {
	if !waitTimeout(&m.submits, m.cfg.DrainTimeout) {
		m.log.Warn("shares still awaiting a verdict at shutdown", "event", "miner.drain_timeout", "timeout", m.cfg.DrainTimeout)
	}
}

// sink is how the source reaches the miner, from one goroutine, in order.
type sink struct{ m *Miner }

func (s sink) Job(j *source.Job) { s.m.onJob(j) }
func (s sink) NoWork(reason string) {
	s.m.disp.Clear(reason)
	s.m.logIdle.Warn(s.m.log, "devices idle: no pool has a live job", "event", "miner.idle", "reason", reason)
}
func (s sink) Event(e source.Event) { s.m.onPoolEvent(e) }

func (m *Miner) onJob(j *source.Job) {
	if err := m.disp.SetJob(j); err != nil {
		m.log.Error("pool sent an unusable job", "event", "job.invalid", "pool", j.PoolURL, "job", j.ID, "err", err)
		return
	}
	m.countJob(j)
	m.log.Debug("new job", "event", "job.new", "pool", j.PoolURL, "job", j.ID, "clean", j.Clean, "difficulty", j.Difficulty)
}

// countJob counts a job taken from an upstream, and a new network block
// when its previous-block hash is one no recent job had.
func (m *Miner) countJob(j *source.Job) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.jobs++
	if p := m.poolAcctLocked(j.Pool); p != nil {
		p.jobs++
	}
	if j.Job == nil {
		return
	}
	for i := range min(m.nblocks, len(m.blocks)) {
		if m.blocks[i] == j.PrevHash {
			return
		}
	}
	m.blocks[m.nblocks%len(m.blocks)] = j.PrevHash
	m.nblocks++
	m.newBlock++
	m.blockHash, m.blockSeen = j.PrevHash, j.Received
}

func (m *Miner) onPoolEvent(e source.Event) {
	if m.cfg.Observer != nil {
		m.cfg.Observer.PoolEvent(e)
	}
	if (e.Kind == source.EventDisconnected && e.Session == 0 && !errors.Is(e.Err, context.Canceled)) || e.Kind == source.EventAuthFailed {
		// No work from this attempt: the dial, the TLS handshake or the
		// authorization failed (cgminer's Get Failures).
		m.mu.Lock()
		if p := m.poolAcctLocked(e.Pool); p != nil {
			p.connectFailures++
		}
		m.mu.Unlock()
	}
	kv := []any{"pool", e.URL}
	if e.Err != nil {
		kv = append(kv, "err", e.Err)
	}
	switch e.Kind {
	case source.EventConnecting:
		m.log.Info("connecting to pool", append(kv, "event", "pool.connecting")...)
	case source.EventConnected:
		m.log.Debug("pool connection open; subscribing", append(kv, "event", "pool.tcp_connected")...)
	case source.EventAuthorized:
		m.log.Info("pool connected and authorized", append(kv, "event", "pool.connected")...)
	case source.EventAuthFailed:
		m.log.Error("pool refused the worker", append(kv, "event", "pool.auth_failed")...)
	case source.EventDisconnected:
		if errors.Is(e.Err, context.Canceled) {
			// Our own shutdown, not the pool's doing.
			m.log.Info("pool session closed", append(kv, "event", "pool.disconnected")...)
			break
		}
		if e.Session != 0 && e.Session == m.explained {
			break // the sick or reconnect line said why
		}
		if e.Session == 0 {
			// No connection was made: the dial or TLS handshake failed.
			m.log.Warn("cannot connect to pool", append(kv, "event", "pool.connect_failed")...)
			break
		}
		m.log.Warn("pool disconnected", append(kv, "event", "pool.disconnected")...)
	case source.EventFailover:
		m.log.Warn("pool failover", append(kv, "event", "pool.failover", "from", e.From, "to", e.To)...)
	case source.EventSick:
		m.explained = e.Session
		m.log.Warn("pool marked sick; failing over", append(kv, "event", "pool.sick")...)
	case source.EventReconnectRequested:
		m.explained = e.Session
		m.log.Info("pool asked to reconnect", append(kv, "event", "pool.reconnect")...)
	default:
		m.log.Debug(e.Kind.String(), append(kv, "event", "pool."+e.Kind.String())...)
	}
}

// deviceBackoff spaces the retries of a device that keeps failing.
var deviceBackoff = retry.Backoff{Initial: 100 * time.Millisecond, Max: 30 * time.Second}

func (m *Miner) runDevice(ctx context.Context, idx int, dev device.Device) {
	acct := m.devs[idx]
	info := dev.Info()
	var lastSeq uint64
	retries := retry.Counter{Backoff: deviceBackoff}
	// A device that hashes several rolled versions of each nonce at once
	// gets that many units per assignment when the job rolls versions.
	versions := device.VersionsOf(dev)
	for ctx.Err() == nil {
		a, err := m.disp.NextVersions(ctx, versions)
		if err != nil {
			return
		}
		m.units.Add(uint64(len(a.Units)))
		// The assignment's own change signal: one read before Next would be
		// closed by the SetJob that ended a wait for work, cancelling the
		// first unit after one batch (at start and after every idle spell).
		changed := a.Changed
		if a.Seq != lastSeq {
			lastSeq = a.Seq
			lat := time.Since(a.Job.Received)
			m.notifyLat.add(lat)
			if m.cfg.Observer != nil {
				m.cfg.Observer.NotifyLatency(info.ID, lat)
			}
		}
		sweepCtx, cancel := context.WithCancel(ctx)
		stop := make(chan struct{})
		go func() {
			select {
			case <-changed:
				cancel()
			case <-stop:
			}
		}()
		acct.setBusy(true)
		res, err := device.SweepVerifiedVersions(sweepCtx, dev, a.Units, 0, 1<<32, func(u *work.Unit) device.Verdicts {
			return device.Verdicts{
				Progress: acct.meter.add,
				Share:    func(c work.Check) { m.onShare(info.ID, acct, a, u, c) },
				HWError:  func(nonce uint32) { m.onHWError(info.ID, acct, a, u, nonce) },
				BelowTarget: func(c work.Check) {
					m.record(info.ID, acct, ShareEvent{Outcome: BelowTarget, Nonce: work.FormatUint32Hex(c.Nonce), ShareDiff: c.Difficulty}, a)
				},
			}
		})
		close(stop)
		cancel()
		acct.setBusy(false)
		if res.Lost > 0 {
			m.log.Error("device lost candidates", "event", "device.error", "device", info.ID, "lost", res.Lost)
			m.recordN(acct, Lost, "device output overflow", res.Lost)
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil && !errors.Is(err, context.Canceled) {
			acct.setErr(err)
			wait := retries.Failed()
			m.log.Error("device failed; retrying", "event", "device.error", "device", info.ID, "err", err, "retry_in", wait)
			if retry.Sleep(ctx, wait) != nil {
				return
			}
			continue
		}
		retries.Reset()
	}
}

func (m *Miner) onHWError(device string, acct *deviceAcct, a *dispatch.Assignment, u *work.Unit, nonce uint32) {
	h := u.Hash(nonce)
	m.log.Warn("device reported a wrong nonce", "event", "share.hw_error", "device", device, "nonce", work.FormatUint32Hex(nonce))
	m.record(device, acct, ShareEvent{Outcome: HWError, Nonce: work.FormatUint32Hex(nonce), Hash: work.HashDisplay(h), ShareDiff: work.HashDifficulty(h)}, a)
}

// onShare takes a host-verified candidate of unit u (one of a.Units) to
// exactly one outcome.
func (m *Miner) onShare(device string, acct *deviceAcct, a *dispatch.Assignment, u *work.Unit, c work.Check) {
	j := a.Job
	ev := ShareEvent{Nonce: work.FormatUint32Hex(c.Nonce), Hash: work.HashDisplay(c.Hash), ShareDiff: c.Difficulty, Block: c.MeetsNetwork}
	if !j.Entry.Live() {
		ev.Outcome, ev.Reason = Stale, "job dropped by the pool"
		m.record(device, acct, ev, a)
		return
	}
	ok, judged := j.Entry.Judge(c.Hash)
	ev.PoolDiff = judged
	if !ok {
		// The pool raised the difficulty after the unit was handed out; it
		// would reject this share as low difficulty.
		ev.Outcome = BelowTarget
		m.record(device, acct, ev, a)
		return
	}
	if !j.Entry.Claim(ledger.ShareKey(u, c.Nonce)) {
		ev.Outcome, ev.Reason = Duplicate, "already submitted"
		m.record(device, acct, ev, a)
		return
	}
	if c.MeetsNetwork {
		// Logged once it is sent: at regtest's difficulty every other hash
		// is a block, and all but the first on a tip are stale.
		m.log.Info("block found", "event", "block.found", "device", device, "hash", ev.Hash, "pool", j.PoolURL)
	}
	m.submits.Add(1)
	m.src.Send(source.Share{Job: j, Unit: u, Nonce: c.Nonce, Device: device}, func(r source.Reply) {
		defer m.submits.Done()
		ev.Extranonce2, ev.NTime, ev.VersionBits, ev.RTT, ev.Reason = r.Extranonce2, r.NTime, r.VersionBits, r.RTT, r.Reason
		switch r.Kind {
		case source.Accepted:
			ev.Outcome = Accepted
		case source.Rejected:
			ev.Outcome = Rejected
		case source.NotSent:
			ev.Outcome = Stale
		case source.Throttled:
			ev.Outcome = Throttled
		default:
			ev.Outcome = Lost
		}
		if ev.RTT > 0 {
			m.submitLat.add(ev.RTT)
		}
		m.record(device, acct, ev, a)
	})
}

// recordN counts n candidates of one outcome at once (a device overflow can
// lose millions at an absurd difficulty: one log line, not one per share).
func (m *Miner) recordN(acct *deviceAcct, o Outcome, reason string, n uint64) {
	acct.mu.Lock()
	acct.c.recordN(o, reason, n)
	acct.mu.Unlock()
	m.mu.Lock()
	m.total.recordN(o, reason, n)
	m.mu.Unlock()
}

// poolAcctLocked is pool i's accounting, nil for an index no upstream
// has (the source numbers its upstreams; the bound keeps a buggy one from
// growing the map).
func (m *Miner) poolAcctLocked(i int) *poolAcct {
	if i < 0 || i >= maxPools {
		return nil
	}
	p := m.pools[i]
	if p == nil {
		p = &poolAcct{}
		m.pools[i] = p
	}
	return p
}

func (m *Miner) record(device string, acct *deviceAcct, ev ShareEvent, a *dispatch.Assignment) {
	j := a.Job
	ev.Time, ev.Device = time.Now(), device
	ev.Pool, ev.PoolURL, ev.JobID = j.Pool, j.PoolURL, j.ID
	if ev.PoolDiff == 0 {
		ev.PoolDiff = j.Difficulty
	}
	acct.mu.Lock()
	acct.c.record(&ev)
	acct.mu.Unlock()
	m.mu.Lock()
	m.total.record(&ev)
	if p := m.poolAcctLocked(ev.Pool); p != nil {
		p.c.record(&ev)
	}
	if ev.Outcome == Rejected || ev.Outcome == Lost {
		m.rejects.add(ev)
	}
	m.mu.Unlock()
	switch ev.Outcome {
	case Accepted:
		m.log.Info("share accepted", "event", "share.accepted", "device", device, "pool", ev.PoolURL, "job", ev.JobID,
			"diff", fmt.Sprintf("%.4g/%.4g", ev.ShareDiff, ev.PoolDiff), "rtt", ev.RTT.Round(time.Microsecond))
	case Rejected, Lost:
		m.log.Warn("share "+string(ev.Outcome), "event", "share."+string(ev.Outcome), "device", device, "pool", ev.PoolURL, "job", ev.JobID, "reason", ev.Reason)
	case Stale, Duplicate:
		m.logNotSent.Info(m.log, "share not sent", "event", "share."+string(ev.Outcome), "device", device, "job", ev.JobID, "reason", ev.Reason)
	case Throttled:
		// At an absurd pool difficulty this is every hash: counted, logged
		// once per interval, kept out of the share log.
		m.logThrottled.Warn(m.log, "shares not sent: the pool has too many awaiting a verdict", "event", "share.throttled", "device", device, "pool", ev.PoolURL)
		return
	case BelowTarget:
		// At a pool difficulty D >= 1 all but 1/D of the device's prefilter
		// passes land here (one hash in 2^32): routine filtering, counted
		// but neither logged above debug nor sent to the share log.
		m.log.Debug("candidate below the share target", "event", "share.below_target", "device", device, "job", ev.JobID, "nonce", ev.Nonce)
		return
	}
	if m.cfg.Observer != nil {
		m.cfg.Observer.Share(ev)
	}
}

func (a *deviceAcct) setBusy(b bool) {
	a.mu.Lock()
	a.busy = b
	a.mu.Unlock()
}

func (a *deviceAcct) setErr(err error) {
	a.mu.Lock()
	a.err = err.Error()
	a.mu.Unlock()
}

// tick samples hashrates every second and logs the status line.
func (m *Miner) tick(ctx context.Context) {
	sec := time.NewTicker(time.Second)
	defer sec.Stop()
	var status <-chan time.Time
	if m.cfg.StatusInterval > 0 {
		t := time.NewTicker(m.cfg.StatusInterval)
		defer t.Stop()
		status = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-sec.C:
			for _, d := range m.devs {
				d.meter.sample(now)
			}
		case <-status:
			m.logStatus()
		}
	}
}

func sortDurations(s []time.Duration) { slices.Sort(s) }
