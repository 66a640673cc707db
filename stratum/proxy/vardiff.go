package proxy

import (
	"math"
	"time"
)

// Vardiff: with a node upstream there is no pool to set a difficulty, so
// the proxy sets each miner's itself, aiming at Config.SharesPerMinute.
// A window ends after vardiffBurst shares (a fast miner moves quickly) or
// after RetargetInterval (a miner that finds nothing is lowered); one
// step moves the difficulty at most vardiffStep times either way, and a
// change within vardiffKeep of the current value is not made, so a miner
// at the right value is not sent set_difficulty for noise.
const (
	vardiffBurst = 16
	vardiffStep  = 4.0
	vardiffKeep  = 1.5
)

// vardiff is one miner's difficulty under the proxy's own rule. Guarded
// by its conn's mu.
type vardiff struct {
	diff   float64
	since  time.Time // the window's start
	shares int       // shares that met diff in the window
}

// clampDiff bounds d to the configured range.
func (c *Config) clampDiff(d float64) float64 {
	if math.IsNaN(d) || d <= 0 {
		return c.StartDifficulty
	}
	d = max(d, c.MinDifficulty)
	if c.MaxDifficulty > 0 {
		d = min(d, c.MaxDifficulty)
	}
	return d
}

// set makes d (bounded) the difficulty and starts a new window.
func (v *vardiff) set(d float64, now time.Time, cfg *Config) {
	v.diff, v.since, v.shares = cfg.clampDiff(d), now, 0
}

// retarget ends the window when it is due and reports whether the
// difficulty changed.
func (v *vardiff) retarget(now time.Time, cfg *Config) bool {
	el := now.Sub(v.since)
	if v.shares < vardiffBurst && el < cfg.RetargetInterval {
		return false
	}
	var want float64
	if v.shares == 0 {
		want = v.diff / vardiffStep
	} else {
		// shares/s measured against shares/s wanted, at the current value
		rate := float64(v.shares) / max(el.Seconds(), 1e-3)
		want = v.diff * rate / (cfg.SharesPerMinute / 60)
	}
	want = cfg.clampDiff(min(max(want, v.diff/vardiffStep), v.diff*vardiffStep))
	v.since, v.shares = now, 0
	if r := want / v.diff; r < vardiffKeep && r > 1/vardiffKeep {
		return false
	}
	v.diff = want
	return true
}
