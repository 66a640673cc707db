package opencl

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"clminer/gpu/gputest"
	"clminer/work"
	"clminer/work/device"
)

// requireEnv makes a missing OpenCL device a failure instead of a skip, for
// CI machines that are supposed to have one.
const requireEnv = "CLMINER_REQUIRE_OPENCL"

// sharedCache lets the tests compile each vector width once per run; POCL
// takes seconds per build.
var sharedCache string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "clminer-opencl-test-")
	if err != nil {
		panic(err)
	}
	sharedCache = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// needDevice skips (or, under CLMINER_REQUIRE_OPENCL=1, fails) when there is
// no OpenCL device, and returns the platform and device to test on.
func needDevice(tb testing.TB) (int, int) {
	tb.Helper()
	ps, err := Platforms()
	if err == nil {
		for _, p := range ps {
			if len(p.Devices) > 0 {
				return p.Index, 0
			}
		}
		err = ErrNoPlatform
	}
	if os.Getenv(requireEnv) == "1" {
		tb.Fatalf("%s=1 but no OpenCL device: %v", requireEnv, err)
	}
	tb.Skipf("no OpenCL device: %v", err)
	return 0, 0
}

func openTest(tb testing.TB, opts Options) *Device {
	tb.Helper()
	p, d := needDevice(tb)
	if opts.CacheDir == "" {
		opts.CacheDir = sharedCache
	}
	dev, err := Open(p, d, opts)
	require.NoError(tb, err)
	tb.Cleanup(func() { require.NoError(tb, dev.Close()) })
	return dev
}

// collector gathers Found nonces; Found may be called concurrently.
type collector struct {
	mu   sync.Mutex
	seen map[uint32]int
}

func newCollector() *collector { return &collector{seen: map[uint32]int{}} }

func (c *collector) found(n uint32) {
	c.mu.Lock()
	c.seen[n]++
	c.mu.Unlock()
}

func (c *collector) set(tb testing.TB) map[uint32]bool {
	tb.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[uint32]bool, len(c.seen))
	for n, k := range c.seen {
		require.Equalf(tb, 1, k, "nonce %08x reported %d times", n, k)
		out[n] = true
	}
	return out
}

// hostCandidates is the reference: every nonce whose hash's top word, read
// the way Target.Top reads a target, is at most top.
func hostCandidates(u *work.Unit, start uint32, count uint64, top uint32) map[uint32]bool {
	out := map[uint32]bool{}
	for i := uint64(0); i < count; i++ {
		n := start + uint32(i)
		if work.Target(u.Hash(n)).Top() <= top {
			out[n] = true
		}
	}
	return out
}

func TestVectorsFindRealNonce(t *testing.T) {
	dev := openTest(t, Options{})
	for name, sol := range gputest.SolvedVectors(t) {
		t.Run(name, func(t *testing.T) {
			u, nonce := sol.Unit, sol.Nonce
			require.True(t, u.Check(nonce).MeetsShare, "the vector's own nonce must meet its share target")
			// A window that does not start at the nonce, so the kernel's
			// nonce arithmetic is exercised, clipped to the nonce space.
			const window = 1 << 18
			start := uint64(nonce) &^ (window - 1)
			col := newCollector()
			res, err := dev.Sweep(context.Background(), device.Sweep{Unit: u, Start: uint32(start), Count: window, Found: col.found})
			require.NoError(t, err)
			require.Equal(t, uint64(window), res.Hashes)
			require.Zero(t, res.Lost)
			got := col.set(t)
			require.Truef(t, got[nonce], "nonce %08x not found in [%08x, +%d): got %v", nonce, start, window, got)
			for n := range got {
				// Difficulty-1 targets have a zero top word, so every
				// candidate must really have a zero top word.
				require.LessOrEqual(t, work.Target(u.Hash(n)).Top(), u.Target.Top())
			}
		})
	}
}

func TestCandidatesMatchHostEveryVectorWidth(t *testing.T) {
	const top = 0x00ffffff // about one nonce in 256
	for _, vw := range []int{1, 2, 4, 8, 16} {
		t.Run("vec"+itoa(vw), func(t *testing.T) {
			// Each width is its own kernel build (seconds to tens of
			// seconds on POCL): builds of separate devices overlap.
			t.Parallel()
			// Small fixed batches so one sweep spans several batches with
			// both buffers in flight; an odd start and count leave partial
			// vectors and a partial last batch.
			dev := openTest(t, Options{VectorWidth: vw, Intensity: 12})
			require.Equal(t, vw, dev.VectorWidth())
			r := rand.New(rand.NewPCG(uint64(vw), 42))
			for i := 0; i < 2; i++ {
				u := gputest.RandomUnit(r, top)
				start := r.Uint32() | 1
				count := uint64(3*4096 + 2*vw + 3)
				if i == 1 {
					start = 0xffffffff - uint32(count) + 1 // ends exactly at the top of the nonce space
				}
				col := newCollector()
				var progress uint64
				res, err := dev.Sweep(context.Background(), device.Sweep{
					Unit: u, Start: start, Count: count, Found: col.found,
					Progress: func(h uint64) { progress += h },
				})
				require.NoError(t, err)
				require.Equal(t, count, res.Hashes)
				require.Equal(t, count, progress)
				want := hostCandidates(u, start, count, top)
				require.NotEmpty(t, want)
				require.Equal(t, want, col.set(t))
			}
		})
	}
}

