package registry

import (
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"

	"clminer/gpu"
	"clminer/gpu/cpu"
	"clminer/gpu/opencl"
)

// Options configures the devices Open creates.
type Options struct {
	// Threads is the CPU device's worker count (0: one per core).
	Threads int
	// CPUPath forces a CPU hashing path ("" picks the fastest).
	CPUPath string
	// KernelMS is the OpenCL kernel-time target per batch (0: default).
	KernelMS float64
	// Intensity fixes OpenCL batches at 2^Intensity nonces (0: autotune).
	Intensity int
	// VectorWidth forces the OpenCL kernel's vector width (0: the device's).
	VectorWidth int
	// CacheDir holds compiled OpenCL programs ("": the user cache dir).
	CacheDir string
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
				VectorWidth: d.PreferredVectorWidthInt,
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
				return nil, fmt.Errorf("--device gpu: no OpenCL GPU found (see `clminer devices`)")
			}
		case part == "opencl":
			if byKind(func(e Entry) bool { return e.Kind == "opencl" }) == 0 {
				return nil, fmt.Errorf("--device opencl: no OpenCL device found (see `clminer devices`)")
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

// Open resolves spec and opens each device. On error, devices already
// opened are closed.
func Open(spec string, opts Options) ([]gpu.Device, error) {
	entries, clErr := List()
	ids, err := Resolve(spec, entries)
	if err != nil {
		if clErr != nil {
			err = fmt.Errorf("%w (OpenCL: %v)", err, clErr)
		}
		return nil, err
	}
	var devs []gpu.Device
	for _, id := range ids {
		d, err := openOne(id, opts)
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

func openOne(id string, opts Options) (gpu.Device, error) {
	if id == "cpu" {
		return cpu.New(cpu.Options{Threads: opts.Threads, Path: opts.CPUPath})
	}
	var p, d int
	if _, err := fmt.Sscanf(id, "opencl:%d:%d", &p, &d); err != nil {
		return nil, errors.New("bad device id")
	}
	return opencl.Open(p, d, opencl.Options{
		KernelMS: opts.KernelMS, Intensity: opts.Intensity,
		VectorWidth: opts.VectorWidth, CacheDir: opts.CacheDir,
	})
}

// CloseAll closes every device, returning the first error.
func CloseAll(devs []gpu.Device) error {
	var first error
	for _, d := range devs {
		if err := d.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
