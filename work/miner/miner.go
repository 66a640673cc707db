package miner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/charmbracelet/log"

	"clminer/gpu"
	"clminer/stratum"
	"clminer/work"
	"clminer/work/dispatch"
)

// Config configures a Miner.
type Config struct {
	Pools   []stratum.PoolConfig
	Client  stratum.Options // OnJob and OnPoolState are set by the miner
	Devices []gpu.Device
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
	PoolEvent(stratum.PoolEvent)
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
	cfg    Config
	log    *log.Logger
	client *stratum.Client
	disp   *dispatch.Dispatcher
	start  time.Time

	devs  []*deviceAcct
	total Counts
	mu    sync.Mutex // guards total, dups, lastGen

	dups    map[shareKey]struct{}
	lastGen uint64

	notifyLat latencies
	submitLat latencies

	submits sync.WaitGroup
	// submitCtx outlives the mining context by the drain timeout, so
	// shares already sent get their verdict.
	submitCtx    context.Context
	cancelSubmit context.CancelFunc
}

type shareKey struct {
	job     string
	en2     string
	ntime   uint32
	nonce   uint32
	version uint32
}

// maxDups bounds the duplicate filter; it is also emptied on every new block.
const maxDups = 1 << 16

// New checks the configuration and builds the pool client.
func New(cfg Config) (*Miner, error) {
	if len(cfg.Devices) == 0 {
		return nil, errors.New("no device to mine with")
	}
	if cfg.Logger == nil {
		cfg.Logger = log.New(nil)
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 5 * time.Second
	}
	m := &Miner{cfg: cfg, log: cfg.Logger, disp: dispatch.New(), dups: map[shareKey]struct{}{}, start: time.Now()}
	for range cfg.Devices {
		m.devs = append(m.devs, &deviceAcct{meter: newRateMeter(m.start)})
	}
	opts := cfg.Client
	if opts.Logger == nil {
		opts.Logger = cfg.Logger
	}
	opts.OnJob = m.onJob
	opts.OnPoolState = m.onPoolEvent
	client, err := stratum.NewClient(cfg.Pools, opts)
	if err != nil {
		return nil, err
	}
	m.client = client
	m.submitCtx, m.cancelSubmit = context.WithCancel(context.Background())
	return m, nil
}

// Run mines until ctx ends, then drains: hashing stops at once, replies to
// shares already sent are awaited up to DrainTimeout, and the summary is
// logged. It returns nil on a normal shutdown.
func (m *Miner) Run(ctx context.Context) error {
	clientCtx, stopClient := context.WithCancel(context.Background())
	clientDone := make(chan error, 1)
	go func() { clientDone <- m.client.Run(clientCtx) }()

	var wg sync.WaitGroup
	for i, dev := range m.cfg.Devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.runDevice(ctx, i, dev)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		m.tick(ctx)
	}()

	var clientErr error
	select {
	case <-ctx.Done():
	case clientErr = <-clientDone:
		// The client only returns early on a fatal configuration problem.
		clientDone <- clientErr
	}
	wg.Wait() // devices stopped: no new shares from here on
	m.drain()
	stopClient()
	if err := <-clientDone; clientErr == nil && err != nil && !errors.Is(err, context.Canceled) {
		clientErr = err
	}
	m.logSummary()
	if clientErr != nil && !errors.Is(clientErr, context.Canceled) {
		return clientErr
	}
	return nil
}

func (m *Miner) drain() {
	done := make(chan struct{})
	go func() { m.submits.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(m.cfg.DrainTimeout):
		m.log.Warn("shares still awaiting a verdict at shutdown", "event", "miner.drain_timeout", "timeout", m.cfg.DrainTimeout)
		m.cancelSubmit()
		<-done
	}
	m.cancelSubmit()
}