func TestOverflowLosesNothing(t *testing.T) {
	for _, tc := range []struct {
		name  string
		top   uint32
		slots int
	}{
		{"every nonce, 31 slots", 0xffffffff, 31},
		{"one in 16, default slots", 0x0fffffff, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dev := openTest(t, Options{Intensity: 16, slots: tc.slots})
			r := rand.New(rand.NewPCG(7, uint64(tc.top)))
			u := gputest.RandomUnit(r, tc.top)
			start := r.Uint32() >> 1
			count := uint64(2<<16 + 999)
			col := newCollector()
			res, err := dev.Sweep(context.Background(), device.Sweep{Unit: u, Start: start, Count: count, Found: col.found})
			require.NoError(t, err)
			require.Zero(t, res.Lost)
			require.Equal(t, count, res.Hashes)
			want := hostCandidates(u, start, count, tc.top)
			require.Greater(t, len(want), 2*DefaultSlots, "the case must overflow the buffer")
			require.Equal(t, want, col.set(t))
		})
	}
}

func TestBrokenKernelReportsBuildLog(t *testing.T) {
	p, d := needDevice(t)
	src := "__kernel void sha256d_search(__global uint *out) { out[0] = undefined_thing + ; }\n"
	dev, err := Open(p, d, Options{Source: src, CacheDir: t.TempDir()})
	require.Error(t, err)
	require.Nil(t, dev)
	require.ErrorContains(t, err, "clBuildProgram: CL_BUILD_PROGRAM_FAILURE")
	var clErr *Error
	require.True(t, errors.As(err, &clErr))
	require.Equal(t, "clBuildProgram", clErr.Func)
	require.NotEmpty(t, clErr.Log)
	require.Contains(t, err.Error(), clErr.Log)
	require.Contains(t, clErr.Log, "undefined_thing")
}

func TestCancelStopsPromptly(t *testing.T) {
	dev := openTest(t, Options{KernelMS: 20})
	u := gputest.RandomUnit(rand.New(rand.NewPCG(1, 2)), 0)
	ctx, cancel := context.WithCancel(context.Background())
	var cancelled atomic.Int64
	var once sync.Once
	progress := func(uint64) {
		once.Do(func() {
			time.AfterFunc(100*time.Millisecond, func() { cancelled.Store(time.Now().UnixNano()); cancel() })
		})
	}
	res, err := dev.Sweep(ctx, device.Sweep{Unit: u, Start: 0, Count: 1 << 32, Found: func(uint32) {}, Progress: progress})
	took := time.Since(time.Unix(0, cancelled.Load()))
	require.ErrorIs(t, err, context.Canceled)
	require.Positive(t, res.Hashes)
	require.Less(t, res.Hashes, uint64(1)<<32)
	// Two batches may be in flight; allow generous slack for a loaded CI
	// machine, far below the minutes the full range would take.
	require.Less(t, took, 2*time.Second, "sweep kept running %v after cancel", took)

	// The device is usable after a cancel.
	res, err = dev.Sweep(context.Background(), device.Sweep{Unit: u, Start: 5, Count: 1000})
	require.NoError(t, err)
	require.Equal(t, uint64(1000), res.Hashes)
}

func TestProgramCache(t *testing.T) {
	p, d := needDevice(t)
	dir := t.TempDir()
	opts := Options{CacheDir: dir, VectorWidth: 4, Intensity: 12}
	first, err := Open(p, d, opts)
	require.NoError(t, err)
	require.False(t, first.CacheHit())
	require.NoError(t, first.Close())
	files, err := filepath.Glob(filepath.Join(dir, "*.bin"))
	require.NoError(t, err)
	require.Len(t, files, 1)

	second, err := Open(p, d, opts)
	require.NoError(t, err)
	defer second.Close()
	require.True(t, second.CacheHit())

	// The cached program computes the same thing.
	const top = 0x00ffffff
	u := gputest.RandomUnit(rand.New(rand.NewPCG(3, 4)), top)
	col := newCollector()
	_, err = second.Sweep(context.Background(), device.Sweep{Unit: u, Start: 100, Count: 5000, Found: col.found})
	require.NoError(t, err)
	require.Equal(t, hostCandidates(u, 100, 5000, top), col.set(t))

	// Other build options are another program.
	third, err := Open(p, d, Options{CacheDir: dir, VectorWidth: 2, Intensity: 12})
	require.NoError(t, err)
	defer third.Close()
	require.False(t, third.CacheHit())
}

