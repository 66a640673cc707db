package opencl

// #include "cl_shim.h"
import "C"

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"clminer/kernels"
	"clminer/work"
	"clminer/work/device"
)

// DefaultSlots is how many candidates one batch can report before its
// output buffer overflows. A real target yields far fewer per batch; an
// overflow is still handled (by re-sweeping), just slowly.
const DefaultSlots = 1023

// Batch bounds: below minBatch launch overhead dominates; maxBatch keeps
// the nonce count inside the kernel's uint argument.
const (
	minBatchLog = 10
	maxBatchLog = 31
)

// MinIntensity and MaxIntensity bound Options.Intensity: batches of 2^N
// hashes (nonces times versions). Callers validate user input against them before opening devices.
const (
	MinIntensity = minBatchLog
	MaxIntensity = maxBatchLog
)

// CompileEvent reports the program build, which can take 10-20 s the first
// time on some runtimes, so that callers can say what is happening.
type CompileEvent struct {
	Device string // opencl:P:D
	Name   string // the device's name
	// Done is false when the build starts, true when it has ended.
	Done bool
	// Cached: the program came from the disk cache (Done only).
	Cached bool
	// Elapsed is the build time (Done only).
	Elapsed time.Duration
	// Err is the build failure (Done only).
	Err error
}

// Options tune a device. The zero value is ready to use.
type Options struct {
	// KernelMS is the wanted run time of one batch in milliseconds; 0 means
	// 50. Longer batches waste less on launches but make cancellation slower.
	KernelMS float64
	// Intensity fixes the batch at 2^Intensity hashes (nonces times versions) and turns autotuning
	// off; 0 autotunes toward KernelMS.
	Intensity int
	// VectorWidth is the nonces per work-item (1, 2, 4, 8 or 16); 0 takes
	// the device's preferred int vector width on CPUs and 1 on GPUs, which
	// run scalar code best whatever width they report.
	VectorWidth int
	// Versions is how many rolled versions of each nonce the multi-version
	// kernel hashes (1, 2 or 4); 0 means DefaultVersions on GPUs and
	// accelerators and DefaultCPUVersions on CPUs. 1 leaves only the
	// single-version kernel.
	Versions int
	// Maj picks the kernel's Maj shape: MajLOP3, MajMerge, or "" for the
	// device vendor's (LOP3 on NVIDIA, the masked merge elsewhere).
	Maj string
	// gpuForm builds the kernel a GPU gets on any device, so that tests on
	// a CPU runtime check the multi-version kernel's unrolled form too.
	gpuForm bool
	// CacheDir holds compiled programs; "" means os.UserCacheDir()/clminer/kernels
	// and "-" turns the cache off.
	CacheDir string
	// WorkGroup is the work-group size; 0 means 16 on CPUs and 256 elsewhere
	// (bounded by the device's maximum).
	WorkGroup int
	// Source replaces the embedded kernel source; tests use it to inject a
	// kernel that does not compile.
	Source string
	// OnCompile, when set, is called when the program build starts and
	// when it ends.
	OnCompile func(CompileEvent)

	// slots overrides DefaultSlots so tests can force overflows.
	slots int
}

// DefaultVersions is the multi-version kernel's width on GPUs when
// Options.Versions is 0: the most the kernel supports, since each extra
// version saves a further share of the message schedule (12% of the
// instructions per hash at 4 on NVIDIA, BENCHMARKS.md).
const DefaultVersions = 4

// DefaultCPUVersions is the width on CPU runtimes (POCL): with the
// versions' rounds interleaved and the rounds from 32 on looped, 2 versions
// measured about 6% above 1 per CPU-second, and 4 about 9% below it (the
// four states no longer fit the 32 vector registers and spill).
const DefaultCPUVersions = 2

