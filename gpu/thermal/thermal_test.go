package thermal

import (
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/charmbracelet/log"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"clminer/gpu/gputest"
	"clminer/gpu/nvml"
	"clminer/work/device"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestLimitsValidate(t *testing.T) {
	for _, tc := range []struct {
		lim Limits
		err string
	}{
		{Limits{}, ""},
		{Limits{Target: 75}, ""},
		{Limits{Target: 75, Cutoff: 85}, ""},
		{Limits{Target: 85, Cutoff: 85}, "--temp-cutoff 85 must be above --temp-target 85"},
		{Limits{Target: 5}, "--temp-target 5: want a GPU temperature in °C between 30 and 110"},
		{Limits{Cutoff: 200}, "--temp-cutoff 200"},
		{Limits{Cutoff: -1}, "--temp-cutoff -1"},
	} {
		err := tc.lim.Validate()
		if tc.err == "" {
			assert.NoError(t, err)
			continue
		}
		require.Error(t, err)
		assert.Contains(t, err.Error(), tc.err)
	}
}

// Above the target the speed falls in proportion to the excess, to a
// floor; below it, it climbs back a step per reading; changes are
// reported in 10-point steps. The cutoff idles the GPU, which resumes only
// once it is the hysteresis below the cutoff.
func TestThrottleSteering(t *testing.T) {
	th := NewThrottle(Limits{Target: 70, Cutoff: 85, Hysteresis: 5})
	scale := func() float64 { s, _, _ := th.State(); return s }
	assert.Equal(t, None, th.Update(70))
	assert.Equal(t, 1.0, scale())
	assert.Equal(t, Slowed, th.Update(75)) // 5 °C over: -25%
	assert.InDelta(t, 0.75, scale(), 1e-9)
	assert.Equal(t, None, th.Update(71)) // -5%: under a 10-point step, not logged
	assert.InDelta(t, 0.7125, scale(), 1e-9)
	for range 100 {
		th.Update(80)
	}
	assert.Equal(t, minScale, scale(), "floored")
	assert.Equal(t, None, th.Update(69.5), "within the dead band: hold")
	assert.Equal(t, minScale, scale())
	assert.Equal(t, None, th.Update(60))
	assert.InDelta(t, 0.15, scale(), 1e-9, "cooler: +5 points a reading")
	n := 1
	for th.Update(60) != SpedUp {
		n++
		require.Less(t, n, 5, "a rise of 10 points or more is reported")
	}
	var last Change
	for range 20 {
		if c := th.Update(60); c != None {
			last = c
		}
	}
	assert.Equal(t, FullBack, last)
	assert.Equal(t, 1.0, scale())

	_, idle, changed := th.State()
	assert.False(t, idle)
	assert.Equal(t, Idled, th.Update(85))
	select {
	case <-changed:
	default:
		t.Fatal("a state change wakes waiters")
	}
	_, idle, _ = th.State()
	assert.True(t, idle)
	assert.NotEqual(t, Resumed, th.Update(82), "hysteresis: 82 is not cool enough")
	_, idle, _ = th.State()
	assert.True(t, idle)
	assert.Equal(t, Resumed, th.Update(80))
	_, idle, _ = th.State()
	assert.False(t, idle)
}

// slices records the ranges a wrapped device was asked for.
type slices struct {
	mu     sync.Mutex
	ranges [][2]uint64
	perN   time.Duration // fake time per nonce
	clock  time.Time
}

func (s *slices) Info() device.Info {
	return device.Info{ID: "opencl:0:0", Kind: "opencl", Name: "NVIDIA Fake"}
}
func (s *slices) Close() error { return nil }
func (s *slices) Sweep(ctx context.Context, sw device.Sweep) (device.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ranges = append(s.ranges, [2]uint64{uint64(sw.Start), sw.Count})
	s.clock = s.clock.Add(time.Duration(sw.Count) * s.perN)
	return device.Result{Hashes: sw.Count}, ctx.Err()
}
func (s *slices) now() time.Time { s.mu.Lock(); defer s.mu.Unlock(); return s.clock }

// Throttled, a sweep is hashed whole, in contiguous slices sized to about
// 200 ms at the measured rate, with a pause after each that leaves the GPU
// busy the allowed fraction of the time.
func TestThrottledSweepCoversRangeWithPauses(t *testing.T) {
	th := NewThrottle(Limits{Target: 70})
	th.Update(80) // 10 °C over: half speed
	scale, _, _ := th.State()
	require.InDelta(t, 0.5, scale, 1e-9)
	dev := &slices{perN: time.Microsecond, clock: time.Unix(0, 0)} // 1 MH/s
	d := Wrap(dev, th)
	d.now = dev.now
	var pauses []time.Duration
	d.sleep = func(_ context.Context, p time.Duration) error { pauses = append(pauses, p); return nil }
	res, err := d.Sweep(context.Background(), device.Sweep{Start: 1000, Count: 3_000_000})
	require.NoError(t, err)
	assert.Equal(t, uint64(3_000_000), res.Hashes)
	next := uint64(1000)
	for i, r := range dev.ranges {
		assert.Equal(t, next, r[0], "slice %d starts where the last ended", i)
		next += r[1]
		if i > 0 && i < len(dev.ranges)-1 {
			assert.Equal(t, uint64(200_000), r[1], "200 ms at 1 MH/s")
		}
	}
	assert.Equal(t, uint64(3_001_000), next)
	require.Len(t, pauses, len(dev.ranges))
	assert.Equal(t, time.Second, pauses[0], "the first slice (2^20 nonces, 1.05 s) pauses its length, capped at 1 s")
	assert.Equal(t, 200*time.Millisecond, pauses[1], "half speed: pause as long as the slice ran")
}

// At the cutoff a sweep hashes nothing until the GPU cools; a cancel ends
// the wait at once.
func TestCutoffIdlesUntilCool(t *testing.T) {
	th := NewThrottle(Limits{Cutoff: 85})
	th.Update(90)
	dev := &slices{perN: time.Nanosecond}
	d := Wrap(dev, th)
	done := make(chan device.Result)
	go func() {
		r, err := d.Sweep(context.Background(), device.Sweep{Count: 1 << 22})
		assert.NoError(t, err)
		done <- r
	}()
	select {
	case <-done:
		t.Fatal("swept while idle")
	case <-time.After(50 * time.Millisecond): // nothing to wait for: proving a negative
	}
	dev.mu.Lock()
	assert.Empty(t, dev.ranges)
	dev.mu.Unlock()
	th.Update(79)
	r := <-done
	assert.Equal(t, uint64(1<<22), r.Hashes)

	th.Update(90)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error)
	go func() { _, err := d.Sweep(ctx, device.Sweep{Count: 1 << 20}); errc <- err }()
	cancel()
	assert.ErrorIs(t, <-errc, context.Canceled)
}

