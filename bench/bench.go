package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"clminer/work"
	"clminer/work/device"
	"clminer/work/vectors"
)

// Config says how long and how finely to measure.
type Config struct {
	// Duration is the measured time, after Warmup.
	Duration time.Duration
	Warmup   time.Duration
	// Intervals is how many equal slices Duration is cut into; the figures
	// are their median and spread.
	Intervals int
	// KnownLead is how many nonces before block 100000's real nonce the
	// measured sweep starts (default 2^20), so that even a slow device
	// reaches it early in the run.
	KnownLead uint32
	// VersionRolling sweeps as mining does when the pool rolls versions: a
	// multi-version device (device.MultiVersion) gets its Versions() rolled
	// versions of each nonce at once, and every version hashed counts.
	// Off, every device hashes one version at a time.
	VersionRolling bool
	// OnInterval, when set, is called after each measured interval with its
	// number (from 1), the interval count and its rate in MH/s.
	OnInterval func(i, n int, mhs float64)
}

// MaxSpreadPct is the spread above which a bench figure is flagged as
// unreliable.
const MaxSpreadPct = 10

// DefaultConfig is what `clminer bench` uses without flags.
var DefaultConfig = Config{Duration: 20 * time.Second, Warmup: 3 * time.Second, Intervals: 10, VersionRolling: true}

// Report is one device's bench result.
type Report struct {
	Device        device.Info `json:"device"`
	DurationS     float64     `json:"duration_s"`
	WarmupS       float64     `json:"warmup_s"`
	IntervalMHs   []float64   `json:"interval_mhs"`
	MedianMHs     float64     `json:"median_mhs"`
	MeanMHs       float64     `json:"mean_mhs"`
	MinMHs        float64     `json:"min_mhs"`
	MaxMHs        float64     `json:"max_mhs"`
	SpreadPct     float64     `json:"spread_pct"`
	Hashes        uint64      `json:"hashes"`
	Shares        uint64      `json:"shares"`
	HWErrors      uint64      `json:"hw_errors"`
	KnownNonce    string      `json:"known_nonce"`
	KnownNonceHit bool        `json:"known_nonce_found"`
	// Batches is how many progress reports (device batches) the measured
	// sweep made; MaxBatchS is the longest gap between two of them.
	Batches   uint64  `json:"batches"`
	MaxBatchS float64 `json:"max_batch_s"`
	// Warnings say why the figures may be unreliable: intervals shorter
	// than a batch, or a spread above MaxSpreadPct.
	Warnings []string `json:"warnings,omitempty"`
}

// Run benchmarks dev. It fails when the device reports a wrong candidate, or
// misses the real nonce of block 100000 that the measured sweep covers.
func Run(ctx context.Context, dev device.Device, cfg Config) (Report, error) {
	if cfg.Duration <= 0 || cfg.Intervals <= 0 || cfg.Warmup < 0 {
		return Report{}, fmt.Errorf("bench: duration and intervals must be positive")
	}
	lead := uint64(cfg.KnownLead)
	if lead == 0 {
		lead = 1 << 20
	}
	sol, err := knownSolution()
	if err != nil {
		return Report{}, err
	}
	rep := Report{Device: dev.Info(), KnownNonce: work.FormatUint32Hex(sol.Nonce)}
	var shares, hwErrors atomic.Uint64
	var knownHit atomic.Bool
	var prog progressLog

	versions := 1
	if cfg.VersionRolling {
		versions = device.VersionsOf(dev)
	}
	// Units are the real block with rolled versions: same cost per hash,
	// never repeated work. Roll 0 is the block's own version.
	group := func(roll uint64) ([]*work.Unit, error) {
		us := make([]*work.Unit, versions)
		for i := range us {
			r := (roll + uint64(i)) % work.RolledVersions(work.BIP320Mask)
			if r == 0 {
				us[i] = sol.Unit
				continue
			}
			v, err := work.RollVersion(sol.Job.Version, work.BIP320Mask, r)
			if err != nil {
				return nil, err
			}
			us[i] = sol.Unit.WithVersion(v)
		}
		return us, nil
	}
	sweepUnits := func(ctx context.Context, roll uint64, start uint32) error {
		for ; ; roll += uint64(versions) {
			us, err := group(roll)
			if err != nil {
				return err
			}
			res, err := device.SweepVerifiedVersions(ctx, dev, us, start, 1<<32-uint64(start), func(u *work.Unit) device.Verdicts {
				return device.Verdicts{
					Progress: prog.add,
					Share: func(c work.Check) {
						if u == sol.Unit && c.Nonce == sol.Nonce {
							knownHit.Store(true)
						}
					},
				}
			})
			shares.Add(res.Shares)
			hwErrors.Add(res.HWErrors)
			if err != nil {
				return err
			}
			start = 0
		}
	}

	if cfg.Warmup > 0 {
		wctx, cancel := context.WithTimeout(ctx, cfg.Warmup)
		err := sweepUnits(wctx, 1<<15, 0)
		cancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return rep, fmt.Errorf("bench warm-up: %w", err)
		}
		if ctx.Err() != nil {
			return rep, ctx.Err()
		}
	}
	prog.reset()
	shares.Store(0)
	hwErrors.Store(0)

	mctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- sweepUnits(mctx, 0, sol.Nonce-uint32(lead)) }()

	interval := cfg.Duration / time.Duration(cfg.Intervals)
	tick := time.NewTicker(interval)
	begin := time.Now()
	last := progressMark{at: begin}
	var sweepErr error
	for len(rep.IntervalMHs) < cfg.Intervals && sweepErr == nil {
		select {
		case <-tick.C:
			// Rates run between progress reports, not ticks: devices
			// report per batch, and counting whole batches per tick
			// quantizes the figure (by 2 MH/s for 2^21-nonce batches).
			mark := prog.mark()
			if dt := mark.at.Sub(last.at).Seconds(); dt > 0 {
				rep.IntervalMHs = append(rep.IntervalMHs, float64(mark.total-last.total)/dt/1e6)
			} else {
				rep.IntervalMHs = append(rep.IntervalMHs, 0)
			}
			last = mark
			if cfg.OnInterval != nil {
				cfg.OnInterval(len(rep.IntervalMHs), cfg.Intervals, rep.IntervalMHs[len(rep.IntervalMHs)-1])
			}
		case sweepErr = <-done:
			done <- sweepErr
		case <-ctx.Done():
			sweepErr = ctx.Err()
		}
	}
	tick.Stop()
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) && sweepErr == nil {
		sweepErr = err
	}
	rep.DurationS = time.Since(begin).Seconds()
	rep.WarmupS = cfg.Warmup.Seconds()
	end := prog.mark()
	rep.Hashes, rep.Shares, rep.HWErrors = end.total, shares.Load(), hwErrors.Load()
	if dt := end.at.Sub(begin).Seconds(); dt > 0 {
		rep.MeanMHs = float64(end.total) / dt / 1e6
	}
	rep.KnownNonceHit = knownHit.Load()
	rep.Batches, rep.MaxBatchS = end.reports, end.maxGap.Seconds()
	summarize(&rep)
	rep.Warnings = Warnings(rep, interval)
	switch {
	case sweepErr != nil && !errors.Is(sweepErr, context.Canceled):
		return rep, fmt.Errorf("bench %s: %w", rep.Device.ID, sweepErr)
	case ctx.Err() != nil:
		return rep, ctx.Err()
	case rep.HWErrors > 0:
		return rep, fmt.Errorf("bench %s: %d hardware errors (candidates whose hash does not meet the target)", rep.Device.ID, rep.HWErrors)
	case !rep.KnownNonceHit && rep.Hashes > (lead+(1<<12))*uint64(versions):
		return rep, fmt.Errorf("bench %s: block 100000's nonce %s was swept but not found", rep.Device.ID, rep.KnownNonce)
	case !rep.KnownNonceHit:
		return rep, fmt.Errorf("bench %s: too slow to reach the known nonce (%d hashes in %.1f s); run longer", rep.Device.ID, rep.Hashes, rep.DurationS)
	}
	return rep, nil
}

