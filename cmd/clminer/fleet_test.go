package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// liveRun is `clminer demo` running in process, for the tests of the fleet
// features that need a real miner behind them.
type liveRun struct {
	mu       sync.Mutex
	addrs    map[string]string // event -> addr
	accepted int
	tick     chan struct{}
	w        *logWatch
	cancel   func()
	done     chan error
}

// startDemo runs `clminer --log-format json demo --device cpu` with args
// and stops it when the test ends.
func startDemo(t *testing.T, args ...string) *liveRun {
	t.Helper()
	return startDemoWith(t, hooks{}, args...)
}

// startDemoWith is startDemo with h's pieces.
func startDemoWith(t *testing.T, h hooks, args ...string) *liveRun {
	t.Helper()
	r := &liveRun{addrs: map[string]string{}, tick: make(chan struct{}, 1), done: make(chan error, 1)}
	r.w = &logWatch{on: func(ev map[string]any) {
		r.mu.Lock()
		if a, ok := ev["addr"].(string); ok {
			r.addrs[ev["event"].(string)] = a
		}
		if ev["event"] == "share.accepted" {
			r.accepted++
		}
		r.mu.Unlock()
		select {
		case r.tick <- struct{}{}:
		default:
		}
	}}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	if !slices.Contains(args, "--best-share-file") {
		args = append(args, "--best-share-file", filepath.Join(t.TempDir(), "best.json"))
	}
	app := newAppWith(h)
	app.Writer, app.ErrWriter = io.Discard, r.w
	go func() {
		r.done <- app.RunContext(ctx, append([]string{"clminer", "--log-format", "json", "demo", "--device", "cpu", "--threads", "1",
			"--difficulty", "0.0002", "--status-interval", "0", "--drain-timeout", "1s"}, args...))
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-r.done:
			assert.NoError(t, err)
		case <-time.After(30 * time.Second):
			t.Error("demo did not stop")
		}
	})
	return r
}

// waitFor blocks until cond holds over the run's log, or fails after 60 s.
func (r *liveRun) waitFor(t *testing.T, what string, cond func(r *liveRun) bool) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		r.mu.Lock()
		ok := cond(r)
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-r.tick:
		case err := <-r.done:
			t.Fatalf("demo ended (%v) before %s; log:\n%s", err, what, strings.Join(r.w.all(), "\n"))
		case <-deadline:
			t.Fatalf("no %s in 60 s; log:\n%s", what, strings.Join(r.w.all(), "\n"))
		}
	}
}

func (r *liveRun) addr(t *testing.T, event string) string {
	t.Helper()
	r.waitFor(t, event, func(r *liveRun) bool { return r.addrs[event] != "" })
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.addrs[event]
}

// requireTool finds an external program, skipping the test where it is
// missing unless CLMINER_REQUIRE_TOOLS=1 (CI installs them all).
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CLMINER_REQUIRE_TOOLS") == "1" {
			t.Fatalf("%s not found and CLMINER_REQUIRE_TOOLS=1", name)
		}
		t.Skipf("%s not installed", name)
	}
	return p
}

// statusDoc is the part of /api/v1/status the comparisons read.
type statusDoc struct {
	UptimeS float64 `json:"uptime_s"`
	RateAvg float64 `json:"hashrate_avg"`
	Hashes  float64 `json:"hashes"`
	Shares  struct {
		Accepted     float64 `json:"accepted"`
		Rejected     float64 `json:"rejected"`
		HWErrors     float64 `json:"hw_errors"`
		AcceptedDiff float64 `json:"accepted_difficulty"`
		BestShare    float64 `json:"best_share_difficulty"`
		Blocks       float64 `json:"blocks"`
	} `json:"shares"`
	Devices []struct {
		ID     string  `json:"id"`
		Hashes float64 `json:"hashes"`
		Shares struct {
			Accepted float64 `json:"accepted"`
		} `json:"shares"`
	} `json:"devices"`
	Pools []struct {
		URL      string  `json:"url"`
		State    string  `json:"state"`
		Accepted float64 `json:"accepted"`
	} `json:"pools"`
}

