package main

import (
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/log"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"clminer/gpu/nvml"
	"clminer/gpu/registry"
	"clminer/gpu/thermal"
	"clminer/work/device"
	"clminer/work/miner"
	"clminer/work/observe"
	"clminer/work/source"
)

// conditionalMetricNames are the series clminer exports only in some
// states (NVML sensors, thermal limits, rejects by reason, a sick pool),
// gathered from the real collectors fed a state with all of them.
func conditionalMetricNames(t *testing.T) map[string]bool {
	t.Helper()
	v := 1.0
	idle := true
	r := device.Reading{TempC: &v, PowerW: &v, FanPct: &v, SMClockMHz: &v, MemClockMHz: &v, UtilPct: &v}
	snap := miner.Snapshot{Shares: miner.Counts{RejectReasons: map[string]uint64{"low difficulty": 1}},
		Pools: []miner.PoolStats{{PoolStats: source.PoolStats{URL: "stratum+tcp://a:1", State: "sick", SickReason: "rejects"}}}}
	m := observe.NewMetrics("v", "c", func() miner.Snapshot { return snap })
	// The histograms have series once a share and a job were seen.
	m.Share(miner.ShareEvent{PoolURL: "stratum+tcp://a:1", RTT: time.Millisecond})
	m.NotifyLatency("cpu", time.Millisecond)
	m.Registry().MustRegister(&observe.FleetCollector{GPUs: func() []device.GPUState {
		return []device.GPUState{{Device: "opencl:0:0", Reading: r, Scale: &v, Idle: &idle}}
	}})
	fams, err := m.Registry().Gather()
	require.NoError(t, err)
	out := map[string]bool{}
	for _, f := range fams {
		out[f.GetName()] = true
	}
	for _, want := range []string{"clminer_gpu_temperature_celsius", "clminer_gpu_thermal_idle", "clminer_share_rejects_total", "clminer_pool_sick", "clminer_submit_rtt_seconds"} {
		require.True(t, out[want], want)
	}
	return out
}

// openclEntry is the first OpenCL device (POCL in CI), or a skip.
func openclEntry(t *testing.T) registry.Entry {
	t.Helper()
	entries, _ := registry.List()
	for _, e := range entries {
		if e.Kind == "opencl" {
			return e
		}
	}
	if os.Getenv("CLMINER_REQUIRE_OPENCL") == "1" {
		t.Fatal("no OpenCL device and CLMINER_REQUIRE_OPENCL=1")
	}
	t.Skip("no OpenCL device")
	return registry.Entry{}
}

func metricLine(t *testing.T, exposition, series string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(exposition)
	if m == nil {
		return ""
	}
	return m[1]
}

