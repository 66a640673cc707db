package thermal

import (
	"context"
	"time"

	"clminer/work/device"
	"clminer/work/retry"
)

// Device runs a device.Device under a Throttle.
type Device struct {
	device.Device
	t *Throttle
	// slice is the time one slice should take at full speed.
	slice time.Duration
	// maxPause bounds one pause, so a speed change is picked up soon.
	maxPause time.Duration
	// now and sleep are the clock, replaced in tests.
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error
}

// Wrap puts d under t.
func Wrap(d device.Device, t *Throttle) *Device {
	return &Device{Device: d, t: t, slice: 200 * time.Millisecond, maxPause: time.Second, now: time.Now, sleep: retry.Sleep}
}

// Versions passes the wrapped device's multi-version width through: a
// throttled GPU keeps its shared-schedule kernel.
func (d *Device) Versions() int { return device.VersionsOf(d.Device) }

// Throttle is the device's throttle.
func (d *Device) Throttle() *Throttle { return d.t }

// Sweep implements device.Device: the range is hashed in slices, each sized to
// take about d.slice at the rate the last slice ran, with a pause after it
// that leaves the GPU busy scale of the time; at the cutoff it waits,
// hashing nothing, until the GPU resumes or ctx ends.
func (d *Device) Sweep(ctx context.Context, s device.Sweep) (device.Result, error) {
	var total device.Result
	next := uint64(1) << 20 // first slice: small, to measure the rate
	done := uint64(0)
	for done < s.Count {
		scale, idle, changed := d.t.State()
		if idle {
			select {
			case <-ctx.Done():
				return total, ctx.Err()
			case <-changed:
				continue
			}
		}
		n := min(next, s.Count-done)
		part := s
		part.Start = s.Start + uint32(done)
		part.Count = n
		began := d.now()
		r, err := d.Device.Sweep(ctx, part)
		took := d.now().Sub(began)
		total.Hashes += r.Hashes
		total.Lost += r.Lost
		done += n
		if err != nil {
			return total, err
		}
		if took > 0 && r.Hashes > 0 {
			// Unthrottled, slices are ten times longer: each slice
			// restarts the device's batch pipeline, and a temperature
			// moves over tens of seconds, not in 200 ms.
			slice := d.slice
			if s2, idle2, _ := d.t.State(); s2 == 1 && !idle2 {
				slice *= 10
			}
			// Hashes count every version hashed; slices are in nonces.
			rate := float64(r.Hashes) / float64(max(len(s.Units), 1)) / took.Seconds()
			next = uint64(min(max(rate*slice.Seconds(), 1<<16), 1<<32))
		}
		// The pause follows the last slice too: a miner that hands out
		// short sweeps would otherwise run them back to back.
		if scale < 1 {
			pause := min(time.Duration(float64(took)*(1-scale)/scale), d.maxPause)
			if err := d.sleep(ctx, pause); err != nil {
				return total, err
			}
		}
	}
	return total, nil
}