func TestInfo(t *testing.T) {
	dev := openTest(t, Options{VectorWidth: 8, Intensity: 14})
	info := dev.Info()
	require.Regexp(t, `^opencl:\d+:\d+$`, info.ID)
	require.Equal(t, "opencl", info.Kind)
	require.NotEmpty(t, info.Name)
	require.Equal(t, fmt.Sprintf("vector 8, versions %d, maj merge, batch 2^14 hashes, 50 ms", DefaultCPUVersions), info.Detail,
		"CPU runtimes default to DefaultCPUVersions")
}

// The no-runtime and no-platform cases need a fresh process, since Load
// runs once per process.
func TestNoRuntimeIsAnErrorNotACrash(t *testing.T) {
	if os.Getenv("CLMINER_OPENCL_CHILD") == "1" {
		ps, err := Platforms()
		require.Empty(t, ps)
		require.Error(t, err)
		if os.Getenv(LibraryEnv) != "" {
			require.ErrorIs(t, err, ErrNoRuntime)
			require.ErrorContains(t, err, "OpenCL runtime not found")
			require.ErrorContains(t, err, "cannot open shared object file")
		} else {
			require.ErrorIs(t, err, ErrNoPlatform)
		}
		_, err = Open(0, 0, Options{})
		require.Error(t, err)
		return
	}
	for _, env := range [][]string{
		{LibraryEnv + "=/nonexistent/libOpenCL.so.1"},
		{"OCL_ICD_VENDORS=" + t.TempDir(), LibraryEnv + "="},
	} {
		if env[0][:len("OCL")] == "OCL" {
			// Only meaningful where the ocl-icd loader itself is present.
			if err := Load(); err != nil {
				continue
			}
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestNoRuntimeIsAnErrorNotACrash$", "-test.v")
		cmd.Env = append(append(os.Environ(), "CLMINER_OPENCL_CHILD=1"), env...)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%v:\n%s", env, out)
	}
}

func itoa(v int) string {
	if v >= 100 {
		return itoa(v/10) + itoa(v%10)
	}
	if v >= 10 {
		return string(rune('0'+v/10)) + string(rune('0'+v%10))
	}
	return string(rune('0' + v))
}

func TestConcurrentSweepsAreSerialized(t *testing.T) {
	dev := openTest(t, Options{Intensity: 12})
	const top = 0x00ffffff
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u := gputest.RandomUnit(rand.New(rand.NewPCG(uint64(i), 11)), top)
			got := map[uint32]bool{}
			res, err := dev.Sweep(context.Background(), device.Sweep{Unit: u, Start: 1000, Count: 20000, Found: func(n uint32) { got[n] = true }})
			// require would call FailNow off the test goroutine.
			assert.NoError(t, err)
			assert.Equal(t, uint64(20000), res.Hashes)
			assert.Equal(t, hostCandidates(u, 1000, 20000, top), got)
		}()
	}
	wg.Wait()
}

func TestSweepRejectsBadRanges(t *testing.T) {
	dev := openTest(t, Options{Intensity: 12})
	u := gputest.RandomUnit(rand.New(rand.NewPCG(5, 5)), 0)
	_, err := dev.Sweep(context.Background(), device.Sweep{Unit: u, Start: 10, Count: 1 << 32})
	require.Error(t, err)
	_, err = dev.Sweep(context.Background(), device.Sweep{Count: 1})
	require.Error(t, err)
	res, err := dev.Sweep(context.Background(), device.Sweep{Unit: u, Start: 10, Count: 0})
	require.NoError(t, err)
	require.Zero(t, res.Hashes)
}

// The kernel prefilters on the target's top word only. A hash whose top
// word equals the target's while the rest is above it is such a pass: the
// host must count it as below target, never as a hardware error (at a pool
// difficulty D >= 1 that is all but 1/D of the kernel's candidates).
func TestPrefilterPassIsBelowTargetNotHWError(t *testing.T) {
	dev := openTest(t, Options{})
	var unit work.Unit
	for _, sol := range gputest.SolvedVectors(t) {
		unit = *sol.Unit
		break
	}
	// The nonce with the smallest hash top word in the window becomes the
	// target's top word, with zero below: that nonce alone passes the
	// prefilter, and its hash is above the full target.
	const window = 1 << 16
	best, bestTop := uint32(0), uint32(0xffffffff)
	for n := uint32(0); n < window; n++ {
		if top := work.Target(unit.Hash(n)).Top(); top < bestTop {
			best, bestTop = n, top
		}
	}
	unit.Target = work.Target{}
	binary.LittleEndian.PutUint32(unit.Target[28:], bestTop)
	var below []uint32
	res, err := device.SweepVerified(context.Background(), dev, &unit, 0, window, device.Verdicts{
		Share:       func(c work.Check) { t.Errorf("nonce %08x reported as a share", c.Nonce) },
		HWError:     func(n uint32) { t.Errorf("nonce %08x counted as a hardware error", n) },
		BelowTarget: func(c work.Check) { below = append(below, c.Nonce) },
	})
	require.NoError(t, err)
	require.Equal(t, uint64(window), res.Hashes)
	require.Equal(t, []uint32{best}, below)
	require.Zero(t, res.HWErrors)
}
