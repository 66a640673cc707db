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

// versionsKernel tests nonces [start, start+n) of zVersions rolled versions
// of one header, whose params are ps, and calls found for each candidate.
type versionsKernel func(ps *[zVersions]*params, start, n uint32, found func(v int, nonce uint32))

type path struct {
	name  string
	lanes int // nonces hashed side by side, for Info
	scan  kernel
	ok    func() bool
	chunk uint64
	// versions is how many rolled versions scanVersions hashes at once
	// (0: the path has no multi-version kernel).
	versions     int
	scanVersions versionsKernel
}

// paths returns the paths this CPU can run, fastest first; portable is
// always there and always last.
func paths() []path {
	var ps []path
	for _, p := range archPaths() {
		if p.ok() {
			ps = append(ps, p)
		}
	}
	return append(ps, path{name: PathPortable, lanes: 1, scan: scanPortable, ok: func() bool { return true }, chunk: portableChunk})
}

// Paths returns the names of the paths usable on this CPU, fastest first.
func Paths() []string {
	var names []string
	for _, p := range paths() {
		names = append(names, p.name)
	}
	return names
}

// BestPath returns the path New picks when Options.Path is empty.
func BestPath() string { return paths()[0].name }

// Options configures a CPU device.
type Options struct {
	// Threads is the number of hashing goroutines; 0 means runtime.NumCPU().
	Threads int
	// Path forces a kernel by name ("" picks the fastest the CPU supports).
	Path string
	// Versions is how many rolled versions of each nonce a sweep hashes
	// together when the pool rolls versions: 0 picks the path's own (2 on
	// avx512, whose versions share the first hash's message schedule; 1
	// elsewhere), 1 turns it off, and more asks for the path's.
	Versions int
}

// Device is the CPU mining device. It holds no per-sweep state, so
// concurrent Sweeps are safe.
type Device struct {
	threads  int
	path     path
	versions int
	name     string
	closed   atomic.Bool
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
	chosen := ps[0]
	if opts.Path != "" {
		found := false
		for _, p := range ps {
			if p.name == opts.Path {
				chosen, found = p, true
				break
			}
		}
		if !found {
			why := "unknown"
			for _, p := range archPaths() {
				if p.name == opts.Path {
					why = "not supported by this CPU"
				}
			}
			return nil, fmt.Errorf("cpu: path %q: %s; supported here: %s", opts.Path, why, strings.Join(Paths(), ", "))
		}
	}
	// With a worker on every P, the Ps never go idle, so nothing blocks in
	// the network poller: the pool client's goroutines were only woken by
	// sysmon, about every 10 ms per hop, which showed as 20-60 ms submit
	// round trips on loopback. One spare P lets the OS run them at once.
	if runtime.GOMAXPROCS(0) <= threads {
		runtime.GOMAXPROCS(threads + 1)
	}
	versions := max(chosen.versions, 1)
	if opts.Versions == 1 {
		versions = 1
	}
	return &Device{threads: threads, path: chosen, versions: versions, name: modelName()}, nil
}

// Versions is how many rolled versions of each nonce a sweep of Units
// hashes (device.MultiVersion); 1 when the path has no multi-version kernel.
func (d *Device) Versions() int { return d.versions }

// Info describes the device.
func (d *Device) Info() device.Info {
	versions := ""
	if d.versions > 1 {
		versions = fmt.Sprintf(", %d versions", d.versions)
	}
	return device.Info{
		ID:     "cpu",
		Kind:   "cpu",
		Name:   d.name,
		Detail: fmt.Sprintf("%s (%d lanes%s), %d threads", d.path.name, d.path.lanes, versions, d.threads),
	}
}

// Path returns the name of the kernel the device runs.
func (d *Device) Path() string { return d.path.name }

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
	units, err := s.VersionUnits(d.versions)
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
		scan = func(start, n uint32) { d.path.scan(p, start, n, found) }
	} else {
		var ps [zVersions]*params
		for i, u := range units {
			ps[i] = newParams(u)
		}
		found := s.FoundVersion
		if found == nil {
			found = func(int, uint32) {}
		}
		scan = func(start, n uint32) { d.path.scanVersions(&ps, start, n, found) }
	}
	chunk := d.path.chunk
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
