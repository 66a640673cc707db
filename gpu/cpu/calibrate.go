package cpu

import (
	"slices"
	"strings"
	"sync"
	"time"

	"clminer/work"
)

// Which shape is fastest depends on the core more than on the instruction
// set: the AVX-512 shapes that run fewest instructions win where two ports
// execute 512-bit instructions (Intel), the ones with the shortest
// dependency chains where four do (Zen 5), and SHA-NI's best stream count
// follows its unit's latency and throughput. Rather than a table of CPU
// models that is wrong for the next one, the device times every candidate
// once per process, at its first New, and keeps the fastest: a few
// milliseconds.

// maxAutoVersions caps the version count calibration picks by itself: the
// stratum client asks pools for two bits of version-rolling mask (four
// versions), and a sweep gets its k versions only when the pool's mask
// holds that many (see device.SweepVerifiedVersions), so a shape of more
// versions is used only when asked for (Options.Versions).
const maxAutoVersions = 4

// calibRounds rounds of every candidate in turn, each timed over
// calibNonces nonces; a candidate's time is its fastest round, which other
// load can slow down but never speed up.
const (
	calibRounds = 20
	calibNonces = 1024
)

// calibMargin: a shape later in its path's list must time this much faster
// to be picked over an earlier one. The lists are in the order measured
// fastest on the CPUs at hand (BENCHMARKS.md), and a busy machine moves
// the timings of shapes that close by a few percent.
const calibMargin = 1.02

// A choice is what calibration picked among some paths: the fastest
// one-version shape, the fastest with rolled versions (which may be a
// one-version shape, where that hashes more per second), and every rolled
// candidate's rate, for a caller that asks for a version count.
type choice struct {
	single, multi shape
	rates         []rated
}

type rated struct {
	s    shape
	rate float64 // hashes per second
}

// bestWith returns the fastest shape with exactly k versions (shapes of
// more than maxAutoVersions are not timed: the first of them).
func (c choice) bestWith(k int) (shape, bool) {
	var best rated
	found := false
	for _, r := range c.rates {
		if r.s.versions == k && (!found || r.rate > best.rate) {
			best, found = r, true
		}
	}
	return best.s, found
}

var calib struct {
	mu   sync.Mutex
	done map[string]choice
}

// calibrated returns the choice among ps, measuring on the first call for
// that set of paths.
func calibrated(ps []path) choice {
	var names []string
	for _, p := range ps {
		names = append(names, p.name)
	}
	key := strings.Join(names, ",")
	calib.mu.Lock()
	defer calib.mu.Unlock()
	if c, ok := calib.done[key]; ok {
		return c
	}
	c := calibrate(ps)
	if calib.done == nil {
		calib.done = map[string]choice{}
	}
	calib.done[key] = c
	return c
}

func calibrate(ps []path) choice {
	var single, multi []shape
	for _, p := range ps {
		single = append(single, p.single...)
		multi = append(multi, p.multi...)
	}
	var c choice
	if len(single)+len(multi) == 1 {
		c.single, c.multi = single[0], single[0]
		return c
	}
	// The portable path is far behind any other and slow to time; it is
	// measured only when it is the only one.
	if len(ps) > 1 {
		single = slices.DeleteFunc(single, func(s shape) bool { return s.path == PathPortable })
	}
	var untimed []shape
	multi = slices.DeleteFunc(multi, func(s shape) bool {
		if s.versions > maxAutoVersions {
			untimed = append(untimed, s)
			return true
		}
		return false
	})
	cands := append(append([]shape(nil), single...), multi...)
	rates := timeShapes(cands)
	best := func(from, to int) shape {
		b := from
		for i := from; i < to; i++ {
			if rates[i] > rates[b]*calibMargin {
				b = i
			}
		}
		return cands[b]
	}
	c.single = best(0, len(single))
	c.multi = c.single
	for i, s := range cands {
		c.rates = append(c.rates, rated{s, rates[i]})
	}
	// Rolled versions where they are about as fast: a shape that shares
	// work between versions is the one the path has them for.
	if len(multi) > 0 {
		if m := best(len(single), len(cands)); c.rate(c.single) <= c.rate(m)*calibMargin {
			c.multi = m
		}
	}
	for _, s := range untimed {
		c.rates = append(c.rates, rated{s: s})
	}
	return c
}

func (c choice) rate(s shape) float64 {
	for _, r := range c.rates {
		if r.s.path == s.path && r.s.name == s.name {
			return r.rate
		}
	}
	return 0
}

// timeShapes returns each shape's hashes per second on a synthetic unit
// whose target no hash meets.
func timeShapes(cands []shape) []float64 {
	u := &work.Unit{Midstate: work.IV, Tail: [3]uint32{0x01234567, 0x89abcdef, 0x17034219}}
	one := newParams(u)
	var vps []*params
	for v := 0; v < 8; v++ {
		w := *u
		w.Midstate[0] ^= uint32(v) << 13
		vps = append(vps, newParams(&w))
	}
	best := make([]time.Duration, len(cands))
	nonce := uint32(0x10000000)
	for r := 0; r <= calibRounds; r++ { // round 0 warms caches up, untimed
		for i, s := range cands {
			t0 := time.Now()
			if s.versions == 1 {
				s.scan(one, nonce, calibNonces, func(uint32) {})
			} else {
				s.scanVersions(vps[:s.versions], nonce, calibNonces, func(int, uint32) {})
			}
			d := time.Since(t0)
			nonce += calibNonces
			if r > 0 && (best[i] == 0 || d < best[i]) {
				best[i] = max(d, time.Nanosecond)
			}
		}
	}
	rates := make([]float64, len(cands))
	for i, s := range cands {
		rates[i] = float64(calibNonces*s.versions) / best[i].Seconds()
	}
	return rates
}
