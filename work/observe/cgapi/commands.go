package cgapi

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"clminer/work/device"
	"clminer/work/miner"
	"clminer/work/observe/luck"
	"clminer/work/safetext"
	"clminer/work/source"
)

// State is what one request is answered from: the miner's snapshot and,
// where NVML reports them, each device's sensors (keyed by device ID).
type State struct {
	Snapshot  miner.Snapshot
	Telemetry map[string]device.Reading
	// BestEver is the all-time best share difficulty (0: not kept).
	BestEver float64
	// PoolUsers is each pool's user (worker name), by pool index; "" where
	// there is none to show (a node mined solo).
	PoolUsers []string
}

// Status codes and messages from cgminer's api.c, which clients match on.
const (
	codeInvGPU     = 1
	codeNoGPU      = 6
	codePool       = 7
	codeNoPool     = 8
	codeDevs       = 9
	codeNoDevs     = 10
	codeSumm       = 11
	codeInvCmd     = 14
	codeMisID      = 15
	codeNoCPU      = 16
	codeGPUDev     = 17
	codeCPUDev     = 18
	codeInvCPU     = 19
	codeGPUCount   = 20
	codeCPUCount   = 21
	codeVersion    = 22
	codeInvJSON    = 23
	codeMisCmd     = 24
	codeMineConfig = 33
	codeAccDeny    = 45
	codeNoPGA      = 56
	codePGACount   = 59
	codeNotify     = 60
	codeDevDetails = 69
	codeMineStats  = 70
	codeMisCheck   = 71
	codeCheck      = 72
	codeMineCoin   = 78
	codeNoUSBStats = 88
	codeASCCount   = 104
	codeNoASC      = 105
	codeLCD        = 125
)

// APIVersion and CGMinerVersion say which cgminer API the replies follow.
// The fields are cgminer 3.7.2's (API 1.32, the last with GPUs: API 2.0
// removed them, and clminer mines on GPUs); the API number is that of the
// newest feature served: joined requests (3.1), edevs and estats (3.3),
// lcd (3.4) and POOLS' Work Difficulty (3.7). A tool that checks the API
// number before it sends a joined request is answered, one that looks
// for the GPU fields finds them.
const (
	APIVersion     = "3.7"
	CGMinerVersion = "3.7.2"
)

// command is one read-only command. joinable is cgminer's: the report
// commands that take no parameter may be joined with '+'.
type command struct {
	fn       func(a *answerer, param string) reply
	joinable bool
}

// commands are the read-only commands, by cgminer's (case-sensitive)
// names. cpu and cpucount are cgminer 2.x's, for the CPU device.
var commands map[string]command

func init() {
	commands = map[string]command{
		"version":    {(*answerer).versions, true},
		"config":     {(*answerer).config, true},
		"summary":    {(*answerer).summary, true},
		"devs":       {(*answerer).allDevs, true},
		"edevs":      {(*answerer).allDevs, true}, // only the enabled ones: all are
		"gpu":        {(*answerer).gpu, false},
		"cpu":        {(*answerer).cpu, false},
		"pga":        {(*answerer).pga, false},
		"asc":        {(*answerer).asc, false},
		"gpucount":   {(*answerer).gpucount, true},
		"cpucount":   {(*answerer).cpucount, true},
		"pgacount":   {(*answerer).pgacount, true},
		"asccount":   {(*answerer).asccount, true},
		"pools":      {(*answerer).pools, true},
		"stats":      {(*answerer).stats, true},
		"estats":     {(*answerer).stats, true},
		"notify":     {(*answerer).notify, true},
		"devdetails": {(*answerer).devdetails, true},
		"coin":       {(*answerer).coin, true},
		"usbstats":   {(*answerer).usbstats, true},
		"lcd":        {(*answerer).lcd, true},
		"check":      {(*answerer).check, false},
	}
}

