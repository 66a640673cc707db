package cgapi

import (
	"encoding/json"
	"io"
	"math"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The tests below read replies the way three widely used clients do,
// written here from their documented behaviour (cgminer's miner.php and
// API-README, pyasic's RPC classes, MultiMiner's text parsers), not from
// clminer's server. Each sends as its client sends: one request per
// connection, no newline, the write side left open.

func send(t *testing.T, s *Server, req string) string {
	t.Helper()
	c, err := net.Dial("tcp", s.Addr())
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write([]byte(req))
	require.NoError(t, err)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(connTimeout/2)))
	b, err := io.ReadAll(c)
	require.NoError(t, err, "answered without the client closing its side")
	return string(b)
}

// minerPHP is miner.php's api(): read to the NUL, turn escaped separators
// into placeholders, split on '|', name each record by its first field
// (GPU=0 -> "GPU0", SUMMARY -> "SUMMARY", a repeated name numbered on),
// split the rest on ',' and '=' and put the separators back.
func minerPHP(reply string) map[string]map[string]string {
	if i := strings.IndexByte(reply, 0); i >= 0 {
		reply = reply[:i]
	}
	var conv strings.Builder
	for i := 0; i < len(reply); i++ {
		ch := reply[i]
		if ch != '\\' || i == len(reply)-1 {
			conv.WriteByte(ch)
			continue
		}
		i++
		switch reply[i] {
		case '|':
			conv.WriteByte(1)
		case '\\':
			conv.WriteByte(2)
		case '=':
			conv.WriteByte(3)
		case ',':
			conv.WriteByte(4)
		default:
			conv.WriteByte(reply[i])
		}
	}
	revert := strings.NewReplacer("\x01", "|", "\x02", "\\", "\x03", "=", "\x04", ",")
	digits := regexp.MustCompile(`^[0-9]+$`)
	data := map[string]map[string]string{}
	for _, obj := range strings.Split(conv.String(), "|") {
		if obj == "" {
			continue
		}
		items := strings.Split(obj, ",")
		id := strings.SplitN(items[0], "=", 2)
		name := id[0]
		if len(id) == 2 && digits.MatchString(id[1]) {
			name = id[0] + id[1]
		}
		if name == "" {
			name = "null"
		}
		if _, dup := data[name]; dup {
			n := 1
			for data[name+strconv.Itoa(n)] != nil {
				n++
			}
			name += strconv.Itoa(n)
		}
		rec := map[string]string{}
		for counter, item := range items {
			kv := strings.SplitN(item, "=", 2)
			if len(kv) == 2 {
				rec[kv[0]] = revert.Replace(kv[1])
			} else {
				rec[strconv.Itoa(counter)] = kv[0]
			}
		}
		data[name] = rec
	}
	return data
}

// classLastShare is miner.php's stalled-device alarm: a device whose last
// share is 8 (warn) or 12 (error) times older than its hashrate and share
// difficulty make likely.
func classLastShare(when float64, dev map[string]string) string {
	mhs, ok1 := dev["MHS av"]
	last, ok2 := dev["Last Share Time"]
	diff, ok3 := dev["Last Share Difficulty"]
	if when == 0 || !ok1 || !ok2 || !ok3 {
		return ""
	}
	av, _ := strconv.ParseFloat(mhs, 64)
	if av == 0 {
		return ""
	}
	l, _ := strconv.ParseFloat(last, 64)
	d, _ := strconv.ParseFloat(diff, 64)
	expected := math.Pow(2, 32) / (av * 1e6) * d
	howlong := max(when-l, 1)
	switch {
	case howlong > expected*12:
		return "error"
	case howlong > expected*8:
		return "warn"
	}
	return ""
}

