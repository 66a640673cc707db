package opencl

import (
	"fmt"
	"strings"
	"time"
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

// plan is what Open builds and how a Device runs: Options resolved against
// what the runtime said about the device. Resolving is kept apart from the
// cgo that acts on it so that every decision is tested without a runtime.
type plan struct {
	vec   int
	nver  int    // versions of the multi-version kernel; 1: none built
	maj   string // MajLOP3 or MajMerge
	slots int
	local int // work-group size, 0 = the runtime's choice
	// kernelMS is the batch time tuning aims for.
	kernelMS float64
	// intensity is the fixed batch log, 0 when tuning.
	intensity int
	// build is the kernel's build options.
	build string
}

// resolve checks opts and fills in its defaults for a device described by
// info on the named platform. Its errors name the bad option; they depend
// on nothing the device said, so any device reports them alike.
func resolve(opts Options, info DeviceInfo, platform string) (plan, error) {
	p := plan{kernelMS: opts.KernelMS, intensity: opts.Intensity, slots: DefaultSlots}
	if p.kernelMS <= 0 {
		p.kernelMS = 50
	}
	if opts.Intensity != 0 && (opts.Intensity < minBatchLog || opts.Intensity > maxBatchLog) {
		return plan{}, fmt.Errorf("opencl: intensity %d is outside %d..%d", opts.Intensity, minBatchLog, maxBatchLog)
	}
	if opts.slots > 0 {
		p.slots = opts.slots
	}
	preferred := info.PreferredVectorWidthInt
	if info.Type == "GPU" {
		preferred = 1
	}
	var err error
	if p.vec, err = vectorWidth(opts.VectorWidth, preferred); err != nil {
		return plan{}, err
	}
	if p.nver, err = kernelVersions(opts.Versions, info.Type); err != nil {
		return plan{}, err
	}
	if p.maj, err = majShape(opts.Maj, info.Vendor, platform); err != nil {
		return plan{}, err
	}
	p.local = workGroup(opts.WorkGroup, info)
	p.build = buildOptions(p.vec, p.nver, p.maj, info.Type == "CPU" && !opts.gpuForm)
	return p, nil
}

// kernelVersions resolves Options.Versions for a device of the given type.
func kernelVersions(want int, deviceType string) (int, error) {
	switch want {
	case 0:
		if deviceType == "CPU" {
			return DefaultCPUVersions, nil
		}
		return DefaultVersions, nil
	case 1, 2, 4:
		return want, nil
	default:
		return 0, fmt.Errorf("opencl: %d versions per nonce: want 1, 2 or 4", want)
	}
}

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
