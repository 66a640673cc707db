package gputest

import (
	"context"
	"fmt"
	"sync/atomic"

	"clminer/work"
	"clminer/work/device"
)

// batch is how many nonces Device hashes between context checks and
// progress reports.
const batch = 1 << 12

// Device hashes with work.Unit.Hash, the host's own reference, so it is exact
// and slow (about 1 MH/s). Set WrongEvery to make it also report a wrong nonce
// after every WrongEvery nonces hashed, like a failing GPU.
type Device struct {
	ID         string
	WrongEvery uint64
	// MultiVersions, when above 1, makes the device take sweeps of that
	// many rolled versions (device.MultiVersion), hashing every version of a
	// nonce batch before the next batch, as the OpenCL kernel does.
	MultiVersions int
	// Sweeps counts calls to Sweep, for tests of dispatching.
	Sweeps atomic.Uint64
}

// Versions implements device.MultiVersion.
func (d *Device) Versions() int { return max(d.MultiVersions, 1) }

// Info implements device.Device.
func (d *Device) Info() device.Info {
	id := d.ID
	if id == "" {
		id = "test"
	}
	return device.Info{ID: id, Kind: "test", Name: "reference device", Detail: "work.Unit.Hash"}
}

// Sweep implements device.Device.
func (d *Device) Sweep(ctx context.Context, s device.Sweep) (device.Result, error) {
	d.Sweeps.Add(1)
	var res device.Result
	units, found := []*work.Unit{s.Unit}, func(_ int, n uint32) { s.Found(n) }
	if len(s.Units) > 1 {
		if len(s.Units) != d.Versions() {
			return res, fmt.Errorf("gputest: sweep of %d versions, device takes %d", len(s.Units), d.Versions())
		}
		units, found = s.Units, s.FoundVersion
	}
	top := units[0].Target.Top()
	end := uint64(s.Start) + s.Count
	for first := uint64(s.Start); first < end; first += batch {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		stop := min(first+batch, end)
		for v, u := range units {
			for n := first; n < stop; n++ {
				h := u.Hash(uint32(n))
				if work.Target(h).Top() <= top {
					found(v, uint32(n))
				}
				res.Hashes++
				if d.WrongEvery != 0 && res.Hashes%d.WrongEvery == 0 {
					found(v, uint32(n)^0x5a5a5a5a)
				}
			}
		}
		if s.Progress != nil {
			s.Progress((stop - first) * uint64(len(units)))
		}
	}
	return res, nil
}

// Close implements device.Device.
func (d *Device) Close() error { return nil }