func (a *answerer) allDevs(string) reply { return a.devs("", -1) }
func (a *answerer) gpu(p string) reply   { return a.device(kindGPU, p) }
func (a *answerer) cpu(p string) reply   { return a.device(kindCPU, p) }
func (a *answerer) pga(string) reply     { return a.errorReply(codeNoPGA, "No PGAs") }
func (a *answerer) asc(string) reply     { return a.errorReply(codeNoASC, "No ASCs") }
func (a *answerer) gpucount(string) reply {
	return a.count(codeGPUCount, "GPU count", "GPUS", a.kindCount(kindGPU))
}
func (a *answerer) cpucount(string) reply {
	return a.count(codeCPUCount, "CPU count", "CPUS", a.kindCount(kindCPU))
}
func (a *answerer) pgacount(string) reply { return a.count(codePGACount, "PGA count", "PGAS", 0) }
func (a *answerer) asccount(string) reply { return a.count(codeASCCount, "ASC count", "ASCS", 0) }

// usbstats: clminer drives no USB miners; cgminer built without them
// answers so, with an informational status.
func (a *answerer) usbstats(string) reply {
	return reply{status: a.status("I", codeNoUSBStats, "No USB Statistics")}
}

// privileged are cgminer's commands that change the miner. This API is
// read-only: they are named so the refusal says access denied (as cgminer
// does for a client without W: access) rather than invalid command.
var privileged = map[string]bool{"switchpool": true, "enablepool": true, "addpool": true, "poolpriority": true,
	"poolquota": true, "disablepool": true, "removepool": true, "gpuenable": true, "gpudisable": true,
	"gpurestart": true, "gpuintensity": true, "gpumem": true, "gpuengine": true, "gpufan": true, "gpuvddc": true,
	"save": true, "quit": true, "privileged": true, "restart": true, "pgaenable": true, "pgadisable": true,
	"pgaidentify": true, "pgaset": true, "ascenable": true, "ascdisable": true, "ascidentify": true, "ascset": true,
	"debug": true, "setconfig": true, "zero": true, "hotplug": true, "lockstats": true, "failover-only": true}

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

func (a *answerer) errorReply(code int, msg string) reply {
	return reply{status: a.status("E", code, msg)}
}

// answer runs one command. A command that exists but changes the miner is
// refused, as cgminer refuses a client without write access.
func (a *answerer) answer(cmd, param string) reply {
	if c, ok := commands[cmd]; ok {
		return c.fn(a, param)
	}
	if privileged[cmd] {
		return a.accessDenied(cmd)
	}
	return a.errorReply(codeInvCmd, "Invalid command")
}

func (a *answerer) accessDenied(cmd string) reply {
	return a.errorReply(codeAccDeny, fmt.Sprintf("Access denied to '%s' command", cmd))
}

func (a *answerer) versions(string) reply {
	return reply{status: a.status("S", codeVersion, "CGMiner versions"), sections: []section{{name: "VERSION",
		recs: []record{{{"CGMiner", CGMinerVersion}, {"API", APIVersion}, {"clminer", a.version}}}}}}
}

func (a *answerer) check(param string) reply {
	if param == "" {
		return a.errorReply(codeMisCheck, "Missing check cmd")
	}
	_, readOnly := commands[param]
	return reply{status: a.status("S", codeCheck, "Check command"), sections: []section{{name: "CHECK",
		recs: []record{{{"Exists", yn(readOnly || privileged[param])}, {"Access", yn(readOnly)}}}}}}
}

func (a *answerer) count(code int, msg, name string, n int) reply {
	return reply{status: a.status("S", code, msg), sections: []section{{name: name, recs: []record{{{"Count", n}}}}}}
}

// Device kinds as cgminer names them: OpenCL devices are GPUs, the CPU
// device a CPU (cgminer 2.x's kind); each kind is numbered from 0.
const (
	kindGPU = "GPU"
	kindCPU = "CPU"
)

func kindOf(d miner.DeviceStats) string {
	if d.ID == "cpu" || strings.HasPrefix(d.ID, "cpu:") {
		return kindCPU
	}
	return kindGPU
}

// numbered is a device with its cgminer kind and number within the kind.
type numbered struct {
	miner.DeviceStats
	kind string
	n    int
}

