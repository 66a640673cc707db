package nvml

// Reading is one GPU's telemetry at one moment. Every field is a pointer:
// a value the driver does not report (no fan on a passively cooled card, no
// power sensor) stays nil and is left out of JSON and metrics, rather than
// shown as a zero that reads like a stopped fan or a cold chip.
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

func ptr(v float64) *float64 { return &v }
