package dispatch

import (
	"context"
	"errors"
	"sync"
	"time"

	"clminer/work"
)

// Job is a pool job as the dispatcher needs it.
type Job struct {
	Work *work.Job
	// RollingMask is the negotiated version-rolling mask (0: no rolling).
	RollingMask uint32
	// Clean drops all older work even when the notify's clean_jobs is false,
	// e.g. for the first job of a new pool session.
	Clean bool
	// Received is when the notify arrived, for notify-to-work latency.
	Received time.Time
	// Tag is carried through to assignments untouched (the pool's job
	// handle, needed to submit).
	Tag any
}

// Assignment is one unit of work for one device.
type Assignment struct {
	Job  *Job
	Unit *work.Unit
	// Generation changes on every clean job; a result whose generation is
	// no longer current must not be submitted.
	Generation uint64
	// Seq changes on every job; when it differs from the current one the
	// device should move on at its next batch.
	Seq uint64
}

// ErrExhausted means the current job's extranonce2 and version space is used
// up; devices wait for the next job.
var ErrExhausted = errors.New("work space of the current job exhausted; waiting for the next job")

// Dispatcher is safe for concurrent use by any number of devices.
type Dispatcher struct {
	mu      sync.Mutex
	job     *Job
	gen     uint64
	seq     uint64
	changed chan struct{}

	en2       *work.Extranonce2Counter
	base      *work.Unit // current extranonce2, unrolled version
	nextRoll  uint64
	exhausted bool
}

// New returns a dispatcher with no job yet.
func New() *Dispatcher { return &Dispatcher{changed: make(chan struct{})} }

// SetJob makes j the current job. It returns an error (and keeps the old job)
// only when j cannot produce work at all.
func (d *Dispatcher) SetJob(j *Job) error {
	en2, err := work.NewExtranonce2Counter(j.Work.Extranonce2Size)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	// A prevhash change is a new block whatever the flag says (cgminer does
	// the same): hashing on the old one only makes stale shares.
	if j.Clean || j.Work.Clean || d.job == nil || d.job.Work.PrevHash != j.Work.PrevHash {
		d.gen++
	}
	d.seq++
	d.job, d.en2, d.base, d.nextRoll, d.exhausted = j, en2, nil, 0, false
	close(d.changed)
	d.changed = make(chan struct{})
	return nil
}

// Changed returns a channel closed at the next SetJob.
func (d *Dispatcher) Changed() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.changed
}

// Generation is the current clean-job generation.
func (d *Dispatcher) Generation() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.gen
}

// Seq is the current job sequence number.
func (d *Dispatcher) Seq() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.seq
}

// Stale reports whether results of a may no longer be submitted.
func (d *Dispatcher) Stale(a *Assignment) bool { return a.Generation != d.Generation() }

// Current returns the current job, or nil.
func (d *Dispatcher) Current() *Job {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.job
}

// Next returns fresh work, waiting for a job if there is none yet (or the
// current one is exhausted) until ctx ends.
func (d *Dispatcher) Next(ctx context.Context) (*Assignment, error) {
	for {
		d.mu.Lock()
		changed := d.changed
		if d.job != nil && !d.exhausted {
			a, err := d.nextLocked()
			d.mu.Unlock()
			if err == nil || !errors.Is(err, ErrExhausted) {
				return a, err
			}
		} else {
			d.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-changed:
		}
	}
}

func (d *Dispatcher) nextLocked() (*Assignment, error) {
	j := d.job
	mask := j.RollingMask
	if d.base == nil || d.nextRoll >= work.RolledVersions(mask) {
		en2, err := d.en2.Next()
		if err != nil {
			d.exhausted = true
			return nil, ErrExhausted
		}
		if d.base, err = j.Work.NewUnit(en2, j.Work.Version, j.Work.NTime); err != nil {
			return nil, err
		}
		d.nextRoll = 0
	}
	u := d.base
	if mask != 0 {
		v, err := work.RollVersion(j.Work.Version, mask, d.nextRoll)
		if err != nil {
			return nil, err
		}
		if v != u.Version {
			u = u.WithVersion(v)
		}
	}
	d.nextRoll++
	return &Assignment{Job: j, Unit: u, Generation: d.gen, Seq: d.seq}, nil
}
