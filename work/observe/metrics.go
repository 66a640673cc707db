package observe

import (
	"runtime"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"clminer/work/miner"
	"clminer/work/safetext"
	"clminer/work/source"
)

// Metrics is a miner.Observer that keeps the latency histograms, plus a
// collector that reads everything else from the miner's snapshot at scrape
// time.
type Metrics struct {
	reg       *prometheus.Registry
	submitRTT *prometheus.HistogramVec
	notifyLat *prometheus.HistogramVec
	snapshot  func() miner.Snapshot
}

// NewMetrics builds the registry. snapshot is called on every scrape; nil
// leaves it to MinerHandlers, for a command that observes the miner before
// the miner exists (the miner takes its observers when it is made).
func NewMetrics(version, commit string, snapshot func() miner.Snapshot) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		submitRTT: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "clminer_submit_rtt_seconds", Help: "Time from mining.submit to the pool's verdict.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"pool"}),
		notifyLat: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "clminer_notify_to_work_seconds", Help: "Time from a job's mining.notify to a device hashing it.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"device"}),
		snapshot: snapshot,
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "clminer_build_info", Help: "Build of the running miner.",
		ConstLabels: prometheus.Labels{"version": version, "commit": commit, "goversion": runtime.Version()},
	})
	build.Set(1)
	m.reg.MustRegister(m.submitRTT, m.notifyLat, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if snapshot != nil {
		m.reg.MustRegister(&snapshotCollector{m: m})
	}
	return m
}

// Registry is what /metrics serves.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Share implements miner.Observer.
func (m *Metrics) Share(ev miner.ShareEvent) {
	if ev.RTT > 0 {
		m.submitRTT.WithLabelValues(ev.PoolURL).Observe(ev.RTT.Seconds())
	}
}

// NotifyLatency implements miner.Observer.
func (m *Metrics) NotifyLatency(device string, d time.Duration) {
	m.notifyLat.WithLabelValues(device).Observe(d.Seconds())
}

// PoolEvent implements miner.Observer.
func (m *Metrics) PoolEvent(source.Event) {}

