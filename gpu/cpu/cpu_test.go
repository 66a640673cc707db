package cpu

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"clminer/gpu/gputest"
	"clminer/work"
	"clminer/work/device"
)

// refTop is the top 32 bits of sha256d as a little-endian integer, from the
// unoptimized crypto/sha256 path.
func refTop(u *work.Unit, nonce uint32) uint32 {
	h := u.Hash(nonce)
	return binary.LittleEndian.Uint32(h[28:])
}

func collect(t *testing.T, k kernel, p *params, start, n uint32) []uint32 {
	t.Helper()
	var got []uint32
	k(p, start, n, func(nonce uint32) { got = append(got, nonce) })
	return got
}

func TestPortableMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 4 {
		u := gputest.RandomUnit(r, 0x00ffffff)
		p := newParams(u)
		start := r.Uint32()
		for i := range uint32(2000) {
			n := start + i
			// H7 is e after round 60 plus IV[7]; the hash stores it big-endian.
			h := u.Hash(n)
			require.Equal(t, binary.BigEndian.Uint32(h[28:]), portableE60(p, n)+work.IV[7], "nonce %#x", n)
		}
		var want []uint32
		for i := range uint32(5000) {
			if refTop(u, start+i) <= 0x00ffffff {
				want = append(want, start+i)
			}
		}
		require.NotEmpty(t, want)
		require.Equal(t, want, collect(t, scanPortable, p, start, 5000))
	}
}

// shapes returns every one-version (multi false) or rolled-version shape
// of every path this CPU has.
func shapes(multi bool) []shape {
	var ss []shape
	for _, pa := range paths() {
		if multi {
			ss = append(ss, pa.multi...)
		} else {
			ss = append(ss, pa.single...)
		}
	}
	return ss
}

// TestPathsMatchPortable runs every one-version shape of every path of this
// CPU against portable on random units with targets loose enough for many
// hits, and with uneven counts so the SIMD tails are exercised.
func TestPathsMatchPortable(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, pa := range shapes(false) {
		t.Run(pa.path+"/"+pa.name, func(t *testing.T) {
			for _, top := range []uint32{0, 0x00ffffff, 0x0fffffff, 0x7fffffff, 0xffffffff} {
				u := gputest.RandomUnit(r, top)
				p := newParams(u)
				start := r.Uint32() &^ 0xff
				for _, n := range []uint32{1, 3, 17, 4099} {
					want := collect(t, scanPortable, p, start+5, n)
					require.Equal(t, want, collect(t, pa.scan, p, start+5, n), "top %#x n %d", top, n)
					if top >= 0x0fffffff && n > 1000 {
						require.NotEmpty(t, want)
					}
				}
			}
		})
	}
}

// TestSHANIValues compares what every SHA-NI kernel leaves for each of its
// lanes, e after round 60 of the second hash, with portable's, for nonces
// and rolled versions alike.
func TestSHANIValues(t *testing.T) {
	if !slices.Contains(Paths(), PathSHANI) {
		t.Skip("no SHA-NI")
	}
	r := rand.New(rand.NewPCG(5, 6))
	for _, s := range append(shapes(false), shapes(true)...) {
		if s.e60 == nil {
			continue
		}
		t.Run(s.name, func(t *testing.T) {
			units := gputest.RolledVersions(gputest.RandomUnit(r, 0), 4)
			ps := make([]*params, len(units))
			for i, u := range units {
				ps[i] = newParams(u)
			}
			lanes := max(s.lanes, s.versions)
			out := make([]uint32, lanes)
			for range 100 {
				n := r.Uint32()
				s.e60(ps, n, out)
				for j := range out {
					if s.versions > 1 {
						require.Equal(t, portableE60(ps[j], n), out[j], "version %d", j)
					} else {
						require.Equal(t, portableE60(ps[0], n+uint32(j)), out[j], "lane %d", j)
					}
				}
			}
		})
	}
}

func TestVectors(t *testing.T) {
	defer goleak.VerifyNone(t)
	tested := 0
	for name, sol := range gputest.SolvedVectors(t) {
		u, nonce := sol.Unit, sol.Nonce
		for _, path := range Paths() {
			t.Run(name+"/"+path, func(t *testing.T) {
				d, err := New(Options{Threads: 2, Path: path})
				require.NoError(t, err)
				defer d.Close()
				start := uint64(nonce&^0xfff) - 0x2000
				if nonce < 0x3000 {
					start = 0
				}
				count := uint64(1 << 16)
				if start+count > 1<<32 {
					start = 1<<32 - count
				}
				var mu sync.Mutex
				var got []uint32
				res, err := d.Sweep(context.Background(), device.Sweep{
					Unit: u, Start: uint32(start), Count: count,
					Found: func(n uint32) { mu.Lock(); got = append(got, n); mu.Unlock() },
				})
				require.NoError(t, err)
				require.Equal(t, count, res.Hashes)
				require.Contains(t, got, nonce)
				require.True(t, u.Check(nonce).MeetsNetwork)
				for _, n := range got {
					require.True(t, u.Check(n).MeetsShare, "nonce %#x", n)
				}
			})
		}
		tested++
	}
	require.GreaterOrEqual(t, tested, 5)
}