func (a *answerer) numbered() []numbered {
	seen := map[string]int{}
	var out []numbered
	for _, d := range a.st.Snapshot.Devices {
		k := kindOf(d)
		out = append(out, numbered{d, k, seen[k]})
		seen[k]++
	}
	return out
}

func (a *answerer) kindCount(kind string) int {
	n := 0
	for _, d := range a.numbered() {
		if d.kind == kind {
			n++
		}
	}
	return n
}

func (a *answerer) config(string) reply {
	s := a.st.Snapshot
	gpus, cpus := a.kindCount(kindGPU), a.kindCount(kindCPU)
	var codes []string
	if gpus > 0 {
		codes = append(codes, kindGPU)
	}
	if cpus > 0 {
		codes = append(codes, kindCPU)
	}
	r := record{{"GPU Count", gpus}, {"ASC Count", 0}, {"PGA Count", 0}, {"Pool Count", len(s.Pools)},
		{"ADL", "N"}, {"ADL in use", "N"}, {"Strategy", "Failover"}, {"Log Interval", a.logInterval},
		{"Device Code", strings.Join(codes, " ") + " "}, {"OS", "Linux"}, {"Failover-Only", true},
		{"ScanTime", 0}, {"Queue", 0}, {"Expiry", 0}, {"Hotplug", "None"}, {"CPU Count", cpus}}
	return reply{status: a.status("S", codeMineConfig, "CGMiner config"), sections: []section{{name: "CONFIG", recs: []record{r}}}}
}

const mega = 1e6

// perMinute is n per minute over the elapsed time, as cgminer's Utility.
func perMinute(n, elapsedS float64) fixed {
	if elapsedS <= 0 {
		return f2(0)
	}
	return f2(n * 60 / elapsedS)
}

// unix is a time as cgminer sends one: seconds, 0 for never.
func unix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// bestShare is cgminer's integer Best Share (it keeps the best difficulty
// as a uint64).
func bestShare(d float64) uint64 {
	if math.IsNaN(d) || d < 0 {
		return 0
	}
	if d >= math.MaxUint64 {
		return math.MaxUint64
	}
	return uint64(d)
}

func (a *answerer) summary(string) reply {
	s := a.st.Snapshot
	c := s.Shares
	var getFailures uint64
	for _, p := range s.Pools {
		getFailures += p.ConnectFailures
	}
	diffSent := c.AcceptedDiff + c.RejectedDiff + c.StaleDiff
	var lastWork time.Time
	if s.Job != nil {
		lastWork = s.Job.Received
	}
	r := record{
		{"Elapsed", int64(s.UptimeS)},
		{"MHS av", f2(s.RateAvg / mega)},
		{"MHS 5s", f2(s.Rate5s / mega)},
		{"MHS 1m", f2(s.Rate60s / mega)},
		{"MHS 5m", f2(s.Rate5m / mega)},
		{"MHS 15m", f2(s.Rate15m / mega)},
		{"Found Blocks", c.Blocks},
		{"Getworks", s.Jobs},
		{"Accepted", c.Accepted},
		{"Rejected", c.Rejected},
		{"Hardware Errors", c.HWErrors},
		{"Utility", perMinute(float64(c.Accepted), s.UptimeS)},
		{"Discarded", c.Duplicate + c.Throttled},
		{"Stale", c.Stale},
		{"Get Failures", getFailures},
		{"Local Work", s.WorkUnits},
		{"Remote Failures", c.Lost},
		{"Network Blocks", s.NetworkBlocks},
		{"Total MH", f4(float64(s.Hashes) / mega)},
		{"Work Utility", perMinute(float64(c.Diff1), s.UptimeS)},
		{"Difficulty Accepted", f8(c.AcceptedDiff)},
		{"Difficulty Rejected", f8(c.RejectedDiff)},
		{"Difficulty Stale", f8(c.StaleDiff)},
		{"Best Share", bestShare(c.BestShare)},
		{"Device Hardware%", pct(float64(c.HWErrors), float64(c.HWErrors+c.Diff1))},
		{"Device Rejected%", pct(c.RejectedDiff, float64(c.Diff1))},
		{"Pool Rejected%", pct(c.RejectedDiff, diffSent)},
		{"Pool Stale%", pct(c.StaleDiff, diffSent)},
		{"Last getwork", unix(lastWork)},
		// The ASIC firmwares' names for the same rates: tools written for
		// them (pyasic) read GHS. Six decimals: a CPU's MH/s in GH/s.
		{"GHS 5s", f6(s.Rate5s / 1e9)},
		{"GHS av", f6(s.RateAvg / 1e9)},
		{"Best Share All Time", bestShare(max(a.st.BestEver, c.BestShare))},
	}
	return reply{status: a.status("S", codeSumm, "Summary"), sections: []section{{name: "SUMMARY", recs: []record{r}}}}
}

