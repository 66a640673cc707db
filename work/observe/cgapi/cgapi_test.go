package cgapi

import (
	"encoding/json"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"clminer/gpu/nvml"
	"clminer/work/miner"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func f(v float64) *float64 { return &v }

func testState() State {
	return State{
		Snapshot: miner.Snapshot{
			UptimeS: 120.5, Rate5s: 25e6, Rate60s: 24e6, RateAvg: 23.5e6, Hashes: 2_832_000_000,
			Shares: miner.Counts{Accepted: 90, Rejected: 10, Stale: 2, Duplicate: 1, HWErrors: 1, Lost: 3, Blocks: 1, AcceptedDiff: 45, BestShare: 1234.5},
			Devices: []miner.DeviceStats{
				{ID: "opencl:0:0", Name: "NVIDIA H100", Rate5s: 20e6, Rate60s: 19e6, RateAvg: 18.5e6, Hashes: 2e9,
					Counts: miner.Counts{Accepted: 70, Rejected: 8, HWErrors: 1, AcceptedDiff: 35}},
				{ID: "cpu", Name: "Some CPU", Rate5s: 5e6, Rate60s: 5e6, RateAvg: 5e6, Hashes: 832e6,
					Counts: miner.Counts{Accepted: 20, Rejected: 2, AcceptedDiff: 10}},
			},
			Pools: []miner.PoolStats{
				{Index: 0, URL: "stratum+tcp://pool.example:3333", State: "active", Accepted: 90, Rejected: 10, Difficulty: 0.5, Connects: 1},
				{Index: 1, URL: "stratum+tls://b,ack=up.example:443", State: "down", Connects: 0},
			},
		},
		Telemetry: map[string]nvml.Reading{"opencl:0:0": {TempC: f(66), FanPct: f(41.6), PowerW: f(250)}},
	}
}

func newServer(t *testing.T, st State) *Server {
	t.Helper()
	s, err := Listen("127.0.0.1:0", Config{Version: "v9", State: func() State { return st }, LogInterval: 10,
		Now: func() time.Time { return time.Unix(1700000000, 0) }})
	require.NoError(t, err)
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve() }()
	t.Cleanup(func() { s.Close(); <-done })
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

func TestSummaryJSON(t *testing.T) {
	s := newServer(t, testState())
	v := askJSON(t, s, `{"command":"summary"}`)
	st := first(t, v, "STATUS")
	assert.Equal(t, "S", st["STATUS"])
	assert.Equal(t, 11.0, st["Code"])
	assert.Equal(t, 1700000000.0, st["When"])
	assert.Equal(t, "clminer v9", st["Description"])
	sum := first(t, v, "SUMMARY")
	assert.Equal(t, 120.0, sum["Elapsed"])
	assert.Equal(t, 23.5, sum["MHS av"])
	assert.Equal(t, 25.0, sum["MHS 5s"])
	assert.Equal(t, 90.0, sum["Accepted"])
	assert.Equal(t, 10.0, sum["Rejected"])
	assert.Equal(t, 1.0, sum["Hardware Errors"])
	assert.Equal(t, 45.0, sum["Difficulty Accepted"])
	assert.Equal(t, 1234.5, sum["Best Share"])
	assert.Equal(t, 10.0, sum["Pool Rejected%"])
	assert.Equal(t, 1.0, sum["Found Blocks"])
	assert.Equal(t, 2832.0, sum["Total MH"])
	assert.Equal(t, 1.0, v["id"])
}

func TestDevsTelemetryOnlyWhereKnown(t *testing.T) {
	s := newServer(t, testState())
	v := askJSON(t, s, `{"command":"devs"}`)
	devs := v["DEVS"].([]any)
	require.Len(t, devs, 2)
	gpu, cpu := devs[0].(map[string]any), devs[1].(map[string]any)
	assert.Equal(t, 0.0, gpu["GPU"])
	assert.Equal(t, 66.0, gpu["Temperature"])
	assert.Equal(t, 42.0, gpu["Fan Percent"])
	assert.Equal(t, 250.0, gpu["Power"])
	assert.NotContains(t, gpu, "GPU Clock", "a sensor NVML did not report is absent")
	assert.Equal(t, 20.0, gpu["MHS 5s"])
	assert.Equal(t, 70.0, gpu["Accepted"])
	assert.Equal(t, 0.0, cpu["CPU"])
	assert.NotContains(t, cpu, "Temperature")
	assert.NotContains(t, cpu, "Fan Percent")
	assert.Equal(t, "1 GPU(s) - 1 CPU(s)", first(t, v, "STATUS")["Msg"])
}

func TestJoinedJSON(t *testing.T) {
	s := newServer(t, testState())
	v := askJSON(t, s, `{"command":"summary+devs+pools+version+config+stats+summary"}`)
	for _, k := range []string{"summary", "devs", "pools", "version", "config", "stats"} {
		l, ok := v[k].([]any)
		require.True(t, ok, "member %s", k)
		require.Len(t, l, 1)
		assert.Contains(t, l[0], "STATUS")
	}
	ver := first(t, v["version"].([]any)[0].(map[string]any), "VERSION")
	assert.Equal(t, "1.32", ver["API"])
	assert.Equal(t, "v9", ver["clminer"])
	pools := v["pools"].([]any)[0].(map[string]any)["POOLS"].([]any)
	require.Len(t, pools, 2)
	p0, p1 := pools[0].(map[string]any), pools[1].(map[string]any)
	assert.Equal(t, "Alive", p0["Status"])
	assert.Equal(t, true, p0["Stratum Active"])
	assert.Equal(t, "Dead", p1["Status"])
	assert.Equal(t, "stratum+tls://b,ack=up.example:443", p1["URL"])
	cfg := first(t, v["config"].([]any)[0].(map[string]any), "CONFIG")
	assert.Equal(t, 1.0, cfg["GPU Count"])
	assert.Equal(t, 2.0, cfg["Pool Count"])
}

func TestTextForm(t *testing.T) {
	s := newServer(t, testState())
	body := ask(t, s, "summary")
	assert.True(t, strings.HasPrefix(body, "STATUS=S,When=1700000000,Code=11,Msg=Summary,Description=clminer v9|SUMMARY,Elapsed=120,MHS av=23.500,"), body)
	assert.True(t, strings.HasSuffix(body, "|"))
	body = ask(t, s, "pools\n")
	assert.Contains(t, body, `|POOL=1,URL=stratum+tls://b\,ack\=up.example:443,Status=Dead,`, "text form escapes , = | \\")
	body = ask(t, s, "summary+devs")
	assert.Equal(t, 2, strings.Count(body, "STATUS="), body)
	assert.Contains(t, body, "|GPU=0,Name=NVIDIA H100,")
	assert.Contains(t, body, "|CPU=0,Name=Some CPU,")
	body = ask(t, s, "gpu|0")
	assert.Contains(t, body, "Code=17,Msg=GPU0")
	assert.Contains(t, body, "|GPU=0,Name=NVIDIA H100,")
	assert.NotContains(t, body, "CPU=")
	body = ask(t, s, "gpu|1")
	assert.Contains(t, body, "STATUS=E,When=1700000000,Code=1,Msg=Invalid GPU id 1 - range is 0 - 0", "the CPU is not a GPU")
	assert.Contains(t, ask(t, s, "gpucount"), "|GPUS,Count=1|")
}

func TestReadOnlyAndErrors(t *testing.T) {
	s := newServer(t, testState())
	for _, tc := range []struct {
		req  string
		code float64
	}{
		{`{"command":"quit"}`, 45},
		{`{"command":"switchpool","parameter":1}`, 45},
		{`{"command":"addpool","parameter":"stratum+tcp://evil:1,u,p"}`, 45},
		{`{"command":"nonsense"}`, 14},
		{`{"command":""}`, 23},
		{`{"command":"summary"`, 23}, // truncated; the client closes its side
		{`{"command":["summary"]}`, 23},
	} {
		t.Run(tc.req, func(t *testing.T) {
			c, err := net.Dial("tcp", s.Addr())
			require.NoError(t, err)
			defer c.Close()
			_, _ = c.Write([]byte(tc.req))
			_ = c.(*net.TCPConn).CloseWrite()
			b, err := io.ReadAll(c)
			require.NoError(t, err)
			var v map[string]any
			require.NoError(t, json.Unmarshal([]byte(strings.TrimSuffix(string(b), "\x00")), &v), "%q", b)
			st := first(t, v, "STATUS")
			assert.Equal(t, "E", st["STATUS"])
			assert.Equal(t, tc.code, st["Code"])
		})
	}
	body := ask(t, s, "quit")
	assert.Contains(t, body, "Access denied to 'quit' command")
	v := askJSON(t, s, `{"command":"summary+quit"}`)
	assert.Equal(t, 45.0, first(t, v["quit"].([]any)[0].(map[string]any), "STATUS")["Code"], "a joined privileged command is refused on its own")
	assert.Contains(t, v["summary"].([]any)[0], "SUMMARY")
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
		time.Sleep(100 * time.Millisecond)
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
		"pools|", `{"command":"check","parameter":"quit"}`, "{", "\x00", "stats+config+version"} {
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
