package miner

import (
	"maps"
	"math"
	"sync"
	"time"

	"clminer/work/safetext"
)

// Outcome is what became of a candidate. Every candidate a device reports
// ends in exactly one of these, so nothing found is lost silently.
type Outcome string

// Outcomes.
const (
	Accepted  Outcome = "accepted"
	Rejected  Outcome = "rejected"
	Stale     Outcome = "stale"     // not sent: its job was obsoleted (clean job, new block, pool switch)
	Duplicate Outcome = "duplicate" // not sent: the same share was already submitted
	HWError   Outcome = "hw_error"  // not sent: the device's hash was wrong
	// BelowTarget: not sent: the device's top-word prefilter passed it and
	// the full target did not. Correct, not an error: a device prefilters on
	// the target's top 32 bits, so at difficulty D >= 1 it passes one hash in
	// 2^32 and only 1/D of those are shares.
	BelowTarget Outcome = "below_target"
	Lost        Outcome = "lost" // sent, but no verdict came back (timeout, connection lost)
	// Throttled: not sent: the pool already had its bound of shares awaiting
	// a verdict (an absurdly low difficulty, or a pool that stopped
	// answering).
	Throttled Outcome = "throttled"
)

// Counts holds share counters.
type Counts struct {
	Accepted  uint64 `json:"accepted"`
	Rejected  uint64 `json:"rejected"`
	Stale     uint64 `json:"stale"`
	Duplicate uint64 `json:"duplicate"`
	HWErrors  uint64 `json:"hw_errors"`
	// BelowTarget counts prefilter passes that missed the full target.
	BelowTarget uint64 `json:"below_target"`
	Lost        uint64 `json:"lost"`
	Throttled   uint64 `json:"throttled"`
	Blocks      uint64 `json:"blocks"`
	// AcceptedDiff is the sum of the pool difficulty of accepted shares:
	// AcceptedDiff * 2^32 / time is the hashrate the pool credits.
	AcceptedDiff float64 `json:"accepted_difficulty"`
	// RejectedDiff and StaleDiff are the same sums for rejected and stale
	// shares: a rejected share at difficulty 64 costs 64 accepted ones at 1,
	// which is how the rig tools (cgminer's Difficulty Rejected, Pool
	// Rejected%) weigh them.
	RejectedDiff float64 `json:"rejected_difficulty"`
	StaleDiff    float64 `json:"stale_difficulty"`
	// Diff1 counts host-verified candidates of difficulty 1 or more,
	// whatever became of them: the devices' work in difficulty-1 shares,
	// independent of the pool's difficulty (cgminer's Diff1 Work).
	Diff1 uint64 `json:"diff1_work"`
	// RejectReasons counts rejected (and lost) shares by the pool's reason.
	RejectReasons map[string]uint64 `json:"reject_reasons,omitempty"`
	BestShare     float64           `json:"best_share_difficulty"`
	// LastShare is when the last accepted share was credited, at pool
	// difficulty LastShareDiff by pool LastSharePool (both meaningless
	// while LastShare is zero). A stalled device shows as a LastShare far
	// older than its hashrate makes likely.
	LastShare     time.Time `json:"last_share,omitzero"`
	LastShareDiff float64   `json:"last_share_difficulty"`
	LastSharePool int       `json:"last_share_pool"`
	// LastValid is when a candidate last came back that was not a
	// hardware error.
	LastValid time.Time `json:"last_valid_work,omitzero"`
}

// recordN counts n outcomes that carry no share of their own (lost in a
// device overflow, say).
func (c *Counts) recordN(o Outcome, reason string, n uint64) {
	for range min(n, 1) {
		c.record(&ShareEvent{Outcome: o, Reason: reason})
	}
	if n > 1 {
		c.add(o, n-1)
		if (o == Rejected || o == Lost) && reason != "" {
			c.RejectReasons[boundReason(c.RejectReasons, reason)] += n - 1
		}
	}
}

func (c *Counts) add(o Outcome, n uint64) {
	switch o {
	case Rejected:
		c.Rejected += n
	case Stale:
		c.Stale += n
	case Duplicate:
		c.Duplicate += n
	case HWError:
		c.HWErrors += n
	case BelowTarget:
		c.BelowTarget += n
	case Lost:
		c.Lost += n
	case Throttled:
		c.Throttled += n
	}
}

