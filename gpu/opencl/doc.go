// Package opencl mines on OpenCL devices through its own small binding of
// the OpenCL C API.
//
// The runtime is opened with dlopen at run time (libOpenCL.so.1, then
// libOpenCL.so) rather than linked, so the miner builds with a plain C
// compiler and no OpenCL SDK, and still starts on machines without OpenCL:
// Platforms and Open then return one error saying why (ErrNoRuntime or
// ErrNoPlatform). Every failing OpenCL call becomes an *Error naming the
// function and the cl.h status, with the compiler log for build failures.
//
// A Device runs the kernels.SHA256d kernels with the device's preferred int
// vector width (1 on GPUs), keeps two batches in flight, and retunes the
// batch size so a batch takes about Options.KernelMS, timed by the queue's
// profiling events. It builds two kernels: one version per nonce, and
// Options.Versions rolled versions per nonce sharing one message schedule
// (device.MultiVersion), for pools that roll versions, with the versions'
// rounds interleaved: 4 by default on GPUs, where it saves instructions,
// and 2 on CPU runtimes, which get a looped form of it (fully unrolled,
// several versions outgrow a CPU's instruction caches) and where more
// versions spill. What no nonce changes is
// computed on the host (precompute.go). Compiled programs are cached on disk,
// keyed by the device, driver, build options and source. One Sweep runs at a
// time per Device; concurrent calls wait for each other.
//
// The decisions are kept out of the cgo that acts on them, so that they are
// table-tested on machines without OpenCL: options.go resolves Options
// against what the runtime says about the device into a plan, tune.go picks
// and retunes the batch size from measured times, cache.go names and stores
// compiled programs, and pipeline.go's batch arithmetic is plain functions.
// device.go opens and closes a Device, program.go compiles or loads its
// program, and pipeline.go runs the sweeps.
package opencl
