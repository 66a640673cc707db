package opencl

// #include "cl_shim.h"
import "C"

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unsafe"

	"clminer/work"
	"clminer/work/device"
)

// batchSlot is one of the two batches a sweep keeps in flight.
type batchSlot struct {
	kernel C.cl_kernel // single-version
	multi  C.cl_kernel // nver versions, nil when nver is 1
	out    C.cl_mem
	// host receives out with a non-blocking read: the mapping of pinned,
	// memory Go never moves.
	pinned C.cl_mem
	host   *C.cl_uint

	busy     bool
	ev       C.cl_event // the read of out, last of the batch
	kev      C.cl_event // the kernel, when profiling
	kernelNS uint64     // the last batch's kernel time (0: not known)
	base     uint32
	n        uint64 // nonces
	versions int    // hashed per nonce
	log      int32  // the batch size it was launched with, for tuning
	launched time.Time
}

// outWords is the size of a batch's output buffer: the counter, then a
// (nonce, version index) pair per slot.
func outWords(slots int) int { return 1 + 2*slots }

func setArg(k C.cl_kernel, i int, v uint32) error {
	x := C.cl_uint(v)
	return clErr("clSetKernelArg", C.w_clSetKernelArg(k, C.cl_uint(i), C.size_t(unsafe.Sizeof(x)), unsafe.Pointer(&x)))
}

// Kernel argument indexes; see SEARCH_ARGS in sha256d.cl.
const (
	argPV     = 0
	argShared = 1 // the six words of shared
	argBase   = 7
	argCount  = 8
	argTop    = 9
	argOut    = 10
	argSlots  = 11
)

func setMem(k C.cl_kernel, i int, mem C.cl_mem) error {
	return clErr("clSetKernelArg", C.w_clSetKernelArg(k, C.cl_uint(i), C.size_t(unsafe.Sizeof(mem)), unsafe.Pointer(&mem)))
}

// loadUnits writes the version records of units into pv. The write blocks:
// it runs only between sweeps, when no batch reads pv.
func (d *Device) loadUnits(units []*work.Unit) error {
	recs := make([]uint32, 0, vrecWords*len(units))
	for _, u := range units {
		r := versionPre(u)
		recs = append(recs, r[:]...)
	}
	c := C.malloc(C.size_t(4 * len(recs)))
	if c == nil {
		return errors.New("opencl: out of host memory")
	}
	defer C.free(c)
	copy(unsafe.Slice((*uint32)(c), len(recs)), recs)
	return clErr("clEnqueueWriteBuffer", C.w_clEnqueueWriteBuffer(d.queue, d.pv, 1, 0, C.size_t(4*len(recs)), c, 0, nil, nil))
}

func (d *Device) setUnitArgs(k C.cl_kernel, sh shared, top uint32) error {
	if err := setMem(k, argPV, d.pv); err != nil {
		return err
	}
	for i, v := range sh {
		if err := setArg(k, argShared+i, v); err != nil {
			return err
		}
	}
	if err := setArg(k, argTop, top); err != nil {
		return err
	}
	if err := setArg(k, argSlots, uint32(d.slots)); err != nil {
		return err
	}
	for i := range d.bufs {
		if b := &d.bufs[i]; b.kernel == k || b.multi == k {
			return setMem(k, argOut, b.out)
		}
	}
	return errors.New("opencl: kernel not owned by device")
}

// kernelFor is b's kernel for sweeps of versions units.
func (b *batchSlot) kernelFor(versions int) C.cl_kernel {
	if versions > 1 {
		return b.multi
	}
	return b.kernel
}

// enqueue launches nonces [base, base+n) of versions versions on b: reset
// the counter, run, and read the results back, all without blocking. The
// caller waits on b.ev.
func (d *Device) enqueue(b *batchSlot, versions int, base uint32, n uint64) error {
	k := b.kernelFor(versions)
	if err := setArg(k, argBase, base); err != nil {
		return err
	}
	if err := setArg(k, argCount, uint32(n)); err != nil {
		return err
	}
	if err := clErr("clEnqueueWriteBuffer", C.w_reset_counter(d.queue, b.out)); err != nil {
		return err
	}
	var localp *C.size_t
	if d.local > 0 {
		local := C.size_t(d.local)
		localp = &local
	}
	global := C.size_t(globalItems(n, d.vec, d.local))
	var kev C.cl_event
	kevp := &kev
	if !d.profiling {
		kevp = nil
	}
	rc := C.w_clEnqueueNDRangeKernel(d.queue, k, 1, nil, &global, localp, 0, nil, kevp)
	if rc == clInvalidWorkGroupSize && d.local > 0 {
		// The kernel's own limit can be below the device's; let the
		// runtime choose from now on.
		// The counter reset queued above runs twice; that is harmless.
		d.local = 0
		return d.enqueue(b, versions, base, n)
	}
	if err := clErr("clEnqueueNDRangeKernel", rc); err != nil {
		return err
	}
	var ev C.cl_event
	size := C.size_t(4 * outWords(d.slots))
	b.kev = kev
	if err := clErr("clEnqueueReadBuffer", C.w_clEnqueueReadBuffer(d.queue, b.out, 0, 0, size, unsafe.Pointer(b.host), 0, nil, &ev)); err != nil {
		b.releaseKernelEvent()
		return err
	}
	// Without a flush some runtimes hold the commands until the wait.
	if err := clErr("clFlush", C.w_clFlush(d.queue)); err != nil {
		C.w_clReleaseEvent(ev)
		b.releaseKernelEvent()
		return err
	}
	b.ev, b.busy, b.base, b.n, b.versions, b.launched = ev, true, base, n, versions, time.Now()
	return nil
}

