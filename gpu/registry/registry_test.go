package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/charmbracelet/log"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"clminer/gpu/gputest"
	"clminer/gpu/opencl"
	"clminer/work/device"
)

var rig = []Entry{
	{ID: "opencl:0:0", Kind: "opencl", Type: "CPU"},
	{ID: "opencl:1:0", Kind: "opencl", Type: "GPU"},
	{ID: "opencl:1:1", Kind: "opencl", Type: "GPU"},
	{ID: "cpu", Kind: "cpu", Type: "CPU"},
}

var laptop = []Entry{{ID: "cpu", Kind: "cpu", Type: "CPU"}}

func TestResolve(t *testing.T) {
	tests := []struct {
		spec    string
		entries []Entry
		want    []string
		err     string
	}{
		{"", rig, []string{"opencl:1:0", "opencl:1:1"}, ""},
		{"auto", laptop, []string{"cpu"}, ""},
		{"cpu", rig, []string{"cpu"}, ""},
		{"gpu", rig, []string{"opencl:1:0", "opencl:1:1"}, ""},
		{"opencl", rig, []string{"opencl:0:0", "opencl:1:0", "opencl:1:1"}, ""},
		{"all", rig, []string{"opencl:0:0", "opencl:1:0", "opencl:1:1", "cpu"}, ""},
		{"opencl:1:1, cpu,opencl:1:1", rig, []string{"opencl:1:1", "cpu"}, ""},
		{"OpenCL:01:0", rig, []string{"opencl:1:0"}, ""},
		{"gpu", laptop, nil, "no OpenCL GPU"},
		{"opencl", laptop, nil, "no OpenCL device"},
		{"opencl:2:0", rig, nil, "no such OpenCL device"},
		{"opencl:x:0", rig, nil, "must be numbers"},
		{"opencl:1", rig, nil, "want opencl:PLATFORM:DEVICE"},
		{"cuda", rig, nil, "unknown device"},
	}
	for _, tc := range tests {
		got, err := Resolve(tc.spec, tc.entries)
		if tc.err != "" {
			require.ErrorContains(t, err, tc.err, tc.spec)
			continue
		}
		require.NoError(t, err, tc.spec)
		assert.Equal(t, tc.want, got, tc.spec)
	}
}

func TestValidateIsTheOneRange(t *testing.T) {
	ok := Options{KernelMS: 50}
	tests := []struct {
		mod  func(*Options)
		want string
	}{
		{func(o *Options) {}, ""},
		{func(o *Options) { o.Intensity = 10 }, ""},
		{func(o *Options) { o.Intensity = 31 }, ""},
		{func(o *Options) { o.Intensity = 9 }, "--intensity 9: must be 10..31"},
		{func(o *Options) { o.Intensity = 32 }, "--intensity 32: must be 10..31"},
		{func(o *Options) { o.Threads = -1 }, "--threads -1"},
		{func(o *Options) { o.KernelMS = 0 }, "--kernel-ms 0"},
		{func(o *Options) { o.VectorWidth = 3 }, "--vector-width 3"},
		{func(o *Options) { o.VectorWidth = 16 }, ""},
		{func(o *Options) { o.CPUPath = "no-such-path" }, `--cpu-path "no-such-path"`},
	}
	for i, tc := range tests {
		o := ok
		tc.mod(&o)
		err := o.Validate()
		if tc.want == "" {
			assert.NoError(t, err, i)
			continue
		}
		assert.ErrorContains(t, err, tc.want, i)
	}
}

func TestNoGPUReason(t *testing.T) {
	assert.Empty(t, NoGPUReason(rig, nil))
	assert.Equal(t, "OpenCL lists no device", NoGPUReason(laptop, nil))
	assert.Equal(t, "boom", NoGPUReason(laptop, errors.New("boom")))
	pocl := []Entry{{ID: "opencl:0:0", Kind: "opencl", Type: "CPU", Name: "pthread-cpu"}, {ID: "cpu", Kind: "cpu", Type: "CPU"}}
	assert.Equal(t, "no OpenCL device is a GPU: opencl:0:0 is a CPU (pthread-cpu)", NoGPUReason(pocl, nil))
}

type closeRecorder struct {
	gputest.Device
	closed chan struct{}
}

