package proxy

import (
	"container/list"
	"math"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"clminer/work/source"
)

// Outcome is what became of one downstream share.
type Outcome string

// Share outcomes. Everything but Accepted and Rejected was decided by the
// proxy without asking the pool.
const (
	Accepted      Outcome = "accepted"       // the pool credited it
	Rejected      Outcome = "rejected"       // the pool refused it
	Stale         Outcome = "stale"          // its job is gone
	Duplicate     Outcome = "duplicate"      // already sent
	LowDifficulty Outcome = "low_difficulty" // does not meet the pool's difficulty
	Invalid       Outcome = "invalid"        // malformed, unauthorized, bad ntime or version
	Busy          Outcome = "busy"           // too many awaiting the pool
	Lost          Outcome = "lost"           // sent, but no verdict came
)

var outcomes = []Outcome{Accepted, Rejected, Stale, Duplicate, LowDifficulty, Invalid, Busy, Lost}

// Counts are share outcomes; AcceptedDiff is the difficulty credited.
type Counts struct {
	Accepted      uint64  `json:"accepted"`
	Rejected      uint64  `json:"rejected"`
	Stale         uint64  `json:"stale"`
	Duplicate     uint64  `json:"duplicate"`
	LowDifficulty uint64  `json:"low_difficulty"`
	Invalid       uint64  `json:"invalid"`
	Busy          uint64  `json:"busy"`
	Lost          uint64  `json:"lost"`
	AcceptedDiff  float64 `json:"accepted_difficulty"`
	// Blocks found on a node upstream: sent to the node, and its verdicts
	// (a block sent but not judged is neither).
	BlocksSubmitted uint64 `json:"blocks_submitted"`
	BlocksAccepted  uint64 `json:"blocks_accepted"`
	BlocksRejected  uint64 `json:"blocks_rejected"`
}

func (c *Counts) addBlock(k source.ReplyKind) {
	c.BlocksSubmitted++
	switch k {
	case source.Accepted:
		c.BlocksAccepted++
	case source.Rejected:
		c.BlocksRejected++
	}
}

func (c *Counts) add(o Outcome, diff float64) {
	switch o {
	case Accepted:
		c.Accepted++
		c.AcceptedDiff += diff
	case Rejected:
		c.Rejected++
	case Stale:
		c.Stale++
	case Duplicate:
		c.Duplicate++
	case LowDifficulty:
		c.LowDifficulty++
	case Invalid:
		c.Invalid++
	case Busy:
		c.Busy++
	case Lost:
		c.Lost++
	}
}

func (c *Counts) of(o Outcome) uint64 {
	return map[Outcome]uint64{Accepted: c.Accepted, Rejected: c.Rejected, Stale: c.Stale, Duplicate: c.Duplicate,
		LowDifficulty: c.LowDifficulty, Invalid: c.Invalid, Busy: c.Busy, Lost: c.Lost}[o]
}

// rateBucket is the accepted difficulty of one rateStep.
const (
	rateStep    = 30 * time.Second
	rateBuckets = 20 // a 10 minute window
)

// shareRate estimates a miner's hashrate from its accepted shares
// (difficulty x 2^32 per second) over the last ten minutes.
type shareRate struct {
	start   time.Time
	buckets [rateBuckets]float64
	at      [rateBuckets]int64
}

func (r *shareRate) add(now time.Time, diff float64) {
	if r.start.IsZero() {
		r.start = now
	}
	n := now.Sub(r.start).Nanoseconds() / int64(rateStep)
	i := n % rateBuckets
	if r.at[i] != n {
		r.at[i], r.buckets[i] = n, 0
	}
	r.buckets[i] += diff
}

func (r *shareRate) hashrate(now time.Time, since time.Time) float64 {
	if r.start.IsZero() {
		return 0
	}
	n := now.Sub(r.start).Nanoseconds() / int64(rateStep)
	var sum float64
	for i := range r.buckets {
		if n-r.at[i] < rateBuckets {
			sum += r.buckets[i]
		}
	}
	window := min(now.Sub(since), rateStep*rateBuckets).Seconds()
	if window <= 0 {
		return 0
	}
	return sum * math.Ldexp(1, 32) / window
}

// MinerStatus is one connected miner.
type MinerStatus struct {
	ID              uint64    `json:"id"`
	Remote          string    `json:"remote"`
	Agent           string    `json:"user_agent,omitempty"`
	Workers         []string  `json:"workers"`
	Extranonce1     string    `json:"extranonce1,omitempty"`
	Extranonce2Size int       `json:"extranonce2_size,omitempty"`
	Difficulty      float64   `json:"difficulty"`
	VersionMask     string    `json:"version_rolling_mask,omitempty"`
	Connected       time.Time `json:"connected"`
	LastShare       time.Time `json:"last_share,omitempty"`
	Hashrate        float64   `json:"hashrate_from_shares"`
	Pending         int       `json:"shares_in_flight"`
	Shares          Counts    `json:"shares"`
}

