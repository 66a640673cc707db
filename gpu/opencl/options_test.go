package opencl

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// What real runtimes report, as resolve sees it. None of these tests
// needs an OpenCL runtime.
var (
	nvidiaGPU = DeviceInfo{Name: "NVIDIA GeForce RTX 4090", Type: "GPU", Vendor: "NVIDIA Corporation",
		PreferredVectorWidthInt: 1, MaxWorkGroupSize: 1024}
	amdGPU = DeviceInfo{Name: "gfx1100", Type: "GPU", Vendor: "Advanced Micro Devices, Inc.",
		PreferredVectorWidthInt: 4, MaxWorkGroupSize: 256}
	poclAVX2 = DeviceInfo{Name: "cpu-haswell", Type: "CPU", Vendor: "AuthenticAMD",
		PreferredVectorWidthInt: 8, MaxWorkGroupSize: 4096}
	poclAVX512 = DeviceInfo{Name: "cpu-skylake-avx512", Type: "CPU", Vendor: "GenuineIntel",
		PreferredVectorWidthInt: 16, MaxWorkGroupSize: 4096}
	fpga = DeviceInfo{Name: "fpga", Type: "ACCELERATOR", Vendor: "Intel(R) Corporation",
		PreferredVectorWidthInt: 1, MaxWorkGroupSize: 8}
)

const (
	nvidiaPlatform = "NVIDIA CUDA"
	amdPlatform    = "AMD Accelerated Parallel Processing"
	poclPlatform   = "Portable Computing Language"
)