// wait blocks until b's results are in its host buffer, and takes the
// kernel's run time from its profiling event.
func (d *Device) wait(b *batchSlot) error {
	ev := b.ev
	b.ev, b.busy = nil, false
	rc := C.w_clWaitForEvents(1, &ev)
	C.w_clReleaseEvent(ev)
	b.kernelNS = 0
	if b.kev != nil && rc == clSuccess {
		b.kernelNS = uint64(C.w_kernel_ns(b.kev))
	}
	b.releaseKernelEvent()
	return clErr("clWaitForEvents", rc)
}

func (b *batchSlot) releaseKernelEvent() {
	if b.kev != nil {
		C.w_clReleaseEvent(b.kev)
		b.kev = nil
	}
}

// candidate is one reported (nonce, version index) pair.
type candidate struct {
	nonce   uint32
	version uint32
}

// globalItems is the global work size for n nonces: work-items of vec
// nonces each, in whole work-groups of local when local is set.
func globalItems(n uint64, vec, local int) uint64 {
	items := (n + uint64(vec) - 1) / uint64(vec)
	if local > 0 {
		// Round up to whole work-groups; the kernel ignores lanes past count.
		items = (items + uint64(local) - 1) / uint64(local) * uint64(local)
	}
	return items
}

// results returns the candidate count the kernel saw and the pairs stored.
func (d *Device) results(b *batchSlot) (uint32, []candidate) {
	return decodeResults(unsafe.Slice((*uint32)(unsafe.Pointer(b.host)), outWords(d.slots)), d.slots)
}

// decodeResults reads an output buffer h of slots slots: the count the
// kernel saw and the pairs it stored, which past slots are none.
func decodeResults(h []uint32, slots int) (uint32, []candidate) {
	count := h[0]
	stored := min(count, uint32(slots))
	out := make([]candidate, stored)
	for i := range out {
		out[i] = candidate{h[1+2*i], h[2+2*i]}
	}
	return count, out
}

// runSync runs one range to completion on b and returns its candidates;
// count > slots means some were dropped.
func (d *Device) runSync(b *batchSlot, versions int, base uint32, n uint64) (uint32, error) {
	if err := d.enqueue(b, versions, base, n); err != nil {
		return 0, err
	}
	if err := d.wait(b); err != nil {
		return 0, err
	}
	count, _ := d.results(b)
	return count, nil
}