func (m *Miner) onJob(j *stratum.Job) {
	err := m.disp.SetJob(&dispatch.Job{Work: j.Job, RollingMask: j.RollingMask, Clean: j.Clean, Received: time.Now(), Tag: j})
	if err != nil {
		m.log.Error("pool sent an unusable job", "event", "job.invalid", "pool", j.PoolURL, "job", j.ID, "err", err)
		return
	}
	m.log.Debug("new job", "event", "job.new", "pool", j.PoolURL, "job", j.ID, "clean", j.Clean || j.Job.Clean, "difficulty", j.Difficulty)
}

func (m *Miner) onPoolEvent(e stratum.PoolEvent) {
	if m.cfg.Observer != nil {
		m.cfg.Observer.PoolEvent(e)
	}
	kv := []any{"pool", e.URL}
	if e.Err != nil {
		kv = append(kv, "err", e.Err)
	}
	switch e.Kind {
	case stratum.EventAuthorized:
		m.log.Info("pool connected and authorized", append(kv, "event", "pool.connected")...)
	case stratum.EventAuthFailed:
		m.log.Error("pool refused the worker", append(kv, "event", "pool.auth_failed")...)
	case stratum.EventDisconnected:
		if errors.Is(e.Err, context.Canceled) {
			// Our own shutdown, not the pool's doing.
			m.log.Info("pool session closed", append(kv, "event", "pool.disconnected")...)
			break
		}
		m.log.Warn("pool disconnected", append(kv, "event", "pool.disconnected")...)
	case stratum.EventFailover:
		m.log.Warn("pool failover", append(kv, "event", "pool.failover", "from", e.From, "to", e.To)...)
	case stratum.EventReconnectRequested:
		m.log.Info("pool asked to reconnect", append(kv, "event", "pool.reconnect")...)
	default:
		m.log.Debug(e.Kind.String(), append(kv, "event", "pool."+e.Kind.String())...)
	}
}