var (
	descHashes       = prometheus.NewDesc("clminer_device_hashes_total", "Nonces hashed by the device.", []string{"device"}, nil)
	descRate         = prometheus.NewDesc("clminer_device_hashrate", "Device hashrate in hashes per second over a window (5s, 60s, avg since start).", []string{"device", "window"}, nil)
	descShares       = prometheus.NewDesc("clminer_shares_total", "Candidates by outcome: accepted, rejected, stale, duplicate, hw_error, below_target, lost, throttled.", []string{"device", "result"}, nil)
	descHW           = prometheus.NewDesc("clminer_hardware_errors_total", "Candidates whose host-verified hash did not meet the target.", []string{"device"}, nil)
	descReasons      = prometheus.NewDesc("clminer_share_rejects_total", "Rejected or lost shares by the pool's reason.", []string{"reason"}, nil)
	descBest         = prometheus.NewDesc("clminer_best_share_difficulty", "Highest share difficulty found since start.", nil, nil)
	descBlocks       = prometheus.NewDesc("clminer_blocks_found_total", "Shares that met the network target.", nil, nil)
	descEffective    = prometheus.NewDesc("clminer_effective_hashrate", "Hashrate credited by accepted shares (difficulty x 2^32 / uptime).", nil, nil)
	descPoolUp       = prometheus.NewDesc("clminer_pool_up", "1 for the pool being mined on, else 0.", []string{"pool", "url"}, nil)
	descPoolInfo     = prometheus.NewDesc("clminer_pool_info", "Always 1: how each pool is spoken to (stratum, stratum2, getblocktemplate) and, for Stratum V2, the channel.", []string{"pool", "url", "protocol", "channel"}, nil)
	descPoolState    = prometheus.NewDesc("clminer_pool_state", "Connection state of each pool (1 for its current state).", []string{"pool", "url", "state"}, nil)
	descConnects     = prometheus.NewDesc("clminer_pool_connects_total", "Successful connections to the pool.", []string{"pool", "url"}, nil)
	descFailovers    = prometheus.NewDesc("clminer_pool_failovers_total", "Times the miner left this pool for another.", []string{"pool", "url"}, nil)
	descPoolDiff     = prometheus.NewDesc("clminer_pool_difficulty", "Share difficulty the pool asks for.", []string{"pool", "url"}, nil)
	descInFlight     = prometheus.NewDesc("clminer_pool_shares_in_flight", "Shares sent to the pool and awaiting its verdict.", []string{"pool", "url"}, nil)
	descNodeHeight   = prometheus.NewDesc("clminer_node_height", "Height of the block being mined on a solo node.", []string{"pool", "url", "chain"}, nil)
	descTemplateAge  = prometheus.NewDesc("clminer_node_template_age_seconds", "Age of the solo node's current block template.", []string{"pool", "url"}, nil)
	descNodeBlocks   = prometheus.NewDesc("clminer_node_blocks_total", "Blocks sent to a solo node, by what became of them.", []string{"pool", "url", "outcome"}, nil)
	descBlockRejects = prometheus.NewDesc("clminer_node_block_rejects_total", "Blocks a solo node rejected, by its reason.", []string{"pool", "url", "reason"}, nil)
	descSick         = prometheus.NewDesc("clminer_pool_sick", "1 while the pool is held down for unanswered or rejected shares.", []string{"pool", "url", "reason"}, nil)
	descWorker       = prometheus.NewDesc("clminer_worker_shares_total", "Shares of each sub-worker (--worker-per-device) by the pool's verdict; a refused worker's shares count under the pool user.", []string{"worker", "result"}, nil)
	descWorkerOK     = prometheus.NewDesc("clminer_worker_authorized", "1 while the pool accepts the sub-worker on the live connection.", []string{"worker"}, nil)
	descIdle         = prometheus.NewDesc("clminer_idle", "1 while devices idle because no pool has a live job.", nil, nil)
	descUptime       = prometheus.NewDesc("clminer_uptime_seconds", "Seconds since mining started.", nil, nil)
)

var poolStates = []string{source.StateIdle.String(), source.StateConnecting.String(), source.StateActive.String(), source.StateDown.String(), source.StateSick.String()}

type snapshotCollector struct{ m *Metrics }

func (c *snapshotCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descHashes, descRate, descShares, descHW, descReasons, descBest, descBlocks,
		descEffective, descPoolUp, descPoolInfo, descPoolState, descConnects, descFailovers, descPoolDiff, descInFlight, descSick, descWorker, descWorkerOK, descIdle, descUptime,
		descNodeHeight, descTemplateAge, descNodeBlocks, descBlockRejects} {
		ch <- d
	}
}

// Every label value is made valid UTF-8 here, whatever the snapshot holds:
// one value that is not makes client_golang refuse the whole scrape, so a
// peer's text must never be able to reach a label unchecked. Sources clip
// what peers send (package safetext) when it arrives; this is the last
// guard, and peer text is clipped to safetext.LabelMax with the series that
// then share a label summed (two reasons that differ only in bytes that are
// not UTF-8 would otherwise be a duplicate series, which fails the scrape
// too). Reasons stay the peer's own words rather than a fixed vocabulary:
// pools word the same reject differently and an operator diagnoses by the
// wording, while the count of distinct ones is already bounded (32 per
// miner and per node, the rest "other").
func validLabels(labels []string) []string {
	for i, l := range labels {
		labels[i] = safetext.Clip(l, maxLabel)
	}
	return labels
}

// maxLabel bounds label values that are not a peer's text (URLs, device
// ids), only so that each is valid UTF-8.
const maxLabel = 1024

// byLabel sums counts whose keys (a peer's text) clip to the same label.
func byLabel(m map[string]uint64) map[string]uint64 {
	out := make(map[string]uint64, len(m))
	for k, n := range m {
		out[safetext.Label(k)] += n
	}
	return out
}