func TestResolveDefaultsByDevice(t *testing.T) {
	for _, tc := range []struct {
		name     string
		info     DeviceInfo
		platform string
		want     plan
	}{
		{"nvidia", nvidiaGPU, nvidiaPlatform, plan{vec: 1, nver: DefaultVersions, maj: MajLOP3, slots: DefaultSlots,
			local: 256, kernelMS: 50, build: "-D VECSIZE=1 -D NVER=4 -D MAJ_LOP3"}},
		{"amd: scalar whatever width it prefers", amdGPU, amdPlatform, plan{vec: 1, nver: DefaultVersions, maj: MajMerge,
			slots: DefaultSlots, local: 256, kernelMS: 50, build: "-D VECSIZE=1 -D NVER=4"}},
		{"pocl avx2", poclAVX2, poclPlatform, plan{vec: 8, nver: DefaultCPUVersions, maj: MajMerge, slots: DefaultSlots,
			local: 16, kernelMS: 50, build: "-D VECSIZE=8 -D NVER=2 -D LOOP_ROUNDS"}},
		{"pocl avx-512", poclAVX512, poclPlatform, plan{vec: 16, nver: DefaultCPUVersions, maj: MajMerge,
			slots: DefaultSlots, local: 16, kernelMS: 50, build: "-D VECSIZE=16 -D NVER=2 -D LOOP_ROUNDS"}},
		{"accelerator: GPU versions, its own group limit", fpga, "Intel(R) FPGA SDK for OpenCL(TM)", plan{vec: 1,
			nver: DefaultVersions, maj: MajMerge, slots: DefaultSlots, local: 8, kernelMS: 50, build: "-D VECSIZE=1 -D NVER=4"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := resolve(Options{}, tc.info, tc.platform)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestResolveHonoursOptions(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  Options
		info  DeviceInfo
		check func(*testing.T, plan)
	}{
		{"kernel ms", Options{KernelMS: 20}, nvidiaGPU, func(t *testing.T, p plan) { assert.Equal(t, 20.0, p.kernelMS) }},
		{"negative kernel ms is the default", Options{KernelMS: -1}, nvidiaGPU, func(t *testing.T, p plan) { assert.Equal(t, 50.0, p.kernelMS) }},
		{"intensity fixes the batch", Options{Intensity: 22}, nvidiaGPU, func(t *testing.T, p plan) { assert.Equal(t, 22, p.intensity) }},
		{"vector width on a GPU", Options{VectorWidth: 4}, nvidiaGPU, func(t *testing.T, p plan) {
			assert.Equal(t, 4, p.vec)
			assert.Equal(t, "-D VECSIZE=4 -D NVER=4 -D MAJ_LOP3", p.build)
		}},
		{"one version: no multi-version kernel", Options{Versions: 1}, poclAVX2, func(t *testing.T, p plan) {
			assert.Equal(t, 1, p.nver)
			assert.Equal(t, "-D VECSIZE=8 -D NVER=1 -D LOOP_ROUNDS", p.build)
		}},
		{"four versions on a CPU", Options{Versions: 4}, poclAVX2, func(t *testing.T, p plan) { assert.Equal(t, 4, p.nver) }},
		{"maj forced", Options{Maj: MajLOP3}, poclAVX2, func(t *testing.T, p plan) {
			assert.Equal(t, MajLOP3, p.maj)
			assert.Equal(t, "-D VECSIZE=8 -D NVER=2 -D MAJ_LOP3 -D LOOP_ROUNDS", p.build)
		}},
		{"GPU form on a CPU: unrolled", Options{gpuForm: true}, poclAVX2, func(t *testing.T, p plan) {
			assert.Equal(t, "-D VECSIZE=8 -D NVER=2", p.build)
		}},
		{"work group", Options{WorkGroup: 64}, nvidiaGPU, func(t *testing.T, p plan) { assert.Equal(t, 64, p.local) }},
		{"work group above the device's maximum", Options{WorkGroup: 64}, fpga, func(t *testing.T, p plan) { assert.Equal(t, 8, p.local) }},
		{"slots for tests", Options{slots: 31}, nvidiaGPU, func(t *testing.T, p plan) { assert.Equal(t, 31, p.slots) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := resolve(tc.opts, tc.info, "")
			require.NoError(t, err)
			tc.check(t, p)
		})
	}
}

// A bad option is the same one-line error whatever the device, so that it
// reads the same on every machine.
func TestResolveRejectsBadOptions(t *testing.T) {
	for _, tc := range []struct {
		opts Options
		err  string
	}{
		{Options{Intensity: MinIntensity - 1}, "opencl: intensity 9 is outside 10..31"},
		{Options{Intensity: MaxIntensity + 1}, "opencl: intensity 32 is outside 10..31"},
		{Options{Intensity: -1}, "opencl: intensity -1 is outside 10..31"},
		{Options{VectorWidth: 3}, "opencl: vector width 3: want 1, 2, 4, 8 or 16"},
		{Options{VectorWidth: 32}, "opencl: vector width 32: want 1, 2, 4, 8 or 16"},
		{Options{VectorWidth: -1}, "opencl: vector width -1: want 1, 2, 4, 8 or 16"},
		{Options{Versions: 3}, "opencl: 3 versions per nonce: want 1, 2 or 4"},
		{Options{Versions: 8}, "opencl: 8 versions per nonce: want 1, 2 or 4"},
		{Options{Versions: -1}, "opencl: -1 versions per nonce: want 1, 2 or 4"},
		{Options{Maj: "fast"}, `opencl: Maj shape "fast": want "lop3" or "merge"`},
		{Options{Maj: "LOP3"}, `opencl: Maj shape "LOP3": want "lop3" or "merge"`},
		// Checked in this order: the first bad option is the one named.
		{Options{Intensity: 40, VectorWidth: 3, Versions: 3, Maj: "x"}, "opencl: intensity 40 is outside 10..31"},
		{Options{VectorWidth: 3, Versions: 3, Maj: "x"}, "opencl: vector width 3"},
		{Options{Versions: 3, Maj: "x"}, "opencl: 3 versions per nonce"},
	} {
		for _, info := range []DeviceInfo{nvidiaGPU, poclAVX2, fpga} {
			_, err := resolve(tc.opts, info, "")
			require.Error(t, err, "%+v on %s", tc.opts, info.Name)
			assert.True(t, strings.HasPrefix(err.Error(), tc.err), "%+v on %s: %v", tc.opts, info.Name, err)
			assert.NotContains(t, err.Error(), "\n")
		}
	}
}

func TestIntensityBoundsAreTheBatchBounds(t *testing.T) {
	for _, n := range []int{0, MinIntensity, 20, MaxIntensity} {
		p, err := resolve(Options{Intensity: n}, nvidiaGPU, nvidiaPlatform)
		require.NoError(t, err, "intensity %d", n)
		assert.Equal(t, n, p.intensity)
	}
	// The largest batch's nonce count still fits the kernel's uint count.
	assert.LessOrEqual(t, uint64(1)<<MaxIntensity, uint64(1<<32-1))
}

func TestVectorWidthFromPreferred(t *testing.T) {
	for _, tc := range []struct{ want, preferred, vec int }{
		{0, 0, 1}, // a runtime that reports nothing: scalar
		{0, 1, 1},
		{0, 2, 2},
		{0, 3, 2}, // no 3-wide loads: the width below
		{0, 4, 4},
		{0, 8, 8},
		{0, 12, 8},
		{0, 16, 16},
		{0, 32, 16}, // nothing wider than 16
		{2, 16, 2},  // asked for: taken as is
		{16, 1, 16},
	} {
		got, err := vectorWidth(tc.want, tc.preferred)
		require.NoError(t, err)
		assert.Equal(t, tc.vec, got, "want %d, preferred %d", tc.want, tc.preferred)
	}
}

func TestKernelVersionsByType(t *testing.T) {
	for _, tc := range []struct {
		want int
		typ  string
		n    int
	}{
		{0, "CPU", DefaultCPUVersions},
		{0, "GPU", DefaultVersions},
		{0, "ACCELERATOR", DefaultVersions},
		{0, "OTHER", DefaultVersions},
		{1, "GPU", 1},
		{2, "GPU", 2},
		{4, "CPU", 4},
	} {
		got, err := kernelVersions(tc.want, tc.typ)
		require.NoError(t, err)
		assert.Equal(t, tc.n, got, "%d on %s", tc.want, tc.typ)
	}
}

func TestMajShapeByVendor(t *testing.T) {
	for _, tc := range []struct{ want, vendor, platform, shape string }{
		{"", "NVIDIA Corporation", "NVIDIA CUDA", MajLOP3},
		{"", "Advanced Micro Devices, Inc.", "AMD Accelerated Parallel Processing", MajMerge},
		{"", "AuthenticAMD", "Portable Computing Language", MajMerge},
		{"", "GenuineIntel", "Intel(R) OpenCL", MajMerge},
		{"", "nvidia", "", MajLOP3},      // any case
		{"", "", "NVIDIA CUDA", MajLOP3}, // the platform alone says so
		{MajMerge, "NVIDIA Corporation", "NVIDIA CUDA", MajMerge},
		{MajLOP3, "AuthenticAMD", "Portable Computing Language", MajLOP3},
	} {
		got, err := majShape(tc.want, tc.vendor, tc.platform)
		require.NoError(t, err)
		require.Equal(t, tc.shape, got, "%+v", tc)
	}
}

func TestWorkGroup(t *testing.T) {
	for _, tc := range []struct {
		want int
		info DeviceInfo
		size int
	}{
		{0, DeviceInfo{Type: "CPU", MaxWorkGroupSize: 4096}, 16},
		{0, DeviceInfo{Type: "GPU", MaxWorkGroupSize: 1024}, 256},
		{0, DeviceInfo{Type: "ACCELERATOR"}, 256}, // no maximum reported: none applied
		{0, DeviceInfo{Type: "GPU", MaxWorkGroupSize: 64}, 64},
		{-5, DeviceInfo{Type: "CPU"}, 16},
		{512, DeviceInfo{Type: "GPU", MaxWorkGroupSize: 1024}, 512},
		{2048, DeviceInfo{Type: "GPU", MaxWorkGroupSize: 1024}, 1024},
	} {
		assert.Equal(t, tc.size, workGroup(tc.want, tc.info), "%d on %+v", tc.want, tc.info)
	}
}