// Maj shapes; see sha256d.cl.
const (
	MajLOP3  = "lop3"
	MajMerge = "merge"
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
	vec      int
	nver     int    // versions of the multi-version kernel; 1: none built
	maj      string // MajLOP3 or MajMerge
	slots    int
	local    int // work-group size, 0 = the runtime's choice
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

var _ device.Device = (*Device)(nil)

// Open builds the kernel for device D of platform P and sizes its batches.
func Open(platform, device int, opts Options) (d *Device, err error) {
	pid, pname, did, info, err := findDevice(platform, device)
	if err != nil {
		return nil, err
	}
	if opts.KernelMS <= 0 {
		opts.KernelMS = 50
	}
	if opts.Intensity != 0 && (opts.Intensity < minBatchLog || opts.Intensity > maxBatchLog) {
		return nil, fmt.Errorf("opencl: intensity %d is outside %d..%d", opts.Intensity, minBatchLog, maxBatchLog)
	}
	d = &Device{
		id:       fmt.Sprintf("opencl:%d:%d", platform, device),
		opts:     opts,
		did:      did,
		slots:    DefaultSlots,
		platform: pname,
		info:     info,
	}
	if opts.slots > 0 {
		d.slots = opts.slots
	}
	preferred := d.info.PreferredVectorWidthInt
	if d.info.Type == "GPU" {
		preferred = 1
	}
	if d.vec, err = vectorWidth(opts.VectorWidth, preferred); err != nil {
		return nil, err
	}
	switch opts.Versions {
	case 0:
		d.nver = DefaultVersions
		if d.info.Type == "CPU" {
			d.nver = DefaultCPUVersions
		}
	case 1, 2, 4:
		d.nver = opts.Versions
	default:
		return nil, fmt.Errorf("opencl: %d versions per nonce: want 1, 2 or 4", opts.Versions)
	}
	if d.maj, err = majShape(opts.Maj, d.info.Vendor, d.platform); err != nil {
		return nil, err
	}
	d.local = workGroup(opts.WorkGroup, d.info)
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
	if err = d.buildProgram(src, buildOptions(d.vec, d.nver, d.maj, d.info.Type == "CPU" && !opts.gpuForm)); err != nil {
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
	if opts.Intensity != 0 {
		d.batch.Store(int32(opts.Intensity))
	} else if err = d.calibrate(); err != nil {
		return d, err
	}
	return d, nil
}

// outWords is the size of a batch's output buffer: the counter, then a
// (nonce, version index) pair per slot.
func outWords(slots int) int { return 1 + 2*slots }

// buildOptions are the kernel's build defines; they are part of the cache
// key. CPU runtimes get the multi-version kernel's looped form (see
// LOOP_ROUNDS in sha256d.cl).
func buildOptions(vec, nver int, maj string, cpu bool) string {
	o := fmt.Sprintf("-D VECSIZE=%d -D NVER=%d", vec, nver)
	if maj == MajLOP3 {
		o += " -D MAJ_LOP3"
	}
	if cpu {
		o += " -D LOOP_ROUNDS"
	}
	return o
}

// majShape resolves Options.Maj. NVIDIA compiles the textbook Maj to one
// 3-input LOP3 while the masked merge's shared term splits it in two;
// 2-input ISAs (AMD, CPUs) are the other way round.
func majShape(want, vendor, platform string) (string, error) {
	switch want {
	case MajLOP3, MajMerge:
		return want, nil
	case "":
		if strings.Contains(strings.ToUpper(vendor+" "+platform), "NVIDIA") {
			return MajLOP3, nil
		}
		return MajMerge, nil
	}
	return "", fmt.Errorf("opencl: Maj shape %q: want %q or %q", want, MajLOP3, MajMerge)
}

// workGroup picks the work-group size. A fixed size matters on POCL, which
// compiles the kernel again for every new size and vectorizes across a
// group's work-items; GPUs want a few warps per group.
func workGroup(want int, info DeviceInfo) int {
	if want <= 0 {
		want = 256
		if info.Type == "CPU" {
			want = 16
		}
	}
	if info.MaxWorkGroupSize > 0 {
		want = min(want, info.MaxWorkGroupSize)
	}
	return want
}

// vectorWidth maps a requested or preferred width onto the kernel's
// supported ones: OpenCL has no 3-wide int loads worth using, and wider
// than 16 does not exist.
func vectorWidth(want, preferred int) (int, error) {
	switch want {
	case 1, 2, 4, 8, 16:
		return want, nil
	case 0:
		v := 1
		for v*2 <= preferred && v < 16 {
			v *= 2
		}
		return v, nil
	default:
		return 0, fmt.Errorf("opencl: vector width %d: want 1, 2, 4, 8 or 16", want)
	}
}

// buildProgram loads the program from the disk cache or compiles it,
// storing the binary for next time. A failed compile returns the build log.
func (d *Device) buildProgram(src, options string) (err error) {
	if f := d.opts.OnCompile; f != nil {
		began := time.Now()
		f(CompileEvent{Device: d.id, Name: d.info.Name})
		defer func() {
			f(CompileEvent{Device: d.id, Name: d.info.Name, Done: true, Cached: d.cacheHit, Elapsed: time.Since(began), Err: err})
		}()
	}
	dir := resolveCacheDir(d.opts.CacheDir)
	key := cacheKey(d.platform, d.info.Name, d.info.DriverVersion, d.info.Version, options, src)
	copts := C.CString(options)
	defer C.free(unsafe.Pointer(copts))

	if bin := readCache(dir, key); bin != nil {
		if p, err := d.programFromBinary(bin, copts); err == nil {
			d.prog, d.cacheHit = p, true
			return nil
		}
		// A stale or corrupt binary is not fatal: rebuild and overwrite it.
	}

	csrc := C.CString(src)
	defer C.free(unsafe.Pointer(csrc))
	length := C.size_t(len(src))
	var rc C.cl_int
	p := C.w_clCreateProgramWithSource(d.ctx, 1, &csrc, &length, &rc)
	if err := clErr("clCreateProgramWithSource", rc); err != nil {
		return err
	}
	if rc := C.w_clBuildProgram(p, 1, &d.did, copts, nil, nil); rc != clSuccess {
		e := &Error{Func: "clBuildProgram", Code: int32(rc), Log: d.buildLog(p)}
		C.w_clReleaseProgram(p)
		return e
	}
	d.prog = p
	if bin, err := d.programBinary(); err == nil {
		// A cache that cannot be written only costs a rebuild next start.
		_ = writeCache(dir, key, bin)
	}
	return nil
}

func (d *Device) programFromBinary(bin []byte, copts *C.char) (C.cl_program, error) {
	cbin := (*C.uchar)(C.CBytes(bin))
	defer C.free(unsafe.Pointer(cbin))
	length := C.size_t(len(bin))
	var status, rc C.cl_int
	p := C.w_clCreateProgramWithBinary(d.ctx, 1, &d.did, &length, &cbin, &status, &rc)
	if err := clErr("clCreateProgramWithBinary", rc); err != nil {
		return nil, err
	}
	if err := clErr("clCreateProgramWithBinary", status); err != nil {
		C.w_clReleaseProgram(p)
		return nil, err
	}
	if rc := C.w_clBuildProgram(p, 1, &d.did, copts, nil, nil); rc != clSuccess {
		C.w_clReleaseProgram(p)
		return nil, clErr("clBuildProgram", rc)
	}
	return p, nil
}

func (d *Device) buildLog(p C.cl_program) string {
	var sz C.size_t
	if C.w_clGetProgramBuildInfo(p, d.did, clProgramBuildLog, 0, nil, &sz) != clSuccess || sz == 0 {
		return ""
	}
	buf := make([]byte, sz)
	if C.w_clGetProgramBuildInfo(p, d.did, clProgramBuildLog, sz, unsafe.Pointer(&buf[0]), nil) != clSuccess {
		return ""
	}
	return cString(buf)
}

// programBinary returns the device binary of the built program.
func (d *Device) programBinary() ([]byte, error) {
	var ndev C.cl_uint
	if rc := C.w_clGetProgramInfo(d.prog, clProgramNumDevices, C.size_t(unsafe.Sizeof(ndev)), unsafe.Pointer(&ndev), nil); rc != clSuccess {
		return nil, clErr("clGetProgramInfo", rc)
	}
	if ndev != 1 {
		return nil, fmt.Errorf("opencl: program has %d devices, want 1", ndev)
	}
	var size C.size_t
	if rc := C.w_clGetProgramInfo(d.prog, clProgramBinarySizes, C.size_t(unsafe.Sizeof(size)), unsafe.Pointer(&size), nil); rc != clSuccess {
		return nil, clErr("clGetProgramInfo", rc)
	}
	if size == 0 {
		return nil, errors.New("opencl: runtime returned an empty program binary")
	}
	// The runtime writes through the pointer array, so both the array and
	// the buffer it points to must be C memory.
	buf := C.malloc(size)
	if buf == nil {
		return nil, errors.New("opencl: out of host memory")
	}
	defer C.free(buf)
	ptrs := (*unsafe.Pointer)(C.malloc(C.size_t(unsafe.Sizeof(buf))))
	if ptrs == nil {
		return nil, errors.New("opencl: out of host memory")
	}
	defer C.free(unsafe.Pointer(ptrs))
	*ptrs = buf
	if rc := C.w_clGetProgramInfo(d.prog, clProgramBinaries, C.size_t(unsafe.Sizeof(buf)), unsafe.Pointer(ptrs), nil); rc != clSuccess {
		return nil, clErr("clGetProgramInfo", rc)
	}
	return C.GoBytes(buf, C.int(size)), nil
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
	target := d.opts.KernelMS
	log := int32(16)
	deadline := time.Now().Add(2 * time.Second)
	for {
		t0 := time.Now()
		if _, err := d.runSync(b, 1, 0, 1<<log); err != nil {
			return err
		}
		took := batchTime(b.kernelNS, time.Since(t0))
		d.psPerHash = uint64(took.Nanoseconds()) * 1000 >> log
		ms := float64(took.Microseconds()) / 1000
		if ms >= target/tuneBand || log >= maxBatchLog || time.Now().After(deadline) {
			if ms > tuneBand*target && log > minBatchLog {
				log--
			}
			break
		}
		// Jump by the measured ratio, but at most 16x so one noisy
		// measurement cannot overshoot wildly.
		step := int32(1)
		for r := target / max(ms, 0.001); r >= 4 && step < 4; r /= 2 {
			step++
		}
		log = min(log+step, maxBatchLog)
	}
	d.batch.Store(log)
	return nil
}

// Info implements device.Device.
func (d *Device) Info() device.Info {
	return device.Info{
		ID:       d.id,
		Kind:     "opencl",
		Name:     d.info.Name,
		PCIBusID: d.info.PCIBusID,
		Detail:   fmt.Sprintf("vector %d, versions %d, maj %s, batch 2^%d hashes, %g ms", d.vec, d.nver, d.maj, d.batch.Load(), d.opts.KernelMS),
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
	items := (n + uint64(d.vec) - 1) / uint64(d.vec)
	var localp *C.size_t
	if d.local > 0 {
		// Round up to whole work-groups; the kernel ignores lanes past count.
		items = (items + uint64(d.local) - 1) / uint64(d.local) * uint64(d.local)
		local := C.size_t(d.local)
		localp = &local
	}
	global := C.size_t(items)
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

// results returns the candidate count the kernel saw and the pairs stored.
func (d *Device) results(b *batchSlot) (uint32, []candidate) {
	h := unsafe.Slice((*uint32)(unsafe.Pointer(b.host)), outWords(d.slots))
	count := h[0]
	stored := min(count, uint32(d.slots))
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
			n := min(max(uint64(1)<<log/uint64(nv), 1), end-next)
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
		d.psPerHash = uint64(took.Nanoseconds()) * 1000 / hashes
	}
	if d.opts.Intensity != 0 || b.log != d.batch.Load() || hashes != uint64(1)<<b.log {
		return // a partial batch or one of a size already retuned says nothing
	}
	ms := float64(took.Microseconds()) / 1000
	switch {
	case ms < d.opts.KernelMS/tuneBand && b.log < maxBatchLog:
		d.batch.Store(b.log + 1)
	case ms > d.opts.KernelMS*tuneBand && b.log > minBatchLog:
		d.batch.Store(b.log - 1)
	}
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
	pieces := uint64(2)
	for want := 2 * uint64(count) / uint64(d.slots); pieces < want; pieces *= 2 {
	}
	size := max((n+pieces-1)/pieces, 1)
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
