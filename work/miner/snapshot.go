package miner

import (
	"fmt"
	"strings"
	"time"

	"clminer/work"
	"clminer/work/source"
)

// Snapshot is the miner's whole state for status lines, the JSON API and
// metrics.
type Snapshot struct {
	Time          time.Time     `json:"time"`
	UptimeS       float64       `json:"uptime_s"`
	Devices       []DeviceStats `json:"devices"`
	Rate5s        float64       `json:"hashrate_5s"`
	Rate60s       float64       `json:"hashrate_60s"`
	Rate5m        float64       `json:"hashrate_5m"`
	Rate15m       float64       `json:"hashrate_15m"`
	RateAvg       float64       `json:"hashrate_avg"`
	EffectiveRate float64       `json:"hashrate_effective"`
	Hashes        uint64        `json:"hashes"`
	Shares        Counts        `json:"shares"`
	Pools         []PoolStats   `json:"pools"`
	Job           *JobInfo      `json:"job,omitempty"`
	// Idle says why the devices are not hashing ("" while they are): no
	// pool has a live job, or the job's work space is used up.
	Idle          string  `json:"idle,omitempty"`
	NotifyLatency Latency `json:"notify_to_work_latency"`
	SubmitLatency Latency `json:"submit_rtt"`
	// Jobs counts the jobs taken from upstreams, NetworkBlocks the new
	// previous-block hashes among them, WorkUnits the units of work handed
	// to devices (cgminer's Getworks, Network Blocks, Local Work).
	Jobs          uint64 `json:"jobs"`
	NetworkBlocks uint64 `json:"network_blocks"`
	WorkUnits     uint64 `json:"work_units"`
	// RecentRejects are the latest rejected and lost shares, newest first.
	RecentRejects []Reject `json:"recent_rejects,omitempty"`
}

// PoolStats is one pool's state as the miner's API shows it: the
// upstream's own (source.PoolStats, which the farm proxy shows too) and the
// miner's accounting of the work it found there.
type PoolStats struct {
	source.PoolStats
	// Shares is the miner's own accounting of the shares found on this
	// pool's jobs, Jobs the jobs it sent and ConnectFailures the attempts
	// that got no work from it (dial, TLS or authorization failed).
	Shares          *Counts `json:"shares,omitempty"`
	Jobs            uint64  `json:"jobs,omitempty"`
	ConnectFailures uint64  `json:"connect_failures,omitempty"`
}

// JobInfo describes the job being hashed.
type JobInfo struct {
	ID         string    `json:"id"`
	Pool       string    `json:"pool"`
	Difficulty float64   `json:"difficulty"`
	NBits      string    `json:"nbits"`
	Received   time.Time `json:"received"`
	// PrevHash is the block the job builds on (display order), BlockSeen
	// when a job first named it.
	PrevHash  string    `json:"prev_hash"`
	BlockSeen time.Time `json:"block_seen,omitzero"`
}

// Snapshot gathers the current state.
func (m *Miner) Snapshot() Snapshot {
	now := time.Now()
	s := Snapshot{Time: now, UptimeS: now.Sub(m.start).Seconds()}
	for i, d := range m.devs {
		info := m.cfg.Devices[i].Info()
		d.mu.Lock()
		ds := DeviceStats{ID: info.ID, Name: info.Name, Detail: info.Detail, PCIBusID: info.PCIBusID, Counts: d.c.clone(), LastErr: d.err, Sweeping: d.busy}
		d.mu.Unlock()
		ds.Hashes = d.meter.total.Load()
		ds.Rate5s = d.meter.rate(now, 5*time.Second)
		ds.Rate60s = d.meter.rate(now, 60*time.Second)
		ds.Rate5m = d.meter.rate(now, 5*time.Minute)
		ds.Rate15m = d.meter.rate(now, 15*time.Minute)
		ds.RateAvg = d.meter.average(now)
		s.Hashes += ds.Hashes
		s.Rate5s += ds.Rate5s
		s.Rate60s += ds.Rate60s
		s.Rate5m += ds.Rate5m
		s.Rate15m += ds.Rate15m
		s.RateAvg += ds.RateAvg
		s.Devices = append(s.Devices, ds)
	}
	upstreams := m.src.Upstreams()
	m.mu.Lock()
	s.Shares = m.total.clone()
	s.Jobs, s.NetworkBlocks = m.jobs, m.newBlock
	s.RecentRejects = m.rejects.latest()
	for _, p := range upstreams {
		ps := PoolStats{PoolStats: source.NewPoolStats(p)}
		c := Counts{}
		if a := m.pools[p.Index]; a != nil {
			c, ps.Jobs, ps.ConnectFailures = a.c.clone(), a.jobs, a.connectFailures
		}
		ps.Shares = &c
		s.Pools = append(s.Pools, ps)
	}
	m.mu.Unlock()
	s.WorkUnits = m.units.Load()
	if s.UptimeS > 0 {
		s.EffectiveRate = s.Shares.AcceptedDiff * (1 << 32) / s.UptimeS
	}
	for i := range s.Pools {
		if n := s.Pools[i].Node; n != nil {
			n.ExpectedBlockS = work.ExpectedSeconds(n.NetworkDifficulty, s.Rate60s)
		}
	}
	if j := m.disp.Current(); j != nil {
		s.Job = &JobInfo{ID: j.ID, Pool: j.PoolURL, Difficulty: j.Entry.Difficulty(), NBits: fmt.Sprintf("%08x", j.NBits), Received: j.Received,
			PrevHash: work.HashDisplay(j.PrevHash)}
		m.mu.Lock()
		if m.blockHash == j.PrevHash {
			s.Job.BlockSeen = m.blockSeen
		}
		m.mu.Unlock()
	}
	s.Idle = m.disp.Idle()
	s.NotifyLatency = m.notifyLat.summary()
	s.SubmitLatency = m.submitLat.summary()
	return s
}

