package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/charmbracelet/log"

	"clminer/gpu/cpu"
	"clminer/gpu/opencl"
	"clminer/work/device"
)

// Options configures the devices Open creates.
type Options struct {
	// Threads is the CPU device's worker count (0: one per core).
	Threads int
	// CPUPath forces a CPU hashing path ("" picks the fastest).
	CPUPath string
	// KernelMS is the OpenCL kernel-time target per batch (0: default).
	KernelMS float64
	// Intensity fixes OpenCL batches at 2^Intensity hashes (0: autotune).
	Intensity int
	// VectorWidth forces the OpenCL kernel's vector width (0: the device's).
	VectorWidth int
	// KernelVersions is how many rolled versions of each nonce the
	// multi-version kernels hash when rolling is on (0: each device's
	// default; 1: one at a time). The CPU device's avx512 path hashes 2
	// for any value above 1.
	KernelVersions int
	// KernelMaj forces the OpenCL kernel's Maj shape ("": by vendor).
	KernelMaj string
	// CacheDir holds compiled OpenCL programs ("": the user cache dir).
	CacheDir string
	// Log receives progress (kernel compile) and the warning when auto
	// falls back to the CPU; nil discards them.
	Log *log.Logger
}

// VectorWidths are the OpenCL kernel widths Options.VectorWidth takes (0:
// the device's preferred).
var VectorWidths = []int{1, 2, 4, 8, 16}

// Validate checks the options as user input, before any device is opened,
// so that a bad value is one line saying what to fix rather than a failure
// after a kernel compile. Flag names are the command line's.
func (o Options) Validate() error {
	switch {
	case o.Threads < 0:
		return fmt.Errorf("--threads %d: must be 0 (one per core) or more", o.Threads)
	case o.KernelMS <= 0 || o.KernelMS > 10000:
		return fmt.Errorf("--kernel-ms %v: must be more than 0 and at most 10000", o.KernelMS)
	case o.Intensity != 0 && (o.Intensity < opencl.MinIntensity || o.Intensity > opencl.MaxIntensity):
		return fmt.Errorf("--intensity %d: must be %d..%d (OpenCL batches of 2^N hashes), or 0 to autotune", o.Intensity, opencl.MinIntensity, opencl.MaxIntensity)
	case o.VectorWidth != 0 && !slices.Contains(VectorWidths, o.VectorWidth):
		return fmt.Errorf("--vector-width %d: must be 1, 2, 4, 8 or 16 (0: the device's preferred)", o.VectorWidth)
	case o.KernelVersions != 0 && o.KernelVersions != 1 && o.KernelVersions != 2 && o.KernelVersions != 4:
		return fmt.Errorf("--kernel-versions %d: must be 1, 2 or 4 (0: the default, %d on GPUs and %d on CPU runtimes)", o.KernelVersions, opencl.DefaultVersions, opencl.DefaultCPUVersions)
	case o.KernelMaj != "" && o.KernelMaj != opencl.MajLOP3 && o.KernelMaj != opencl.MajMerge:
		return fmt.Errorf("--kernel-maj %q: must be %s or %s (empty: by the device's vendor)", o.KernelMaj, opencl.MajLOP3, opencl.MajMerge)
	}
	if o.CPUPath != "" && !slices.Contains(cpu.Paths(), o.CPUPath) {
		return fmt.Errorf("--cpu-path %q: this CPU has %s", o.CPUPath, strings.Join(cpu.Paths(), ", "))
	}
	return nil
}

func (o Options) logger() *log.Logger {
	if o.Log != nil {
		return o.Log
	}
	return log.New(io.Discard)
}

// Entry describes one device for `clminer devices`.
type Entry struct {
	ID           string `json:"id"`
	Kind         string `json:"kind"`
	Type         string `json:"type"`
	Name         string `json:"name"`
	Vendor       string `json:"vendor,omitempty"`
	Platform     string `json:"platform,omitempty"`
	Driver       string `json:"driver,omitempty"`
	ComputeUnits int    `json:"compute_units"`
	GlobalMemMiB uint64 `json:"global_mem_mib,omitempty"`
	VectorWidth  int    `json:"preferred_vector_width,omitempty"`
	Detail       string `json:"detail,omitempty"`
	// PCIBusID is the PCI address the driver reports, 0000:0a:00.0.
	PCIBusID string `json:"pci_bus_id,omitempty"`
}

