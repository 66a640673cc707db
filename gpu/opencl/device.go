package opencl

// #include "cl_shim.h"
import "C"

import (
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"

	"clminer/kernels"
	"clminer/work"
	"clminer/work/device"
)

// Device is one OpenCL device ready to sweep. It implements device.Device.
// Sweep calls are serialized by a mutex: one sweep at a time per device,
// since the two output buffers and kernels belong to the sweep in progress.
type Device struct {
	mu sync.Mutex

	id       string
	platform string
	info     DeviceInfo
	opts     Options
	plan     // what Open resolved opts to; enqueue may clear local
	cacheHit bool
	// batch is log2 of the nonces per batch; atomic so Info can read it
	// while a sweep retunes it.
	batch atomic.Int32

	// psPerHash is the last measured kernel time per hash, in
	// picoseconds, for sleeping through a batch before waiting on it.
	// Guarded by mu (only sweeps and Open touch it).
	psPerHash uint64

	did   C.cl_device_id
	ctx   C.cl_context
	queue C.cl_command_queue
	prog  C.cl_program
	// profiling: the queue has CL_QUEUE_PROFILING_ENABLE, so batch times
	// come from the kernels' events.
	profiling bool
	// pv holds the per-version records (precompute.go) of the sweep in
	// progress: nver of them, read as __constant by both kernels.
	pv   C.cl_mem
	bufs [2]batchSlot
}

var _ device.Device = (*Device)(nil)

// Open builds the kernel for device D of platform P and sizes its batches.
func Open(platform, device int, opts Options) (d *Device, err error) {
	pid, pname, did, info, err := findDevice(platform, device)
	if err != nil {
		return nil, err
	}
	pl, err := resolve(opts, info, pname)
	if err != nil {
		return nil, err
	}
	d = &Device{
		id:       fmt.Sprintf("opencl:%d:%d", platform, device),
		opts:     opts,
		plan:     pl,
		did:      did,
		platform: pname,
		info:     info,
	}
	defer func() {
		if err != nil {
			d.release()
			d = nil
		}
	}()

	props := []C.cl_context_properties{clContextPlatform, C.cl_context_properties(uintptr(unsafe.Pointer(pid))), 0}
	var rc C.cl_int
	d.ctx = C.w_clCreateContext(&props[0], 1, &d.did, nil, nil, &rc)
	if err = clErr("clCreateContext", rc); err != nil {
		return d, err
	}
	// Profiling events give the batch's own run time on the device, which
	// a host thread that wakes late would overstate.
	d.queue = C.w_clCreateCommandQueue(d.ctx, d.did, clQueueProfilingEnable, &rc)
	d.profiling = rc == clSuccess
	if !d.profiling {
		d.queue = C.w_clCreateCommandQueue(d.ctx, d.did, 0, &rc)
	}
	if err = clErr("clCreateCommandQueue", rc); err != nil {
		return d, err
	}
	src := opts.Source
	if src == "" {
		src = kernels.SHA256d
	}
	if err = d.buildProgram(src, d.build); err != nil {
		return d, err
	}
	name := C.CString(kernels.SHA256dEntry)
	defer C.free(unsafe.Pointer(name))
	multi := C.CString(kernels.SHA256dMultiEntry)
	defer C.free(unsafe.Pointer(multi))
	d.pv = C.w_clCreateBuffer(d.ctx, clMemReadOnly, C.size_t(4*vrecWords*d.nver), nil, &rc)
	if err = clErr("clCreateBuffer", rc); err != nil {
		return d, err
	}
	size := C.size_t(4 * outWords(d.slots))
	for i := range d.bufs {
		b := &d.bufs[i]
		b.kernel = C.w_clCreateKernel(d.prog, name, &rc)
		if err = clErr("clCreateKernel", rc); err != nil {
			return d, err
		}
		if d.nver > 1 {
			b.multi = C.w_clCreateKernel(d.prog, multi, &rc)
			if err = clErr("clCreateKernel", rc); err != nil {
				return d, err
			}
		}
		b.out = C.w_clCreateBuffer(d.ctx, clMemReadWrite, size, nil, &rc)
		if err = clErr("clCreateBuffer", rc); err != nil {
			return d, err
		}
		// Results land in pinned host memory (a host-allocated buffer
		// mapped once), which GPUs fill by DMA without a staging copy.
		b.pinned = C.w_clCreateBuffer(d.ctx, clMemReadWrite|clMemAllocHostPtr, size, nil, &rc)
		if err = clErr("clCreateBuffer", rc); err != nil {
			return d, err
		}
		p := C.w_clEnqueueMapBuffer(d.queue, b.pinned, 1, clMapRead|clMapWrite, 0, size, 0, nil, nil, &rc)
		if err = clErr("clEnqueueMapBuffer", rc); err != nil {
			return d, err
		}
		b.host = (*C.cl_uint)(p)
	}
	if err = d.warmUp(); err != nil {
		return d, err
	}
	if d.intensity != 0 {
		d.batch.Store(int32(d.intensity))
	} else if err = d.calibrate(); err != nil {
		return d, err
	}
	return d, nil
}

