package device

import (
	"context"
	"errors"
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
	return SweepVerifiedVersions(ctx, dev, []*work.Unit{u}, start, count, func(*work.Unit) Verdicts { return v })
}

// SweepVerifiedVersions sweeps the range over every unit of units, rolled
// versions of one job, and judges each candidate as SweepVerified does,
// against the unit it was found for; verdicts gives that unit's callbacks
// (its Progress is taken from the first unit's). Runs of Versions(dev)
// units that share their second chunk go to the device together; the
// rest, one at a time.
func SweepVerifiedVersions(ctx context.Context, dev Device, units []*work.Unit, start uint32, count uint64, verdicts func(u *work.Unit) Verdicts) (VerifiedResult, error) {
	var total VerifiedResult
	if len(units) == 0 {
		return total, errors.New("sweep without a unit")
	}
	if count == 0 || uint64(start)+count > 1<<32 {
		return total, fmt.Errorf("nonce range %d+%d is outside 0..2^32", start, count)
	}
	k := VersionsOf(dev)
	progress := verdicts(units[0]).Progress
	for len(units) > 0 {
		n := 1
		if k > 1 && len(units) >= k && shareSecondChunk(units[:k]) {
			n = k
		}
		res, err := sweepGroup(ctx, dev, units[:n], start, count, verdicts, progress)
		total.Hashes += res.Hashes
		total.Lost += res.Lost
		total.Shares += res.Shares
		total.BelowTarget += res.BelowTarget
		total.HWErrors += res.HWErrors
		if err != nil {
			return total, err
		}
		units = units[n:]
	}
	return total, nil
}

// shareSecondChunk reports whether the units differ only in what the first
// chunk of the header holds, so one schedule serves them all.
func shareSecondChunk(units []*work.Unit) bool {
	for _, u := range units[1:] {
		if u.Tail != units[0].Tail || u.Target != units[0].Target || u.Job != units[0].Job {
			return false
		}
	}
	return true
}

func sweepGroup(ctx context.Context, dev Device, units []*work.Unit, start uint32, count uint64, verdicts func(u *work.Unit) Verdicts, progress func(uint64)) (VerifiedResult, error) {
	var shares, below, hwErrors atomic.Uint64
	end := uint64(start) + count
	vs := make([]Verdicts, len(units))
	for i, u := range units {
		vs[i] = verdicts(u)
	}
	found := func(i int, nonce uint32) {
		u, v := units[i], vs[i]
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
	}
	s := Sweep{Unit: units[0], Start: start, Count: count, Progress: progress}
	if len(units) > 1 {
		s.Units = units
		s.FoundVersion = func(i int, nonce uint32) {
			if i < 0 || i >= len(units) {
				// A version the sweep does not have: the device is wrong.
				hwErrors.Add(1)
				if v := vs[0]; v.HWError != nil {
					v.HWError(nonce)
				}
				return
			}
			found(i, nonce)
		}
	} else {
		s.Found = func(nonce uint32) { found(0, nonce) }
	}
	res, err := dev.Sweep(ctx, s)
	return VerifiedResult{Result: res, Shares: shares.Load(), BelowTarget: below.Load(), HWErrors: hwErrors.Load()}, err
}
