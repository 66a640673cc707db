package cgapi

import (
	"fmt"
	"math"
	"strings"
	"time"

	"clminer/gpu/nvml"
	"clminer/work/miner"
	"clminer/work/safetext"
	"clminer/work/source"
)

// State is what one request is answered from: the miner's snapshot and,
// where NVML reports them, each device's sensors (keyed by device ID).
type State struct {
	Snapshot  miner.Snapshot
	Telemetry map[string]nvml.Reading
	// BestEver is the all-time best share difficulty (0: not kept).
	BestEver float64
}

// Status codes and messages from cgminer's api.c, which clients match on.
const (
	codePool       = 7
	codeDevs       = 9
	codeSumm       = 11
	codeInvCmd     = 14
	codeVersion    = 22
	codeInvJSON    = 23
	codeMineConfig = 33
	codeAccDeny    = 45
	codeMineStats  = 70
	codeGPUDev     = 17
	codeGPUCount   = 20
	codeCheck      = 72
	codeInvGPU     = 1
)

// APIVersion and CGMinerVersion say which cgminer API the replies follow
// (cgminer 3.7.2 served API 1.32). The VERSION section carries them next
// to clminer's own version, so a tool that checks either is answered.
const (
	APIVersion     = "1.32"
	CGMinerVersion = "3.7.2"
)

// reportCommands are the read-only commands; joinable with '+'.
var reportCommands = map[string]bool{"version": true, "config": true, "summary": true, "devs": true, "pools": true,
	"stats": true, "gpu": true, "gpucount": true, "check": true}

// privileged are cgminer's commands that change the miner. This API is
// read-only: they are named so the refusal says access denied (as cgminer
// does for a client without W: access) rather than invalid command.
var privileged = map[string]bool{"switchpool": true, "enablepool": true, "addpool": true, "poolpriority": true,
	"poolquota": true, "disablepool": true, "removepool": true, "gpuenable": true, "gpudisable": true,
	"gpurestart": true, "gpuintensity": true, "gpumem": true, "gpuengine": true, "gpufan": true, "gpuvddc": true,
	"save": true, "quit": true, "privileged": true, "restart": true, "pgaenable": true, "pgadisable": true,
	"pgaidentify": true, "pgaset": true, "ascenable": true, "ascdisable": true, "ascidentify": true, "ascset": true,
	"debug": true, "setconfig": true, "zero": true, "hotplug": true, "lockstats": true}

// answerer builds replies for one request from one snapshot, so every
// section of a joined request describes the same moment.
type answerer struct {
	st          State
	now         time.Time
	desc        string
	version     string
	logInterval int
}

func (a *answerer) status(kind string, code int, msg string) record {
	return record{{"STATUS", kind}, {"When", a.now.Unix()}, {"Code", code}, {"Msg", msg}, {"Description", a.desc}}
}

func (a *answerer) answer(cmd, param string) reply {
	switch cmd {
	case "version":
		return reply{status: a.status("S", codeVersion, "CGMiner versions"), sections: []section{{name: "VERSION",
			recs: []record{{{"CGMiner", CGMinerVersion}, {"API", APIVersion}, {"clminer", a.version}}}}}}
	case "config":
		return a.config()
	case "summary":
		return a.summary()
	case "devs":
		return a.devs(-1)
	case "gpu":
		var n int
		gpus := a.gpuCount()
		if _, err := fmt.Sscanf(param, "%d", &n); err != nil || n < 0 || n >= gpus || fmt.Sprint(n) != strings.TrimSpace(param) {
			return reply{status: a.status("E", codeInvGPU, fmt.Sprintf("Invalid GPU id %s - range is 0 - %d", clip(param), gpus-1))}
		}
		return a.devs(n)
	case "gpucount":
		return reply{status: a.status("S", codeGPUCount, "GPU count"), sections: []section{{name: "GPUS",
			recs: []record{{{"Count", a.gpuCount()}}}}}}
	case "pools":
		return a.pools()
	case "stats":
		return a.stats()
	case "check":
		exists, access := reportCommands[param] || privileged[param], reportCommands[param]
		return reply{status: a.status("S", codeCheck, "Check command"), sections: []section{{name: "CHECK",
			recs: []record{{{"Exists", yn(exists)}, {"Access", yn(access)}}}}}}
	}
	if privileged[cmd] {
		return reply{status: a.status("E", codeAccDeny, fmt.Sprintf("Access denied to '%s' command", cmd))}
	}
	return reply{status: a.status("E", codeInvCmd, "Invalid command")}
}

func clip(s string) string { return safetext.Clip(s, 32) }

