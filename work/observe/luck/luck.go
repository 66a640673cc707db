package luck

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"clminer/work"
	"clminer/work/miner"
	"clminer/work/source"
)

// record is the file's content.
type record struct {
	BestShare float64   `json:"best_share_difficulty"`
	Found     time.Time `json:"found,omitempty"`
	Blocks    uint64    `json:"blocks_found"`
}

// Tracker is a miner.Observer that keeps the all-time best share.
type Tracker struct {
	path    string
	mu      sync.Mutex
	rec     record
	session float64
	err     error // last write failure, reported once
	// OnBest is called (outside the lock) when a share beats the all-time
	// best; OnBlock when a share meets the network target.
	OnBest  func(difficulty float64, ev miner.ShareEvent)
	OnBlock func(ev miner.ShareEvent)
}

// Open loads the record at path ("" keeps it in memory only). A missing
// file starts from zero; an unreadable one is an error, so a typo in the
// path is not silently a new record.
func Open(path string) (*Tracker, error) {
	t := &Tracker{path: path}
	if path == "" {
		return t, nil
	}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("best-share file %s: %w", path, err)
		}
	case err != nil:
		return nil, fmt.Errorf("best-share file: %w", err)
	default:
		if err := json.Unmarshal(b, &t.rec); err != nil || t.rec.BestShare < 0 || math.IsNaN(t.rec.BestShare) || math.IsInf(t.rec.BestShare, 0) {
			return nil, fmt.Errorf("best-share file %s is not a clminer record (delete it to start over)", path)
		}
	}
	return t, nil
}

// Best returns the session and all-time best share difficulties.
func (t *Tracker) Best() (session, allTime float64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.session, t.rec.BestShare
}

// Share implements miner.Observer. Every hash that was checked counts,
// whatever the pool made of it, as the miner's own best share does;
// hardware errors do not (their hash is not what the device claimed).
func (t *Tracker) Share(ev miner.ShareEvent) {
	if ev.Outcome == miner.HWError || math.IsInf(ev.ShareDiff, 0) || math.IsNaN(ev.ShareDiff) {
		return
	}
	t.mu.Lock()
	t.session = max(t.session, ev.ShareDiff)
	beat := ev.ShareDiff > t.rec.BestShare
	if beat {
		t.rec.BestShare, t.rec.Found = ev.ShareDiff, ev.Time
	}
	// Only a block the upstream accepted is one (a stale candidate that
	// meets the target is not, and at regtest's difficulty most do).
	block := ev.Block && ev.Outcome == miner.Accepted
	if block {
		t.rec.Blocks++
	}
	if beat || block {
		t.saveLocked()
	}
	onBest, onBlock := t.OnBest, t.OnBlock
	t.mu.Unlock()
	if beat && onBest != nil {
		onBest(ev.ShareDiff, ev)
	}
	if block && onBlock != nil {
		onBlock(ev)
	}
}

// saveLocked writes the record atomically (temp file, rename), so a crash
// mid-write leaves the old record. A new best is rare (each is a hash
// harder than all before it), so writing every one costs nothing.
func (t *Tracker) saveLocked() {
	if t.path == "" {
		return
	}
	b, _ := json.MarshalIndent(t.rec, "", "  ")
	tmp := t.path + ".tmp"
	err := os.WriteFile(tmp, append(b, '\n'), 0o644)
	if err == nil {
		err = os.Rename(tmp, t.path)
	}
	t.err = err
}

// Err is the last write failure, if any.
func (t *Tracker) Err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

// NotifyLatency implements miner.Observer.
func (t *Tracker) NotifyLatency(string, time.Duration) {}

// PoolEvent implements miner.Observer.
func (t *Tracker) PoolEvent(source.Event) {}

// Luck is the status API's view of the odds.
type Luck struct {
	BestShareSession float64 `json:"best_share_session"`
	BestShareAllTime float64 `json:"best_share_all_time"`
	BlocksAllTime    uint64  `json:"blocks_found_all_time"`
	// NetworkDifficulty is the difficulty of the job's nbits (absent
	// without a job).
	NetworkDifficulty float64 `json:"network_difficulty,omitempty"`
	// ExpectedBlockS is the mean time to a block at the 60 s hashrate:
	// network difficulty x 2^32 / hashrate (absent without a job or
	// hashrate).
	ExpectedBlockS float64 `json:"expected_time_to_block_s,omitempty"`
	// BestVsNetwork is the all-time best share over the network
	// difficulty: 1 or more is a block.
	BestVsNetwork float64 `json:"best_share_vs_network,omitempty"`
}

// NetworkDifficulty is the difficulty of a compact nbits target.
func NetworkDifficulty(nbitsHex string) (float64, bool) {
	n, err := strconv.ParseUint(nbitsHex, 16, 32)
	if err != nil {
		return 0, false
	}
	t, err := work.NBitsTarget(uint32(n))
	if err != nil {
		return 0, false
	}
	d := work.HashDifficulty([32]byte(t))
	return d, !math.IsInf(d, 0) && d > 0
}

// Luck computes the odds for the miner's state s.
func (t *Tracker) Luck(s miner.Snapshot) Luck {
	t.mu.Lock()
	l := Luck{BestShareSession: t.session, BestShareAllTime: t.rec.BestShare, BlocksAllTime: t.rec.Blocks}
	t.mu.Unlock()
	if s.Job == nil {
		return l
	}
	if d, ok := NetworkDifficulty(s.Job.NBits); ok {
		l.NetworkDifficulty = d
		l.BestVsNetwork = l.BestShareAllTime / d
		l.ExpectedBlockS = work.ExpectedSeconds(d, s.Rate60s)
	}
	return l
}