// List returns every device: the OpenCL ones, then the CPU device. The error
// says why OpenCL devices are missing (no runtime, no platform); the CPU
// device is listed regardless.
func List() ([]Entry, error) {
	var out []Entry
	plats, clErr := opencl.Platforms()
	for _, p := range plats {
		for _, d := range p.Devices {
			out = append(out, Entry{
				ID: openclID(p.Index, d.Index), Kind: "opencl", Type: d.Type, Name: d.Name,
				Vendor: d.Vendor, Platform: p.Name, Driver: d.DriverVersion,
				ComputeUnits: d.ComputeUnits, GlobalMemMiB: d.GlobalMem >> 20,
				VectorWidth: d.PreferredVectorWidthInt, PCIBusID: d.PCIBusID,
			})
		}
	}
	cpuName := "CPU"
	if d, err := cpu.New(cpu.Options{}); err == nil {
		cpuName = d.Info().Name
		_ = d.Close()
	}
	out = append(out, Entry{
		ID: "cpu", Kind: "cpu", Type: "CPU", Name: cpuName,
		ComputeUnits: runtime.NumCPU(),
		Detail:       fmt.Sprintf("paths %s (best: %s)", strings.Join(cpu.Paths(), ", "), cpu.BestPath()),
	})
	return out, clErr
}

func openclID(p, d int) string { return fmt.Sprintf("opencl:%d:%d", p, d) }

var (
	errNoGPU    = errors.New("no OpenCL GPU found")
	errNoOpenCL = errors.New("no OpenCL device found")
)

// SpecHelp lists what --device takes.
const SpecHelp = "cpu, opencl:P:D, gpu (all OpenCL GPUs), opencl (all OpenCL devices), all, or auto (OpenCL GPUs, else cpu); comma-separated"

// Resolve turns a --device spec into device ids, without opening anything.
func Resolve(spec string, entries []Entry) ([]string, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		spec = "auto"
	}
	var ids []string
	seen := map[string]bool{}
	add := func(id string) {
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	byKind := func(keep func(Entry) bool) int {
		n := 0
		for _, e := range entries {
			if keep(e) {
				add(e.ID)
				n++
			}
		}
		return n
	}
	isGPU := func(e Entry) bool { return e.Kind == "opencl" && e.Type == "GPU" }
	for _, part := range strings.Split(spec, ",") {
		part = strings.ToLower(strings.TrimSpace(part))
		switch {
		case part == "auto":
			if byKind(isGPU) == 0 {
				add("cpu")
			}
		case part == "cpu":
			add("cpu")
		case part == "gpu":
			if byKind(isGPU) == 0 {
				return nil, fmt.Errorf("--device gpu: %w", errNoGPU)
			}
		case part == "opencl":
			if byKind(func(e Entry) bool { return e.Kind == "opencl" }) == 0 {
				return nil, fmt.Errorf("--device opencl: %w", errNoOpenCL)
			}
		case part == "all":
			byKind(func(Entry) bool { return true })
		case strings.HasPrefix(part, "opencl:"):
			id, err := parseOpenCLID(part)
			if err != nil {
				return nil, err
			}
			found := false
			for _, e := range entries {
				found = found || e.ID == id
			}
			if !found {
				return nil, fmt.Errorf("--device %s: no such OpenCL device (see `clminer devices`)", part)
			}
			add(id)
		default:
			return nil, fmt.Errorf("--device %q: unknown device; use %s", part, SpecHelp)
		}
	}
	return ids, nil
}

func parseOpenCLID(s string) (string, error) {
	f := strings.Split(s, ":")
	if len(f) != 3 {
		return "", fmt.Errorf("--device %s: want opencl:PLATFORM:DEVICE, e.g. opencl:0:1", s)
	}
	p, err1 := strconv.Atoi(f[1])
	d, err2 := strconv.Atoi(f[2])
	if err1 != nil || err2 != nil || p < 0 || d < 0 {
		return "", fmt.Errorf("--device %s: platform and device must be numbers, e.g. opencl:0:1", s)
	}
	return openclID(p, d), nil
}