func (a *answerer) config() reply {
	s := a.st.Snapshot
	gpus, cpus := 0, 0
	for _, d := range s.Devices {
		if isCPU(d) {
			cpus++
		} else {
			gpus++
		}
	}
	var codes []string
	if cpus > 0 {
		codes = append(codes, "CPU")
	}
	if gpus > 0 {
		codes = append(codes, "GPU")
	}
	r := record{{"GPU Count", gpus}, {"ASC Count", 0}, {"PGA Count", 0}, {"CPU Count", cpus}, {"Pool Count", len(s.Pools)},
		{"ADL", "N"}, {"ADL in use", "N"}, {"Strategy", "Failover"}, {"Log Interval", a.logInterval},
		{"Device Code", strings.Join(codes, " ") + " "}, {"OS", "Linux"}, {"Failover-Only", true}}
	return reply{status: a.status("S", codeMineConfig, "CGMiner config"), sections: []section{{name: "CONFIG", recs: []record{r}}}}
}

const mega = 1e6

// utility is per minute over the elapsed time, as cgminer's Utility.
func perMinute(n, elapsedS float64) fixed {
	if elapsedS <= 0 {
		return f2(0)
	}
	return f2(n * 60 / elapsedS)
}

func (a *answerer) summary() reply {
	s := a.st.Snapshot
	c := s.Shares
	sent := float64(c.Accepted + c.Rejected)
	r := record{
		{"Elapsed", int64(s.UptimeS)},
		{"MHS av", f3(s.RateAvg / mega)},
		{"MHS 5s", f3(s.Rate5s / mega)},
		{"MHS 1m", f3(s.Rate60s / mega)},
		{"Found Blocks", c.Blocks},
		{"Accepted", c.Accepted},
		{"Rejected", c.Rejected},
		{"Hardware Errors", c.HWErrors},
		{"Utility", perMinute(float64(c.Accepted), s.UptimeS)},
		{"Discarded", c.Duplicate + c.Throttled},
		{"Stale", c.Stale},
		{"Remote Failures", c.Lost},
		{"Total MH", f4(float64(s.Hashes) / mega)},
		{"Work Utility", perMinute(c.AcceptedDiff, s.UptimeS)},
		{"Difficulty Accepted", f8(c.AcceptedDiff)},
		{"Best Share", f8(c.BestShare)},
		{"Device Hardware%", pct(float64(c.HWErrors), float64(c.HWErrors+c.Accepted))},
		{"Device Rejected%", pct(float64(c.Rejected), sent)},
		{"Pool Rejected%", pct(float64(c.Rejected), sent)},
		{"Pool Stale%", pct(float64(c.Stale), sent+float64(c.Stale))},
	}
	if a.st.BestEver > 0 {
		r.add("Best Share All Time", f8(a.st.BestEver))
	}
	return reply{status: a.status("S", codeSumm, "Summary"), sections: []section{{name: "SUMMARY", recs: []record{r}}}}
}

func isCPU(d miner.DeviceStats) bool { return d.ID == "cpu" || strings.HasPrefix(d.ID, "cpu:") }

func (a *answerer) gpuCount() int {
	n := 0
	for _, d := range a.st.Snapshot.Devices {
		if !isCPU(d) {
			n++
		}
	}
	return n
}