// record counts one outcome. ev.Time is zero for outcomes that carry no
// candidate of their own (recordN).
func (c *Counts) record(ev *ShareEvent) {
	o, reason, poolDiff, shareDiff := ev.Outcome, ev.Reason, ev.PoolDiff, ev.ShareDiff
	switch o {
	case Accepted:
		c.Accepted++
		c.AcceptedDiff += poolDiff
		if !ev.Time.IsZero() {
			c.LastShare, c.LastShareDiff, c.LastSharePool = ev.Time, poolDiff, ev.Pool
		}
	case Rejected:
		c.add(o, 1)
		c.RejectedDiff += poolDiff
	case Stale:
		c.add(o, 1)
		c.StaleDiff += poolDiff
	default:
		c.add(o, 1)
	}
	if o != HWError && !ev.Time.IsZero() {
		c.LastValid = ev.Time
		if shareDiff >= 1 {
			c.Diff1++
		}
	}
	if (o == Rejected || o == Lost) && reason != "" {
		if c.RejectReasons == nil {
			c.RejectReasons = map[string]uint64{}
		}
		c.RejectReasons[boundReason(c.RejectReasons, reason)]++
	}
	// A block counts once the upstream took it: at regtest's difficulty
	// most hashes meet the network target, and all but the first on a tip
	// are stale.
	if ev.Block && o == Accepted {
		c.Blocks++
	}
	if o != HWError && !math.IsInf(shareDiff, 0) && shareDiff > c.BestShare {
		c.BestShare = shareDiff
	}
}

func (c Counts) clone() Counts {
	c.RejectReasons = maps.Clone(c.RejectReasons)
	return c
}

// DeviceStats is one device's accounting.
type DeviceStats struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Detail string `json:"detail"`
	// PCIBusID is where the device sits on the PCI bus (absent for the
	// CPU), for tools that number GPUs by bus.
	PCIBusID string  `json:"pci_bus_id,omitempty"`
	Hashes   uint64  `json:"hashes"`
	Rate5s   float64 `json:"hashrate_5s"`
	Rate60s  float64 `json:"hashrate_60s"`
	Rate5m   float64 `json:"hashrate_5m"`
	Rate15m  float64 `json:"hashrate_15m"`
	RateAvg  float64 `json:"hashrate_avg"`
	Counts   Counts  `json:"shares"`
	LastErr  string  `json:"last_error,omitempty"`
	Sweeping bool    `json:"sweeping"`
}

type deviceAcct struct {
	meter *rateMeter
	mu    sync.Mutex
	c     Counts
	err   string
	busy  bool
}

// latencies keeps a bounded window of recent durations for medians.
type latencies struct {
	mu  sync.Mutex
	buf []time.Duration
	n   int
}

const latencyWindow = 1024

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	if len(l.buf) < latencyWindow {
		l.buf = append(l.buf, d)
	} else {
		l.buf[l.n%latencyWindow] = d
	}
	l.n++
	l.mu.Unlock()
}

// Latency summarises recent durations.
type Latency struct {
	Count uint64  `json:"count"`
	P50ms float64 `json:"p50_ms"`
	P99ms float64 `json:"p99_ms"`
	Maxms float64 `json:"max_ms"`
}

func (l *latencies) summary() Latency {
	l.mu.Lock()
	s := append([]time.Duration(nil), l.buf...)
	n := l.n
	l.mu.Unlock()
	if len(s) == 0 {
		return Latency{}
	}
	sortDurations(s)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return Latency{Count: uint64(n), P50ms: ms(s[len(s)/2]), P99ms: ms(s[(len(s)*99)/100]), Maxms: ms(s[len(s)-1])}
}

// Reasons come from the pool, so a hostile one could send a new string per
// share; the map (and metric labels built from it) stays bounded, and each
// key is valid UTF-8 of at most safetext.LabelMax bytes.
const maxReasons = 32

func boundReason(seen map[string]uint64, reason string) string {
	reason = safetext.Label(reason)
	if _, ok := seen[reason]; !ok && len(seen) >= maxReasons {
		return "other"
	}
	return reason
}

// poolAcct is the miner's accounting of one upstream: its shares as the
// miner counted them (the upstream's own Accepted/Rejected come from the
// source), the jobs it sent and the attempts that got no work.
type poolAcct struct {
	c               Counts
	jobs            uint64
	connectFailures uint64
}

// maxPools bounds the per-pool accounting by index.
const maxPools = 64

// Reject is one rejected or lost share, for the status page.
type Reject struct {
	Time      time.Time `json:"time"`
	Device    string    `json:"device"`
	Pool      string    `json:"pool"`
	Outcome   Outcome   `json:"outcome"`
	Reason    string    `json:"reason,omitempty"`
	PoolDiff  float64   `json:"pool_difficulty"`
	ShareDiff float64   `json:"share_difficulty"`
}

// maxRecentRejects is how many of the latest rejects the status keeps.
const maxRecentRejects = 16

// rejectRing keeps the latest rejects, bounded.
type rejectRing struct {
	buf [maxRecentRejects]Reject
	n   int
}

func (r *rejectRing) add(ev ShareEvent) {
	r.buf[r.n%maxRecentRejects] = Reject{Time: ev.Time, Device: ev.Device, Pool: ev.PoolURL, Outcome: ev.Outcome, Reason: safetext.Label(ev.Reason),
		PoolDiff: ev.PoolDiff, ShareDiff: ev.ShareDiff}
	r.n++
}

// latest returns the kept rejects, newest first.
func (r *rejectRing) latest() []Reject {
	k := min(r.n, maxRecentRejects)
	out := make([]Reject, 0, k)
	for i := range k {
		out = append(out, r.buf[(r.n-1-i)%maxRecentRejects])
	}
	return out
}