func (d *closeRecorder) Close() error { close(d.closed); return nil }

// A stop while a device is still opening (an OpenCL kernel build, which
// cannot be interrupted) is acknowledged at once and Open returns without
// waiting; the device opened later is closed, and nothing is left running.
func TestOpenStopsWaitingForASlowOpen(t *testing.T) {
	defer goleak.VerifyNone(t)
	started, release := make(chan struct{}), make(chan struct{})
	dev := &closeRecorder{closed: make(chan struct{})}
	saved := openDevice
	openDevice = func(id string, _ Options, _ *log.Logger) (device.Device, error) {
		close(started)
		<-release // clBuildProgram, still compiling
		return dev, nil
	}
	defer func() { openDevice = saved }()

	var logs bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	type result struct {
		devs []device.Device
		err  error
	}
	done := make(chan result, 1)
	go func() {
		devs, err := Open(ctx, "cpu", Options{KernelMS: 50, Log: log.New(&logs)})
		done <- result{devs, err}
	}()
	<-started
	cancel()
	r := <-done // returns while the open is still blocked on release
	require.ErrorIs(t, r.err, context.Canceled)
	assert.ErrorContains(t, r.err, "open cpu: stopped before the device was ready")
	assert.Empty(t, r.devs)
	assert.Contains(t, logs.String(), "stopping: not waiting for the device to finish opening")
	assert.Contains(t, logs.String(), "device.open_abandoned")

	close(release)
	<-dev.closed
}

func TestOpenAfterStopOpensNothing(t *testing.T) {
	saved := openDevice
	openDevice = func(string, Options, *log.Logger) (device.Device, error) {
		t.Error("a device was opened after the stop")
		return nil, errors.New("unreachable")
	}
	defer func() { openDevice = saved }()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Open(ctx, "cpu", Options{KernelMS: 50})
	require.ErrorIs(t, err, context.Canceled)
}

// No OpenCL at all is a machine meant for the CPU; a declared driver that
// yields no device, or a failing OpenCL call, is a broken installation.
func TestOpenCLProblem(t *testing.T) {
	empty := t.TempDir()
	t.Setenv("OCL_ICD_FILENAMES", "")
	t.Setenv("OCL_ICD_VENDORS", empty)
	noRuntime := fmt.Errorf("%w: libOpenCL.so.1: cannot open shared object file", opencl.ErrNoRuntime)
	noPlatform := fmt.Errorf("%w: the ICD loader found no installed platform", opencl.ErrNoPlatform)

	why, broken := OpenCLProblem(rig, nil)
	assert.Equal(t, "", why)
	assert.False(t, broken)
	why, broken = OpenCLProblem(laptop, noRuntime)
	assert.Contains(t, why, "libOpenCL.so.1")
	assert.False(t, broken, "no runtime and no driver: absent")
	why, broken = OpenCLProblem(laptop, noPlatform)
	assert.Contains(t, why, "no installed platform")
	assert.False(t, broken)
	_, broken = OpenCLProblem(laptop, nil)
	assert.False(t, broken)
	why, broken = OpenCLProblem(laptop, &opencl.Error{Func: "clGetPlatformIDs", Code: -1001})
	assert.Contains(t, why, "clGetPlatformIDs")
	assert.True(t, broken, "a failing OpenCL call")

	vendors := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(vendors, "nvidia.icd"), []byte("libnvidia-opencl.so.1\n"), 0o644))
	t.Setenv("OCL_ICD_VENDORS", vendors)
	for _, err := range []error{noPlatform, noRuntime, nil} {
		why, broken = OpenCLProblem(laptop, err)
		assert.True(t, broken, "%v", err)
		assert.Contains(t, why, "OpenCL drivers are installed ("+filepath.Join(vendors, "nvidia.icd")+") but not working: ")
	}
	_, broken = OpenCLProblem(rig, nil)
	assert.False(t, broken, "a device listed: nothing to report")

	t.Setenv("OCL_ICD_VENDORS", empty)
	t.Setenv("OCL_ICD_FILENAMES", "/opt/amd/libamdocl64.so")
	why, broken = OpenCLProblem(laptop, noPlatform)
	assert.True(t, broken)
	assert.Contains(t, why, "/opt/amd/libamdocl64.so")
}
