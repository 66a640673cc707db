package cgapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"clminer/work/device"
	"clminer/work/miner"
	"clminer/work/source"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func f(v float64) *float64 { return &v }

var t0 = time.Unix(1700000000, 0)

func testState() State {
	return State{
		Snapshot: miner.Snapshot{
			UptimeS: 120.5, Rate5s: 25e6, Rate60s: 24e6, Rate5m: 23.8e6, Rate15m: 23.7e6, RateAvg: 23.5e6, Hashes: 2_832_000_000,
			Jobs: 40, NetworkBlocks: 3, WorkUnits: 900,
			Shares: miner.Counts{Accepted: 90, Rejected: 10, Stale: 2, Duplicate: 1, HWErrors: 1, Lost: 3, Blocks: 1,
				AcceptedDiff: 45, RejectedDiff: 5, StaleDiff: 1, Diff1: 50, BestShare: 1234.56,
				LastShare: t0.Add(-3 * time.Second), LastShareDiff: 0.5, LastValid: t0.Add(-time.Second)},
			Devices: []miner.DeviceStats{
				{ID: "opencl:0:0", Name: "NVIDIA H100", Detail: "vector 1, versions 4, maj lop3, batch 2^28 hashes, 50 ms",
					Rate5s: 20e6, Rate60s: 19e6, RateAvg: 18.5e6, Hashes: 2e9,
					Counts: miner.Counts{Accepted: 70, Rejected: 8, HWErrors: 1, AcceptedDiff: 35, RejectedDiff: 4, Diff1: 40,
						LastShare: t0.Add(-3 * time.Second), LastShareDiff: 0.5, LastSharePool: 0, LastValid: t0.Add(-time.Second)}},
				{ID: "cpu", Name: "Some CPU", Detail: "sha-ni/n4 (4 lanes), 2 threads", Rate5s: 5e6, Rate60s: 5e6, RateAvg: 5e6, Hashes: 832e6,
					Counts: miner.Counts{Accepted: 20, Rejected: 2, AcceptedDiff: 10, RejectedDiff: 1, Diff1: 10}},
				{ID: "opencl:1:0", Name: "Other GPU", LastErr: "CL_OUT_OF_RESOURCES"},
			},
			Pools: []miner.PoolStats{
				{PoolStats: source.PoolStats{Index: 0, URL: "stratum+tcp://pool.example:3333", State: "active", Protocol: "stratum",
					Accepted: 90, Rejected: 10, Difficulty: 0.5, Connects: 1, RollingMask: "1fffe000"}, Jobs: 40,
					Shares: &miner.Counts{Accepted: 90, Rejected: 10, Stale: 2, Lost: 3, AcceptedDiff: 45, RejectedDiff: 5, StaleDiff: 1,
						Diff1: 50, BestShare: 1234.56, LastShare: t0.Add(-3 * time.Second), LastShareDiff: 0.5}},
				{PoolStats: source.PoolStats{Index: 1, URL: "stratum+tls://b,ack=up.example:443", State: "down", Protocol: "stratum"},
					ConnectFailures: 4,
					Shares:          &miner.Counts{}},
			},
			Job: &miner.JobInfo{ID: "j1", NBits: "1d00ffff", Received: t0.Add(-2 * time.Second),
				PrevHash: "00000000000000000001aa", BlockSeen: t0.Add(-100*time.Second + 250*time.Millisecond)},
		},
		Telemetry: map[string]device.Reading{"opencl:0:0": {TempC: f(66), FanPct: f(41.6), PowerW: f(250)}},
		BestEver:  99999.9,
		PoolUsers: []string{"wallet.rig1", "backup|user"},
	}
}

func newServer(t *testing.T, st State) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s, err := New(ln, Config{Version: "v9", State: func() State { return st }, LogInterval: 10,
		Now: func() time.Time { return t0 }})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	return s
}

func ask(t *testing.T, s *Server, req string) string {
	t.Helper()
	c, err := net.Dial("tcp", s.Addr())
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write([]byte(req))
	require.NoError(t, err)
	b, err := io.ReadAll(c)
	require.NoError(t, err)
	require.True(t, strings.HasSuffix(string(b), "\x00"), "reply ends with NUL: %q", b)
	return strings.TrimSuffix(string(b), "\x00")
}

// answer is the reply without a connection, for the tables.
func answer(req string) string {
	s := &Server{cfg: Config{Version: "v9", State: testState, LogInterval: 10, Now: func() time.Time { return t0 }}}
	out := s.Answer([]byte(req))
	return string(out[:len(out)-1])
}