// LookedFor says where OpenCL devices come from, for messages that explain
// why none was found.
const LookedFor = "OpenCL GPUs (libOpenCL.so.1 and the ICD files in /etc/OpenCL/vendors or $OCL_ICD_VENDORS)"

// NoGPUReason says why entries hold no OpenCL GPU: the OpenCL error, or what
// OpenCL did offer. It is "" when there is a GPU.
func NoGPUReason(entries []Entry, clErr error) string {
	var others []string
	for _, e := range entries {
		if e.Kind != "opencl" {
			continue
		}
		if e.Type == "GPU" {
			return ""
		}
		others = append(others, fmt.Sprintf("%s is a %s (%s)", e.ID, e.Type, e.Name))
	}
	switch {
	case clErr != nil:
		return clErr.Error()
	case len(others) == 0:
		return "OpenCL lists no device"
	default:
		return "no OpenCL device is a GPU: " + strings.Join(others, ", ")
	}
}

// OpenCLProblem says why OpenCL offers no device, and whether that is a
// broken installation rather than an absent one. Broken: a driver is
// declared (an ICD file in the vendors directory, or $OCL_ICD_FILENAMES) yet
// OpenCL lists no device, or an OpenCL call failed; an operator with a
// failing GPU driver must not read success. Absent: no runtime library and no
// driver declared, a machine meant to run on its CPU. Both are empty/false
// when OpenCL lists a device.
func OpenCLProblem(entries []Entry, clErr error) (why string, broken bool) {
	for _, e := range entries {
		if e.Kind == "opencl" {
			return "", false
		}
	}
	why = "OpenCL lists no device"
	if clErr != nil {
		why = clErr.Error()
	}
	absent := clErr == nil || errors.Is(clErr, opencl.ErrNoRuntime) || errors.Is(clErr, opencl.ErrNoPlatform)
	if icds := declaredDrivers(); len(icds) > 0 {
		return fmt.Sprintf("OpenCL drivers are installed (%s) but not working: %s", strings.Join(icds, ", "), why), true
	}
	if !absent {
		return why, true
	}
	return why, false
}

// declaredDrivers lists the OpenCL drivers the ICD loader is told about:
// $OCL_ICD_FILENAMES, then the *.icd files of $OCL_ICD_VENDORS (a directory
// or one file) or /etc/OpenCL/vendors, as ocl-icd and the Khronos loader
// read them.
func declaredDrivers() []string {
	var out []string
	for _, f := range filepath.SplitList(os.Getenv("OCL_ICD_FILENAMES")) {
		if f != "" {
			out = append(out, f)
		}
	}
	dir := "/etc/OpenCL/vendors"
	if v := os.Getenv("OCL_ICD_VENDORS"); v != "" {
		if st, err := os.Stat(v); err == nil && !st.IsDir() {
			return append(out, v)
		}
		dir = v
	}
	icds, _ := filepath.Glob(filepath.Join(dir, "*.icd"))
	return append(out, icds...)
}

// Open resolves spec and opens each device. On error, devices already
// opened are closed. When "auto" finds no OpenCL GPU it logs at WARN what it
// looked for, what failed, and that it falls back to the CPU; "gpu" and
// "opencl" fail with that reason instead. When ctx ends while a device is
// still opening (an OpenCL kernel build takes 10-20 s the first time and
// cannot be interrupted), Open says so at once and returns ctx's error
// without waiting; the device is closed when its open returns.
func Open(ctx context.Context, spec string, opts Options) ([]device.Device, error) {
	lg := opts.logger()
	entries, clErr := List()
	ids, err := Resolve(spec, entries)
	if err != nil {
		if reason := NoGPUReason(entries, clErr); reason != "" && (errors.Is(err, errNoGPU) || errors.Is(err, errNoOpenCL)) {
			err = fmt.Errorf("%w: %s (looked for %s; see `clminer devices`)", err, reason, LookedFor)
		} else if clErr != nil {
			err = fmt.Errorf("%w (OpenCL: %v)", err, clErr)
		}
		return nil, err
	}
	if wantsAuto(spec) {
		if reason := NoGPUReason(entries, clErr); reason != "" {
			lg.Warn("no usable OpenCL GPU; falling back to the CPU device", "event", "device.fallback",
				"looked_for", LookedFor, "reason", reason, "using", "cpu",
				"hint", "`clminer devices` lists what OpenCL offers; --device cpu makes this choice explicit")
		}
	}
	var devs []device.Device
	for _, id := range ids {
		d, err := openAbandonable(ctx, id, opts, lg)
		if err != nil {
			for _, o := range devs {
				_ = o.Close()
			}
			return nil, fmt.Errorf("open %s: %w", id, err)
		}
		devs = append(devs, d)
	}
	return devs, nil
}