// WorkerStatus is one downstream worker name across its connections.
type WorkerStatus struct {
	Name     string `json:"name"`
	Upstream string `json:"upstream_worker"`
	State    string `json:"upstream_state"`
	Shares   Counts `json:"shares"`
}

// Status is the proxy's state for the status API.
type Status struct {
	Listen      string  `json:"listen"`
	UptimeS     float64 `json:"uptime_s"`
	PrefixBytes int     `json:"extranonce_prefix_bytes"`
	MaxMiners   int     `json:"max_miners"`
	Idle        string  `json:"idle,omitempty"`
	// MiningOn is the upstream whose job miners are sent now.
	MiningOn string             `json:"mining_on,omitempty"`
	Refused  uint64             `json:"miners_refused"`
	Shares   Counts             `json:"shares"`
	Hashrate float64            `json:"hashrate_from_shares"`
	Miners   []MinerStatus      `json:"miners"`
	Workers  []WorkerStatus     `json:"workers"`
	Pools    []source.PoolStats `json:"pools"`
}

// keptWorkerStats is how many names no miner uses any more keep their
// counters (the most recent to leave); the names of connected miners are
// bounded by the connections and their workers. Only names that passed
// authorize enter, so junk names cannot fill the table for good.
const keptWorkerStats = 256

// workerStat is one downstream worker name's counters.
type workerStat struct {
	Counts
	refs int           // connections using the name
	up   string        // the name it was last authorized as upstream
	gone *list.Element // in Server.gone while refs is 0
}

// joinWorker counts a connection's use of an authenticated name.
func (s *Server) joinWorker(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.workers[name]
	if w == nil {
		w = &workerStat{}
		s.workers[name] = w
	}
	if w.gone != nil {
		s.gone.Remove(w.gone)
		w.gone = nil
	}
	w.refs++
}

// leaveWorker releases it; past keptWorkerStats names left, the oldest is
// forgotten (its shares stay in the totals).
func (s *Server) leaveWorker(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.workers[name]
	if w == nil || w.refs <= 0 {
		return
	}
	w.refs--
	if w.refs > 0 {
		return
	}
	w.gone = s.gone.PushBack(name)
	for s.gone.Len() > keptWorkerStats {
		e := s.gone.Front()
		s.gone.Remove(e)
		delete(s.workers, e.Value.(string))
	}
}

// noteUpstreamName remembers what worker is called upstream, for status
// after it left.
func (s *Server) noteUpstreamName(worker, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w := s.workers[worker]; w != nil && name != "" {
		w.up = name
	}
}

func (s *Server) count(worker string, o Outcome, diff float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.totals.add(o, diff)
	if w := s.workers[worker]; w != nil {
		w.add(o, diff)
	}
}

func (s *Server) countBlock(worker string, k source.ReplyKind) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.totals.addBlock(k)
	if w := s.workers[worker]; w != nil {
		w.addBlock(k)
	}
}

func (s *Server) countRefused() {
	s.mu.Lock()
	s.refused++
	s.mu.Unlock()
}

// Status returns a snapshot.
func (s *Server) Status() Status {
	now := time.Now()
	s.mu.Lock()
	st := Status{Listen: s.Addr(), UptimeS: now.Sub(s.started).Seconds(), PrefixBytes: s.prefix, MaxMiners: s.capacity,
		Idle: s.idle, Refused: s.refused, Shares: s.totals}
	if s.cur != nil && s.idle == "" {
		st.MiningOn = s.cur.up.PoolURL
	}
	conns := make([]*conn, 0, len(s.conns))
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	names := make([]string, 0, len(s.workers))
	for n := range s.workers {
		names = append(names, n)
	}
	sort.Strings(names)
	counts := make([]Counts, len(names))
	upNames := make([]string, len(names))
	for i, n := range names {
		counts[i], upNames[i] = s.workers[n].Counts, s.workers[n].up
	}
	s.mu.Unlock()
	sort.Slice(conns, func(i, j int) bool { return conns[i].id < conns[j].id })
	keys := map[string]string{}
	for _, c := range conns {
		c.mu.Lock()
		if !c.subscribed || c.closed {
			c.mu.Unlock()
			continue
		}
		ms := MinerStatus{ID: c.id, Remote: c.remote, Agent: c.agent, Extranonce1: hexOf(c.prefix), Extranonce2Size: c.d,
			Difficulty: c.diff, Connected: c.since, LastShare: c.lastShare, Hashrate: c.rate.hashrate(now, c.since),
			Pending: c.pending, Shares: c.counts}
		if c.rolling {
			ms.VersionMask = hex8(c.mask)
		}
		for w, k := range c.workers {
			ms.Workers = append(ms.Workers, w)
			keys[w] = k
		}
		c.mu.Unlock()
		sort.Strings(ms.Workers)
		st.Hashrate += ms.Hashrate
		st.Miners = append(st.Miners, ms)
	}
	for _, p := range s.up.Upstreams() {
		st.Pools = append(st.Pools, source.NewPoolStats(p))
	}
	byKey := map[string]source.WorkerStatus{}
	if s.wk != nil {
		for _, w := range s.wk.Workers() {
			byKey[w.Key] = w
		}
	}
	for i, n := range names {
		// "main": its shares go under the pool user (always, with an
		// upstream that has no sub-workers: a V2 channel's one user, a
		// node's coinbase address); "disconnected": no miner uses the name
		// now.
		ws := WorkerStatus{Name: n, Shares: counts[i], State: "main", Upstream: upNames[i]}
		key, connected := keys[n]
		if !connected {
			key, ws.State = s.cfg.WorkerKey(n), "disconnected"
		}
		if u, ok := byKey[key]; ok && key != "" {
			ws.Upstream = u.Name
			if connected {
				ws.State = u.State
			}
		}
		st.Workers = append(st.Workers, ws)
	}
	return st
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 2*len(b))
	for i, x := range b {
		out[2*i], out[2*i+1] = digits[x>>4], digits[x&15]
	}
	return string(out)
}