// With a fake NVML whose GPU has the name of the real OpenCL device (POCL
// in CI), a demo run shows the sensors in /api/v1/status, /metrics and the
// cgminer API; at --temp-cutoff the device stops hashing (its hash count
// holds across two status periods) and logs it; cooled, it resumes and
// shares are accepted again. Without NVML the fields are absent.
func TestThermalLimitsWithFakeNVML(t *testing.T) {
	requireTool(t, "python3")
	e := openclEntry(t)
	fake := nvml.NewFake(e.Name)
	fake.Set(0, device.Reading{TempC: nvml.Ptr(95), PowerW: nvml.Ptr(240.5), FanPct: nvml.Ptr(77), SMClockMHz: nvml.Ptr(1800), UtilPct: nvml.Ptr(99)})
	withFake := hooks{openNVML: func() (nvml.Library, error) { return fake, nil }}

	var statusLines int
	r := startDemoWith(t, withFake, "--device", e.ID, "--temp-target", "80", "--temp-cutoff", "90", "--status-interval", "1s",
		"--api-listen", "127.0.0.1:0", "--cgminer-api", "127.0.0.1:0")
	api, cg := r.addr(t, "api.listening"), r.addr(t, "cgapi.listening")
	seen := func(event string) func(r *liveRun) bool {
		return func(r *liveRun) bool {
			for _, l := range r.w.all() {
				if strings.Contains(l, `"event":"`+event+`"`) {
					return true
				}
			}
			return false
		}
	}
	r.waitFor(t, "gpu.telemetry", seen("gpu.telemetry"))
	r.waitFor(t, "gpu.thermal_idle", seen("gpu.thermal_idle"))
	countStatus := func() int {
		n := 0
		for _, l := range r.w.all() {
			if strings.Contains(l, `"event":"gpu.status"`) {
				n++
			}
		}
		return n
	}
	// The slice in flight when the GPU idled finishes within a status
	// period; after that the hash count must hold.
	statusLines = countStatus()
	r.waitFor(t, "a status line", func(*liveRun) bool { return countStatus() >= statusLines+1 })
	h1 := statusHashes(t, api)
	statusLines = countStatus()
	r.waitFor(t, "two more status lines", func(*liveRun) bool { return countStatus() >= statusLines+2 })
	assert.Equal(t, h1, statusHashes(t, api), "no hashing at the cutoff")

	var st struct {
		GPUs []struct {
			Device  string             `json:"device"`
			Sensors map[string]float64 `json:"sensors"`
			Scale   *float64           `json:"thermal_scale"`
			Idle    *bool              `json:"thermal_idle"`
		} `json:"gpus"`
		Luck map[string]any `json:"luck"`
	}
	require.NoError(t, json.Unmarshal(httpGet(t, "http://"+api+"/api/v1/status"), &st))
	require.Len(t, st.GPUs, 1)
	g := st.GPUs[0]
	assert.Equal(t, e.ID, g.Device)
	assert.Equal(t, map[string]float64{"temperature_c": 95, "power_w": 240.5, "fan_percent": 77, "sm_clock_mhz": 1800, "utilization_percent": 99}, g.Sensors,
		"mem clock not reported: absent")
	require.NotNil(t, g.Idle)
	assert.True(t, *g.Idle)
	assert.Less(t, *g.Scale, 1.0, "15 °C over the target")
	assert.Contains(t, st.Luck, "best_share_all_time")

	exp := string(httpGet(t, "http://"+api+"/metrics"))
	if promtool, err := exec.LookPath("promtool"); err == nil || os.Getenv("CLMINER_REQUIRE_TOOLS") == "1" {
		require.NoError(t, err)
		check := exec.Command(promtool, "check", "metrics")
		check.Stdin = strings.NewReader(exp)
		out, err := check.CombinedOutput()
		assert.NoError(t, err, "promtool check metrics with the GPU series:\n%s", out)
	}
	assert.Equal(t, "95", metricLine(t, exp, `clminer_gpu_temperature_celsius{device="`+e.ID+`"}`))
	assert.Equal(t, "1", metricLine(t, exp, `clminer_gpu_thermal_idle{device="`+e.ID+`"}`))
	assert.Equal(t, "", metricLine(t, exp, `clminer_gpu_clock_mhz{clock="mem",device="`+e.ID+`"}`), "absent, not 0")

	host, port, _ := net.SplitHostPort(cg)
	var devs map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(python(t, host, port, "devs"), &devs))
	var list []map[string]any
	require.NoError(t, json.Unmarshal(devs["DEVS"], &list))
	require.Len(t, list, 1)
	assert.Equal(t, 95.0, list[0]["Temperature"])
	assert.Equal(t, 77.0, list[0]["Fan Percent"])
	assert.Equal(t, 0.0, list[0]["GPU"])

	if _, err := exec.LookPath("jq"); err == nil {
		_, hive := hiveStats(t, writeConfig(t, "api-listen: "+api+"\n"))
		assert.Equal(t, []any{95.0}, hive["temp"], "h-stats.sh reports NVML's temperature")
		assert.Equal(t, []any{77.0}, hive["fan"])
	}

	accepted := func() int { r.mu.Lock(); defer r.mu.Unlock(); return r.accepted }()
	fake.SetTemp(0, 70)
	r.waitFor(t, "gpu.thermal_resume", seen("gpu.thermal_resume"))
	r.waitFor(t, "accepted shares after resuming", func(r *liveRun) bool { return r.accepted >= accepted+2 })
	// A device reports a batch's nonces before its hash count: let one
	// status period pass so the count has caught up.
	statusLines = countStatus()
	r.waitFor(t, "a status line", func(*liveRun) bool { return countStatus() >= statusLines+1 })
	assert.Greater(t, statusHashes(t, api), h1, "%s", httpGet(t, "http://"+api+"/api/v1/status"))
}

func statusHashes(t *testing.T, api string) float64 {
	t.Helper()
	var s struct {
		Hashes float64 `json:"hashes"`
	}
	require.NoError(t, json.Unmarshal(httpGet(t, "http://"+api+"/api/v1/status"), &s))
	return s.Hashes
}

// Limits without NVML are refused before mining; bad limits are one line.
func TestThermalFlags(t *testing.T) {
	noNVML := func() (nvml.Library, error) { return nil, nvml.ErrUnavailable }
	pool := []string{"mine", "-o", "stratum+tcp://a:1", "-u", "w"}
	for args, want := range map[string]string{
		"--temp-target 5":                     "--temp-target 5: want a GPU temperature",
		"--temp-target 85 --temp-cutoff 80":   "--temp-cutoff 80 must be above --temp-target 85",
		"--notify-url hooks.example/x":        "--notify-url: want an http:// or https:// URL",
		"--temp-cutoff 90 --notify-url ftp:x": "--notify-url",
	} {
		r, err := runAppWith(t, hooks{openNVML: noNVML}, append(pool, strings.Fields(args)...)...)
		assertOneLine(t, r, err, want, args)
	}
	_, err := newFleet(fleetConfig{limits: thermal.Limits{Cutoff: 90}}, log.New(io.Discard), 0, noNVML)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--temp-target/--temp-cutoff need NVIDIA's NVML")
}