func summarize(r *Report) {
	if len(r.IntervalMHs) == 0 {
		return
	}
	s := slices.Clone(r.IntervalMHs)
	slices.Sort(s)
	mid := len(s) / 2
	r.MedianMHs = s[mid]
	if len(s)%2 == 0 {
		r.MedianMHs = (s[mid-1] + s[mid]) / 2
	}
	r.MinMHs, r.MaxMHs = s[0], s[len(s)-1]
	if r.MedianMHs > 0 {
		r.SpreadPct = 100 * (r.MaxMHs - r.MinMHs) / r.MedianMHs
	}
}

// Warnings flags figures that do not measure the device: intervals that
// hold less than one batch count whole batches (or none) per interval, and
// a wide spread means the rate was not steady.
func Warnings(r Report, interval time.Duration) []string {
	var w []string
	if gap := time.Duration(r.MaxBatchS * float64(time.Second)); gap > interval {
		w = append(w, fmt.Sprintf("intervals (%v) are shorter than one batch (up to %v): the figures count whole batches; use a longer --duration, fewer --intervals or smaller batches (--kernel-ms, --intensity)", interval.Round(time.Millisecond), gap.Round(time.Millisecond)))
	}
	if r.SpreadPct > MaxSpreadPct {
		w = append(w, fmt.Sprintf("spread %.1f%% is over %d%%: the rate was not steady (other load, throttling, or too few batches per interval); the figure is unreliable", r.SpreadPct, MaxSpreadPct))
	}
	return w
}

func knownSolution() (*vectors.Solution, error) {
	vs, err := vectors.Builtin()
	if err != nil {
		return nil, err
	}
	for _, v := range vs {
		if v.Label() == "block_100000" {
			return v.Solution()
		}
	}
	return nil, errors.New("bench: built-in vector block_100000 missing")
}

// progressLog keeps the cumulative hash count with the time of the report
// that brought it there.
type progressLog struct {
	mu   sync.Mutex
	last progressMark
}

type progressMark struct {
	at      time.Time
	total   uint64
	reports uint64        // progress reports since reset
	maxGap  time.Duration // longest time between two reports since reset
	since   time.Time     // when reset ran
}

func (p *progressLog) add(n uint64) {
	now := time.Now()
	p.mu.Lock()
	prev := p.last.at
	if prev.IsZero() {
		prev = p.last.since
	}
	gap := p.last.maxGap
	if !prev.IsZero() {
		gap = max(gap, now.Sub(prev))
	}
	p.last = progressMark{at: now, total: p.last.total + n, reports: p.last.reports + 1, maxGap: gap, since: p.last.since}
	p.mu.Unlock()
}

func (p *progressLog) reset() {
	p.mu.Lock()
	p.last = progressMark{since: time.Now()}
	p.mu.Unlock()
}

func (p *progressLog) mark() progressMark {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last
}
