package gpu

import (
	"context"
	"fmt"
	"sync/atomic"

	"clminer/work"
)

// Verdicts receives the host's judgement of each candidate of a verified
// sweep. Callbacks may run concurrently from device goroutines.
type Verdicts struct {
	// Share gets candidates that meet the unit's share target.
	Share func(c work.Check)
	// BelowTarget gets candidates that pass the top-word prefilter devices
	// may use (the hash's top 32 bits equal the target's) but miss the full
	// 256-bit target. At difficulty D >= 1 (top word 0) that is all but 1/D
	// of the prefilter's passes. They are not errors, but they are counted,
	// not dropped.
	BelowTarget func(c work.Check)
	// HWError gets candidates whose hash fails even the prefilter: the
	// device computed a wrong hash, or reported a nonce outside the sweep.
	HWError func(nonce uint32)
	// Progress, when set, is passed through to the device.
	Progress func(hashes uint64)
}

// VerifiedResult adds the host's counts to a device's Result.
type VerifiedResult struct {
	Result
	Shares      uint64
	BelowTarget uint64
	HWErrors    uint64
}

// SweepVerified runs a sweep on dev and re-hashes every candidate on the host
// with the work package before reporting it, so that no device (a buggy
// driver, an overclocked GPU, a wrong kernel) can get a bad share submitted.
func SweepVerified(ctx context.Context, dev Device, u *work.Unit, start uint32, count uint64, v Verdicts) (VerifiedResult, error) {
	if count == 0 || uint64(start)+count > 1<<32 {
		return VerifiedResult{}, fmt.Errorf("nonce range %d+%d is outside 0..2^32", start, count)
	}
	var shares, below, hwErrors atomic.Uint64
	end := uint64(start) + count
	res, err := dev.Sweep(ctx, Sweep{
		Unit:     u,
		Start:    start,
		Count:    count,
		Progress: v.Progress,
		Found: func(nonce uint32) {
			c := u.Check(nonce)
			inRange := uint64(nonce) >= uint64(start) && uint64(nonce) < end
			if inRange && !c.MeetsShare && work.Target(c.Hash).Top() == u.Target.Top() {
				below.Add(1)
				if v.BelowTarget != nil {
					v.BelowTarget(c)
				}
				return
			}
			if !c.MeetsShare || !inRange {
				hwErrors.Add(1)
				if v.HWError != nil {
					v.HWError(nonce)
				}
				return
			}
			shares.Add(1)
			if v.Share != nil {
				v.Share(c)
			}
		},
	})
	return VerifiedResult{Result: res, Shares: shares.Load(), BelowTarget: below.Load(), HWErrors: hwErrors.Load()}, err
}
