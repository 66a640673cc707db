package thermal

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/charmbracelet/log"

	"clminer/gpu/nvml"
	"clminer/work/device"
)

type binding struct {
	id  string
	gpu nvml.GPU
	t   *Throttle // nil without limits
}

// Monitor polls NVML for the GPUs the miner drives and steers their
// throttles.
type Monitor struct {
	lib      nvml.Library
	lim      Limits
	interval time.Duration
	status   time.Duration
	log      *log.Logger
	binds    []binding
	mu       sync.Mutex
	last     map[string]device.Reading
	noSensor map[string]bool
	// ambiguous: name-and-order matching may pick the wrong card.
	ambiguous error
}

// NewMonitor binds each OpenCL device to an NVML GPU. NVML numbers GPUs in
// PCI bus order and NVIDIA's OpenCL in CUDA's order, which puts the fastest
// model first and breaks ties by PCI bus: so devices are matched by name,
// and among GPUs of the same name in order. interval is the polling period,
// status the period of the gpu.status log line (0: none).
func NewMonitor(lib nvml.Library, devices []device.Info, lim Limits, interval, status time.Duration, logger *log.Logger) *Monitor {
	m := &Monitor{lib: lib, lim: lim, interval: interval, status: status, log: logger, last: map[string]device.Reading{}, noSensor: map[string]bool{}}
	used := map[int]bool{}
	gpus := lib.GPUs()
	m.ambiguous = ambiguity(gpus, devices)
	for _, d := range devices {
		if d.Kind != "opencl" {
			continue
		}
		for _, g := range gpus {
			if used[g.Index] || !sameName(g.Name, d.Name) {
				continue
			}
			used[g.Index] = true
			b := binding{id: d.ID, gpu: g}
			if lim.Active() {
				b.t = NewThrottle(lim)
			}
			m.binds = append(m.binds, b)
			break
		}
	}
	return m
}

// ambiguity explains why name-and-order matching cannot be trusted: some
// GPUs of one model are not opened (a --device subset), or
// CUDA_VISIBLE_DEVICES reorders CUDA's numbering, which NVML ignores. Then a
// device could be steered by another card's temperature.
func ambiguity(gpus []nvml.GPU, devices []device.Info) error {
	byName := map[string]int{}
	for _, g := range gpus {
		byName[strings.ToLower(strings.TrimSpace(g.Name))]++
	}
	opened := map[string]int{}
	for _, d := range devices {
		if d.Kind == "opencl" {
			opened[strings.ToLower(strings.TrimSpace(d.Name))]++
		}
	}
	for name, n := range opened {
		if byName[name] < 2 {
			continue
		}
		if os.Getenv("CUDA_VISIBLE_DEVICES") != "" {
			return fmt.Errorf("%d GPUs are %s and CUDA_VISIBLE_DEVICES is set: which card an OpenCL device is cannot be told from NVML, so temperature limits could act on the wrong one (unset it, or run without --temp-target/--temp-cutoff)", byName[name], name)
		}
		if n != byName[name] {
			return fmt.Errorf("%d GPUs are %s but %d of them are mined: which card a device is cannot be told from NVML, so temperature limits could act on the wrong one (mine on all of them, or run without --temp-target/--temp-cutoff)", byName[name], name, n)
		}
	}
	return nil
}

// Ambiguous is why device-to-GPU matching cannot be trusted, or nil.
func (m *Monitor) Ambiguous() error { return m.ambiguous }

func sameName(a, b string) bool { return strings.EqualFold(strings.TrimSpace(a), strings.TrimSpace(b)) }

// Bound reports how many devices have an NVML GPU, and describes them.
func (m *Monitor) Bound() []string {
	var out []string
	for _, b := range m.binds {
		out = append(out, fmt.Sprintf("%s=nvml:%d %s %s", b.id, b.gpu.Index, b.gpu.PCIBusID, b.gpu.UUID))
	}
	return out
}

// Wrap puts each bound device under its throttle; others pass unchanged.
func (m *Monitor) Wrap(devs []device.Device) []device.Device {
	out := make([]device.Device, len(devs))
	for i, d := range devs {
		out[i] = d
		for _, b := range m.binds {
			if b.t != nil && b.id == d.Info().ID {
				out[i] = Wrap(d, b.t)
			}
		}
	}
	return out
}