// Sweep implements device.Device. Two batches stay in flight so the device
// never idles while the host reads results; ctx is checked before each
// launch, so after a cancel only the batch already queued still runs.
func (d *Device) Sweep(ctx context.Context, s device.Sweep) (device.Result, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var res device.Result
	if d.queue == nil {
		return res, errors.New("opencl: device is closed")
	}
	units, err := s.VersionUnits(d.nver)
	if err != nil {
		return res, fmt.Errorf("opencl: %w", err)
	}
	nv := len(units)
	end := uint64(s.Start) + s.Count
	if end > 1<<32 {
		return res, fmt.Errorf("opencl: sweep of %d nonces from %08x runs past 2^32", s.Count, s.Start)
	}
	if err := d.loadUnits(units); err != nil {
		return res, err
	}
	sh := sharedPre(units[0].Tail)
	top := units[0].Target.Top()
	for i := range d.bufs {
		if err := d.setUnitArgs(d.bufs[i].kernelFor(nv), sh, top); err != nil {
			return res, err
		}
	}
	report := func(cs []candidate) {
		for _, c := range cs {
			// The single-version kernel writes index 0 by construction.
			if s.FoundVersion != nil {
				s.FoundVersion(int(c.version), c.nonce)
			} else if s.Found != nil {
				s.Found(c.nonce)
			}
		}
	}

	next := uint64(s.Start)
	turn := 0 // the slot whose batch finishes first
	var lastDone time.Time
	for {
		// Fill both slots, the older batch first.
		for i := 0; i < 2 && next < end && ctx.Err() == nil; i++ {
			b := &d.bufs[(turn+i)%2]
			if b.busy {
				continue
			}
			log := d.batch.Load()
			n := batchNonces(log, nv, end-next)
			if err := d.enqueue(b, nv, uint32(next), n); err != nil {
				return res, d.abort(err)
			}
			b.log = log
			next += n
		}
		b := &d.bufs[turn]
		if !b.busy {
			break
		}
		d.sleepThrough(b, lastDone)
		if err := d.wait(b); err != nil {
			return res, d.abort(err)
		}
		done := time.Now()
		d.tune(b, done, lastDone)
		lastDone = done
		turn = 1 - turn

		// resweep reuses b, so keep what it held.
		base, n := b.base, b.n
		hashes := n * uint64(nv)
		count, found := d.results(b)
		if count > uint32(d.slots) {
			// The buffer overflowed: the list is incomplete, so hash the range
			// again in pieces small enough to hold everything.
			var err error
			found, err = d.resweep(b, nv, base, n, count)
			if err != nil {
				// What the pieces found so far is reported; the rest of the
				// overflow is counted, never silently dropped.
				res.Lost += uint64(count) - min(uint64(count), uint64(len(found)))
				report(found)
				res.Hashes += hashes
				return res, d.abort(err)
			}
		}
		report(found)
		res.Hashes += hashes
		if s.Progress != nil {
			s.Progress(hashes)
		}
	}
	if next < end {
		return res, ctx.Err()
	}
	return res, nil
}

// batchNonces is the nonces in a batch of 2^log hashes of versions
// versions each, at least one and at most the left still to sweep.
func batchNonces(log int32, versions int, left uint64) uint64 {
	return min(max(uint64(1)<<log/uint64(versions), 1), left)
}

// abort drains the queue after a failure so no batch still writes into the
// host buffers, and returns err.
func (d *Device) abort(err error) error {
	C.w_clFinish(d.queue)
	for i := range d.bufs {
		b := &d.bufs[i]
		if b.ev != nil {
			C.w_clReleaseEvent(b.ev)
		}
		b.releaseKernelEvent()
		b.ev, b.busy = nil, false
	}
	return err
}

// sleepThrough sleeps until batch b is nearly done. NVIDIA's OpenCL
// busy-waits in clWaitForEvents, burning a CPU core per GPU for the whole
// kernel (hashcat and John the Ripper work around it the same way). The
// other batch is queued behind b, so waking late by less than a batch
// costs the device nothing; waking early only shortens the sleep.
func (d *Device) sleepThrough(b *batchSlot, lastDone time.Time) {
	if wait := time.Until(expectedWake(b.launched, lastDone, d.psPerHash, b.n*uint64(b.versions))); wait > time.Millisecond {
		time.Sleep(wait)
	}
}

// expectedWake is when to stop sleeping for a batch of n nonces that takes
// hashes that take psPerHash each: at 90% of its expected run, since kernel times vary a
// few percent from batch to batch.
func expectedWake(launched, lastDone time.Time, psPerHash, hashes uint64) time.Time {
	return runStart(launched, lastDone).Add(time.Duration(psPerHash * hashes / 1000 * 9 / 10))
}

// runStart is when a batch starts running on the device: at its launch, or,
// when it was queued behind another, when that one finished.
func runStart(launched, lastDone time.Time) time.Time {
	if lastDone.After(launched) {
		return lastDone
	}
	return launched
}

// resweep hashes [base, base+n) again in pieces expected to hold at most
// half the slots each, splitting further if one still overflows. A piece of
// slots/versions nonces cannot overflow, so nothing is lost (slots is never
// below 31, versions never above 4).
func (d *Device) resweep(b *batchSlot, versions int, base uint32, n uint64, count uint32) ([]candidate, error) {
	size := resweepPiece(n, count, d.slots)
	var out []candidate
	for off := uint64(0); off < n; off += size {
		m := min(size, n-off)
		c, err := d.runSync(b, versions, base+uint32(off), m)
		if err != nil {
			return out, err
		}
		if c > uint32(d.slots) {
			more, err := d.resweep(b, versions, base+uint32(off), m, c)
			out = append(out, more...)
			if err != nil {
				return out, err
			}
			continue
		}
		_, found := d.results(b)
		out = append(out, found...)
	}
	return out, nil
}

// resweepPiece is the nonces per piece when n nonces that reported count
// candidates are hashed again: n split into a power of two of pieces, at
// least two, so that each piece expects at most half of slots.
func resweepPiece(n uint64, count uint32, slots int) uint64 {
	pieces := uint64(2)
	for want := 2 * uint64(count) / uint64(slots); pieces < want; pieces *= 2 {
	}
	return max((n+pieces-1)/pieces, 1)
}
