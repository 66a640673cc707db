package cpu

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"clminer/work/device"
)

// Path names accepted by Options.Path.
const (
	PathAVX512   = "avx512"
	PathSHANI    = "sha-ni"
	PathAVX2     = "avx2"
	PathPortable = "portable"
)

// Chunks are how many nonces a worker takes at a time: a few milliseconds
// of work on each path, which bounds how late a cancellation is noticed and
// how stale Progress gets, while keeping the shared counter and the
// callbacks far off the hot path.
const (
	fastChunk     = 1 << 16 // ~1-6 ms at the 10-50 MH/s of the assembly paths
	portableChunk = 1 << 13 // ~4-8 ms at the 1-2 MH/s of portable
)

// kernel tests nonces [start, start+n) of one unit and calls found for each
// candidate. n never makes the range wrap past 0xffffffff.
type kernel func(p *params, start, n uint32, found func(uint32))

// versionsKernel tests nonces [start, start+n) of len(ps) rolled versions
// of one header, whose params are ps, and calls found for each candidate.
type versionsKernel func(ps []*params, start, n uint32, found func(v int, nonce uint32))

// A shape is one way a path hashes: its kernel, how many nonces it takes
// side by side and how many rolled versions of each. A path may have several
// (tuned for different cores); the device measures them at start and runs
// the fastest (see calibrate.go).
type shape struct {
	path  string
	name  string // unique within the path: benchmarks and tests name it
	lanes int    // nonces hashed side by side, for Info
	// versions is how many rolled versions of each nonce scanVersions
	// hashes; 1 for a one-version shape, which has scan instead.
	versions     int
	scan         kernel
	scanVersions versionsKernel
	// e60, for the SHA-NI shapes, is the kernel itself: it leaves in out
	// e after round 60 of the second hash for each of its lanes (nonces of
	// ps[0]) or versions (ps), which tests compare with portableE60.
	e60 func(ps []*params, nonce uint32, out []uint32)
}

type path struct {
	name  string
	ok    func() bool
	chunk uint64
	// single and multi are the path's one-version and rolled-version
	// shapes, in the order preferred when they measure alike.
	single, multi []shape
}

// paths returns the paths this CPU can run, in their default order;
// portable is always there and always last.
func paths() []path {
	var ps []path
	for _, p := range archPaths() {
		if p.ok() {
			ps = append(ps, p)
		}
	}
	return append(ps, path{name: PathPortable, ok: func() bool { return true }, chunk: portableChunk,
		single: []shape{{path: PathPortable, name: "1", lanes: 1, versions: 1, scan: scanPortable}}})
}

// Paths returns the names of the paths usable on this CPU, fastest first
// (as measured at start when the CPU has more than one).
func Paths() []string {
	var names []string
	best := BestPath()
	names = append(names, best)
	for _, p := range paths() {
		if p.name != best {
			names = append(names, p.name)
		}
	}
	return names
}

// BestPath returns the path New picks when Options.Path is empty: the one
// whose fastest shape, with versions rolled, measured fastest on this CPU.
func BestPath() string {
	ps := paths()
	if len(ps) == 1 {
		return ps[0].name
	}
	return calibrated(ps).multi.path
}

// Options configures a CPU device.
type Options struct {
	// Threads is the number of hashing goroutines; 0 means runtime.NumCPU().
	Threads int
	// Path forces a kernel by name ("" picks the fastest the CPU supports).
	Path string
	// Versions is how many rolled versions of each nonce a sweep hashes
	// together when the pool rolls versions: 0 picks the fastest shape
	// measured at start, 1 turns rolling off, and 2 or more asks for a
	// shape of that many versions (the fastest measured, if the path has
	// none of exactly that many).
	Versions int
}

// Device is the CPU mining device. It holds no per-sweep state, so
// concurrent Sweeps are safe.
type Device struct {
	threads int
	chunk   uint64
	// single hashes one version; multi (nil when rolling is off or the
	// chosen shapes have one version) rolled versions.
	single shape
	multi  *shape
	name   string
	closed atomic.Bool
}

var _ device.MultiVersion = (*Device)(nil)

// New returns a CPU device.
func New(opts Options) (*Device, error) {
	if opts.Threads < 0 {
		return nil, fmt.Errorf("cpu: threads %d: must be 0 (all CPUs) or more", opts.Threads)
	}
	if opts.Versions < 0 {
		return nil, fmt.Errorf("cpu: versions %d: must be 0 (the path's own), 1 or more", opts.Versions)
	}
	threads := opts.Threads
	if threads == 0 {
		threads = runtime.NumCPU()
	}
	ps := paths()
	if opts.Path != "" {
		var keep []path
		for _, p := range ps {
			if p.name == opts.Path {
				keep = append(keep, p)
			}
		}
		if keep == nil {
			why := "unknown"
			for _, p := range archPaths() {
				if p.name == opts.Path {
					why = "not supported by this CPU"
				}
			}
			return nil, fmt.Errorf("cpu: path %q: %s; supported here: %s", opts.Path, why, strings.Join(Paths(), ", "))
		}
		ps = keep
	}
	// With a worker on every P, the Ps never go idle, so nothing blocks in
	// the network poller: the pool client's goroutines were only woken by
	// sysmon, about every 10 ms per hop, which showed as 20-60 ms submit
	// round trips on loopback. One spare P lets the OS run them at once.
	if runtime.GOMAXPROCS(0) <= threads {
		runtime.GOMAXPROCS(threads + 1)
	}
	choice := calibrated(ps)
	d := &Device{threads: threads, single: choice.single, name: modelName()}
	switch {
	case opts.Versions == 1:
	case opts.Versions > 1:
		m := choice.multi
		if best, ok := choice.bestWith(opts.Versions); ok {
			m = best
		}
		d.multi = &m
	default:
		m := choice.multi
		d.multi = &m
	}
	if d.multi != nil && d.multi.versions == 1 {
		d.multi = nil
	}
	d.chunk = pathChunk(d.single.path)
	if d.multi != nil {
		d.chunk = max(d.chunk, pathChunk(d.multi.path))
	}
	return d, nil
}

