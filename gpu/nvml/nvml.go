package nvml

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	gonvml "github.com/NVIDIA/go-nvml/pkg/nvml"

	"clminer/work/device"
)

// GPU is one device as NVML enumerates it (PCI bus order).
type GPU struct {
	Index    int
	Name     string
	UUID     string
	PCIBusID string
}

// Library is the part of NVML the miner uses.
type Library interface {
	// GPUs lists the devices.
	GPUs() []GPU
	// Read returns the sensors of GPU index now; a sensor the device does
	// not have or the driver refuses is left nil.
	Read(index int) device.Reading
	// Close releases NVML.
	Close()
}

// ErrUnavailable wraps every reason NVML cannot be used (no driver, no
// library, no GPU).
var ErrUnavailable = errors.New("NVML unavailable")

type lib struct {
	mu   sync.Mutex
	nv   gonvml.Interface
	gpus []GPU
	devs []gonvml.Device
}

// Open loads libnvidia-ml.so.1 and lists the GPUs.
func Open() (Library, error) {
	nv := gonvml.New()
	if ret := nv.Init(); ret != gonvml.SUCCESS {
		if ret == gonvml.ERROR_LIBRARY_NOT_FOUND {
			return nil, fmt.Errorf("%w: libnvidia-ml.so.1 not found (the NVIDIA driver is not installed)", ErrUnavailable)
		}
		return nil, fmt.Errorf("%w: nvmlInit: %v", ErrUnavailable, ret)
	}
	l := &lib{nv: nv}
	n, ret := nv.DeviceGetCount()
	if ret != gonvml.SUCCESS || n == 0 {
		nv.Shutdown()
		return nil, fmt.Errorf("%w: no GPU (nvmlDeviceGetCount: %v, %d devices)", ErrUnavailable, ret, n)
	}
	for i := range n {
		d, ret := nv.DeviceGetHandleByIndex(i)
		if ret != gonvml.SUCCESS {
			continue
		}
		g := GPU{Index: len(l.gpus)}
		g.Name, _ = d.GetName()
		g.UUID, _ = d.GetUUID()
		if pci, ret := d.GetPciInfo(); ret == gonvml.SUCCESS {
			g.PCIBusID = busID(pci.BusId[:])
		}
		l.gpus = append(l.gpus, g)
		l.devs = append(l.devs, d)
	}
	return l, nil
}

func busID(b []int8) string {
	var s strings.Builder
	for _, c := range b {
		if c == 0 {
			break
		}
		s.WriteByte(byte(c))
	}
	return s.String()
}

func (l *lib) GPUs() []GPU { return append([]GPU(nil), l.gpus...) }

func (l *lib) Read(i int) device.Reading {
	l.mu.Lock()
	defer l.mu.Unlock()
	var r device.Reading
	if i < 0 || i >= len(l.devs) || l.nv == nil {
		return r
	}
	d := l.devs[i]
	if v, ret := d.GetTemperature(gonvml.TEMPERATURE_GPU); ret == gonvml.SUCCESS {
		r.TempC = ptr(float64(v))
	}
	if v, ret := d.GetPowerUsage(); ret == gonvml.SUCCESS {
		r.PowerW = ptr(float64(v) / 1000) // milliwatts
	}
	if v, ret := d.GetFanSpeed(); ret == gonvml.SUCCESS {
		r.FanPct = ptr(float64(v))
	}
	if v, ret := d.GetClockInfo(gonvml.CLOCK_SM); ret == gonvml.SUCCESS {
		r.SMClockMHz = ptr(float64(v))
	}
	if v, ret := d.GetClockInfo(gonvml.CLOCK_MEM); ret == gonvml.SUCCESS {
		r.MemClockMHz = ptr(float64(v))
	}
	if u, ret := d.GetUtilizationRates(); ret == gonvml.SUCCESS {
		r.UtilPct = ptr(float64(u.Gpu))
	}
	return r
}

func (l *lib) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.nv != nil {
		l.nv.Shutdown()
		l.nv = nil
	}
}
