package nvml

import (
	"sync"

	"clminer/work/device"
)

// Fake is a Library whose GPUs and readings a test sets. It stands in for
// NVML where there is no NVIDIA driver (CI, POCL).
type Fake struct {
	mu       sync.Mutex
	gpus     []GPU
	readings []device.Reading
	reads    int
	closed   bool
}

// NewFake returns a Fake with one GPU per name, in that (PCI) order.
func NewFake(names ...string) *Fake {
	f := &Fake{}
	for i, n := range names {
		f.gpus = append(f.gpus, GPU{Index: i, Name: n, UUID: "GPU-fake-" + string(rune('0'+i)), PCIBusID: "00000000:0" + string(rune('1'+i)) + ":00.0"})
		f.readings = append(f.readings, device.Reading{})
	}
	return f
}

// Set makes GPU i report r from now on.
func (f *Fake) Set(i int, r device.Reading) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.readings[i] = r
}

// SetTemp makes GPU i report temperature c (other sensors unchanged).
func (f *Fake) SetTemp(i int, c float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.readings[i].TempC = ptr(c)
}

// Reads is how many times Read was called.
func (f *Fake) Reads() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads
}

// GPUs implements Library.
func (f *Fake) GPUs() []GPU {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]GPU(nil), f.gpus...)
}

// Read implements Library.
func (f *Fake) Read(i int) device.Reading {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	if i < 0 || i >= len(f.readings) || f.closed {
		return device.Reading{}
	}
	r := f.readings[i]
	return clone(r)
}

// Close implements Library.
func (f *Fake) Close() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
}

// clone copies r, pointers and all, so a caller cannot change the fake.
func clone(r device.Reading) device.Reading {
	c := func(p *float64) *float64 {
		if p == nil {
			return nil
		}
		return ptr(*p)
	}
	return device.Reading{TempC: c(r.TempC), PowerW: c(r.PowerW), FanPct: c(r.FanPct), SMClockMHz: c(r.SMClockMHz), MemClockMHz: c(r.MemClockMHz), UtilPct: c(r.UtilPct)}
}

// Ptr returns a pointer to v, for building device.Readings.
func Ptr(v float64) *float64 { return ptr(v) }

func ptr(v float64) *float64 { return &v }
