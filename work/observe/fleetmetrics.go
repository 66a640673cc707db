package observe

import (
	"github.com/prometheus/client_golang/prometheus"

	"clminer/work/device"
	"clminer/work/observe/luck"
)

var (
	descGPUInfo  = prometheus.NewDesc("clminer_gpu_info", "NVML's identity of the GPU behind a device.", []string{"device", "uuid", "pci_bus_id"}, nil)
	descGPUTemp  = prometheus.NewDesc("clminer_gpu_temperature_celsius", "GPU core temperature (NVML).", []string{"device"}, nil)
	descGPUPower = prometheus.NewDesc("clminer_gpu_power_watts", "GPU board power draw (NVML).", []string{"device"}, nil)
	descGPUFan   = prometheus.NewDesc("clminer_gpu_fan_percent", "GPU fan speed as a percentage of its maximum (NVML).", []string{"device"}, nil)
	descGPUClock = prometheus.NewDesc("clminer_gpu_clock_mhz", "GPU clocks (NVML), clock sm or mem.", []string{"device", "clock"}, nil)
	descGPUUtil  = prometheus.NewDesc("clminer_gpu_utilization_percent", "GPU busy time over NVML's last sample period.", []string{"device"}, nil)
	descGPUScale = prometheus.NewDesc("clminer_gpu_thermal_scale", "Fraction of full speed --temp-target allows the GPU (1: unthrottled).", []string{"device"}, nil)
	descGPUIdle  = prometheus.NewDesc("clminer_gpu_thermal_idle", "1 while the GPU idles at --temp-cutoff.", []string{"device"}, nil)
	descBestEver = prometheus.NewDesc("clminer_best_share_all_time_difficulty", "Highest share difficulty ever found by this rig (kept across restarts).", nil, nil)
	descNetDiff  = prometheus.NewDesc("clminer_network_difficulty", "Network difficulty of the job being mined (from its nbits).", nil, nil)
	descExpBlock = prometheus.NewDesc("clminer_expected_block_seconds", "Mean time to find a block at the 60 s hashrate.", nil, nil)
)

// FleetCollector exports GPU telemetry and the luck figures, read at
// scrape time. A sensor NVML does not report has no series (absent, not 0).
type FleetCollector struct {
	GPUs func() []device.GPUState // nil: no NVML
	Luck func() *luck.Luck        // nil: not kept
}

// Describe implements prometheus.Collector.
func (c *FleetCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descGPUInfo, descGPUTemp, descGPUPower, descGPUFan, descGPUClock, descGPUUtil,
		descGPUScale, descGPUIdle, descBestEver, descNetDiff, descExpBlock} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *FleetCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	opt := func(d *prometheus.Desc, v *float64, labels ...string) {
		if v != nil {
			gauge(d, *v, labels...)
		}
	}
	if c.GPUs != nil {
		for _, g := range c.GPUs() {
			gauge(descGPUInfo, 1, g.Device, g.UUID, g.PCIBusID)
			r := g.Reading
			opt(descGPUTemp, r.TempC, g.Device)
			opt(descGPUPower, r.PowerW, g.Device)
			opt(descGPUFan, r.FanPct, g.Device)
			opt(descGPUClock, r.SMClockMHz, g.Device, "sm")
			opt(descGPUClock, r.MemClockMHz, g.Device, "mem")
			opt(descGPUUtil, r.UtilPct, g.Device)
			opt(descGPUScale, g.Scale, g.Device)
			if g.Idle != nil {
				idle := 0.0
				if *g.Idle {
					idle = 1
				}
				gauge(descGPUIdle, idle, g.Device)
			}
		}
	}
	if c.Luck != nil {
		if l := c.Luck(); l != nil {
			gauge(descBestEver, l.BestShareAllTime)
			if l.NetworkDifficulty > 0 {
				gauge(descNetDiff, l.NetworkDifficulty)
			}
			if l.ExpectedBlockS > 0 {
				gauge(descExpBlock, l.ExpectedBlockS)
			}
		}
	}
}