func TestMinerPHPReads(t *testing.T) {
	s := newServer(t, testState())
	// Its front page asks notify first; an error there is an error box.
	notify := minerPHP(send(t, s, "notify"))
	assert.Equal(t, "S", notify["STATUS"]["STATUS"])
	assert.Equal(t, "None", notify["NOTIFY0"]["Reason Not Well"])
	assert.Equal(t, "GPU", notify["NOTIFY0"]["Name"])

	sum := minerPHP(send(t, s, "summary"))
	assert.Equal(t, "S", sum["STATUS"]["STATUS"])
	assert.Equal(t, "SUMMARY", sum["SUMMARY"]["0"])
	assert.Equal(t, "1234", sum["SUMMARY"]["Best Share"], "an integer, not 1234.56 rounded on display")
	assert.Equal(t, "23.50", sum["SUMMARY"]["MHS av"])

	devs := minerPHP(send(t, s, "devs"))
	require.Contains(t, devs, "GPU0")
	require.Contains(t, devs, "GPU1")
	require.Contains(t, devs, "CPU0")
	for _, name := range []string{"GPU0", "GPU1", "CPU0"} {
		for _, f := range []string{"MHS av", "MHS 5s", "Accepted", "Rejected", "Hardware Errors", "Temperature", "Fan Percent",
			"Last Share Time", "Last Share Difficulty", "Last Valid Work", "Diff1 Work", "Device Elapsed"} {
			assert.Contains(t, devs[name], f, "%s %s", name, f)
		}
	}
	when, _ := strconv.ParseFloat(devs["STATUS"]["When"], 64)
	// GPU 0: 18.5 MH/s at difficulty 0.5 expects a share every 116 s; its
	// last was 3 s ago.
	assert.Equal(t, "", classLastShare(when, devs["GPU0"]))
	assert.Equal(t, "warn", classLastShare(when+1000, devs["GPU0"]), "the alarm fires on a stalled device")
	assert.Equal(t, "error", classLastShare(when+2000, devs["GPU0"]))

	pools := minerPHP(send(t, s, "pools"))
	assert.Equal(t, "backup|user", pools["POOL1"]["User"], "escaped separators come back")
	assert.Equal(t, "stratum+tls://b,ack=up.example:443", pools["POOL1"]["URL"])
	assert.Equal(t, "wallet.rig1", pools["POOL0"]["User"])

	details := minerPHP(send(t, s, "devdetails"))
	assert.Equal(t, "NVIDIA H100", details["DEVDETAILS0"]["Model"])
}

// multiMinerPart is MultiMiner's ResponseTextParser.ParseResponsePart: the
// pairs of one record with an '=', the first of a repeated key kept (it
// does not unescape).
func multiMinerPart(part string) (keys []string, kv map[string]string) {
	kv = map[string]string{}
	for _, item := range strings.Split(part, ",") {
		if !strings.Contains(item, "=") {
			continue
		}
		pair := strings.Split(item, "=")
		if _, ok := kv[pair[0]]; ok {
			continue
		}
		kv[pair[0]] = pair[1]
		keys = append(keys, pair[0])
	}
	return keys, kv
}

// multiMinerParts is ParseResponseText: split on '|', drop the STATUS.
func multiMinerParts(text string) []string {
	parts := strings.Split(text, "|")
	return parts[1:]
}

// tryInt is TryToParseInt: a number or the default.
func tryInt(kv map[string]string, key string, def int) int {
	if n, err := strconv.ParseInt(kv[key], 10, 32); err == nil {
		return int(n)
	}
	return def
}

func TestMultiMinerReads(t *testing.T) {
	st := testState()
	st.PoolUsers[1] = "backup" // MultiMiner splits without unescaping
	st.Snapshot.Pools[1].URL = "stratum+tcp://backup.example:3333"
	s := newServer(t, st)

	type device struct {
		kind                 string
		index, id, poolIndex int
		temp, mhs5s          float64
		lastShareDiff        float64
	}
	var devs []device
	for _, part := range multiMinerParts(send(t, s, "devs")) {
		keys, kv := multiMinerPart(part)
		if len(kv) == 0 {
			continue
		}
		d := device{kind: keys[0]}
		if d.index = tryInt(kv, d.kind, -1); d.index == -1 {
			continue
		}
		d.id = tryInt(kv, "ID", d.index)
		d.poolIndex = tryInt(kv, "Last Share Pool", -1)
		d.temp, _ = strconv.ParseFloat(kv["Temperature"], 64)
		d.mhs5s, _ = strconv.ParseFloat(kv["MHS 5s"], 64)
		d.lastShareDiff, _ = strconv.ParseFloat(kv["Last Share Difficulty"], 64)
		devs = append(devs, d)
	}
	require.Len(t, devs, 3)
	assert.Equal(t, device{kind: "GPU", index: 0, id: 0, poolIndex: 0, temp: 66, mhs5s: 20, lastShareDiff: 0.5}, devs[0])
	assert.Equal(t, "CPU", devs[1].kind)
	assert.Equal(t, -1, devs[1].poolIndex, "no share yet: cgminer's -1")
	assert.Equal(t, 1, devs[2].id)

	// DeviceDetailsParser int.Parse()s these: a missing or non-numeric one
	// throws.
	n := 0
	for _, part := range multiMinerParts(send(t, s, "devdetails")) {
		_, kv := multiMinerPart(part)
		if len(kv) == 0 {
			continue
		}
		for _, k := range []string{"DEVDETAILS", "ID"} {
			_, err := strconv.Atoi(kv[k])
			require.NoError(t, err, "%s in %q", k, part)
		}
		assert.NotEmpty(t, kv["Name"])
		assert.NotEmpty(t, kv["Driver"])
		n++
	}
	assert.Equal(t, 3, n)

	var users []string
	for _, part := range multiMinerParts(send(t, s, "pools")) {
		_, kv := multiMinerPart(part)
		if len(kv) == 0 {
			continue
		}
		_, err := strconv.Atoi(kv["POOL"])
		require.NoError(t, err)
		users = append(users, kv["User"])
		assert.Contains(t, kv, "Last Share Time")
		assert.Contains(t, kv, "Diff1 Shares")
	}
	assert.Equal(t, []string{"wallet.rig1", "backup"}, users)

	_, sum := multiMinerPart(multiMinerParts(send(t, s, "summary"))[0])
	for _, k := range []string{"Getworks", "Get Failures", "Local Work", "Network Blocks", "Difficulty Rejected", "Difficulty Stale", "Best Share"} {
		assert.Contains(t, sum, k)
	}
	assert.Equal(t, 40, tryInt(sum, "Getworks", 0))
}