func getStatus(t *testing.T, addr string) statusDoc {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/api/v1/status")
	require.NoError(t, err)
	defer resp.Body.Close()
	var s statusDoc
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&s))
	return s
}

func python(t *testing.T, args ...string) []byte {
	t.Helper()
	py := requireTool(t, "python3")
	cmd := exec.Command(py, append([]string{"testdata/cgminer_client.py"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "cgminer_client.py %v: %s", args, stderr.String())
	return out
}

// between asserts lo <= v <= hi: v was read between the two status reads.
func between(t *testing.T, name string, v, lo, hi float64) {
	t.Helper()
	assert.True(t, v >= lo-1e-9 && v <= hi+1e-9, "%s = %v, want within [%v, %v] (the /api/v1/status reads before and after)", name, v, lo, hi)
}

// A Python client written from cgminer's API-README reads summary, devs and
// pools from a live demo run, in the JSON form with a '+' join and in the
// text form; each figure lies between two /api/v1/status reads made just
// before and just after it.
func TestCgminerAPIMatchesStatus(t *testing.T) {
	requireTool(t, "python3")
	r := startDemo(t, "--api-listen", "127.0.0.1:0", "--cgminer-api", "127.0.0.1:0")
	api, cg := r.addr(t, "api.listening"), r.addr(t, "cgapi.listening")
	r.waitFor(t, "3 accepted shares", func(r *liveRun) bool { return r.accepted >= 3 })
	host, port, _ := strings.Cut(cg, ":")

	// The average rate swings by half in a run's first seconds (a batch is
	// a large part of the hashes): compare it once it has settled.
	before := getStatus(t, api)
	for before.UptimeS < 8 {
		time.Sleep(200 * time.Millisecond) // polling an HTTP API: there is no event to wait on
		before = getStatus(t, api)
	}
	var top map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(python(t, host, port, "summary+devs+pools"), &top))
	joined := map[string][]map[string]json.RawMessage{}
	for _, k := range []string{"summary", "devs", "pools"} {
		var v []map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(top[k], &v), "member %s", k)
		require.Len(t, v, 1)
		joined[k] = v
	}
	textOut := python(t, host, port, "summary", "--text")
	after := getStatus(t, api)

	var st []map[string]any
	var sum []map[string]float64
	require.NoError(t, json.Unmarshal(joined["summary"][0]["STATUS"], &st))
	assert.Equal(t, "S", st[0]["STATUS"])
	require.NoError(t, json.Unmarshal(joined["summary"][0]["SUMMARY"], &sum))
	s := sum[0]
	between(t, "Accepted", s["Accepted"], before.Shares.Accepted, after.Shares.Accepted)
	between(t, "Rejected", s["Rejected"], before.Shares.Rejected, after.Shares.Rejected)
	between(t, "Hardware Errors", s["Hardware Errors"], before.Shares.HWErrors, after.Shares.HWErrors)
	between(t, "Found Blocks", s["Found Blocks"], before.Shares.Blocks, after.Shares.Blocks)
	between(t, "Difficulty Accepted", s["Difficulty Accepted"], before.Shares.AcceptedDiff-1e-8, after.Shares.AcceptedDiff+1e-8)
	between(t, "Best Share", s["Best Share"], math.Floor(before.Shares.BestShare), math.Floor(after.Shares.BestShare))
	assert.Equal(t, math.Trunc(s["Best Share"]), s["Best Share"], "an integer, as cgminer sends it")
	between(t, "Total MH", s["Total MH"], before.Hashes/1e6-1e-4, after.Hashes/1e6+1e-4)
	between(t, "Elapsed", s["Elapsed"], float64(int64(before.UptimeS)), after.UptimeS)
	lo, hi := min(before.RateAvg, after.RateAvg), max(before.RateAvg, after.RateAvg)
	// The average is hashes over uptime: it saw-tooths with each batch
	// (hashes jump, uptime creeps), so a read between two others need not
	// lie between them; a quarter either way still catches a wrong unit or
	// a doubled count.
	between(t, "MHS av", s["MHS av"], lo/1e6*0.75, hi/1e6*1.25)
	assert.Positive(t, s["MHS 5s"])

	var devs []map[string]any
	require.NoError(t, json.Unmarshal(joined["devs"][0]["DEVS"], &devs))
	require.Len(t, devs, len(after.Devices))
	for i, d := range devs {
		assert.Equal(t, after.Devices[i].ID, d["Device"])
		assert.Equal(t, 0.0, d["CPU"], "the CPU device is CPU 0")
		assert.Equal(t, 0.0, d["ID"], "its number among CPUs")
		between(t, "devs Accepted", d["Accepted"].(float64), before.Devices[i].Shares.Accepted, after.Devices[i].Shares.Accepted)
		assert.Equal(t, 0.0, d["Temperature"], "no NVML for a CPU: cgminer's 0")
		assert.Positive(t, d["Last Share Time"], "a share was accepted")
		assert.Equal(t, 0.0, d["Last Share Pool"])
	}
	var pools []map[string]any
	require.NoError(t, json.Unmarshal(joined["pools"][0]["POOLS"], &pools))
	require.Len(t, pools, len(after.Pools))
	assert.Equal(t, after.Pools[0].URL, pools[0]["URL"])
	assert.Equal(t, "Alive", pools[0]["Status"])
	assert.Equal(t, true, pools[0]["Stratum Active"])
	assert.Equal(t, "demo.rig", pools[0]["User"])
	assert.Positive(t, pools[0]["Getworks"])
	between(t, "pools Accepted", pools[0]["Accepted"].(float64), before.Pools[0].Accepted, after.Pools[0].Accepted)

	var text [][][2]*string
	require.NoError(t, json.Unmarshal(textOut, &text))
	require.Len(t, text, 2, "STATUS and SUMMARY: %s", textOut)
	assert.Equal(t, "STATUS", *text[0][0][0])
	assert.Equal(t, "S", *text[0][0][1])
	assert.Equal(t, "SUMMARY", *text[1][0][0])
	assert.Nil(t, text[1][0][1], "the text form opens SUMMARY with its name alone")
	fields := map[string]string{}
	for _, kv := range text[1][1:] {
		fields[*kv[0]] = *kv[1]
	}
	for _, k := range []string{"Elapsed", "MHS av", "MHS 5s", "Accepted", "Rejected", "Hardware Errors", "Difficulty Accepted", "Best Share", "Pool Rejected%"} {
		assert.Contains(t, fields, k)
	}
}

