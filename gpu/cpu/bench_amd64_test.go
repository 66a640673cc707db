//go:build amd64 && !purego

package cpu

import (
	"math/rand/v2"
	"testing"
	"time"

	"clminer/gpu/gputest"
)

// BenchmarkCycles times every shape in turn, over and over, against a
// clock reference (spin: dependent multiplies of known latency), and
// reports each one's fastest round in cycles per hash: what the model of
// BENCHMARKS.md predicts. Interleaving the shapes and keeping each one's
// fastest round takes out the load of a shared machine, which only ever
// slows a round down. Run it with -benchtime 1x (one op is all the rounds).
func BenchmarkCycles(b *testing.B) {
	const batch = 2048
	const rounds = 300
	u := gputest.RandomUnit(rand.New(rand.NewPCG(1, 2)), 0)
	units := gputest.RolledVersions(u, 8)
	ps := make([]*params, len(units))
	for i, u := range units {
		ps[i] = newParams(u)
	}
	type cand struct {
		name   string
		hashes float64
		run    func(nonce uint32)
		best   time.Duration
	}
	var cs []*cand
	for _, s := range append(shapes(false), shapes(true)...) {
		if s.path == PathPortable {
			continue
		}
		c := &cand{name: s.path + "/" + s.name, hashes: float64(batch * s.versions)}
		if s.versions == 1 {
			c.run = func(nonce uint32) { s.scan(ps[0], nonce, batch, func(uint32) {}) }
		} else {
			c.run = func(nonce uint32) { s.scanVersions(ps[:s.versions], nonce, batch, func(int, uint32) {}) }
		}
		cs = append(cs, c)
	}
	const spinN = 10000 // 240,000 cycles
	clock := &cand{name: "clock", run: func(uint32) { spin(spinN) }}
	all := append([]*cand{clock}, cs...)
	for b.Loop() {
		nonce := uint32(0)
		for range rounds {
			for _, c := range all {
				t0 := time.Now()
				c.run(nonce)
				if d := time.Since(t0); c.best == 0 || d < c.best {
					c.best = d
				}
			}
			nonce += batch
		}
	}
	b.ReportMetric(24*spinN/clock.best.Seconds()/1e9, "GHz")
	for _, c := range cs {
		b.ReportMetric(c.best.Seconds()/clock.best.Seconds()*24*spinN/c.hashes, c.name+"-cycles/hash")
	}
}