// pyasicLoad is pyasic's BaseMinerRPCAPI._load_api_data: drop the NUL,
// patch known firmware bugs, parse JSON.
func pyasicLoad(t *testing.T, data string) map[string]any {
	t.Helper()
	data = strings.TrimSuffix(data, "\x00")
	data = strings.NewReplacer(",}", "}", "\n", "", "}{", "},{", "[,{", "[{").Replace(data)
	var v map[string]any
	require.NoError(t, json.Unmarshal([]byte(data), &v), data)
	return v
}

// pyasicValid is pyasic's validate_command_output, for one reply or a
// multicommand.
func pyasicValid(v map[string]any) bool {
	if st, ok := v["STATUS"]; ok {
		s := st.([]any)[0].(map[string]any)["STATUS"]
		return s == "S" || s == "I"
	}
	for k, sub := range v {
		if k == "id" {
			continue
		}
		s := sub.([]any)[0].(map[string]any)["STATUS"].([]any)[0].(map[string]any)["STATUS"]
		if s != "S" && s != "I" {
			return false
		}
	}
	return true
}

func TestPyasicReads(t *testing.T) {
	s := newServer(t, testState())
	// get_data sends its commands as one multicommand, "version+summary+..."
	// and falls back to one at a time only if that fails.
	v := pyasicLoad(t, send(t, s, `{"command": "version+summary+pools+stats+devdetails"}`))
	require.True(t, pyasicValid(v), "%v", v)
	get := func(cmd, sec string, i int) map[string]any {
		return v[cmd].([]any)[0].(map[string]any)[sec].([]any)[i].(map[string]any)
	}
	assert.Equal(t, "3.7", get("version", "VERSION", 0)["API"])
	assert.Equal(t, "3.7.2", get("version", "VERSION", 0)["CGMiner"])
	assert.Equal(t, 0.025, get("summary", "SUMMARY", 0)["GHS 5s"])
	assert.Equal(t, 120.0, get("stats", "STATS", 1)["Elapsed"], "uptime is STATS[1].Elapsed")
	for i, user := range []string{"wallet.rig1", "backup|user"} {
		p := get("pools", "POOLS", i)
		assert.Equal(t, user, p["User"])
		assert.Equal(t, float64(i), p["POOL"])
		for _, k := range []string{"URL", "Accepted", "Rejected", "Get Failures", "Remote Failures", "Stratum Active", "Status"} {
			assert.Contains(t, p, k)
		}
	}
	assert.Equal(t, "Alive", get("pools", "POOLS", 0)["Status"])

	// One command at a time, with a parameter as pyasic sends it.
	one := pyasicLoad(t, send(t, s, `{"command": "devdetails"}`))
	assert.True(t, pyasicValid(one))
	one = pyasicLoad(t, send(t, s, `{"command": "gpu", "parameter": 0}`))
	assert.True(t, pyasicValid(one))
	// A write command fails validation (pyasic raises APIError).
	assert.False(t, pyasicValid(pyasicLoad(t, send(t, s, `{"command": "restart"}`))))
}