// The cgminer protocol has no password, so beyond loopback the API needs
// an allow list; every bad value is one line.
func TestCgminerAPIFlags(t *testing.T) {
	pool := []string{"mine", "-o", "stratum+tcp://a:1", "-u", "w"}
	for _, tc := range []struct {
		args  []string
		err   string
		allow string
	}{
		{args: []string{"--cgminer-api", "127.0.0.1:4028"}},
		{args: []string{"--cgminer-api", "localhost:4028"}},
		{args: []string{"--cgminer-api", "0.0.0.0:4028"}, err: "--cgminer-api 0.0.0.0:4028 reaches beyond loopback"},
		{args: []string{"--cgminer-api", ":4028"}, err: "name who may read it with --cgminer-api-allow"},
		{args: []string{"--cgminer-api", "0.0.0.0:4028", "--cgminer-api-allow", "192.168.1.7/24", "--cgminer-api-allow", "10.0.0.5"}, allow: "192.168.1.0/24 10.0.0.5/32"},
		{args: []string{"--cgminer-api", "0.0.0.0:4028", "--cgminer-api-allow", "192.168.1/24"}, err: `--cgminer-api-allow "192.168.1/24": want a network`},
		{args: []string{"--cgminer-api-allow", "10.0.0.0/8"}, err: "--cgminer-api-allow is set but --cgminer-api is not"},
		{args: []string{"--cgminer-api", "4028"}, err: `--cgminer-api "4028": want host:port`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r, err := runApp(t, append(pool, tc.args...)...)
			if tc.err != "" {
				assertOneLine(t, r, err, tc.err)
				return
			}
			require.NoError(t, err)
			var got []string
			for _, p := range r.setup.fleet.cgAllow {
				got = append(got, p.String())
			}
			assert.Equal(t, tc.allow, strings.Join(got, " "))
		})
	}
}

