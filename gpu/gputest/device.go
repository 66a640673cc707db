package gputest

import (
	"context"
	"sync/atomic"

	"clminer/gpu"
	"clminer/work"
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
	// Sweeps counts calls to Sweep, for tests of dispatching.
	Sweeps atomic.Uint64
}

// Info implements gpu.Device.
func (d *Device) Info() gpu.Info {
	id := d.ID
	if id == "" {
		id = "test"
	}
	return gpu.Info{ID: id, Kind: "test", Name: "reference device", Detail: "work.Unit.Hash"}
}

// Sweep implements gpu.Device.
func (d *Device) Sweep(ctx context.Context, s gpu.Sweep) (gpu.Result, error) {
	d.Sweeps.Add(1)
	var res gpu.Result
	top := s.Unit.Target.Top()
	end := uint64(s.Start) + s.Count
	for n := uint64(s.Start); n < end; {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		first := n
		stop := min(n+batch, end)
		for ; n < stop; n++ {
			h := s.Unit.Hash(uint32(n))
			if work.Target(h).Top() <= top {
				s.Found(uint32(n))
			}
			res.Hashes++
			if d.WrongEvery != 0 && res.Hashes%d.WrongEvery == 0 {
				s.Found(uint32(n) ^ 0x5a5a5a5a)
			}
		}
		if s.Progress != nil {
			s.Progress(stop - first)
		}
	}
	return res, nil
}

// Close implements gpu.Device.
func (d *Device) Close() error { return nil }