func (c *snapshotCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.m.snapshot()
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, validLabels(labels)...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, validLabels(labels)...)
	}
	for _, d := range s.Devices {
		counter(descHashes, float64(d.Hashes), d.ID)
		gauge(descRate, d.Rate5s, d.ID, "5s")
		gauge(descRate, d.Rate60s, d.ID, "60s")
		gauge(descRate, d.RateAvg, d.ID, "avg")
		sc := d.Counts
		for result, n := range map[miner.Outcome]uint64{miner.Accepted: sc.Accepted, miner.Rejected: sc.Rejected, miner.Stale: sc.Stale,
			miner.Duplicate: sc.Duplicate, miner.HWError: sc.HWErrors, miner.BelowTarget: sc.BelowTarget, miner.Lost: sc.Lost,
			miner.Throttled: sc.Throttled} {
			counter(descShares, float64(n), d.ID, string(result))
		}
		counter(descHW, float64(sc.HWErrors), d.ID)
	}
	for reason, n := range byLabel(s.Shares.RejectReasons) {
		counter(descReasons, float64(n), reason)
	}
	gauge(descBest, s.Shares.BestShare)
	counter(descBlocks, float64(s.Shares.Blocks))
	gauge(descEffective, s.EffectiveRate)
	gauge(descUptime, s.UptimeS)
	for _, p := range s.Pools {
		idx := strconv.Itoa(p.Index)
		up := 0.0
		if p.State == source.StateActive.String() {
			up = 1
		}
		gauge(descPoolUp, up, idx, p.URL)
		gauge(descPoolInfo, 1, idx, p.URL, p.Protocol, p.Channel)
		for _, st := range poolStates {
			v := 0.0
			if st == p.State {
				v = 1
			}
			gauge(descPoolState, v, idx, p.URL, st)
		}
		counter(descConnects, float64(p.Connects), idx, p.URL)
		counter(descFailovers, float64(p.Failovers), idx, p.URL)
		gauge(descPoolDiff, p.Difficulty, idx, p.URL)
		gauge(descInFlight, float64(p.InFlight), idx, p.URL)
		if p.State == source.StateSick.String() {
			gauge(descSick, 1, idx, p.URL, safetext.Label(p.SickReason))
		}
		if n := p.Node; n != nil {
			gauge(descNodeHeight, float64(n.Height), idx, p.URL, safetext.Label(n.Chain))
			gauge(descTemplateAge, n.TemplateAgeS, idx, p.URL)
			counter(descNodeBlocks, float64(n.BlocksSubmitted), idx, p.URL, "submitted")
			counter(descNodeBlocks, float64(n.BlocksAccepted), idx, p.URL, "accepted")
			counter(descNodeBlocks, float64(n.BlocksRejected), idx, p.URL, "rejected")
			for reason, k := range byLabel(n.RejectReasons) {
				counter(descBlockRejects, float64(k), idx, p.URL, reason)
			}
		}
		// Worker names are the pool user's plus a suffix; summed by label
		// like reasons, so two that clip alike cannot fail the scrape.
		type workerSeries struct {
			accepted, rejected uint64
			ok                 float64
		}
		workers := map[string]*workerSeries{}
		var names []string
		for _, w := range p.Workers {
			name := safetext.Clip(w.Name, maxLabel)
			ws := workers[name]
			if ws == nil {
				ws = &workerSeries{}
				workers[name] = ws
				names = append(names, name)
			}
			ws.accepted += w.Accepted
			ws.rejected += w.Rejected
			if w.State == "authorized" {
				ws.ok = 1
			}
		}
		for _, name := range names {
			ws := workers[name]
			counter(descWorker, float64(ws.accepted), name, "accepted")
			counter(descWorker, float64(ws.rejected), name, "rejected")
			gauge(descWorkerOK, ws.ok, name)
		}
	}
	idle := 0.0
	if s.Idle != "" {
		idle = 1
	}
	gauge(descIdle, idle)
}