func hex8(v uint32) string {
	return hexOf([]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

var (
	descMiners   = prometheus.NewDesc("clminer_proxy_miners", "Miners subscribed to the proxy.", nil, nil)
	descRefused  = prometheus.NewDesc("clminer_proxy_miners_refused_total", "Miners turned away: proxy full, too many connections, bad authorize, garbage or oversized lines.", nil, nil)
	descShares   = prometheus.NewDesc("clminer_proxy_shares_total", "Downstream shares by worker and outcome (accepted and rejected by the pool; stale, duplicate, low_difficulty, invalid, busy decided by the proxy; lost: no verdict).", []string{"worker", "outcome"}, nil)
	descHashrate = prometheus.NewDesc("clminer_proxy_miner_hashrate", "Hashrate of each miner estimated from its accepted shares over 10 minutes.", []string{"miner", "worker"}, nil)
	descCredited = prometheus.NewDesc("clminer_proxy_accepted_difficulty_total", "Sum of the pool difficulty of accepted shares, by worker.", []string{"worker"}, nil)
	descPoolUp   = prometheus.NewDesc("clminer_proxy_pool_up", "1 for the upstream pool the proxy is connected to.", []string{"pool", "url"}, nil)
	descIdle     = prometheus.NewDesc("clminer_proxy_idle", "1 while no pool has a live job.", nil, nil)
	descBlocks   = prometheus.NewDesc("clminer_proxy_blocks_total", "Blocks miners found on a node upstream, by worker: submitted to the node, accepted and rejected by it.", []string{"worker", "outcome"}, nil)
)

// Collector returns the proxy's Prometheus metrics.
func (s *Server) Collector() prometheus.Collector { return collector{s} }

type collector struct{ s *Server }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descMiners, descRefused, descShares, descHashrate, descCredited, descPoolUp, descIdle, descBlocks} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.Status()
	gauge := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
	}
	counter := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, l...)
	}
	gauge(descMiners, float64(len(st.Miners)))
	counter(descRefused, float64(st.Refused))
	for _, w := range st.Workers {
		for _, o := range outcomes {
			counter(descShares, float64(w.Shares.of(o)), w.Name, string(o))
		}
		counter(descCredited, w.Shares.AcceptedDiff, w.Name)
		if w.Shares.BlocksSubmitted > 0 {
			counter(descBlocks, float64(w.Shares.BlocksSubmitted), w.Name, "submitted")
			counter(descBlocks, float64(w.Shares.BlocksAccepted), w.Name, "accepted")
			counter(descBlocks, float64(w.Shares.BlocksRejected), w.Name, "rejected")
		}
	}
	for _, m := range st.Miners {
		worker := ""
		if len(m.Workers) > 0 {
			worker = m.Workers[0]
		}
		gauge(descHashrate, m.Hashrate, itoa(m.ID), worker)
	}
	for _, p := range st.Pools {
		up := 0.0
		if p.State == source.StateActive.String() {
			up = 1
		}
		gauge(descPoolUp, up, itoa(uint64(p.Index)), p.URL)
	}
	idle := 0.0
	if st.Idle != "" {
		idle = 1
	}
	gauge(descIdle, idle)
}

func itoa(v uint64) string {
	if v == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for v > 0 {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return string(b[i:])
}

// Hashrate is the farm's hashrate estimated from its miners' accepted
// shares (what a V2 channel tells its pool).
func (s *Server) Hashrate() float64 {
	now := time.Now()
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	var sum float64
	for _, c := range conns {
		c.mu.Lock()
		sum += c.rate.hashrate(now, c.since)
		c.mu.Unlock()
	}
	return sum
}
