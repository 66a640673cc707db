package device

// Reading is one GPU's sensors at one moment, as its driver reports them
// (gpu/nvml for NVIDIA). Every field is a pointer: a value the driver does
// not report (no fan on a passively cooled card, no power sensor) stays nil
// and is left out of JSON and metrics, rather than shown as a zero that
// reads like a stopped fan or a cold chip.
type Reading struct {
	TempC       *float64 `json:"temperature_c,omitempty"`
	PowerW      *float64 `json:"power_w,omitempty"`
	FanPct      *float64 `json:"fan_percent,omitempty"`
	SMClockMHz  *float64 `json:"sm_clock_mhz,omitempty"`
	MemClockMHz *float64 `json:"mem_clock_mhz,omitempty"`
	UtilPct     *float64 `json:"utilization_percent,omitempty"`
}

// Empty reports whether the reading holds nothing.
func (r Reading) Empty() bool {
	return r.TempC == nil && r.PowerW == nil && r.FanPct == nil && r.SMClockMHz == nil && r.MemClockMHz == nil && r.UtilPct == nil
}

// GPUState is one GPU's telemetry and, under temperature limits, its
// throttle (gpu/thermal), for the status API and metrics. Its JSON is the
// status API's "gpus" entries.
type GPUState struct {
	// Device is the Info.ID of the device the GPU was bound to.
	Device string `json:"device"`
	// NVML is the GPU's index in NVML's (PCI bus) order.
	NVML     int     `json:"nvml_index"`
	UUID     string  `json:"uuid,omitempty"`
	PCIBusID string  `json:"pci_bus_id,omitempty"`
	Reading  Reading `json:"sensors"`
	// Scale and Idle are present only under --temp-target/--temp-cutoff.
	Scale *float64 `json:"thermal_scale,omitempty"`
	Idle  *bool    `json:"thermal_idle,omitempty"`
}