func askJSON(t *testing.T, s *Server, req string) map[string]any {
	t.Helper()
	var v map[string]any
	body := ask(t, s, req)
	require.NoError(t, json.Unmarshal([]byte(body), &v), body)
	return v
}

func first(t *testing.T, v map[string]any, sec string) map[string]any {
	t.Helper()
	l, ok := v[sec].([]any)
	require.True(t, ok, "section %s in %v", sec, v)
	require.NotEmpty(t, l)
	return l[0].(map[string]any)
}

// jsonFields decodes a reply keeping each record's field order.
func jsonFields(t *testing.T, body string) (map[string]any, map[string][][]string) {
	t.Helper()
	var v map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &v), body)
	order := map[string][][]string{}
	var top map[string]json.RawMessage
	require.NoError(t, json.Unmarshal([]byte(body), &top))
	for sec, raw := range top {
		if sec == "id" {
			continue
		}
		var recs []json.RawMessage
		require.NoError(t, json.Unmarshal(raw, &recs), sec)
		for _, r := range recs {
			dec := json.NewDecoder(strings.NewReader(string(r)))
			dec.UseNumber()
			_, _ = dec.Token() // {
			var names []string
			for dec.More() {
				k, err := dec.Token()
				require.NoError(t, err)
				names = append(names, k.(string))
				var skip any
				require.NoError(t, dec.Decode(&skip))
			}
			order[sec] = append(order[sec], names)
		}
	}
	return v, order
}

// textRecords splits a text reply into records of name=value pairs in
// order, unescaping as the API-README's escaping rules say.
func textRecords(body string) [][][2]string {
	var out [][][2]string
	for _, rec := range splitEsc(body, '|') {
		if rec == "" {
			continue
		}
		var pairs [][2]string
		for _, item := range splitEsc(rec, ',') {
			kv := splitEsc(item, '=')
			name := unesc(kv[0])
			val := ""
			if len(kv) > 1 {
				val = unesc(strings.Join(kv[1:], "="))
			}
			pairs = append(pairs, [2]string{name, val})
		}
		out = append(out, pairs)
	}
	return out
}

func splitEsc(s string, sep byte) []string {
	var out []string
	cur := strings.Builder{}
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s):
			cur.WriteByte(s[i])
			cur.WriteByte(s[i+1])
			i++
		case s[i] == sep:
			out = append(out, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(s[i])
		}
	}
	return append(out, cur.String())
}