// OpenCL devices are matched to NVML GPUs by name, in order among GPUs of
// one name; the CPU and unmatched devices get nothing; without limits the
// readings carry no throttle; with them, a hot GPU is logged and slowed.
func TestMonitorMatchesAndSteers(t *testing.T) {
	fake := nvml.NewFake("NVIDIA B", "NVIDIA A", "NVIDIA A")
	fake.Set(0, device.Reading{TempC: nvml.Ptr(60), PowerW: nvml.Ptr(200), FanPct: nvml.Ptr(30)})
	fake.Set(1, device.Reading{TempC: nvml.Ptr(80)})
	fake.Set(2, device.Reading{}) // no sensors at all
	devs := []device.Info{
		{ID: "opencl:0:0", Kind: "opencl", Name: "NVIDIA A"},
		{ID: "opencl:0:1", Kind: "opencl", Name: "NVIDIA B"},
		{ID: "opencl:0:2", Kind: "opencl", Name: "nvidia a "},
		{ID: "opencl:1:0", Kind: "opencl", Name: "AMD Something"},
		{ID: "cpu", Kind: "cpu", Name: "NVIDIA A"},
	}
	var logbuf strings.Builder
	logger := log.New(&logbuf)
	logger.SetFormatter(log.JSONFormatter)

	plain := NewMonitor(fake, devs, Limits{}, time.Hour, 0, log.New(io.Discard))
	assert.Equal(t, []string{"opencl:0:0=nvml:1 00000000:02:00.0 GPU-fake-1", "opencl:0:1=nvml:0 00000000:01:00.0 GPU-fake-0", "opencl:0:2=nvml:2 00000000:03:00.0 GPU-fake-2"}, plain.Bound())
	plain.Poll()
	st := plain.States()
	require.Len(t, st, 3)
	assert.Nil(t, st[0].Scale, "no limits: no throttle fields")
	assert.Equal(t, 80.0, *st[0].Reading.TempC)
	assert.True(t, st[2].Reading.Empty())

	m := NewMonitor(fake, devs, Limits{Target: 70, Cutoff: 90}, time.Hour, 0, logger)
	m.Poll()
	st = m.States()
	assert.InDelta(t, 0.5, *st[0].Scale, 1e-9, "opencl:0:0 is NVML 1 at 80 °C")
	assert.Equal(t, 1.0, *st[1].Scale)
	assert.Contains(t, logbuf.String(), `"event":"gpu.thermal_throttle"`)
	assert.Contains(t, logbuf.String(), `"event":"gpu.thermal_no_sensor"`)
	m.Poll()
	assert.Equal(t, 1, strings.Count(logbuf.String(), "gpu.thermal_no_sensor"), "said once")
	fake.SetTemp(1, 95)
	m.Poll()
	assert.Contains(t, logbuf.String(), `"event":"gpu.thermal_idle"`)
	assert.True(t, *m.States()[0].Idle)

	wrapped := m.Wrap([]device.Device{&slices{}, &slices{}})
	_, ok := wrapped[0].(*Device)
	assert.True(t, ok, "a bound GPU under limits is wrapped")
}

