package device

import (
	"context"
	"errors"
	"fmt"

	"clminer/work"
)

// Info describes a device for `clminer devices`, logs and metrics.
type Info struct {
	// ID is what --device takes: "cpu", "opencl:P:D".
	ID string
	// Kind is "cpu", "opencl", or "test".
	Kind string
	// Name is the hardware name, e.g. "NVIDIA H100 80GB HBM3".
	Name string
	// Detail says how the device hashes, e.g. "avx512 16 lanes, 2 threads"
	// or "vector width 1, 50 ms batches".
	Detail string
	// PCIBusID is the device's PCI address, 0000:0a:00.0, when the driver
	// reports one ("" for the CPU): what ties it to a slot for rig managers
	// that number GPUs by bus.
	PCIBusID string
}

// Sweep asks a device to hash nonces [Start, Start+Count) of Unit, or of
// every unit in Units.
type Sweep struct {
	Unit *work.Unit
	// Units, when set, replaces Unit. More than one unit are rolled
	// versions of one unit (the same Tail and Target, only the version and
	// so the midstate differ), each hashed over the whole range; only a
	// MultiVersion device with Versions() == len(Units) gets such a sweep,
	// and it reports candidates to FoundVersion. One unit is a
	// single-version sweep.
	Units []*work.Unit
	Start uint32
	// Count is 1..2^32-Start.
	Count uint64
	// Found receives every nonce the device believes may meet Unit.Target.
	// Devices may prefilter on the target's top word only; the host
	// re-verifies each one. It is called from device goroutines, possibly
	// concurrently, and must not block for long.
	Found func(nonce uint32)
	// FoundVersion receives the candidates of a multi-version sweep: the
	// index into Units and the nonce. When set, it also receives those of
	// a single-version sweep, at index 0, in place of Found. The same rules
	// as Found apply.
	FoundVersion func(version int, nonce uint32)
	// Progress, when set, receives the number of hashes done since its last
	// call, at least once per batch, so hashrate stays live during long sweeps.
	Progress func(hashes uint64)
}

// VersionUnits returns the units s hashes on a device whose multi-version
// kernel takes versions units: Unit alone, or Units when it holds exactly
// that many rolled versions of one header (the same second chunk and
// target, which the shared schedule and the shared target test assume).
func (s Sweep) VersionUnits(versions int) ([]*work.Unit, error) {
	units := s.Units
	switch {
	case len(units) == 0 && s.Unit != nil:
		return []*work.Unit{s.Unit}, nil
	case len(units) == 0:
		return nil, errors.New("sweep without a unit")
	case len(units) > 1 && len(units) != versions:
		return nil, fmt.Errorf("sweep of %d versions; the kernel hashes 1 or %d", len(units), versions)
	}
	for _, u := range units {
		if u == nil {
			return nil, errors.New("sweep without a unit")
		}
		if u.Tail != units[0].Tail || u.Target != units[0].Target {
			return nil, errors.New("the versions of a sweep must share their second chunk and target")
		}
	}
	return units, nil
}

// Result is what a finished (or cancelled) sweep did.
type Result struct {
	// Hashes is the number of hashes done: nonces times versions.
	Hashes uint64
	// Lost counts candidates the device found but could not report (an
	// output buffer overflow it could not recover from). Nothing found may
	// vanish without being counted.
	Lost uint64
}

// Device is a nonce-sweeping engine.
type Device interface {
	Info() Info
	// Sweep hashes the range and returns what it did. When ctx is cancelled
	// it launches nothing more and returns, once the batches already queued
	// are done, with ctx.Err() and the partial Result; a new block must stop
	// stale work fast.
	Sweep(ctx context.Context, s Sweep) (Result, error)
	// Close releases the device; Sweep must not be called after.
	Close() error
}

// MultiVersion is a Device that can hash several rolled versions of each
// nonce in one sweep, sharing the work the versions have in common (the
// message schedule of the header's second chunk).
type MultiVersion interface {
	Device
	// Versions is how many units a multi-version sweep takes; 1 means the
	// device hashes one version at a time.
	Versions() int
}

// VersionsOf is how many versions dev wants per sweep when rolling is on.
func VersionsOf(dev Device) int {
	if m, ok := dev.(MultiVersion); ok {
		return max(m.Versions(), 1)
	}
	return 1
}