func pathChunk(name string) uint64 {
	if name == PathPortable {
		return portableChunk
	}
	return fastChunk
}

// Versions is how many rolled versions of each nonce a sweep of Units
// hashes (device.MultiVersion); 1 when the device hashes one at a time.
func (d *Device) Versions() int {
	if d.multi == nil {
		return 1
	}
	return d.multi.versions
}

// Info describes the device: the shape it hashes rolled versions with and,
// where rolling is on, the one it hashes a single version with, each by the
// name that --cpu-path and the benchmarks use, so an operator sees what the
// calibration picked.
func (d *Device) Info() device.Info {
	one := describe(d.single)
	detail := one
	if m := d.multi; m != nil {
		detail = fmt.Sprintf("%s; one version: %s", describe(*m), one)
	}
	return device.Info{ID: "cpu", Kind: "cpu", Name: d.name, Detail: fmt.Sprintf("%s, %s", detail, count(d.threads, "thread"))}
}

// describe names a shape: "avx512/r4 (16 lanes, 4 versions)".
func describe(s shape) string {
	versions := ""
	if s.versions > 1 {
		versions = ", " + count(s.versions, "version")
	}
	return fmt.Sprintf("%s/%s (%s%s)", s.path, s.name, count(s.lanes, "lane"), versions)
}

func count(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// Path returns the name of the path the device hashes with: the rolled
// versions' one when it rolls versions.
func (d *Device) Path() string {
	if d.multi != nil {
		return d.multi.path
	}
	return d.single.path
}

// Close marks the device closed; there is nothing to release.
func (d *Device) Close() error {
	d.closed.Store(true)
	return nil
}

// ErrClosed is returned by Sweep after Close.
var ErrClosed = errors.New("cpu: device is closed")

// Sweep hashes nonces [s.Start, s.Start+s.Count) on d.threads goroutines.
// Workers pull chunks from a shared counter so a slow (shared, throttled)
// core does not hold the sweep up, and every goroutine has exited by the
// time Sweep returns.
func (d *Device) Sweep(ctx context.Context, s device.Sweep) (device.Result, error) {
	if d.closed.Load() {
		return device.Result{}, ErrClosed
	}
	units, err := s.VersionUnits(d.Versions())
	if err != nil {
		return device.Result{}, fmt.Errorf("cpu: %w", err)
	}
	end := uint64(s.Start) + s.Count
	if s.Count == 0 || end > 1<<32 {
		return device.Result{}, fmt.Errorf("cpu: sweep of %d nonces from %#x does not fit in 32 bits", s.Count, s.Start)
	}
	if err := ctx.Err(); err != nil {
		return device.Result{}, err
	}
	nv := uint64(len(units))
	var scan func(start, n uint32)
	if nv == 1 {
		p := newParams(units[0])
		found := s.Found
		if s.FoundVersion != nil {
			found = func(n uint32) { s.FoundVersion(0, n) }
		}
		if found == nil {
			found = func(uint32) {}
		}
		scan = func(start, n uint32) { d.single.scan(p, start, n, found) }
	} else {
		ps := make([]*params, len(units))
		for i, u := range units {
			ps[i] = newParams(u)
		}
		found := s.FoundVersion
		if found == nil {
			found = func(int, uint32) {}
		}
		scan = func(start, n uint32) { d.multi.scanVersions(ps, start, n, found) }
	}
	chunk := d.chunk
	workers := uint64(d.threads)
	if n := (s.Count + chunk - 1) / chunk; n < workers {
		workers = n
	}
	var next, hashes atomic.Uint64
	next.Store(uint64(s.Start))
	// Found is documented as concurrent, Progress is not: callers commonly
	// just add to a counter, so calls to it are serialized here.
	var progressMu sync.Mutex
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				lo := next.Add(chunk) - chunk
				if lo >= end {
					return
				}
				n := min(end-lo, chunk)
				scan(uint32(lo), uint32(n))
				hashes.Add(n * nv)
				if s.Progress != nil {
					progressMu.Lock()
					s.Progress(n * nv)
					progressMu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	res := device.Result{Hashes: hashes.Load()}
	if res.Hashes < s.Count*nv {
		if err := ctx.Err(); err != nil {
			return res, err
		}
	}
	return res, nil
}