func TestCancel(t *testing.T) {
	defer goleak.VerifyNone(t)
	u := gputest.RandomUnit(rand.New(rand.NewPCG(7, 8)), 0)
	for _, name := range Paths() {
		t.Run(name, func(t *testing.T) {
			d, err := New(Options{Threads: 2, Path: name})
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			var progress sync.WaitGroup
			progress.Add(1)
			var once sync.Once
			done := make(chan struct{})
			var res device.Result
			go func() {
				defer close(done)
				res, err = d.Sweep(ctx, device.Sweep{Unit: u, Start: 0, Count: 1 << 32,
					Progress: func(uint64) { once.Do(progress.Done) }})
			}()
			progress.Wait()
			cancel()
			t0 := time.Now()
			select {
			case <-done:
			case <-time.After(2 * time.Second):
				t.Fatal("sweep did not stop")
			}
			require.Less(t, time.Since(t0), 500*time.Millisecond)
			require.ErrorIs(t, err, context.Canceled)
			require.Positive(t, res.Hashes)
			require.Less(t, res.Hashes, uint64(1<<32))
		})
	}
}

func TestRangeEnd(t *testing.T) {
	defer goleak.VerifyNone(t)
	u := gputest.RandomUnit(rand.New(rand.NewPCG(9, 10)), 0xffffffff) // every nonce is a candidate
	for _, name := range Paths() {
		for _, r := range [][2]uint64{{0xffffffff, 1}, {0xffffffff - 100, 101}, {0xffffffff - 200000, 200001}, {7, 3}} {
			d, err := New(Options{Threads: 3, Path: name})
			require.NoError(t, err)
			var mu sync.Mutex
			seen := map[uint32]int{}
			var prog uint64
			res, err := d.Sweep(context.Background(), device.Sweep{Unit: u, Start: uint32(r[0]), Count: r[1],
				Found:    func(n uint32) { mu.Lock(); seen[n]++; mu.Unlock() },
				Progress: func(h uint64) { mu.Lock(); prog += h; mu.Unlock() },
			})
			require.NoError(t, err)
			require.Equal(t, r[1], res.Hashes)
			require.Equal(t, r[1], prog)
			require.Len(t, seen, int(r[1]), "%s %v", name, r)
			for n, c := range seen {
				require.Equal(t, 1, c)
				require.GreaterOrEqual(t, uint64(n), r[0])
				require.Less(t, uint64(n), r[0]+r[1])
			}
		}
	}
}

func TestOptions(t *testing.T) {
	_, err := New(Options{Path: "nope"})
	require.ErrorContains(t, err, "portable")
	d, err := New(Options{})
	require.NoError(t, err)
	require.Equal(t, BestPath(), d.Path())
	info := d.Info()
	require.Equal(t, "cpu", info.ID)
	require.Equal(t, "cpu", info.Kind)
	require.NotEmpty(t, info.Name)
	t.Log(info)
	_, err = d.Sweep(context.Background(), device.Sweep{Unit: gputest.RandomUnit(rand.New(rand.NewPCG(1, 1)), 0), Start: 1, Count: 1 << 32})
	require.Error(t, err)
	require.NoError(t, d.Close())
}

// TestVersionsMatchPortable runs every multi-version shape of this CPU
// against portable on each version, with targets loose enough for many
// hits and uneven counts for the SIMD tails.
func TestVersionsMatchPortable(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	tested := false
	for _, pa := range shapes(true) {
		tested = true
		t.Run(pa.path+"/"+pa.name, func(t *testing.T) {
			for _, top := range []uint32{0, 0x00ffffff, 0x0fffffff, 0x7fffffff, 0xffffffff} {
				units := gputest.RolledVersions(gputest.RandomUnit(r, top), pa.versions)
				ps := make([]*params, len(units))
				for i, u := range units {
					ps[i] = newParams(u)
				}
				start := r.Uint32() &^ 0xff
				for _, n := range []uint32{1, 3, 17, 4099} {
					got := make([][]uint32, pa.versions)
					pa.scanVersions(ps, start+5, n, func(v int, nonce uint32) { got[v] = append(got[v], nonce) })
					for v := range units {
						want := collect(t, scanPortable, ps[v], start+5, n)
						require.Equal(t, want, got[v], "top %#x n %d version %d", top, n, v)
						if top >= 0x0fffffff && n > 1000 {
							require.NotEmpty(t, want)
						}
					}
				}
			}
		})
	}
	if slices.Contains(Paths(), PathAVX512) {
		require.True(t, tested, "the avx512 path has multi-version kernels")
	}
}

