package miner

import (
	"sync"
	"sync/atomic"
	"time"
)

// rateMeter turns a cumulative hash counter into rates over sliding windows.
// Devices only add to an atomic counter (nothing per nonce beyond that); the
// miner samples it once a second.
type rateMeter struct {
	total atomic.Uint64

	mu      sync.Mutex
	start   time.Time
	samples []sample // ring, oldest first after wrap
	next    int
	filled  bool
}

type sample struct {
	at    time.Time
	total uint64
}

// rateWindow is the longest window a rate is asked for, plus slack.
const rateSamples = 62

func newRateMeter(now time.Time) *rateMeter {
	m := &rateMeter{start: now, samples: make([]sample, rateSamples)}
	m.samples[0] = sample{at: now}
	m.next = 1
	return m
}

func (m *rateMeter) add(n uint64) { m.total.Add(n) }

// sample records the counter; call it about once a second.
func (m *rateMeter) sample(now time.Time) {
	m.mu.Lock()
	m.samples[m.next] = sample{at: now, total: m.total.Load()}
	m.next = (m.next + 1) % len(m.samples)
	if m.next == 0 {
		m.filled = true
	}
	m.mu.Unlock()
}

// rate is hashes per second over the last window (or since start when the
// meter is younger), measured between the oldest sample in the window and
// the live counter.
func (m *rateMeter) rate(now time.Time, window time.Duration) float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.next
	if m.filled {
		n = len(m.samples)
	}
	best := sample{at: m.start}
	found := false
	for i := 0; i < n; i++ {
		s := m.samples[i]
		if s.at.IsZero() || now.Sub(s.at) > window {
			continue
		}
		if !found || s.at.Before(best.at) {
			best, found = s, true
		}
	}
	if !found {
		// No sample inside the window yet: use the newest one.
		latest := (m.next - 1 + len(m.samples)) % len(m.samples)
		best = m.samples[latest]
	}
	dt := now.Sub(best.at).Seconds()
	if dt <= 0 {
		return 0
	}
	return float64(m.total.Load()-best.total) / dt
}

// average is the rate since the meter started.
func (m *rateMeter) average(now time.Time) float64 {
	dt := now.Sub(m.start).Seconds()
	if dt <= 0 {
		return 0
	}
	return float64(m.total.Load()) / dt
}
