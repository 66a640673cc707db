package opencl

import (
	"time"

	"clminer/work"
)

// calibrate picks the starting batch size: time real kernel runs (on a
// dummy unit that cannot produce candidates) and grow the batch until one
// takes about KernelMS. Sweeps keep tuning from there.
func (d *Device) calibrate() error {
	var u work.Unit
	b := &d.bufs[0]
	if err := d.loadUnits([]*work.Unit{&u}); err != nil {
		return err
	}
	if err := d.setUnitArgs(b.kernel, sharedPre(u.Tail), 0); err != nil {
		return err
	}
	deadline := time.Now().Add(2 * time.Second)
	log, err := calibrateLog(d.kernelMS, func(log int32) (float64, error) {
		t0 := time.Now()
		if _, err := d.runSync(b, 1, 0, 1<<log); err != nil {
			return 0, err
		}
		took := batchTime(b.kernelNS, time.Since(t0))
		d.psPerHash = perHashPS(took, 1<<log)
		return millis(took), nil
	}, func() bool { return time.Now().After(deadline) })
	if err != nil {
		return err
	}
	d.batch.Store(log)
	return nil
}

// calibrateLog is calibrate's search: from 2^16 hashes, measure runs
// batches of 2^log hashes until one takes about target milliseconds, the
// largest batch is reached, or expired says time is up; then a batch that
// took too long is halved.
func calibrateLog(target float64, measure func(log int32) (ms float64, err error), expired func() bool) (int32, error) {
	log := int32(16)
	for {
		ms, err := measure(log)
		if err != nil {
			return 0, err
		}
		if ms >= target/tuneBand || log >= maxBatchLog || expired() {
			if ms > tuneBand*target && log > minBatchLog {
				log--
			}
			return log, nil
		}
		// Jump by the measured ratio, but at most 16x so one noisy
		// measurement cannot overshoot wildly.
		step := int32(1)
		for r := target / max(ms, 0.001); r >= 4 && step < 4; r /= 2 {
			step++
		}
		log = min(log+step, maxBatchLog)
	}
}

// batchTime is a batch's kernel time: the profiling event's when the
// runtime gave one, else what the host clocks say. The host's figure runs
// from launch (or the previous batch's end) to when the waiting thread woke,
// so a thread that woke late makes the batch look longer than it was and
// the tuning halve it; the event's does not.
func batchTime(kernelNS uint64, host time.Duration) time.Duration {
	if kernelNS > 0 {
		return time.Duration(kernelNS)
	}
	return host
}

// tuneBand is how far from KernelMS a batch time may be before the batch
// size changes. Sizes move by powers of two, so a band of 1.5x either way
// (2.25x wide) always holds a size and still leaves hysteresis; a 2x band
// let batches settle anywhere from half to twice the asked-for time.
const tuneBand = 1.5

// tune moves the batch size toward KernelMS. With two batches queued the
// device is busy from one completion to the next, so that interval is the
// kernel time; for the first batch it is measured from its launch.
func (d *Device) tune(b *batchSlot, done, lastDone time.Time) {
	took := batchTime(b.kernelNS, done.Sub(runStart(b.launched, lastDone)))
	hashes := b.n * uint64(b.versions)
	if hashes >= 1<<minBatchLog {
		d.psPerHash = perHashPS(took, hashes)
	}
	if d.intensity != 0 {
		return
	}
	cur := d.batch.Load()
	if next := retune(cur, b.log, hashes, millis(took), d.kernelMS); next != cur {
		d.batch.Store(next)
	}
}

// retune is the batch log after a batch of hashes, launched at 2^log
// hashes, took ms against a target of target ms, when the batch log is now
// cur: one step toward the target when the batch was outside tuneBand.
func retune(cur, log int32, hashes uint64, ms, target float64) int32 {
	if log != cur || hashes != uint64(1)<<log {
		return cur // a partial batch or one of a size already retuned says nothing
	}
	switch {
	case ms < target/tuneBand && log < maxBatchLog:
		return log + 1
	case ms > target*tuneBand && log > minBatchLog:
		return log - 1
	}
	return cur
}

// perHashPS is a batch's time per hash in picoseconds.
func perHashPS(took time.Duration, hashes uint64) uint64 {
	return uint64(took.Nanoseconds()) * 1000 / hashes
}

// millis is took in milliseconds, the unit of Options.KernelMS.
func millis(took time.Duration) float64 { return float64(took.Microseconds()) / 1000 }