// History is each device's hashrate over the last hour, one value per
// StepS seconds, oldest first; the last ends at End.
type History struct {
	StepS   float64         `json:"step_s"`
	End     time.Time       `json:"end"`
	Devices []DeviceHistory `json:"devices"`
}

// DeviceHistory is one device's rates.
type DeviceHistory struct {
	ID       string    `json:"id"`
	Hashrate []float64 `json:"hashrate"`
}

// History returns the last hour of hashrates (bounded: an hour at one
// value per 10 s for each device).
func (m *Miner) History() History {
	h := History{StepS: historyStep.Seconds()}
	for i, d := range m.devs {
		rates, end := d.meter.history()
		if end.After(h.End) {
			h.End = end
		}
		h.Devices = append(h.Devices, DeviceHistory{ID: m.cfg.Devices[i].Info().ID, Hashrate: rates})
	}
	return h
}

// Healthy reports whether the miner is hashing on a live pool.
func (s Snapshot) Healthy() bool {
	live := false
	for _, p := range s.Pools {
		live = live || p.State == source.StateActive.String()
	}
	return live && s.Job != nil && s.Idle == "" && s.Rate5s > 0
}

// FormatRate prints a hashrate with a unit, cgminer style.
func FormatRate(hps float64) string {
	units := []string{"H/s", "kH/s", "MH/s", "GH/s", "TH/s", "PH/s"}
	i := 0
	for hps >= 1000 && i < len(units)-1 {
		hps /= 1000
		i++
	}
	return fmt.Sprintf("%.2f %s", hps, units[i])
}

func (s Snapshot) activePool() string {
	for _, p := range s.Pools {
		if p.State == source.StateActive.String() {
			return p.URL
		}
	}
	return "none"
}

// windowLabel names a rate window by the time it really covers: a "60s"
// rate at 10 s of uptime is a 10 s rate.
func windowLabel(window, uptimeS float64) string {
	if uptimeS < window {
		return fmt.Sprintf("%.0fs", max(uptimeS, 1))
	}
	return fmt.Sprintf("%.0fs", window)
}

func (m *Miner) logStatus() {
	s := m.Snapshot()
	var per []string
	for _, d := range s.Devices {
		per = append(per, fmt.Sprintf("%s %s", d.ID, FormatRate(d.Rate5s)))
	}
	c := s.Shares
	kv := []any{"event", "miner.status", "pool", s.activePool(), "devices", strings.Join(per, ", "),
		"uptime_s", s.UptimeS, "hashrate_5s", s.Rate5s, "hashrate_60s", s.Rate60s, "hashrate_avg", s.RateAvg,
		"accepted", c.Accepted, "rejected", c.Rejected, "stale", c.Stale, "duplicate", c.Duplicate, "hw_errors", c.HWErrors,
		"best_share", c.BestShare}
	if s.Idle != "" {
		kv = append(kv, "idle", s.Idle)
	}
	if c.Throttled > 0 {
		kv = append(kv, "throttled", c.Throttled)
	}
	for _, p := range s.Pools {
		if p.Node != nil && p.State == source.StateActive.String() {
			kv = append(kv, "node_height", p.Node.Height, "blocks", p.Node.BlocksAccepted, "expected_block_s", p.Node.ExpectedBlockS)
		}
	}
	m.log.Info(fmt.Sprintf("(%s):%s (%s):%s (avg):%s | A:%d R:%d S:%d D:%d HW:%d | best %.4g",
		windowLabel(5, s.UptimeS), FormatRate(s.Rate5s), windowLabel(60, s.UptimeS), FormatRate(s.Rate60s), FormatRate(s.RateAvg),
		c.Accepted, c.Rejected, c.Stale, c.Duplicate, c.HWErrors, c.BestShare),
		kv...)
}

func (m *Miner) logSummary() {
	s := m.Snapshot()
	c := s.Shares
	m.log.Info("summary", "event", "miner.summary", "uptime", time.Duration(s.UptimeS*float64(time.Second)).Round(time.Second).String(), "uptime_s", s.UptimeS,
		"hashes", s.Hashes, "avg", FormatRate(s.RateAvg), "hashrate_avg", s.RateAvg, "effective", FormatRate(s.EffectiveRate), "hashrate_effective", s.EffectiveRate,
		"accepted", c.Accepted, "rejected", c.Rejected, "stale", c.Stale, "duplicate", c.Duplicate,
		"hw_errors", c.HWErrors, "below_target", c.BelowTarget, "lost", c.Lost, "throttled", c.Throttled, "blocks", c.Blocks, "best_share", c.BestShare)
	for reason, n := range c.RejectReasons {
		m.log.Info("rejects by reason", "event", "miner.summary.reject", "reason", reason, "count", n)
	}
	for _, p := range s.Pools {
		m.log.Info("pool summary", "event", "miner.summary.pool", "pool", p.URL, "connects", p.Connects, "failovers", p.Failovers,
			"accepted", p.Accepted, "rejected", p.Rejected)
	}
	m.log.Info("submit round-trip", "event", "miner.summary.latency", "p50_ms", s.SubmitLatency.P50ms, "p99_ms", s.SubmitLatency.P99ms,
		"notify_to_work_p50_ms", s.NotifyLatency.P50ms, "notify_to_work_p99_ms", s.NotifyLatency.P99ms)
}