// TestDeviceSweepsVersions: a sweep of rolled versions reports each
// candidate with its version's index, counts every version's hashes, and
// the same device still sweeps one version; units that are not versions of
// one header are refused.
func TestDeviceSweepsVersions(t *testing.T) {
	defer goleak.VerifyNone(t)
	dev, err := New(Options{Threads: 2})
	require.NoError(t, err)
	defer dev.Close()
	k := dev.Versions()
	if k == 1 {
		t.Skipf("path %s has no multi-version kernel", dev.Path())
	}
	require.Contains(t, dev.Info().Detail, fmt.Sprintf("%d versions", k))
	const top = 0x00ffffff
	r := rand.New(rand.NewPCG(7, 8))
	units := gputest.RolledVersions(gputest.RandomUnit(r, top), k)
	start := r.Uint32()&0x7fffffff | 1
	count := uint64(3*fastChunk + 17)
	var mu sync.Mutex
	got := make([][]uint32, k)
	var progress uint64
	res, err := dev.Sweep(context.Background(), device.Sweep{
		Units: units, Start: start, Count: count,
		FoundVersion: func(v int, n uint32) {
			mu.Lock()
			got[v] = append(got[v], n)
			mu.Unlock()
		},
		Progress: func(h uint64) { progress += h },
	})
	require.NoError(t, err)
	require.Equal(t, count*uint64(k), res.Hashes, "hashes count every version")
	require.Equal(t, res.Hashes, progress)
	for v, u := range units {
		want := collect(t, scanPortable, newParams(u), start, uint32(count))
		require.NotEmpty(t, want)
		slices.Sort(got[v])
		require.Equal(t, want, got[v], "version %d", v)
	}

	var one []uint32
	res, err = dev.Sweep(context.Background(), device.Sweep{Unit: units[1], Start: start, Count: 4099, Found: func(n uint32) {
		mu.Lock()
		one = append(one, n)
		mu.Unlock()
	}})
	require.NoError(t, err)
	require.Equal(t, uint64(4099), res.Hashes)
	slices.Sort(one)
	require.Equal(t, collect(t, scanPortable, newParams(units[1]), start, 4099), one)

	mixed := slices.Clone(units)
	mixed[k-1] = gputest.RandomUnit(r, top)
	_, err = dev.Sweep(context.Background(), device.Sweep{Units: mixed, Count: 64})
	require.ErrorContains(t, err, "second chunk")
	_, err = dev.Sweep(context.Background(), device.Sweep{Units: append(slices.Clone(units), units[0]), Count: 64})
	require.ErrorContains(t, err, fmt.Sprintf("%d versions", k+1))

	off, err := New(Options{Threads: 1, Versions: 1})
	require.NoError(t, err)
	require.Equal(t, 1, off.Versions())
}

// The real blocks, found by every multi-version shape of this CPU at the
// index their version holds in a unit of rolled versions, whichever index
// that is.
func TestVersionsFindRealBlocks(t *testing.T) {
	defer goleak.VerifyNone(t)
	ms := shapes(true)
	if len(ms) == 0 {
		t.Skip("no multi-version shape on this CPU")
	}
	for _, s := range ms {
		single := shapes(false)[0]
		dev := &Device{threads: 2, chunk: fastChunk, single: single, multi: &s, name: "test"}
		gputest.RealBlocksAtTheirIndex(t, dev, dev.Versions(), s.path+"-"+s.name)
		require.NoError(t, dev.Close())
	}
}

// TestCalibration: the device runs the shapes calibration picked, a
// version count asked for picks a shape of that many where the path has
// one, 1 turns rolling off, and a forced path keeps to its own shapes.
func TestCalibration(t *testing.T) {
	c := calibrated(paths())
	require.Equal(t, 1, c.single.versions)
	require.LessOrEqual(t, c.multi.versions, maxAutoVersions)
	d, err := New(Options{Threads: 1})
	require.NoError(t, err)
	require.Equal(t, c.single.name, d.single.name)
	if c.multi.versions > 1 {
		require.Equal(t, c.multi.name, d.multi.name)
	} else {
		require.Nil(t, d.multi)
	}
	for _, ms := range shapes(true) {
		d, err := New(Options{Threads: 1, Path: ms.path, Versions: ms.versions})
		require.NoError(t, err)
		require.Equal(t, ms.versions, d.Versions(), "%s asked for %d versions", ms.path, ms.versions)
		require.Equal(t, ms.path, d.Path())
	}
	for _, name := range Paths() {
		d, err := New(Options{Threads: 1, Path: name, Versions: 1})
		require.NoError(t, err)
		require.Equal(t, 1, d.Versions())
		require.Equal(t, name, d.Path())
		require.Equal(t, name, d.single.path)
	}
}