// reBatch finds an OpenCL device's batch exponent in its detail line: the
// number -I/--intensity takes, so it is what cgminer's Intensity reports.
var reBatch = regexp.MustCompile(`batch 2\^(\d+)`)

func intensity(d miner.DeviceStats) string {
	if m := reBatch.FindStringSubmatch(d.Detail); m != nil {
		return m[1]
	}
	return "0"
}

func sensor(v *float64) float64 {
	if v == nil {
		return 0
	}
	return *v
}

func isensor(v *float64) int { return int(math.Round(sensor(v))) }

// devRecord is one DEVS record: cgminer 3.7.2's GPU fields, sensors NVML
// does not report (and every sensor of a CPU) at cgminer's 0, as cgminer
// sends them without ADL.
func (a *answerer) devRecord(d numbered) record {
	s := a.st.Snapshot
	status := "Alive"
	if d.LastErr != "" {
		status = "Sick"
	}
	t := a.st.Telemetry[d.ID]
	c := d.Counts
	lastPool := -1
	if !c.LastShare.IsZero() {
		lastPool = c.LastSharePool
	}
	return record{
		{d.kind, d.n}, {"Name", d.kind}, {"ID", d.n}, {"Enabled", "Y"}, {"Status", status},
		{"Temperature", f2(sensor(t.TempC))},
		{"Fan Speed", 0},
		{"Fan Percent", isensor(t.FanPct)},
		{"GPU Clock", isensor(t.SMClockMHz)},
		{"Memory Clock", isensor(t.MemClockMHz)},
		{"GPU Voltage", f3(0)},
		{"GPU Activity", isensor(t.UtilPct)},
		{"Powertune", 0},
		{"MHS av", f2(d.RateAvg / mega)},
		{"MHS 5s", f2(d.Rate5s / mega)},
		{"MHS 1m", f2(d.Rate60s / mega)},
		{"Accepted", c.Accepted},
		{"Rejected", c.Rejected},
		{"Hardware Errors", c.HWErrors},
		{"Utility", perMinute(float64(c.Accepted), s.UptimeS)},
		{"Intensity", intensity(d.DeviceStats)},
		{"Last Share Pool", lastPool},
		{"Last Share Time", unix(c.LastShare)},
		{"Total MH", f4(float64(d.Hashes) / mega)},
		{"Diff1 Work", c.Diff1},
		{"Difficulty Accepted", f8(c.AcceptedDiff)},
		{"Difficulty Rejected", f8(c.RejectedDiff)},
		{"Last Share Difficulty", f8(c.LastShareDiff)},
		{"Last Valid Work", unix(c.LastValid)},
		{"Device Hardware%", pct(float64(c.HWErrors), float64(c.HWErrors+c.Diff1))},
		{"Device Rejected%", pct(c.RejectedDiff, float64(c.Diff1))},
		{"Device Elapsed", int64(s.UptimeS)},
		// clminer's own: the board power NVML reads, and the device id
		// /metrics and /api/v1/status use.
		{"Power", f2(sensor(t.PowerW))},
		{"Device", d.ID},
	}
}

