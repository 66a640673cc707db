package dispatch

import (
	"context"
	"errors"
	"sync"

	"clminer/work"
	"clminer/work/ledger"
	"clminer/work/source"
)

// Assignment is one unit of work for one device.
type Assignment struct {
	Job  *source.Job
	Unit *work.Unit
	// Units holds Unit and, when rolling is negotiated and the device asked
	// for several, the next rolled versions of the same job, for a device
	// that hashes them together. Each is a unit of the ledger as Unit is.
	Units []*work.Unit
	// Seq changes on every job; when it differs from the current one the
	// device should move on at its next batch.
	Seq uint64
	// Changed is closed at the first SetJob or Clear after this assignment
	// was handed out. It is taken with Seq, under the same lock: a channel
	// read before a Next that waits for a job would already be closed by
	// the SetJob that ends the wait, and the device would drop its first
	// unit after one batch.
	Changed <-chan struct{}
}

// Dispatcher is safe for concurrent use by any number of devices.
type Dispatcher struct {
	mu        sync.Mutex
	job       *source.Job
	seq       uint64
	changed   chan struct{}
	exhausted bool
	idle      string
}

// New returns a dispatcher with no job yet.
func New() *Dispatcher {
	return &Dispatcher{changed: make(chan struct{}), idle: "waiting for the first job"}
}

// SetJob makes j the current job.
func (d *Dispatcher) SetJob(j *source.Job) error {
	if j == nil || j.Job == nil || j.Entry == nil {
		return errors.New("dispatch: job without work or ledger entry")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seq++
	d.job, d.exhausted, d.idle = j, false, ""
	d.wakeLocked()
	return nil
}

// Clear drops the current job: Next waits until the next SetJob. reason is
// what Idle reports meanwhile.
func (d *Dispatcher) Clear(reason string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seq++
	d.job, d.idle = nil, reason
	d.wakeLocked()
}

func (d *Dispatcher) wakeLocked() {
	close(d.changed)
	d.changed = make(chan struct{})
}

// Changed returns a channel closed at the next SetJob or Clear.
func (d *Dispatcher) Changed() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.changed
}

// Seq is the current job sequence number.
func (d *Dispatcher) Seq() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.seq
}

// Stale reports whether results of a may no longer be submitted: the
// upstream has dropped its job.
func (d *Dispatcher) Stale(a *Assignment) bool { return !a.Job.Entry.Live() }

// Current returns the current job, or nil.
func (d *Dispatcher) Current() *source.Job {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.job
}

// Idle says why there is no work to hand out ("" while there is).
func (d *Dispatcher) Idle() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.job == nil:
		return d.idle
	case d.exhausted:
		return "work space of the current job exhausted; waiting for the next job"
	}
	return ""
}

// Next returns fresh work, waiting for a job if there is none (or the
// current one is exhausted or forgotten) until ctx ends.
func (d *Dispatcher) Next(ctx context.Context) (*Assignment, error) {
	return d.NextVersions(ctx, 1)
}

// NextVersions is Next for a device that hashes k versions at once: when the
// job rolls versions, the assignment holds up to k units, the next rolls.
// Fewer come when the job's work runs out; the first is waited for as Next
// waits.
func (d *Dispatcher) NextVersions(ctx context.Context, k int) (*Assignment, error) {
	a, err := d.next(ctx)
	if err != nil {
		return nil, err
	}
	a.Units = []*work.Unit{a.Unit}
	for len(a.Units) < k && a.Job.RollingMask != 0 {
		u, err := a.Job.Entry.Next(a.Job.Job, a.Job.RollingMask)
		if err != nil {
			// Exhausted or forgotten: the next call finds out and waits.
			break
		}
		a.Units = append(a.Units, u)
	}
	return a, nil
}

func (d *Dispatcher) next(ctx context.Context) (*Assignment, error) {
	for {
		d.mu.Lock()
		changed := d.changed
		if j := d.job; j != nil && !d.exhausted {
			seq := d.seq
			d.mu.Unlock()
			u, err := j.Entry.Next(j.Job, j.RollingMask)
			if err == nil {
				return &Assignment{Job: j, Unit: u, Seq: seq, Changed: changed}, nil
			}
			if !errors.Is(err, ledger.ErrExhausted) && !errors.Is(err, ledger.ErrForgotten) {
				return nil, err
			}
			d.mu.Lock()
			if d.job == j {
				d.exhausted = true
			}
			d.mu.Unlock()
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