// warmUp launches every kernel of both slots once, on a dummy unit that
// cannot produce candidates. Some runtimes (POCL) compile a kernel for its
// work-group size at its first launch, seconds for the multi-version
// kernel; done here, that is part of opening the device, not a first sweep
// that a new block would have to wait out.
func (d *Device) warmUp() error {
	units := make([]*work.Unit, d.nver)
	for i := range units {
		units[i] = &work.Unit{}
	}
	if err := d.loadUnits(units); err != nil {
		return err
	}
	for i := range d.bufs {
		b := &d.bufs[i]
		for _, versions := range []int{1, d.nver} {
			if err := d.setUnitArgs(b.kernelFor(versions), sharedPre(units[0].Tail), 0); err != nil {
				return err
			}
			if _, err := d.runSync(b, versions, 0, 1<<minBatchLog); err != nil {
				return err
			}
		}
	}
	return nil
}

// Info implements device.Device.
func (d *Device) Info() device.Info {
	return device.Info{
		ID:       d.id,
		Kind:     "opencl",
		Name:     d.info.Name,
		PCIBusID: d.info.PCIBusID,
		Detail:   fmt.Sprintf("vector %d, versions %d, maj %s, batch 2^%d hashes, %g ms", d.vec, d.nver, d.maj, d.batch.Load(), d.kernelMS),
	}
}

// DeviceInfo returns what the runtime reported about the device.
func (d *Device) DeviceInfo() DeviceInfo { return d.info }

// VectorWidth is the number of nonces each work-item hashes.
func (d *Device) VectorWidth() int { return d.vec }

// Versions implements device.MultiVersion: the multi-version kernel's width.
func (d *Device) Versions() int { return d.nver }

// Maj is the kernel's Maj shape, MajLOP3 or MajMerge.
func (d *Device) Maj() string { return d.maj }

// BatchLog is log2 of the current batch size in hashes (nonces times
// the versions hashed per nonce).
func (d *Device) BatchLog() int { return int(d.batch.Load()) }

// CacheHit reports whether Open loaded the program from the disk cache
// instead of compiling it.
func (d *Device) CacheHit() bool { return d.cacheHit }

// Close implements device.Device.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.release()
	return nil
}

// release frees whatever Open got as far as creating; it waits for queued
// work first, because the runtime may still write into the host buffers.
func (d *Device) release() {
	if d.queue != nil {
		C.w_clFinish(d.queue)
	}
	for i := range d.bufs {
		b := &d.bufs[i]
		if b.ev != nil {
			C.w_clReleaseEvent(b.ev)
			b.ev = nil
		}
		b.releaseKernelEvent()
		if b.kernel != nil {
			C.w_clReleaseKernel(b.kernel)
			b.kernel = nil
		}
		if b.multi != nil {
			C.w_clReleaseKernel(b.multi)
			b.multi = nil
		}
		if b.out != nil {
			C.w_clReleaseMemObject(b.out)
			b.out = nil
		}
		if b.host != nil {
			C.w_clEnqueueUnmapMemObject(d.queue, b.pinned, unsafe.Pointer(b.host), 0, nil, nil)
			C.w_clFinish(d.queue)
			b.host = nil
		}
		if b.pinned != nil {
			C.w_clReleaseMemObject(b.pinned)
			b.pinned = nil
		}
		b.busy = false
	}
	if d.pv != nil {
		C.w_clReleaseMemObject(d.pv)
		d.pv = nil
	}
	if d.prog != nil {
		C.w_clReleaseProgram(d.prog)
		d.prog = nil
	}
	if d.queue != nil {
		C.w_clReleaseCommandQueue(d.queue)
		d.queue = nil
	}
	if d.ctx != nil {
		C.w_clReleaseContext(d.ctx)
		d.ctx = nil
	}
}
