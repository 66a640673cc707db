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
	// coarse keeps one sample per historyStep for the last hour: the 5 and
	// 15 minute rates and the status page's chart, in bounded memory.
	coarse  [historySamples]sample
	ncoarse int
}

// The hour of history: one sample per historyStep.
const (
	historyStep    = 10 * time.Second
	historySamples = int(time.Hour/historyStep) + 1
)

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
	m.coarse[0] = sample{at: now}
	m.ncoarse = 1
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
	if last := m.coarse[(m.ncoarse-1)%historySamples]; now.Sub(last.at) >= historyStep {
		m.coarse[m.ncoarse%historySamples] = sample{at: now, total: m.total.Load()}
		m.ncoarse++
	}
	m.mu.Unlock()
}

// history returns the rate between consecutive coarse samples, oldest
// first, and the time of the last one.
func (m *rateMeter) history() ([]float64, time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := min(m.ncoarse, historySamples)
	first := m.ncoarse - k
	out := make([]float64, 0, k-1)
	prev := m.coarse[first%historySamples]
	for i := first + 1; i < m.ncoarse; i++ {
		s := m.coarse[i%historySamples]
		if dt := s.at.Sub(prev.at).Seconds(); dt > 0 {
			out = append(out, float64(s.total-prev.total)/dt)
		} else {
			out = append(out, 0)
		}
		prev = s
	}
	return out, prev.at
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
	if window > time.Duration(rateSamples-2)*time.Second {
		// Beyond the fine ring: the coarse one reaches back an hour.
		for i := max(0, m.ncoarse-historySamples); i < m.ncoarse; i++ {
			s := m.coarse[i%historySamples]
			if now.Sub(s.at) <= window && (!found || s.at.Before(best.at)) {
				best, found = s, true
			}
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
