package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/txscript/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"clminer/internal/testkit"
	"clminer/stratum/pooltest"
	"clminer/stratum/v2/v2peer"
	"clminer/work/gbt/gbttest"
)

// startProxyCommand runs `clminer proxy` in front of poolURL until ctx
// ends, and returns the miners' address and the API's, as it logs them,
// and the channel its end comes on.
func startProxyCommand(t *testing.T, ctx context.Context, poolURL string) ([2]string, <-chan error) {
	t.Helper()
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
			"-o", poolURL, "-u", "farm", "-p", "x", "--api-listen", "127.0.0.1:0", "--status-interval", "0"})
	}()
	select {
	case a := <-addrs:
		return a, proxyDone
	case err := <-proxyDone:
		t.Fatalf("proxy stopped: %v\n%s", err, strings.Join(w.all(), "\n"))
		return [2]string{}, nil
	}
}

// `clminer proxy` in front of the built-in pool, with two `clminer mine`
// instances behind it: both rigs' shares reach the pool under their own
// workers over one connection, and the proxy's status API lists them.
func TestProxyCommandWithTwoMiners(t *testing.T) {
	pool := pooltest.Start(t, pooltest.Config{Difficulty: 0.0001})

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	a, proxyDone := startProxyCommand(t, ctx, pool.URL())

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
	capture := hooks{proxy: func(_ context.Context, ps *proxySetup) error { got = ps; return nil }}
	v2 := "stratum2+tcp://pool.example:3336/9bXiEd8boQVhq7WddEcERUL5tyyJVFYdU8th3HfbNXK3Yw6GRXh"
	_, err = runAppWith(t, capture, "proxy", "-o", v2, "-u", "acct.farm", "-o", "stratum+tcp://127.0.0.1:1", "-u", "farm",
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
		r, err := runAppWith(t, capture, append([]string{"proxy"}, tc.args...)...)
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

// proxyCmd is a `clminer proxy` running in the test.
type proxyCmd struct {
	listen, api string
	log         *logWatch
	cancel      func()
	done        chan error
}

// startProxyCmd runs `clminer proxy --listen 127.0.0.1:0 --api-listen
// 127.0.0.1:0 ARGS` and waits until both addresses are bound.
func startProxyCmd(t *testing.T, args ...string) *proxyCmd {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	p := &proxyCmd{cancel: cancel, done: make(chan error, 1)}
	ready := make(chan struct{})
	var once sync.Once
	var mu sync.Mutex
	p.log = &logWatch{on: func(ev map[string]any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev["event"] {
		case "proxy.listening":
			p.listen, _ = ev["addr"].(string)
		case "api.listening":
			p.api, _ = ev["addr"].(string)
		}
		if p.listen != "" && p.api != "" {
			once.Do(func() { close(ready) })
		}
	}}
	app := newApp()
	app.ErrWriter = p.log
	go func() {
		p.done <- app.RunContext(ctx, append([]string{"clminer", "--log-format", "json", "proxy", "--listen", "127.0.0.1:0",
			"--api-listen", "127.0.0.1:0", "--status-interval", "0"}, args...))
	}()
	t.Cleanup(func() {
		cancel()
		<-p.done
	})
	select {
	case <-ready:
	case err := <-p.done:
		t.Fatalf("proxy stopped: %v\n%s", err, strings.Join(p.log.all(), "\n"))
	}
	mu.Lock()
	defer mu.Unlock()
	return p
}

// get reads path from the proxy's API.
func (p *proxyCmd) get(t *testing.T, path string) []byte {
	t.Helper()
	resp, err := http.Get("http://" + p.api + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return b
}

// README's V2 example: `clminer proxy -o stratum2+tcp://.../KEY -u
// account.farm -o stratum+tcp://backup -u wallet` in front of the
// independent V2 pool (extended channels only), a `clminer mine` behind
// it; the pool re-checks every share it accepts.
func TestProxyCommandV2Upstream(t *testing.T) {
	peer := v2peer.Start(t, "--extended", "--target", peerTarget)
	backup := pooltest.Start(t, pooltest.Config{Difficulty: 0.0001, Extranonce2Size: 8})
	px := startProxyCmd(t, "-o", peer.URL(), "-u", "acct.farm", "-o", backup.URL(), "-u", "wallet")
	// The backup may feed the proxy for a moment while the V2 channel opens.
	testkit.EventuallyWithin(t, 30*time.Second, func() bool {
		var st struct {
			MiningOn string `json:"mining_on"`
		}
		require.NoError(t, json.Unmarshal(px.get(t, "/api/v1/status"), &st))
		return strings.HasPrefix(st.MiningOn, "stratum2+tcp://")
	}, "the proxy mining on the V2 pool")
	accepted := 0
	_, err := runMine(t, []string{"-o", "stratum+tcp://" + px.listen, "-u", "rig1", "--device", "cpu", "--threads", "1",
		"--status-interval", "0", "--drain-timeout", "1s"}, func(ev map[string]any, stop func()) {
		if ev["event"] == "share.accepted" {
			if accepted++; accepted == 3 {
				stop()
			}
		}
	})
	require.NoError(t, err)
	acc, rej := peer.Counts()
	assert.GreaterOrEqual(t, acc, 3)
	assert.Zero(t, rej)
	assert.Zero(t, backup.Stats().Accepted, "the V2 pool, first in the list, got the shares")
	open := peer.WaitEvent(t, "open", 10*time.Second)
	assert.Equal(t, "acct.farm", open.User)
	var st struct {
		Shares struct {
			Accepted uint64 `json:"accepted"`
		} `json:"shares"`
		Pools []struct {
			Protocol string `json:"protocol"`
			State    string `json:"state"`
		} `json:"pools"`
	}
	require.NoError(t, json.Unmarshal(px.get(t, "/api/v1/status"), &st))
	assert.EqualValues(t, acc, st.Shares.Accepted, "the pool's count is the proxy's")
	require.Len(t, st.Pools, 2)
	assert.Equal(t, "stratum2", st.Pools[0].Protocol)
	assert.Equal(t, "active", st.Pools[0].State)
}

// README's node example: `clminer proxy -o http://node --coinbase-addr
// ADDR` in front of btcd (regtest), a `clminer mine` behind it: its
// blocks are btcd's, pay the address, and the proxy's status and metrics
// credit them to the miner.
func TestProxyCommandNodeUpstream(t *testing.T) {
	w := gbttest.NewWallet("clminer proxy command wallet")
	n := gbttest.Start(t, w.P2PKH.EncodeAddress())
	n.MustCall(t, nil, "generate", 101)
	h0 := n.Height(t)
	addr := payouts(t)["P2TR"]
	px := startProxyCmd(t, "-o", n.URL, "-u", n.User, "-p", n.Pass, "--coinbase-addr", addr.EncodeAddress())
	// On regtest every share is a block, so after the first on a tip the
	// rest are stale until the node's next template, and clminer's client
	// leaves a pool after 5 rejects in a row: one accepted share (a block)
	// is the test.
	_, err := runMine(t, []string{"-o", "stratum+tcp://" + px.listen, "-u", "rig1", "--device", "cpu", "--threads", "1",
		"--status-interval", "0", "--drain-timeout", "1s"}, func(ev map[string]any, stop func()) {
		if ev["event"] == "share.accepted" {
			stop()
		}
	})
	require.NoError(t, err)
	require.Greater(t, n.Height(t), h0)
	want, err := txscript.PayToAddrScript(addr)
	require.NoError(t, err)
	for h := h0 + 1; h <= n.Height(t); h++ {
		assert.True(t, bytes.Equal(n.BlockAt(t, h).Payout, want), "block %d pays %s", h, addr)
	}
	var st struct {
		Shares struct {
			BlocksAccepted uint64 `json:"blocks_accepted"`
		} `json:"shares"`
		Workers []struct {
			Name   string `json:"name"`
			Shares struct {
				BlocksAccepted uint64 `json:"blocks_accepted"`
			} `json:"shares"`
		} `json:"workers"`
	}
	require.NoError(t, json.Unmarshal(px.get(t, "/api/v1/status"), &st))
	assert.EqualValues(t, n.Height(t)-h0, st.Shares.BlocksAccepted)
	require.Len(t, st.Workers, 1)
	assert.Equal(t, st.Shares.BlocksAccepted, st.Workers[0].Shares.BlocksAccepted)
	assert.Contains(t, string(px.get(t, "/metrics")), fmt.Sprintf(`clminer_proxy_blocks_total{outcome="accepted",worker="rig1"} %d`, st.Shares.BlocksAccepted))
	assert.NotContains(t, strings.Join(px.log.all(), "\n"), n.Pass, "the RPC password is never logged")
}