// Unthrottled, slices last about 2 s, so a GPU under its limits loses
// little to restarting the batch pipeline.
func TestUnthrottledSlicesAreLong(t *testing.T) {
	th := NewThrottle(Limits{Target: 80})
	dev := &slices{perN: time.Microsecond, clock: time.Unix(0, 0)}
	d := Wrap(dev, th)
	d.now = dev.now
	d.sleep = func(context.Context, time.Duration) error { t.Fatal("no pause at full speed"); return nil }
	_, err := d.Sweep(context.Background(), device.Sweep{Count: 10_000_000})
	require.NoError(t, err)
	require.Greater(t, len(dev.ranges), 2)
	assert.Equal(t, uint64(2_000_000), dev.ranges[1][1], "2 s at 1 MH/s")
}

// Two cards of one model with only the second mined: name-and-order
// matching would steer it by the first card's temperature, so it is called
// ambiguous (fleet refuses temperature limits then); all of them mined is not.
func TestAmbiguousMatching(t *testing.T) {
	fake := nvml.NewFake("NVIDIA A", "NVIDIA A", "NVIDIA B")
	one := []device.Info{{ID: "opencl:0:1", Kind: "opencl", Name: "NVIDIA A"}, {ID: "opencl:0:2", Kind: "opencl", Name: "NVIDIA B"}}
	m := NewMonitor(fake, one, Limits{Target: 70}, time.Hour, 0, log.New(io.Discard))
	require.Error(t, m.Ambiguous())
	assert.Contains(t, m.Ambiguous().Error(), "2 GPUs are nvidia a but 1 of them are mined")
	all := append([]device.Info{{ID: "opencl:0:0", Kind: "opencl", Name: "NVIDIA A"}}, one...)
	assert.NoError(t, NewMonitor(fake, all, Limits{Target: 70}, time.Hour, 0, log.New(io.Discard)).Ambiguous())
	t.Setenv("CUDA_VISIBLE_DEVICES", "1,0")
	assert.ErrorContains(t, NewMonitor(fake, all, Limits{Target: 70}, time.Hour, 0, log.New(io.Discard)).Ambiguous(), "CUDA_VISIBLE_DEVICES")
}

// A throttled multi-version GPU keeps its shared-schedule kernel.
func TestWrappedDeviceKeepsItsVersions(t *testing.T) {
	d := Wrap(&gputest.Device{MultiVersions: 4}, NewThrottle(Limits{Target: 70}))
	assert.Equal(t, 4, device.VersionsOf(d))
}