func unesc(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// The field set of each section, in cgminer's order (cgminer 3.7.2's
// api.c, with the fields later APIs added and clminer's own at the end).
var (
	statusFields  = []string{"STATUS", "When", "Code", "Msg", "Description"}
	versionFields = []string{"CGMiner", "API", "clminer"}
	configFields  = []string{"GPU Count", "ASC Count", "PGA Count", "Pool Count", "ADL", "ADL in use", "Strategy", "Log Interval",
		"Device Code", "OS", "Failover-Only", "ScanTime", "Queue", "Expiry", "Hotplug", "CPU Count"}
	summaryFields = []string{"Elapsed", "MHS av", "MHS 5s", "MHS 1m", "MHS 5m", "MHS 15m", "Found Blocks", "Getworks", "Accepted",
		"Rejected", "Hardware Errors", "Utility", "Discarded", "Stale", "Get Failures", "Local Work", "Remote Failures",
		"Network Blocks", "Total MH", "Work Utility", "Difficulty Accepted", "Difficulty Rejected", "Difficulty Stale",
		"Best Share", "Device Hardware%", "Device Rejected%", "Pool Rejected%", "Pool Stale%", "Last getwork",
		"GHS 5s", "GHS av", "Best Share All Time"}
	devFields = []string{"Name", "ID", "Enabled", "Status", "Temperature", "Fan Speed", "Fan Percent", "GPU Clock",
		"Memory Clock", "GPU Voltage", "GPU Activity", "Powertune", "MHS av", "MHS 5s", "MHS 1m", "Accepted", "Rejected",
		"Hardware Errors", "Utility", "Intensity", "Last Share Pool", "Last Share Time", "Total MH", "Diff1 Work",
		"Difficulty Accepted", "Difficulty Rejected", "Last Share Difficulty", "Last Valid Work", "Device Hardware%",
		"Device Rejected%", "Device Elapsed", "Power", "Device"}
	poolFields = []string{"POOL", "URL", "Status", "Priority", "Quota", "Long Poll", "Getworks", "Accepted", "Rejected", "Works",
		"Discarded", "Stale", "Get Failures", "Remote Failures", "User", "Last Share Time", "Diff1 Shares", "Proxy Type",
		"Proxy", "Difficulty Accepted", "Difficulty Rejected", "Difficulty Stale", "Last Share Difficulty",
		"Work Difficulty", "Has Stratum", "Stratum Active", "Stratum URL", "Stratum Difficulty", "Has Vmask", "Has GBT",
		"Best Share", "Pool Rejected%", "Pool Stale%", "Bad Work", "Current Block Height", "Current Block Version",
		"Connects", "Failovers"}
	statsHead     = []string{"STATS", "ID", "Elapsed", "Calls", "Wait", "Max", "Min"}
	statsDev      = append(append([]string{}, statsHead...), "Device", "Total Hashes", "Below Target", "Lost", "Throttled")
	statsPool     = append(append([]string{}, statsHead...), "Pool Calls", "Pool Attempts", "Pool Wait", "Pool Max", "Pool Min", "Pool Av", "Work Had Roll Time", "Work Can Roll", "Work Had Expire", "Work Roll Time", "Work Diff", "URL", "Connects", "Failovers", "Shares In Flight", "Throttled")
	statsLatency  = append(append([]string{}, statsHead...), "Submit RTT p50 ms", "Submit RTT p99 ms", "Notify To Work p50 ms", "Notify To Work p99 ms")
	notifyFields  = []string{"NOTIFY", "Name", "ID", "Last Well", "Last Not Well", "Reason Not Well", "*Thread Fail Init", "*Thread Zero Hash", "*Thread Fail Queue", "*Dev Sick Idle 60s", "*Dev Dead Idle 600s", "*Dev Nostart", "*Dev Over Heat", "*Dev Thermal Cutoff", "*Dev Comms Error", "*Dev Throttle"}
	detailsFields = []string{"DEVDETAILS", "Name", "ID", "Driver", "Kernel", "Model", "Device Path"}
	coinFields    = []string{"Hash Method", "Current Block Time", "Current Block Hash", "LP", "Network Difficulty"}
	lcdFields     = []string{"Elapsed", "GHS av", "GHS 5m", "GHS 5s", "Temperature", "Last Share Difficulty", "Last Share Time", "Best Share", "Last Valid Work", "Found Blocks", "Current Pool", "User"}
	countFields   = []string{"Count"}
	checkFields   = []string{"Exists", "Access"}
)

func withKey(key string, fields []string) []string { return append([]string{key}, fields...) }

// Every read-only command, in the JSON and the text form: its status code
// and message, its section, and each record's fields in order. The text
// form carries the same records, the STATUS first, an indexed record
// opening with its index (GPU=0), any other with its section's name.
func TestCommandsFieldSets(t *testing.T) {
	gpuRec := func(n int) []string { return withKey("GPU", devFields) }
	for _, tc := range []struct {
		cmd, section string
		code         int
		msg          string
		indexed      bool
		recs         [][]string
	}{
		{"version", "VERSION", 22, "CGMiner versions", false, [][]string{versionFields}},
		{"config", "CONFIG", 33, "CGMiner config", false, [][]string{configFields}},
		{"summary", "SUMMARY", 11, "Summary", false, [][]string{summaryFields}},
		{"devs", "DEVS", 9, "2 GPU(s) - 1 CPU(s)", true, [][]string{gpuRec(0), withKey("CPU", devFields), gpuRec(1)}},
		{"edevs", "DEVS", 9, "2 GPU(s) - 1 CPU(s)", true, [][]string{gpuRec(0), withKey("CPU", devFields), gpuRec(1)}},
		{"gpu|1", "GPU", 17, "GPU1", true, [][]string{gpuRec(1)}},
		{"cpu|0", "CPU", 18, "CPU0", true, [][]string{withKey("CPU", devFields)}},
		{"gpucount", "GPUS", 20, "GPU count", false, [][]string{countFields}},
		{"cpucount", "CPUS", 21, "CPU count", false, [][]string{countFields}},
		{"pgacount", "PGAS", 59, "PGA count", false, [][]string{countFields}},
		{"asccount", "ASCS", 104, "ASC count", false, [][]string{countFields}},
		{"pools", "POOLS", 7, "2 Pool(s)", true, [][]string{poolFields, poolFields}},
		{"stats", "STATS", 70, "CGMiner stats", true, [][]string{statsDev, statsDev, statsDev, statsPool, statsPool, statsLatency}},
		{"estats", "STATS", 70, "CGMiner stats", true, [][]string{statsDev, statsDev, statsDev, statsPool, statsPool, statsLatency}},
		{"notify", "NOTIFY", 60, "Notify", true, [][]string{notifyFields, notifyFields, notifyFields}},
		{"devdetails", "DEVDETAILS", 69, "Device Details", true, [][]string{detailsFields, detailsFields, detailsFields}},
		{"coin", "COIN", 78, "CGMiner coin", false, [][]string{coinFields}},
		{"lcd", "LCD", 125, "LCD", false, [][]string{lcdFields}},
		{"check|summary", "CHECK", 72, "Check command", false, [][]string{checkFields}},
		{"usbstats", "", 88, "No USB Statistics", false, nil},
		{"pga|0", "", 56, "No PGAs", false, nil},
		{"asc|0", "", 105, "No ASCs", false, nil},
	} {
		t.Run(tc.cmd, func(t *testing.T) {
			cmd, param, _ := strings.Cut(tc.cmd, "|")
			req := fmt.Sprintf(`{"command":%q}`, cmd)
			if param != "" {
				req = fmt.Sprintf(`{"command":%q,"parameter":%q}`, cmd, param)
			}
			v, order := jsonFields(t, answer(req))
			require.Equal(t, [][]string{statusFields}, order["STATUS"])
			st := v["STATUS"].([]any)[0].(map[string]any)
			assert.Equal(t, float64(tc.code), st["Code"])
			assert.Equal(t, tc.msg, st["Msg"])
			assert.Equal(t, 1.0, v["id"])
			if tc.section == "" {
				assert.Len(t, v, 2, "STATUS and id only")
				return
			}
			assert.Len(t, v, 3, "STATUS, %s and id", tc.section)
			assert.Equal(t, tc.recs, order[tc.section])

			text := textRecords(answer(tc.cmd))
			require.Len(t, text, 1+len(tc.recs))
			var names []string
			for _, kv := range text[0] {
				names = append(names, kv[0])
			}
			assert.Equal(t, statusFields, names)
			for i, rec := range text[1:] {
				var names []string
				for _, kv := range rec {
					names = append(names, kv[0])
				}
				if tc.indexed {
					assert.Equal(t, tc.recs[i], names)
				} else {
					assert.Equal(t, withKey(tc.section, tc.recs[i]), names)
					assert.Equal(t, "", rec[0][1], "a bare section name")
				}
			}
		})
	}
}

// The values, from the snapshot: cgminer's types (integer counts, IDs and
// Best Share, times in seconds, 0 for never), cgminer's neutral values for
// what does not apply (a sensor NVML does not report, a CPU's sensors, a
// pool's unknown last share pool -1).
func TestFieldValues(t *testing.T) {
	v := map[string]map[string]any{}
	for _, sec := range []string{"summary", "devs", "pools", "lcd", "coin", "notify", "devdetails", "version", "config", "stats"} {
		var one map[string]any
		require.NoError(t, json.Unmarshal([]byte(answer(`{"command":"`+sec+`"}`)), &one))
		v[sec] = one
	}
	sum := v["summary"]["SUMMARY"].([]any)[0].(map[string]any)
	for k, want := range map[string]any{"Elapsed": 120.0, "MHS av": 23.5, "MHS 5s": 25.0, "MHS 1m": 24.0, "MHS 5m": 23.8,
		"Found Blocks": 1.0, "Getworks": 40.0, "Accepted": 90.0, "Rejected": 10.0, "Hardware Errors": 1.0, "Utility": 44.81,
		"Discarded": 1.0, "Stale": 2.0, "Get Failures": 4.0, "Local Work": 900.0, "Remote Failures": 3.0, "Network Blocks": 3.0,
		"Total MH": 2832.0, "Work Utility": 24.9, "Difficulty Accepted": 45.0, "Difficulty Rejected": 5.0, "Difficulty Stale": 1.0,
		"Best Share": 1234.0, "Device Hardware%": 1.9608, "Device Rejected%": 10.0, "Pool Rejected%": 9.8039, "Pool Stale%": 1.9608,
		"Last getwork": float64(t0.Unix() - 2), "GHS 5s": 0.025, "Best Share All Time": 99999.0} {
		assert.Equal(t, want, sum[k], k)
	}
	body := answer(`{"command":"summary"}`)
	assert.Contains(t, body, `"Best Share":1234,`, "an integer, as cgminer sends it")
	assert.Contains(t, body, `"Difficulty Accepted":45.00000000,`)

	devs := v["devs"]["DEVS"].([]any)
	gpu, cpu, sick := devs[0].(map[string]any), devs[1].(map[string]any), devs[2].(map[string]any)
	for k, want := range map[string]any{"GPU": 0.0, "Name": "GPU", "ID": 0.0, "Status": "Alive", "Temperature": 66.0,
		"Fan Percent": 42.0, "Power": 250.0, "GPU Clock": 0.0, "Intensity": "28", "Last Share Pool": 0.0,
		"Last Share Time": float64(t0.Unix() - 3), "Last Share Difficulty": 0.5, "Last Valid Work": float64(t0.Unix() - 1),
		"Diff1 Work": 40.0, "Difficulty Rejected": 4.0, "Device Rejected%": 10.0, "Device": "opencl:0:0", "MHS 5s": 20.0} {
		assert.Equal(t, want, gpu[k], "GPU 0 %s", k)
	}
	for k, want := range map[string]any{"CPU": 0.0, "Name": "CPU", "ID": 0.0, "Temperature": 0.0, "Fan Percent": 0.0,
		"Power": 0.0, "Intensity": "0", "Last Share Pool": -1.0, "Last Share Time": 0.0, "Last Valid Work": 0.0, "Device": "cpu"} {
		assert.Equal(t, want, cpu[k], "CPU 0 %s", k)
	}
	assert.Equal(t, 1.0, sick["GPU"], "GPUs are numbered among GPUs, past the CPU")
	assert.Equal(t, 1.0, sick["ID"])
	assert.Equal(t, "Sick", sick["Status"])

	pools := v["pools"]["POOLS"].([]any)
	p0, p1 := pools[0].(map[string]any), pools[1].(map[string]any)
	for k, want := range map[string]any{"POOL": 0.0, "Status": "Alive", "User": "wallet.rig1", "Getworks": 40.0,
		"Last Share Time": float64(t0.Unix() - 3), "Diff1 Shares": 50.0, "Difficulty Accepted": 45.0, "Difficulty Rejected": 5.0,
		"Difficulty Stale": 1.0, "Last Share Difficulty": 0.5, "Best Share": 1234.0, "Remote Failures": 3.0,
		"Pool Stale%": 1.9608, "Stratum Active": true, "Stratum URL": "pool.example:3333", "Has Vmask": true,
		"Work Difficulty": 0.5, "Stratum Difficulty": 0.5} {
		assert.Equal(t, want, p0[k], "pool 0 %s", k)
	}
	for k, want := range map[string]any{"POOL": 1.0, "Status": "Dead", "User": "backup|user", "Get Failures": 4.0,
		"Last Share Time": 0.0, "Stratum Active": false, "Stratum URL": "", "URL": "stratum+tls://b,ack=up.example:443"} {
		assert.Equal(t, want, p1[k], "pool 1 %s", k)
	}

	lcd := v["lcd"]["LCD"].([]any)[0].(map[string]any)
	assert.Equal(t, 66.0, lcd["Temperature"], "the hottest device")
	assert.Equal(t, "stratum+tcp://pool.example:3333", lcd["Current Pool"])
	assert.Equal(t, "wallet.rig1", lcd["User"])
	assert.Equal(t, float64(t0.Unix()-3), lcd["Last Share Time"])

	coin := v["coin"]["COIN"].([]any)[0].(map[string]any)
	assert.Equal(t, "sha256", coin["Hash Method"])
	assert.Equal(t, "00000000000000000001aa", coin["Current Block Hash"])
	assert.Equal(t, 1.0, coin["Network Difficulty"])
	assert.Contains(t, answer(`{"command":"coin"}`), `"Current Block Time":1699999900.250000,`)

	nt := v["notify"]["NOTIFY"].([]any)
	assert.Equal(t, "None", nt[0].(map[string]any)["Reason Not Well"])
	assert.Equal(t, "CL_OUT_OF_RESOURCES", nt[2].(map[string]any)["Reason Not Well"])
	assert.Equal(t, float64(t0.Unix()), nt[2].(map[string]any)["Last Not Well"])
	dd := v["devdetails"]["DEVDETAILS"].([]any)[0].(map[string]any)
	assert.Equal(t, "NVIDIA H100", dd["Model"])
	assert.Equal(t, "opencl", dd["Driver"])

	ver := v["version"]["VERSION"].([]any)[0].(map[string]any)
	assert.Equal(t, map[string]any{"CGMiner": "3.7.2", "API": "3.7", "clminer": "v9"}, ver)
	cfg := v["config"]["CONFIG"].([]any)[0].(map[string]any)
	assert.Equal(t, 2.0, cfg["GPU Count"])
	assert.Equal(t, 1.0, cfg["CPU Count"])
	assert.Equal(t, "GPU CPU ", cfg["Device Code"])
	stats := v["stats"]["STATS"].([]any)
	assert.Equal(t, "GPU0", stats[0].(map[string]any)["ID"])
	assert.Equal(t, "CPU0", stats[1].(map[string]any)["ID"])
	assert.Equal(t, "POOL0", stats[3].(map[string]any)["ID"])
	for _, r := range stats {
		assert.Equal(t, 120.0, r.(map[string]any)["Elapsed"], "every record has Elapsed (pyasic reads STATS[1])")
	}
}

// Joined requests as cgminer 3.12.1+ answers them: each command under its
// name, the text form with CMD= separators, repeats and blanks skipped,
// the joined layout even for one command, a command that takes a parameter
// or changes the miner refused on its own, an unknown one invalid, and
// command names case-sensitive.
func TestJoined(t *testing.T) {
	var v map[string]any
	require.NoError(t, json.Unmarshal([]byte(answer(`{"command":"summary+devs+pools+version+config+stats+summary"}`)), &v))
	assert.Len(t, v, 7)
	for _, k := range []string{"summary", "devs", "pools", "version", "config", "stats"} {
		l, ok := v[k].([]any)
		require.True(t, ok, "member %s", k)
		require.Len(t, l, 1)
		assert.Contains(t, l[0], "STATUS")
		assert.Equal(t, 1.0, l[0].(map[string]any)["id"])
	}
	assert.Equal(t, 1.0, v["id"])

	for _, req := range []string{"devs+devs", "+devs++"} {
		v = nil
		require.NoError(t, json.Unmarshal([]byte(answer(`{"command":"`+req+`"}`)), &v), req)
		assert.Len(t, v, 2, "%s: one member and id", req)
		assert.Contains(t, v["devs"].([]any)[0], "DEVS", req)
		text := answer(req)
		assert.True(t, strings.HasPrefix(text, "CMD=devs|STATUS=S,"), "%s: %s", req, text)
		assert.Equal(t, 1, strings.Count(text, "CMD="), req)
	}

	text := answer("summary+devs|0")
	recs := textRecords(text)
	assert.Equal(t, [2]string{"CMD", "summary"}, recs[0][0])
	assert.Equal(t, "STATUS", recs[1][0][0])
	assert.Equal(t, "SUMMARY", recs[2][0][0])
	assert.Equal(t, [2]string{"CMD", "devs"}, recs[3][0])
	assert.Equal(t, [2]string{"Code", "9"}, recs[4][2])
	assert.Len(t, recs, 5+3, "CMD, STATUS, SUMMARY, CMD, STATUS and three devices")

	v = nil
	require.NoError(t, json.Unmarshal([]byte(answer(`{"command":"summary+gpu+quit+nonsense+SUMMARY+check"}`)), &v))
	code := func(k string) float64 {
		return v[k].([]any)[0].(map[string]any)["STATUS"].([]any)[0].(map[string]any)["Code"].(float64)
	}
	assert.Equal(t, 11.0, code("summary"))
	assert.Equal(t, 45.0, code("gpu"), "gpu takes a parameter: not joinable")
	assert.Equal(t, 45.0, code("check"))
	assert.Equal(t, 45.0, code("quit"))
	assert.Equal(t, 14.0, code("nonsense"))
	assert.Equal(t, 14.0, code("SUMMARY"), "command names are case-sensitive")
	assert.Contains(t, answer("summary+a,b"), `|CMD=a\,b|STATUS=E,`, "a name is escaped as a value is")
	assert.Contains(t, answer(`{"command":"summary+a\"b"}`), `,"a\"b":[{"STATUS":[{"STATUS":"E",`)
}

func TestReadOnlyAndErrors(t *testing.T) {
	for _, tc := range []struct {
		req  string
		code float64
		msg  string
	}{
		{`{"command":"quit"}`, 45, "Access denied to 'quit' command"},
		{`{"command":"switchpool","parameter":1}`, 45, "Access denied to 'switchpool' command"},
		{`{"command":"addpool","parameter":"stratum+tcp://evil:1,u,p"}`, 45, "Access denied to 'addpool' command"},
		{`{"command":"nonsense"}`, 14, "Invalid command"},
		{`{"command":"Summary"}`, 14, "Invalid command"},
		{`{"command":"DEVS"}`, 14, "Invalid command"},
		{`{"command":""}`, 14, "Invalid command"},
		{`{"command":["summary"]}`, 14, "Invalid command"},
		{`{"command":null}`, 14, "Invalid command"},
		{`{"parameter":"0"}`, 24, "Missing JSON 'command'"},
		{`{"command":"summary"`, 23, "Invalid JSON"},
		{`{"command":"gpu","parameter":5}`, 1, "Invalid GPU id 5 - range is 0 - 1"},
		{`{"command":"gpu"}`, 15, "Missing device id parameter"},
		{`{"command":"check"}`, 71, "Missing check cmd"},
	} {
		t.Run(tc.req, func(t *testing.T) {
			var v map[string]any
			require.NoError(t, json.Unmarshal([]byte(answer(tc.req)), &v))
			st := first(t, v, "STATUS")
			assert.Equal(t, "E", st["STATUS"])
			assert.Equal(t, tc.code, st["Code"])
			assert.Equal(t, tc.msg, st["Msg"])
		})
	}
	assert.Contains(t, answer("quit"), "Access denied to 'quit' command")
	assert.Contains(t, answer("gpu|x"), "Code=17,Msg=GPU0", "cgminer reads the id with atoi")
	assert.Contains(t, answer(`{"command":"gpu","parameter":1}`), `"Msg":"GPU1"`, "a numeric parameter")
	assert.Contains(t, answer("check|quit"), "CHECK,Exists=Y,Access=N|")
	assert.Contains(t, answer("check|devs"), "CHECK,Exists=Y,Access=Y|")
	assert.Contains(t, answer("check|nope"), "CHECK,Exists=N,Access=N|")
}

// The server: JSON in, JSON out; the text form escaped; a closed write
// side or a newline ends a request.
func TestServerForms(t *testing.T) {
	s := newServer(t, testState())
	v := askJSON(t, s, `{"command":"summary"}`)
	assert.Equal(t, "clminer v9", first(t, v, "STATUS")["Description"])
	body := ask(t, s, "summary")
	assert.True(t, strings.HasPrefix(body, "STATUS=S,When=1700000000,Code=11,Msg=Summary,Description=clminer v9|SUMMARY,Elapsed=120,MHS av=23.50,"), body)
	assert.True(t, strings.HasSuffix(body, "|"))
	body = ask(t, s, "pools\n")
	assert.Contains(t, body, `|POOL=1,URL=stratum+tls://b\,ack\=up.example:443,Status=Dead,`, "text form escapes , = | \\")
	assert.Contains(t, body, `User=backup\|user,`)
}

// cgminer answers what its one read got: a JSON request cut short, from a
// client that keeps its side open, gets Invalid JSON at once rather than
// at the connection's timeout.
func TestTruncatedJSONAnsweredAtOnce(t *testing.T) {
	s := newServer(t, testState())
	c, err := net.Dial("tcp", s.Addr())
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write([]byte(`{"command":"summ`))
	require.NoError(t, err)
	// Well before the server's own deadline: an answer after it would be
	// the old behaviour.
	require.NoError(t, c.SetReadDeadline(time.Now().Add(connTimeout/2)))
	b, err := io.ReadAll(c)
	require.NoError(t, err, "answered before the connection's timeout")
	assert.Contains(t, string(b), `"Code":23,"Msg":"Invalid JSON"`)

	// A request split in two segments in quick succession is still read
	// whole.
	c2, err := net.Dial("tcp", s.Addr())
	require.NoError(t, err)
	defer c2.Close()
	_, err = c2.Write([]byte(`{"command":`))
	require.NoError(t, err)
	_, err = c2.Write([]byte(`"version"}`))
	require.NoError(t, err)
	b, err = io.ReadAll(c2)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"Code":22`)
}

// A peer that sends an endless request is cut off at the cap, without a
// reply; one that sends nothing is dropped at the deadline; neither stops
// the next client being answered.
func TestHostilePeers(t *testing.T) {
	s := newServer(t, testState())
	c, err := net.Dial("tcp", s.Addr())
	require.NoError(t, err)
	defer c.Close()
	_, _ = c.Write([]byte("{" + strings.Repeat(" ", 2*maxRequest)))
	b, _ := io.ReadAll(c)
	assert.Empty(t, b)

	var idle []net.Conn
	for range maxConns + 2 {
		c, err := net.Dial("tcp", s.Addr())
		require.NoError(t, err)
		idle = append(idle, c)
	}
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	// All handler slots may be held by silent peers for up to connTimeout;
	// a client retries as cgminer's do, and is answered once one frees.
	deadline := time.Now().Add(3 * connTimeout)
	for {
		c, err := net.Dial("tcp", s.Addr())
		require.NoError(t, err)
		_, _ = c.Write([]byte("version"))
		b, _ := io.ReadAll(c)
		c.Close()
		if len(b) > 0 {
			assert.Contains(t, string(b), "Code=22")
			break
		}
		require.True(t, time.Now().Before(deadline), "never answered")
		time.Sleep(100 * time.Millisecond) // the retrying client's pause: a freed slot is not observable from outside
	}
}

func TestAllowList(t *testing.T) {
	s := &Server{cfg: Config{Allow: []netip.Prefix{netip.MustParsePrefix("192.168.1.0/24"), netip.MustParsePrefix("10.0.0.7/32")}}}
	for addr, want := range map[string]bool{
		"127.0.0.1:5000": true, "[::1]:5000": true, "192.168.1.77:1": true, "[::ffff:192.168.1.9]:1": true,
		"10.0.0.7:1": true, "10.0.0.8:1": false, "8.8.8.8:53": false, "[2001:db8::1]:1": false,
	} {
		ap := netip.MustParseAddrPort(addr)
		assert.Equal(t, want, s.allowed(net.TCPAddrFromAddrPort(ap)), addr)
	}
}

// Any request bytes get a NUL-terminated reply; a JSON request gets JSON.
func FuzzAnswer(f *testing.F) {
	for _, seed := range []string{`{"command":"summary+devs"}`, "summary", "gpu|0", `{"command":"gpu","parameter":0}`,
		"pools|", `{"command":"check","parameter":"quit"}`, "{", "\x00", "stats+config+version", "+devs++", "devs+devs",
		`{"command":"summary+gpu+a\"b"}`, `{"command":7}`, `{"parameter":1.5}`, "lcd+coin+notify+devdetails+usbstats"} {
		f.Add([]byte(seed))
	}
	s := &Server{cfg: Config{Version: "v", State: testState, Now: time.Now}}
	f.Fuzz(func(t *testing.T, req []byte) {
		out := s.Answer(req)
		require.NotEmpty(t, out)
		require.Equal(t, byte(0), out[len(out)-1])
		body := out[:len(out)-1]
		if t := strings.TrimSpace(string(req)); strings.HasPrefix(t, "{") {
			if !json.Valid(body) {
				panic("reply to a JSON request is not JSON: " + string(body))
			}
		}
	})
}

// chunks is a peer that sends its bytes in the given pieces, then EOF.
type chunks struct{ parts [][]byte }

func (c *chunks) Read(p []byte) (int, error) {
	if len(c.parts) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.parts[0])
	if n == len(c.parts[0]) {
		c.parts = c.parts[1:]
	} else {
		c.parts[0] = c.parts[0][n:]
	}
	return n, nil
}

// Whatever a peer sends, in whatever pieces, the reader ends with at most
// maxRequest (plus one read) held, and a request it accepts is what the
// peer sent up to a terminator.
func FuzzReadRequest(f *testing.F) {
	f.Add([]byte(`{"command":"summary"}`), []byte{3, 9})
	f.Add([]byte("summary|0\n"), []byte{1})
	f.Add([]byte("{"+strings.Repeat("x", 5000)), []byte{200, 200})
	f.Fuzz(func(t *testing.T, data, cuts []byte) {
		c := &chunks{}
		rest := data
		for _, k := range cuts {
			n := int(k)%64 + 1
			if n > len(rest) {
				break
			}
			c.parts = append(c.parts, rest[:n])
			rest = rest[n:]
		}
		if len(rest) > 0 {
			c.parts = append(c.parts, rest)
		}
		req, ok := readRequest(c)
		if !ok {
			return
		}
		if len(req) > maxRequest+512 {
			t.Fatalf("accepted %d bytes", len(req))
		}
		if !strings.HasPrefix(string(data), string(req)) {
			t.Fatalf("request %q is not a prefix of what was sent", req)
		}
	})
}