func (a *answerer) devs(kind string, only int) reply {
	var recs []record
	gpus, cpus := 0, 0
	for _, d := range a.numbered() {
		if d.kind == kindGPU {
			gpus++
		} else {
			cpus++
		}
		if kind != "" && (d.kind != kind || d.n != only) {
			continue
		}
		recs = append(recs, a.devRecord(d))
	}
	if gpus+cpus == 0 {
		return a.errorReply(codeNoDevs, "No GPUs")
	}
	code, msg, name := codeDevs, fmt.Sprintf("%d GPU(s) - %d CPU(s)", gpus, cpus), "DEVS"
	switch kind {
	case kindGPU:
		code, msg, name = codeGPUDev, fmt.Sprintf("GPU%d", only), kindGPU
	case kindCPU:
		code, msg, name = codeCPUDev, fmt.Sprintf("CPU%d", only), kindCPU
	}
	return reply{status: a.status("S", code, msg), sections: []section{{name: name, indexed: true, recs: recs}}}
}

// atoi reads a device number as cgminer's atoi does: leading digits,
// anything else 0.
func atoi(s string) int {
	s = strings.TrimLeft(s, " \t")
	end := 0
	if end < len(s) && (s[end] == '-' || s[end] == '+') {
		end++
	}
	for end < len(s) && s[end] >= '0' && s[end] <= '9' && end < 10 {
		end++
	}
	n, _ := strconv.Atoi(s[:end])
	return n
}