// --proxy applies to every pool; a config file's pool may set its own or
// none; a bad proxy URL is one line without its password.
func TestProxySettings(t *testing.T) {
	pools, _, err := parseMine(t, "-o", "stratum+tcp://a:1", "-u", "w", "-o", "stratum+tls://b:2", "-u", "w", "--proxy", "socks5h://u:p@10.0.0.1:1080")
	require.NoError(t, err)
	for _, p := range pools {
		assert.Equal(t, "socks5h://u:p@10.0.0.1:1080", p.Proxy)
		assert.NotContains(t, p.String(), "u:p@", "the proxy's password is not in the printed pool")
	}
	cfg := writeConfig(t, "proxy: socks5h://10.0.0.1:1080\npools:\n  - url: stratum+tcp://a:1\n    user: w\n  - url: stratum+tcp://b:2\n    user: w\n    proxy: socks5://tor:9050\n  - url: stratum+tcp://c:3\n    user: w\n    proxy: ''\n")
	pools, _, err = parseMine(t, "-c", cfg)
	require.NoError(t, err)
	require.Len(t, pools, 3)
	assert.Equal(t, "socks5h://10.0.0.1:1080", pools[0].Proxy)
	assert.Equal(t, "socks5://tor:9050", pools[1].Proxy)
	assert.Equal(t, "", pools[2].Proxy)

	r, err := runApp(t, "mine", "-o", "stratum+tcp://a:1", "-u", "w", "--proxy", "http://u:hunter2@proxy:3128")
	assertOneLine(t, r, err, `pool 1 (stratum+tcp://a:1): proxy "http://<redacted>@proxy:3128": scheme "http" is not supported`)
	assert.NotContains(t, err.Error(), "hunter2")
	r, err = runApp(t, "mine", "-o", "stratum+tcp://a:1", "-u", "w", "--proxy", "socks5h://proxy")
	assertOneLine(t, r, err, "has no port")
}

// A demo run posts its new all-time best shares to --notify-url, keeps the
// best in --best-share-file and shows the odds in /api/v1/status.
func TestNotifyAndBestShareLive(t *testing.T) {
	got := make(chan map[string]any, 100)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev map[string]any
		if json.NewDecoder(r.Body).Decode(&ev) == nil {
			select {
			case got <- ev:
			default:
			}
		}
	}))
	defer hook.Close()
	best := filepath.Join(t.TempDir(), "best.json")
	r := startDemo(t, "--notify-url", hook.URL+"/hook/t0ken", "--best-share-file", best, "--api-listen", "127.0.0.1:0")
	api := r.addr(t, "api.listening")
	var ev map[string]any
	select {
	case ev = <-got:
	case <-time.After(60 * time.Second):
		t.Fatal("no webhook event")
	}
	assert.Equal(t, "best_share", ev["event"])
	assert.Equal(t, "cpu", ev["device"])
	assert.Positive(t, ev["share_difficulty"])
	host, _ := os.Hostname()
	assert.Equal(t, host, ev["rig"])

	var st struct {
		Luck struct {
			Session float64 `json:"best_share_session"`
			AllTime float64 `json:"best_share_all_time"`
			NetDiff float64 `json:"network_difficulty"`
			Expect  float64 `json:"expected_time_to_block_s"`
		} `json:"luck"`
	}
	// The expected time needs a measured rate: read until there is one.
	deadline := time.Now().Add(30 * time.Second)
	for {
		require.NoError(t, json.Unmarshal(httpGet(t, "http://"+api+"/api/v1/status"), &st))
		if st.Luck.Expect > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // polling an HTTP API: there is no event to wait on
	}
	assert.GreaterOrEqual(t, st.Luck.AllTime, ev["share_difficulty"].(float64))
	assert.Equal(t, st.Luck.Session, st.Luck.AllTime, "a first run: the session best is the all-time best")
	assert.InDelta(t, 1.0, st.Luck.NetDiff, 1e-9, "the demo pool's nbits 1d00ffff")
	assert.Positive(t, st.Luck.Expect)
	b, err := os.ReadFile(best)
	require.NoError(t, err)
	var rec struct {
		Best float64 `json:"best_share_difficulty"`
	}
	require.NoError(t, json.Unmarshal(b, &rec))
	assert.Positive(t, rec.Best)
	for _, l := range r.w.all() {
		assert.NotContains(t, l, "t0ken", "the webhook's path is not logged")
	}
}