func (m *Miner) runDevice(ctx context.Context, idx int, dev gpu.Device) {
	acct := m.devs[idx]
	info := dev.Info()
	var lastSeq uint64
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		changed := m.disp.Changed()
		a, err := m.disp.Next(ctx)
		if err != nil {
			return
		}
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
		res, err := gpu.SweepVerified(sweepCtx, dev, a.Unit, 0, 1<<32, gpu.Verdicts{
			Progress: acct.meter.add,
			Share:    func(c work.Check) { m.onShare(info.ID, acct, a, c) },
			HWError:  func(nonce uint32) { m.onHWError(info.ID, acct, a, nonce) },
			BelowTarget: func(c work.Check) {
				m.record(info.ID, acct, ShareEvent{Outcome: BelowTarget, Nonce: work.FormatUint32Hex(c.Nonce), ShareDiff: c.Difficulty}, a)
			},
		})
		close(stop)
		cancel()
		acct.setBusy(false)
		if res.Lost > 0 {
			m.log.Error("device lost candidates", "event", "device.error", "device", info.ID, "lost", res.Lost)
			for range res.Lost {
				m.record(info.ID, acct, ShareEvent{Outcome: Lost, Reason: "device output overflow"}, a)
			}
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil && !errors.Is(err, context.Canceled) {
			acct.setErr(err)
			m.log.Error("device failed; retrying", "event", "device.error", "device", info.ID, "err", err, "retry_in", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 30*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
	}
}

func (m *Miner) onHWError(device string, acct *deviceAcct, a *dispatch.Assignment, nonce uint32) {
	h := a.Unit.Hash(nonce)
	m.log.Warn("device reported a wrong nonce", "event", "share.hw_error", "device", device, "nonce", work.FormatUint32Hex(nonce))
	m.record(device, acct, ShareEvent{Outcome: HWError, Nonce: work.FormatUint32Hex(nonce), Hash: work.HashDisplay(h), ShareDiff: work.HashDifficulty(h)}, a)
}

func (m *Miner) onShare(device string, acct *deviceAcct, a *dispatch.Assignment, c work.Check) {
	pj := a.Job.Tag.(*stratum.Job)
	ev := ShareEvent{Nonce: work.FormatUint32Hex(c.Nonce), Hash: work.HashDisplay(c.Hash), ShareDiff: c.Difficulty, Block: c.MeetsNetwork}
	if c.MeetsNetwork {
		m.log.Info("block found", "event", "block.found", "device", device, "hash", ev.Hash, "pool", pj.PoolURL)
	}
	if m.disp.Stale(a) {
		ev.Outcome, ev.Reason = Stale, "job obsoleted by a newer block"
		m.record(device, acct, ev, a)
		return
	}
	sub, err := a.Unit.Submit(pj.Worker, c.Nonce, pj.RollingMask)
	if err != nil {
		ev.Outcome, ev.Reason = HWError, err.Error()
		m.record(device, acct, ev, a)
		return
	}
	key := shareKey{job: pj.ID, en2: sub.Extranonce2, ntime: a.Unit.NTime, nonce: c.Nonce, version: a.Unit.Version}
	if !m.firstSubmit(key, a.Generation) {
		ev.Outcome, ev.Reason = Duplicate, "already submitted"
		m.record(device, acct, ev, a)
		return
	}
	m.submits.Add(1)
	go func() {
		defer m.submits.Done()
		res, err := m.client.Submit(m.submitCtx, pj, sub)
		ev.Extranonce2, ev.NTime, ev.VersionBits = sub.Extranonce2, sub.NTime, sub.VersionBits
		switch {
		case errors.Is(err, stratum.ErrStaleSession):
			ev.Outcome, ev.Reason = Stale, "pool session ended before submit"
		case err != nil:
			ev.Outcome, ev.Reason = Lost, err.Error()
		case res.Accepted:
			ev.Outcome, ev.RTT = Accepted, res.RTT
		default:
			ev.Outcome, ev.Reason, ev.RTT = Rejected, res.Reason, res.RTT
			if ev.Reason == "" {
				ev.Reason = "rejected without a reason"
			}
		}
		if ev.RTT > 0 {
			m.submitLat.add(ev.RTT)
		}
		m.record(device, acct, ev, a)
	}()
}

// firstSubmit reports whether key has not been submitted yet, and marks it.
// The set is emptied on every new block: keys of older jobs cannot recur.
func (m *Miner) firstSubmit(key shareKey, gen uint64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if gen != m.lastGen || len(m.dups) >= maxDups {
		clear(m.dups)
		m.lastGen = gen
	}
	if _, dup := m.dups[key]; dup {
		return false
	}
	m.dups[key] = struct{}{}
	return true
}

func (m *Miner) record(device string, acct *deviceAcct, ev ShareEvent, a *dispatch.Assignment) {
	pj, _ := a.Job.Tag.(*stratum.Job)
	ev.Time, ev.Device = time.Now(), device
	if pj != nil {
		ev.Pool, ev.PoolURL, ev.JobID = pj.Pool, pj.PoolURL, pj.ID
	}
	ev.PoolDiff = a.Job.Work.Difficulty
	acct.mu.Lock()
	acct.c.record(ev.Outcome, ev.Reason, ev.PoolDiff, ev.ShareDiff, ev.Block)
	acct.mu.Unlock()
	m.mu.Lock()
	m.total.record(ev.Outcome, ev.Reason, ev.PoolDiff, ev.ShareDiff, ev.Block)
	m.mu.Unlock()
	switch ev.Outcome {
	case Accepted:
		m.log.Info("share accepted", "event", "share.accepted", "device", device, "pool", ev.PoolURL, "job", ev.JobID,
			"diff", fmt.Sprintf("%.4g/%.4g", ev.ShareDiff, ev.PoolDiff), "rtt", ev.RTT.Round(time.Microsecond))
	case Rejected, Lost:
		m.log.Warn("share "+string(ev.Outcome), "event", "share."+string(ev.Outcome), "device", device, "pool", ev.PoolURL, "job", ev.JobID, "reason", ev.Reason)
	case Stale, Duplicate:
		m.log.Info("share not sent", "event", "share."+string(ev.Outcome), "device", device, "job", ev.JobID, "reason", ev.Reason)
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