// devs numbers the OpenCL devices as GPUs and the CPU device as a CPU, in
// the miner's device order (only GPU number only when only is >= 0).
func (a *answerer) devs(only int) reply {
	s := a.st.Snapshot
	var recs []record
	gpus, cpus := 0, 0
	for _, d := range s.Devices {
		key, n := "GPU", gpus
		if isCPU(d) {
			key, n = "CPU", cpus
			cpus++
		} else {
			gpus++
		}
		if only >= 0 && (key != "GPU" || n != only) {
			continue
		}
		status := "Alive"
		if d.LastErr != "" {
			status = "Sick"
		}
		r := record{{key, n}, {"Name", d.Name}, {"ID", d.ID}, {"Enabled", "Y"}, {"Status", status}}
		if t, ok := a.st.Telemetry[d.ID]; ok {
			if t.TempC != nil {
				r.add("Temperature", f2(*t.TempC))
			}
			if t.FanPct != nil {
				r.add("Fan Percent", int(math.Round(*t.FanPct)))
			}
			if t.SMClockMHz != nil {
				r.add("GPU Clock", int(math.Round(*t.SMClockMHz)))
			}
			if t.MemClockMHz != nil {
				r.add("Memory Clock", int(math.Round(*t.MemClockMHz)))
			}
			if t.UtilPct != nil {
				r.add("GPU Activity", int(math.Round(*t.UtilPct)))
			}
			if t.PowerW != nil {
				r.add("Power", f2(*t.PowerW))
			}
		}
		c := d.Counts
		r = append(r, record{
			{"MHS av", f3(d.RateAvg / mega)},
			{"MHS 5s", f3(d.Rate5s / mega)},
			{"MHS 1m", f3(d.Rate60s / mega)},
			{"Accepted", c.Accepted},
			{"Rejected", c.Rejected},
			{"Hardware Errors", c.HWErrors},
			{"Utility", perMinute(float64(c.Accepted), s.UptimeS)},
			{"Total MH", f4(float64(d.Hashes) / mega)},
			{"Difficulty Accepted", f8(c.AcceptedDiff)},
			{"Device Hardware%", pct(float64(c.HWErrors), float64(c.HWErrors+c.Accepted))},
			{"Device Rejected%", pct(float64(c.Rejected), float64(c.Accepted+c.Rejected))},
			{"Device Elapsed", int64(s.UptimeS)},
		}...)
		recs = append(recs, r)
	}
	code, msg, name := codeDevs, fmt.Sprintf("%d GPU(s) - %d CPU(s)", gpus, cpus), "DEVS"
	if only >= 0 {
		code, msg, name = codeGPUDev, fmt.Sprintf("GPU%d", only), "GPU"
	}
	return reply{status: a.status("S", code, msg), sections: []section{{name: name, indexed: true, recs: recs}}}
}

// poolStatus maps clminer's pool states to cgminer's words.
func poolStatus(state string) string {
	switch state {
	case source.StateActive.String():
		return "Alive"
	case source.StateDown.String():
		return "Dead"
	case source.StateSick.String():
		return "Rejecting"
	}
	return "Unknown" // idle backups and pools being dialled: not yet tested
}

func (a *answerer) pools() reply {
	s := a.st.Snapshot
	var recs []record
	for _, p := range s.Pools {
		active := p.State == source.StateActive.String()
		stratumURL := strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(p.URL, "stratum+tcp://"), "stratum+tls://"), "stratum+ssl://")
		recs = append(recs, record{
			{"POOL", p.Index}, {"URL", p.URL}, {"Status", poolStatus(p.State)}, {"Priority", p.Index}, {"Quota", 1},
			{"Long Poll", "N"}, {"Accepted", p.Accepted}, {"Rejected", p.Rejected}, {"Connects", p.Connects},
			{"Failovers", p.Failovers}, {"Work Difficulty", f8(p.Difficulty)},
			{"Has Stratum", true}, {"Stratum Active", active}, {"Stratum URL", stratumURL}, {"Has GBT", false},
			{"Pool Rejected%", pct(float64(p.Rejected), float64(p.Accepted+p.Rejected))},
		})
	}
	return reply{status: a.status("S", codePool, fmt.Sprintf("%d Pool(s)", len(recs))), sections: []section{{name: "POOLS", indexed: true, recs: recs}}}
}

// stats gives cgminer's STATS layout (one record per device, then per
// pool, numbered in one sequence) filled with what clminer measures
// instead of cgminer's getwork timings.
func (a *answerer) stats() reply {
	s := a.st.Snapshot
	var recs []record
	for i, d := range s.Devices {
		recs = append(recs, record{{"STATS", len(recs)}, {"ID", fmt.Sprintf("DEV%d", i)}, {"Device", d.ID},
			{"Elapsed", int64(s.UptimeS)}, {"Total Hashes", d.Hashes}, {"Below Target", d.Counts.BelowTarget},
			{"Lost", d.Counts.Lost}, {"Throttled", d.Counts.Throttled}})
	}
	for _, p := range s.Pools {
		recs = append(recs, record{{"STATS", len(recs)}, {"ID", fmt.Sprintf("POOL%d", p.Index)}, {"URL", p.URL},
			{"Elapsed", int64(s.UptimeS)}, {"Connects", p.Connects}, {"Failovers", p.Failovers},
			{"Shares In Flight", p.InFlight}, {"Throttled", p.Throttled}})
	}
	recs = append(recs, record{{"STATS", len(recs)}, {"ID", "LATENCY"},
		{"Submit RTT p50 ms", f3(s.SubmitLatency.P50ms)}, {"Submit RTT p99 ms", f3(s.SubmitLatency.P99ms)},
		{"Notify To Work p50 ms", f3(s.NotifyLatency.P50ms)}, {"Notify To Work p99 ms", f3(s.NotifyLatency.P99ms)}})
	return reply{status: a.status("S", codeMineStats, "CGMiner stats"), sections: []section{{name: "STATS", indexed: true, recs: recs}}}
}