// Poll reads every bound GPU once and applies the limits.
func (m *Monitor) Poll() {
	for _, b := range m.binds {
		r := m.lib.Read(b.gpu.Index)
		m.mu.Lock()
		m.last[b.id] = r
		m.mu.Unlock()
		if b.t == nil {
			continue
		}
		if r.TempC == nil {
			m.mu.Lock()
			first := !m.noSensor[b.id]
			m.noSensor[b.id] = true
			m.mu.Unlock()
			if first {
				m.log.Warn("NVML gives no temperature for this GPU: --temp-target/--temp-cutoff cannot act on it", "event", "gpu.thermal_no_sensor", "device", b.id)
			}
			continue
		}
		temp := *r.TempC
		switch ch := b.t.Update(temp); ch {
		case Idled:
			m.log.Warn(fmt.Sprintf("GPU at %.0f °C reached --temp-cutoff %g: idling until %g °C", temp, m.lim.Cutoff, m.lim.Cutoff-b.t.lim.Hysteresis),
				"event", "gpu.thermal_idle", "device", b.id, "temperature_c", temp, "cutoff_c", m.lim.Cutoff)
		case Resumed:
			m.log.Info(fmt.Sprintf("GPU cooled to %.0f °C: hashing again", temp), "event", "gpu.thermal_resume", "device", b.id, "temperature_c", temp)
		case Slowed, SpedUp, FullBack:
			scale, _, _ := b.t.State()
			m.log.Info(fmt.Sprintf("GPU at %.0f °C (target %g): running at %.0f%% of full speed", temp, m.lim.Target, 100*scale),
				"event", "gpu.thermal_throttle", "device", b.id, "temperature_c", temp, "target_c", m.lim.Target, "scale", scale)
		}
	}
}

// Run polls until ctx ends.
func (m *Monitor) Run(ctx context.Context) {
	if len(m.binds) == 0 {
		return
	}
	m.Poll()
	poll := time.NewTicker(m.interval)
	defer poll.Stop()
	var status <-chan time.Time
	if m.status > 0 {
		t := time.NewTicker(m.status)
		defer t.Stop()
		status = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-poll.C:
			m.Poll()
		case <-status:
			m.logStatus()
		}
	}
}

// States is the latest reading of every bound GPU, in device order.
func (m *Monitor) States() []device.GPUState {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []device.GPUState
	for _, b := range m.binds {
		r, ok := m.last[b.id]
		if !ok {
			continue
		}
		s := device.GPUState{Device: b.id, NVML: b.gpu.Index, UUID: b.gpu.UUID, PCIBusID: b.gpu.PCIBusID, Reading: r}
		if b.t != nil {
			scale, idle, _ := b.t.State()
			s.Scale, s.Idle = &scale, &idle
		}
		out = append(out, s)
	}
	return out
}

// Readings is the latest reading by device ID.
func (m *Monitor) Readings() map[string]device.Reading {
	out := map[string]device.Reading{}
	for _, s := range m.States() {
		out[s.Device] = s.Reading
	}
	return out
}

// logStatus is the GPU part of the status line: one gpu.status line per
// GPU with what NVML reports.
func (m *Monitor) logStatus() {
	for _, s := range m.States() {
		r := s.Reading
		var parts []string
		kv := []any{"event", "gpu.status", "device", s.Device}
		add := func(v *float64, key, format string) {
			if v != nil {
				parts = append(parts, fmt.Sprintf(format, *v))
				kv = append(kv, key, *v)
			}
		}
		add(r.TempC, "temperature_c", "%.0f °C")
		add(r.PowerW, "power_w", "%.0f W")
		add(r.FanPct, "fan_percent", "fan %.0f%%")
		add(r.SMClockMHz, "sm_clock_mhz", "%.0f MHz")
		add(r.MemClockMHz, "mem_clock_mhz", "mem %.0f MHz")
		add(r.UtilPct, "utilization_percent", "util %.0f%%")
		if s.Scale != nil {
			parts = append(parts, fmt.Sprintf("speed %.0f%%", 100**s.Scale))
			kv = append(kv, "thermal_scale", *s.Scale, "thermal_idle", *s.Idle)
			if *s.Idle {
				parts = append(parts, "idle at cutoff")
			}
		}
		m.log.Info(s.Device+": "+strings.Join(parts, ", "), kv...)
	}
}
