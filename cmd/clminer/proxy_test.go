package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"clminer/stratum/pooltest"
)

// `clminer proxy` in front of the built-in pool, with two `clminer mine`
// instances behind it: both rigs' shares reach the pool under their own
// workers over one connection, and the proxy's status API lists them.
func TestProxyCommandWithTwoMiners(t *testing.T) {
	pool := pooltest.New(pooltest.Config{Difficulty: 0.0001})
	require.NoError(t, pool.Start())
	defer pool.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	addrs := make(chan [2]string, 1)
	var mu sync.Mutex
	var listen, api string
	w := &logWatch{on: func(ev map[string]any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev["event"] {
		case "proxy.listening":
			listen, _ = ev["addr"].(string)
		case "api.listening":
			api, _ = ev["addr"].(string)
		}
		if listen != "" && api != "" {
			select {
			case addrs <- [2]string{listen, api}:
			default:
			}
		}
	}}
	app := newApp()
	app.ErrWriter = w
	proxyDone := make(chan error, 1)
	go func() {
		proxyDone <- app.RunContext(ctx, []string{"clminer", "--log-format", "json", "proxy", "--listen", "127.0.0.1:0",
			"-o", pool.URL(), "-u", "farm", "-p", "x", "--api-listen", "127.0.0.1:0", "--status-interval", "0"})
	}()
	var a [2]string
	select {
	case a = <-addrs:
	case err := <-proxyDone:
		t.Fatalf("proxy stopped: %v\n%s", err, strings.Join(w.all(), "\n"))
	}

	// Two `clminer mine` at once. urfave/cli's shared help flag makes two
	// flag parses at the same instant a data race, so the second starts
	// once the first has parsed its flags (its first log line); each stops
	// once both rigs have a share accepted.
	var wg sync.WaitGroup
	var accepted sync.Map
	both := func() bool {
		_, a1 := accepted.Load("wallet.rig1")
		_, a2 := accepted.Load("wallet.rig2")
		return a1 && a2
	}
	parsed := make(chan struct{})
	var parsedOnce sync.Once
	for i, rig := range []string{"wallet.rig1", "wallet.rig2"} {
		if i == 1 {
			<-parsed
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := runMine(t, []string{"-o", "stratum+tcp://" + a[0], "-u", rig, "--device", "cpu", "--threads", "1",
				"--status-interval", "100ms", "--drain-timeout", "1s"}, func(ev map[string]any, stop func()) {
				parsedOnce.Do(func() { close(parsed) })
				if ev["event"] == "share.accepted" {
					accepted.Store(rig, true)
				}
				if both() {
					stop()
				}
			})
			assert.NoError(t, err)
		}()
	}
	wg.Wait()
	workers := map[string]bool{}
	for _, s := range pool.Shares() {
		workers[s.Worker] = true
	}
	assert.True(t, workers["farm.rig1"] && workers["farm.rig2"], "both rigs credited under their workers: %v", workers)
	assert.Equal(t, 1, pool.Stats().Connections, "one pool connection")
	assert.Zero(t, pool.Stats().Duplicate)

	resp, err := http.Get("http://" + a[1] + "/api/v1/status")
	require.NoError(t, err)
	defer resp.Body.Close()
	var st struct {
		Version string `json:"version"`
		Shares  struct {
			Accepted uint64 `json:"accepted"`
		} `json:"shares"`
		Workers []struct {
			Name     string `json:"name"`
			Upstream string `json:"upstream_worker"`
		} `json:"workers"`
		Pools []struct {
			State string `json:"state"`
		} `json:"pools"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&st))
	assert.GreaterOrEqual(t, st.Shares.Accepted, uint64(2))
	require.Len(t, st.Workers, 2)
	assert.Equal(t, "farm.rig1", st.Workers[0].Upstream)
	require.Len(t, st.Pools, 1)
	assert.Equal(t, "active", st.Pools[0].State)
	metrics, err := http.Get("http://" + a[1] + "/metrics")
	require.NoError(t, err)
	defer metrics.Body.Close()
	body, err := io.ReadAll(metrics.Body)
	require.NoError(t, err)
	assert.Contains(t, string(body), `clminer_proxy_shares_total{outcome="accepted",worker="wallet.rig1"}`)
	cancel()
	require.NoError(t, <-proxyDone)
}

// Bad proxy settings are one line each, before anything listens.
func TestProxyFlagErrors(t *testing.T) {
	users := filepath.Join(t.TempDir(), "users")
	require.NoError(t, os.WriteFile(users, []byte("# none\n\nnocolon\n"), 0o600))
	twins := filepath.Join(t.TempDir(), "twins")
	require.NoError(t, os.WriteFile(twins, []byte("alice.rig1:a\nalice_rig1:b\n"), 0o600))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--listen", "nohost"}, "--listen \"nohost\": want host:port"},
		{[]string{"--max-miners", "0"}, "--max-miners 0"},
		{[]string{"--extranonce-prefix-size", "5"}, "--extranonce-prefix-size 5"},
		{[]string{"--miner-rate", "-1"}, "--miner-rate -1"},
		{[]string{"--miner-users", users}, "line 3: want user:password"},
		{[]string{"--miner-users", filepath.Join(t.TempDir(), "missing")}, "--miner-users"},
		{[]string{"--miner-users", twins}, `users "alice.rig1" and "alice_rig1" would both be worker "alice_rig1" at the pool`},
		{[]string{"--max-conns-per-ip", "0"}, "--max-conns-per-ip 0: must be at least 1"},
		{[]string{"--max-unauthenticated-per-ip", "-1"}, "--max-unauthenticated-per-ip -1"},
		{[]string{"--api-listen", "0.0.0.0:1"}, "--api-token"},
	} {
		args := append([]string{"proxy", "-o", "stratum+tcp://127.0.0.1:1", "-u", "farm"}, tc.args...)
		r, err := runApp(t, args...)
		assertOneLine(t, r, err, tc.want, "%v", tc.args)
	}
	r, err := runApp(t, "proxy")
	assertOneLine(t, r, err, "-o", "no pool")
}

// The proxy's help offers every upstream kind, as `mine`'s does, and takes
// each (a mixed failover list) with the settings its kind needs; what a
// kind lacks is one line before anything binds.
func TestProxyTakesEveryUpstreamKind(t *testing.T) {
	r, err := runApp(t, "proxy", "--help")
	require.NoError(t, err)
	var url string
	for _, line := range strings.Split(r.stdout, "\n") {
		if strings.Contains(line, "--url value, -o value") {
			url = line
		}
	}
	require.NotEmpty(t, url, r.stdout)
	for _, kind := range []string{"stratum+tcp://", "stratum2+tcp://host:port/AUTHORITY_KEY", "http://host:port"} {
		assert.Contains(t, url, kind)
	}
	var got *proxySetup
	saved := startProxy
	startProxy = func(_ context.Context, ps *proxySetup) error { got = ps; return nil }
	t.Cleanup(func() { startProxy = saved })
	v2 := "stratum2+tcp://pool.example:3336/9bXiEd8boQVhq7WddEcERUL5tyyJVFYdU8th3HfbNXK3Yw6GRXh"
	_, err = runApp(t, "proxy", "-o", v2, "-u", "acct.farm", "-o", "stratum+tcp://127.0.0.1:1", "-u", "farm",
		"-o", "http://127.0.0.1:8332", "-u", "rpc", "-p", "s3cret", "--coinbase-addr", regtestAddr, "--vardiff-start", "0.5")
	require.NoError(t, err)
	require.NotNil(t, got)
	require.Len(t, got.ups, 3)
	assert.Equal(t, []upstreamKind{kindV2, kindPool, kindNode}, []upstreamKind{got.ups[0].kind, got.ups[1].kind, got.ups[2].kind})
	assert.Equal(t, regtestAddr, got.nodes[2].address)
	assert.Equal(t, 0.5, got.cfg.StartDifficulty)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-o", "http://127.0.0.1:8332", "-u", "rpc", "-p", "s3cret"}, "pool 1 (node http://127.0.0.1:8332): "},
		{[]string{"-o", "stratum+tcp://127.0.0.1:1", "-u", "farm", "--coinbase-addr", regtestAddr}, "--coinbase-addr is for solo mining"},
		{[]string{"-o", v2, "-u", ""}, "the user (worker name) is empty"},
		{[]string{"-o", "stratum+tcp://127.0.0.1:1", "-u", "farm", "--vardiff-min", "0"}, "--vardiff-min 0: must be a positive number"},
		{[]string{"-o", "stratum+tcp://127.0.0.1:1", "-u", "farm", "--vardiff-min", "2", "--vardiff-max", "1"}, "--vardiff-min 2 is above --vardiff-max 1"},
		{[]string{"-o", "stratum+tcp://127.0.0.1:1", "-u", "farm", "--vardiff-start", "0.0001"}, "--vardiff-start 0.0001: must lie within"},
		{[]string{"-o", "stratum+tcp://127.0.0.1:1", "-u", "farm", "--vardiff-shares-per-minute", "-1"}, "--vardiff-shares-per-minute -1"},
	} {
		got = nil
		r, err := runApp(t, append([]string{"proxy"}, tc.args...)...)
		assertOneLine(t, r, err, tc.want, "%v", tc.args)
		assert.NotContains(t, err.Error(), "s3cret")
		assert.Nil(t, got)
	}
}

// README's "Farm proxy" flag table lists exactly the flags `clminer proxy
// --help` shows.
func TestREADMEProxyFlagTableMatchesHelp(t *testing.T) {
	app := newApp()
	var out bytes.Buffer
	app.Writer, app.ErrWriter = &out, &out
	require.NoError(t, app.Run([]string{"clminer", "proxy", "--help"}))
	help := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+--([a-z0-9-]+)`).FindAllStringSubmatch(out.String(), -1) {
		if m[1] != "help" {
			help[m[1]] = true
		}
	}
	b, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	readme := string(b)
	start := strings.Index(readme, "## Farm proxy")
	require.GreaterOrEqual(t, start, 0)
	section := readme[start:]
	section = section[:strings.Index(section[3:], "\n## ")+3]
	table := map[string]bool{}
	for _, line := range strings.Split(section, "\n") {
		if strings.HasPrefix(line, "| `") {
			for _, m := range regexp.MustCompile("--([a-z0-9-]+)").FindAllStringSubmatch(strings.Split(line, "|")[1], -1) {
				table[m[1]] = true
			}
		}
	}
	for f := range help {
		assert.True(t, table[f], "README's proxy flag table lacks --%s", f)
	}
	for f := range table {
		assert.True(t, help[f], "README's proxy table lists --%s, which `proxy --help` does not show", f)
	}
}

// `clminer demo --proxy`: both local miners get shares accepted through the
// proxy, each under its own worker.
func TestDemoProxy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var mu sync.Mutex
	rigs := map[string]bool{}
	w := &logWatch{on: func(ev map[string]any) {
		mu.Lock()
		defer mu.Unlock()
		if ev["event"] == "share.accepted" {
			rig, _ := ev["rig"].(string)
			rigs[rig] = true
			if rigs["rig1"] && rigs["rig2"] {
				cancel()
			}
		}
	}}
	app := newApp()
	app.ErrWriter = w
	err := app.RunContext(ctx, []string{"clminer", "--log-format", "json", "demo", "--proxy", "--device", "cpu", "--threads", "1",
		"--difficulty", "0.0001", "--status-interval", "0", "--drain-timeout", "1s"})
	require.NoError(t, err)
	evs := parseLines(t, w.all())
	credited := map[string]float64{}
	for _, ev := range evs {
		if ev["event"] == "demo.worker_shares" {
			credited[ev["worker"].(string)] = ev["accepted"].(float64)
		}
	}
	assert.Positive(t, credited["demo.rig1"], "%v", credited)
	assert.Positive(t, credited["demo.rig2"], "%v", credited)
}