func wantsAuto(spec string) bool {
	if strings.TrimSpace(spec) == "" {
		return true
	}
	for _, part := range strings.Split(spec, ",") {
		if strings.EqualFold(strings.TrimSpace(part), "auto") {
			return true
		}
	}
	return false
}

// openDevice opens one device by id; tests replace it.
var openDevice = openOne

// openAbandonable runs openDevice so that the caller can stop waiting: a
// clBuildProgram call blocks its thread until the compiler is done, and an
// operator's Ctrl-C must not be ignored for that long. The abandoned open
// runs to its end in the background and closes what it opened.
func openAbandonable(ctx context.Context, id string, opts Options, lg *log.Logger) (device.Device, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	type opened struct {
		d   device.Device
		err error
	}
	ch := make(chan opened, 1)
	go func() {
		d, err := openDevice(id, opts, lg)
		ch <- opened{d, err}
	}()
	select {
	case o := <-ch:
		return o.d, o.err
	case <-ctx.Done():
	}
	lg.Warn("stopping: not waiting for the device to finish opening (an OpenCL kernel build cannot be interrupted; it is left to finish in the background)",
		"event", "device.open_abandoned", "device", id)
	go func() {
		if o := <-ch; o.d != nil {
			_ = o.d.Close()
		}
	}()
	return nil, fmt.Errorf("stopped before the device was ready: %w", context.Cause(ctx))
}

func openOne(id string, opts Options, lg *log.Logger) (device.Device, error) {
	if id == "cpu" {
		// The CPU device's paths hash 1 or 2 versions; any wider request
		// gets the path's own.
		return cpu.New(cpu.Options{Threads: opts.Threads, Path: opts.CPUPath, Versions: opts.KernelVersions})
	}
	var p, d int
	if _, err := fmt.Sscanf(id, "opencl:%d:%d", &p, &d); err != nil {
		return nil, errors.New("bad device id")
	}
	return opencl.Open(p, d, opencl.Options{
		KernelMS: opts.KernelMS, Intensity: opts.Intensity,
		VectorWidth: opts.VectorWidth, CacheDir: opts.CacheDir,
		Versions: opts.KernelVersions, Maj: opts.KernelMaj,
		OnCompile: func(ev opencl.CompileEvent) { logCompile(lg, ev) },
	})
}

// logCompile makes the kernel build visible: the first build of a device
// takes 8-20 s on some runtimes and would otherwise look like a hang.
func logCompile(lg *log.Logger, ev opencl.CompileEvent) {
	switch {
	case !ev.Done:
		lg.Info("preparing the OpenCL kernel (the first build on a device can take 10-20 s)", "event", "device.compile", "device", ev.Device, "name", ev.Name)
	case ev.Err != nil:
		lg.Error("OpenCL kernel build failed", "event", "device.compile_failed", "device", ev.Device, "seconds", ev.Elapsed.Seconds(), "err", ev.Err)
	default:
		lg.Info("OpenCL kernel ready", "event", "device.compiled", "device", ev.Device, "seconds", ev.Elapsed.Seconds(), "cached", ev.Cached)
	}
}

// CloseAll closes every device, returning the first error.
func CloseAll(devs []device.Device) error {
	var first error
	for _, d := range devs {
		if err := d.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