// device answers gpu|N and cpu|N.
func (a *answerer) device(kind, param string) reply {
	n := a.kindCount(kind)
	noneCode, noneMsg, invCode := codeNoGPU, "No GPUs", codeInvGPU
	if kind == kindCPU {
		noneCode, noneMsg, invCode = codeNoCPU, "No CPUs", codeInvCPU
	}
	if n == 0 {
		return a.errorReply(noneCode, noneMsg)
	}
	if param == "" {
		return a.errorReply(codeMisID, "Missing device id parameter")
	}
	id := atoi(param)
	if id < 0 || id >= n {
		return a.errorReply(invCode, fmt.Sprintf("Invalid %s id %d - range is 0 - %d", kind, id, n-1))
	}
	return a.devs(kind, id)
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

// hostPort is a pool URL without its scheme, as cgminer's Stratum URL.
func hostPort(u string) string {
	if _, rest, ok := strings.Cut(u, "://"); ok {
		return rest
	}
	return u
}

func (a *answerer) pools(string) reply {
	s := a.st.Snapshot
	if len(s.Pools) == 0 {
		return a.errorReply(codeNoPool, "No pools")
	}
	var recs []record
	for _, p := range s.Pools {
		active := p.State == source.StateActive.String()
		c := miner.Counts{}
		if p.Shares != nil {
			c = *p.Shares
		}
		user := ""
		if p.Index >= 0 && p.Index < len(a.st.PoolUsers) {
			user = a.st.PoolUsers[p.Index]
		}
		stratumURL, stratumDiff := "", 0.0
		if active {
			stratumURL, stratumDiff = hostPort(p.URL), p.Difficulty
		}
		var height int64
		if p.Node != nil {
			height = p.Node.Height
		}
		diffSent := c.AcceptedDiff + c.RejectedDiff + c.StaleDiff
		recs = append(recs, record{
			{"POOL", p.Index}, {"URL", p.URL}, {"Status", poolStatus(p.State)}, {"Priority", p.Index}, {"Quota", 1},
			{"Long Poll", "N"}, {"Getworks", p.Jobs}, {"Accepted", p.Accepted}, {"Rejected", p.Rejected},
			{"Works", p.Jobs}, {"Discarded", c.Duplicate + c.Throttled}, {"Stale", c.Stale},
			{"Get Failures", p.ConnectFailures}, {"Remote Failures", c.Lost}, {"User", user},
			{"Last Share Time", unix(c.LastShare)}, {"Diff1 Shares", c.Diff1},
			{"Proxy Type", ""}, {"Proxy", ""},
			{"Difficulty Accepted", f8(c.AcceptedDiff)}, {"Difficulty Rejected", f8(c.RejectedDiff)},
			{"Difficulty Stale", f8(c.StaleDiff)}, {"Last Share Difficulty", f8(c.LastShareDiff)},
			{"Work Difficulty", f8(p.Difficulty)},
			{"Has Stratum", p.Protocol != "getblocktemplate"}, {"Stratum Active", active && p.Protocol != "getblocktemplate"},
			{"Stratum URL", stratumURL}, {"Stratum Difficulty", f8(stratumDiff)},
			{"Has Vmask", p.RollingMask != ""}, {"Has GBT", p.Protocol == "getblocktemplate"},
			{"Best Share", bestShare(c.BestShare)},
			{"Pool Rejected%", pct(c.RejectedDiff, diffSent)},
			{"Pool Stale%", pct(c.StaleDiff, diffSent)},
			{"Bad Work", 0}, {"Current Block Height", height}, {"Current Block Version", 0},
			// clminer's own: connections made and times left for another.
			{"Connects", p.Connects}, {"Failovers", p.Failovers},
		})
	}
	return reply{status: a.status("S", codePool, fmt.Sprintf("%d Pool(s)", len(recs))), sections: []section{{name: "POOLS", indexed: true, recs: recs}}}
}

// stats gives cgminer's STATS layout (one record per device, then per
// pool, numbered in one sequence, each with the ID cgminer gives it: GPU0,
// POOL0) with cgminer's getwork timings at 0 - clminer does not fetch
// work by request - and what clminer measures instead.
func (a *answerer) stats(string) reply {
	s := a.st.Snapshot
	var recs []record
	head := func(id string) record {
		return record{{"STATS", len(recs)}, {"ID", id}, {"Elapsed", int64(s.UptimeS)}, {"Calls", 0},
			{"Wait", f6(0)}, {"Max", f6(0)}, {"Min", f6(0)}}
	}
	for _, d := range a.numbered() {
		r := head(fmt.Sprintf("%s%d", d.kind, d.n))
		r = append(r, record{{"Device", d.ID}, {"Total Hashes", d.Hashes}, {"Below Target", d.Counts.BelowTarget},
			{"Lost", d.Counts.Lost}, {"Throttled", d.Counts.Throttled}}...)
		recs = append(recs, r)
	}
	for _, p := range s.Pools {
		r := head(fmt.Sprintf("POOL%d", p.Index))
		r = append(r, record{{"Pool Calls", 0}, {"Pool Attempts", p.Connects + p.ConnectFailures}, {"Pool Wait", f6(0)},
			{"Pool Max", f6(0)}, {"Pool Min", f6(0)}, {"Pool Av", f6(0)},
			{"Work Had Roll Time", false}, {"Work Can Roll", p.RollingMask != ""}, {"Work Had Expire", false},
			{"Work Roll Time", 0}, {"Work Diff", f8(p.Difficulty)},
			{"URL", p.URL}, {"Connects", p.Connects}, {"Failovers", p.Failovers},
			{"Shares In Flight", p.InFlight}, {"Throttled", p.Throttled}}...)
		recs = append(recs, r)
	}
	r := head("LATENCY")
	r = append(r, record{{"Submit RTT p50 ms", f3(s.SubmitLatency.P50ms)}, {"Submit RTT p99 ms", f3(s.SubmitLatency.P99ms)},
		{"Notify To Work p50 ms", f3(s.NotifyLatency.P50ms)}, {"Notify To Work p99 ms", f3(s.NotifyLatency.P99ms)}}...)
	recs = append(recs, r)
	return reply{status: a.status("S", codeMineStats, "CGMiner stats"), sections: []section{{name: "STATS", indexed: true, recs: recs}}}
}

// notify is each device's last problem, with cgminer's counters of
// problems (clminer counts none of cgminer's kinds: all 0).
func (a *answerer) notify(string) reply {
	var recs []record
	for i, d := range a.numbered() {
		lastWell, lastNotWell, reason := a.now.Unix(), int64(0), "None"
		if d.LastErr != "" {
			lastWell, lastNotWell, reason = unix(d.Counts.LastValid), a.now.Unix(), safetext.Label(d.LastErr)
		}
		recs = append(recs, record{{"NOTIFY", i}, {"Name", d.kind}, {"ID", d.n}, {"Last Well", lastWell},
			{"Last Not Well", lastNotWell}, {"Reason Not Well", reason},
			{"*Thread Fail Init", 0}, {"*Thread Zero Hash", 0}, {"*Thread Fail Queue", 0},
			{"*Dev Sick Idle 60s", 0}, {"*Dev Dead Idle 600s", 0}, {"*Dev Nostart", 0}, {"*Dev Over Heat", 0},
			{"*Dev Thermal Cutoff", 0}, {"*Dev Comms Error", 0}, {"*Dev Throttle", 0}})
	}
	if len(recs) == 0 {
		return a.errorReply(codeNoDevs, "No GPUs")
	}
	return reply{status: a.status("S", codeNotify, "Notify"), sections: []section{{name: "NOTIFY", indexed: true, recs: recs}}}
}

func (a *answerer) devdetails(string) reply {
	var recs []record
	for i, d := range a.numbered() {
		driver := "opencl"
		if d.kind == kindCPU {
			driver = "cpu"
		}
		recs = append(recs, record{{"DEVDETAILS", i}, {"Name", d.kind}, {"ID", d.n}, {"Driver", driver},
			{"Kernel", d.Detail}, {"Model", d.Name}, {"Device Path", d.ID}})
	}
	if len(recs) == 0 {
		return a.errorReply(codeNoDevs, "No GPUs")
	}
	return reply{status: a.status("S", codeDevDetails, "Device Details"), sections: []section{{name: "DEVDETAILS", indexed: true, recs: recs}}}
}

// coin is the block being mined on: cgminer's Current Block Time is when
// it was first seen, its hash the previous block of the work.
func (a *answerer) coin(string) reply {
	var seen time.Time
	hash, netDiff := "", 0.0
	if j := a.st.Snapshot.Job; j != nil {
		hash, seen = j.PrevHash, j.BlockSeen
		if d, ok := luck.NetworkDifficulty(j.NBits); ok {
			netDiff = d
		}
	}
	blockTime := 0.0
	if !seen.IsZero() {
		blockTime = float64(seen.UnixMicro()) / 1e6
	}
	r := record{{"Hash Method", "sha256"}, {"Current Block Time", f6(blockTime)}, {"Current Block Hash", hash},
		{"LP", false}, {"Network Difficulty", f8(netDiff)}}
	return reply{status: a.status("S", codeMineCoin, "CGMiner coin"), sections: []section{{name: "COIN", recs: []record{r}}}}
}

// lcd is cgminer 4's one-record summary for small displays.
func (a *answerer) lcd(string) reply {
	s := a.st.Snapshot
	temp := 0.0
	var lastValid, lastShare time.Time
	lastDiff := 0.0
	for _, d := range s.Devices {
		temp = max(temp, sensor(a.st.Telemetry[d.ID].TempC))
		if d.Counts.LastValid.After(lastValid) {
			lastValid = d.Counts.LastValid
		}
	}
	for _, p := range s.Pools {
		if p.Shares != nil && p.Shares.LastShare.After(lastShare) {
			lastShare, lastDiff = p.Shares.LastShare, p.Shares.LastShareDiff
		}
	}
	cur, user := "none", ""
	for _, p := range s.Pools {
		if p.State == source.StateActive.String() {
			cur = p.URL
			if p.Index >= 0 && p.Index < len(a.st.PoolUsers) {
				user = a.st.PoolUsers[p.Index]
			}
			break
		}
	}
	r := record{{"Elapsed", int64(s.UptimeS)}, {"GHS av", f6(s.RateAvg / 1e9)}, {"GHS 5m", f6(s.Rate5m / 1e9)},
		{"GHS 5s", f6(s.Rate5s / 1e9)}, {"Temperature", f2(temp)}, {"Last Share Difficulty", f8(lastDiff)},
		{"Last Share Time", unix(lastShare)}, {"Best Share", bestShare(s.Shares.BestShare)},
		{"Last Valid Work", unix(lastValid)}, {"Found Blocks", s.Shares.Blocks}, {"Current Pool", cur}, {"User", user}}
	return reply{status: a.status("S", codeLCD, "LCD"), sections: []section{{name: "LCD", recs: []record{r}}}}
}