// demo's shares, and the "blocks" its easy built-in pool lets it find, are
// no record of real mining: its best share goes to demo-best-share.json, not
// the best-share.json mine keeps, and it takes no record file (best share,
// share log) nor webhook from the CLMINER_* variables a rig mines with.
func TestDemoKeepsItsRecordsApart(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	rig := t.TempDir()
	rigBest, rigShares := filepath.Join(rig, "best-share.json"), filepath.Join(rig, "shares.jsonl")
	t.Setenv("CLMINER_BEST_SHARE_FILE", rigBest)
	t.Setenv("CLMINER_SHARE_LOG", rigShares)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("demo posted to the rig's webhook: %s", r.URL)
	}))
	defer hook.Close()
	t.Setenv("CLMINER_NOTIFY_URL", hook.URL)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	accepted := 0
	var mu sync.Mutex
	w := &logWatch{on: func(ev map[string]any) {
		mu.Lock()
		defer mu.Unlock()
		if ev["event"] == "share.accepted" {
			if accepted++; accepted == 3 {
				cancel()
			}
		}
	}}
	app := newApp()
	app.Writer, app.ErrWriter = io.Discard, w
	done := make(chan error, 1)
	go func() {
		done <- app.RunContext(ctx, []string{"clminer", "--log-format", "json", "demo", "--device", "cpu", "--threads", "1",
			"--difficulty", "0.0002", "--status-interval", "0", "--drain-timeout", "1s"})
	}()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatalf("no 3 accepted shares in 60 s; log:\n%s", strings.Join(w.all(), "\n"))
	}

	b, err := os.ReadFile(filepath.Join(cache, "clminer", "demo-best-share.json"))
	require.NoError(t, err, "the demo keeps its own best share")
	var rec struct {
		BestShare float64 `json:"best_share_difficulty"`
	}
	require.NoError(t, json.Unmarshal(b, &rec), "%s", b)
	assert.Positive(t, rec.BestShare)
	assert.NoFileExists(t, filepath.Join(cache, "clminer", "best-share.json"), "mine's all-time record is untouched")
	assert.NoFileExists(t, rigBest)
	assert.NoFileExists(t, rigShares)

	// mine still keeps best-share.json, and reads the variables.
	r, err := runApp(t, "mine", "-o", "stratum+tcp://pool.example:3333", "-u", "w")
	require.NoError(t, err)
	assert.Equal(t, rigBest, r.setup.fleet.bestFile)
	t.Setenv("CLMINER_BEST_SHARE_FILE", "")
	r, err = runApp(t, "mine", "-o", "stratum+tcp://pool.example:3333", "-u", "w")
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(cache, "clminer", "best-share.json"), r.setup.fleet.bestFile)
}
