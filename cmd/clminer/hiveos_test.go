package main

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"clminer/stratum/pooltest"
)

const hiveDir = "../../deploy/hiveos"

func hiveScript(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join(hiveDir, name))
	require.NoError(t, err)
	return p
}

// hiveEnv is the environment of Hive's agent and miner-run with vars (the
// flight sheet, the manifest's values) added: none of clminer's or Hive's
// variables from the test's own environment.
func hiveEnv(vars ...string) []string {
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "CUSTOM_") && !strings.HasPrefix(e, "CLMINER_") {
			env = append(env, e)
		}
	}
	return append(env, vars...)
}

// manifestEnv is what the manifest sets, as Hive has it loaded when it
// sources h-config.sh and h-stats.sh, with the log under dir.
func manifestEnv(t *testing.T, config string) []string {
	return []string{"CUSTOM_NAME=clminer", "CUSTOM_MINER=clminer", "CUSTOM_ALGO=sha256d", "CUSTOM_CONFIG_FILENAME=" + config,
		"CUSTOM_LOG_BASENAME=" + filepath.Join(filepath.Dir(config), "clminer")}
}

// hiveStats sources h-stats.sh as Hive's agent does, with the config file
// h-config.sh would have written, and returns $khs and $stats.
func hiveStats(t *testing.T, config string) (float64, map[string]any) {
	t.Helper()
	bash := requireTool(t, "bash")
	requireTool(t, "jq")
	requireTool(t, "curl")
	cmd := exec.Command(bash, "-c", `. "$1"; echo "sourced, still here"; printf '%s\n%s\n' "$khs" "$stats"`, "agent", hiveScript(t, "h-stats.sh"))
	cmd.Env = hiveEnv(manifestEnv(t, config)...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	require.GreaterOrEqual(t, len(lines), 3, "%s", out)
	lines = lines[len(lines)-3:]
	require.Equal(t, "sourced, still here", lines[0], "%s", out)
	khs, err := strconv.ParseFloat(lines[1], 64)
	require.NoError(t, err, "khs %q", lines[1])
	var stats map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[2]), &stats), "stats %q", lines[2])
	return khs, stats
}

// h-stats.sh against a live demo prints the fields Hive reads, agreeing
// with /api/v1/status read before and after it: no NVML and no PCI bus for
// the CPU, so temp, fan and bus_numbers are null, not 0.
func TestHiveStatsLive(t *testing.T) {
	requireTool(t, "jq")
	r := startDemo(t, "--api-listen", "127.0.0.1:0")
	api := r.addr(t, "api.listening")
	r.waitFor(t, "2 accepted shares", func(r *liveRun) bool { return r.accepted >= 2 })
	config := writeConfig(t, "api-listen: "+api+"\n")
	before := getStatus(t, api)
	khs, stats := hiveStats(t, config)
	after := getStatus(t, api)

	for _, k := range []string{"hs", "hs_units", "temp", "fan", "bus_numbers", "uptime", "ar", "algo", "ver"} {
		assert.Contains(t, stats, k)
	}
	assert.Equal(t, "khs", stats["hs_units"])
	assert.Equal(t, "sha256d", stats["algo"])
	hs := stats["hs"].([]any)
	require.Len(t, hs, len(after.Devices))
	assert.Equal(t, []any{nil}, stats["temp"], "no NVML for the CPU: null, so Hive shows its own reading")
	assert.Equal(t, []any{nil}, stats["fan"])
	assert.Equal(t, []any{nil}, stats["bus_numbers"], "the CPU has no PCI bus")
	assert.Positive(t, khs)
	assert.InDelta(t, hs[0].(float64), khs, 1e-6*khs, "one device: its rate is the total")
	ar := stats["ar"].([]any)
	require.Len(t, ar, 3, "accepted, rejected, hardware errors")
	between(t, "ar accepted", ar[0].(float64), before.Shares.Accepted, after.Shares.Accepted)
	between(t, "ar rejected", ar[1].(float64), before.Shares.Rejected, after.Shares.Rejected)
	between(t, "ar hardware errors", ar[2].(float64), before.Shares.HWErrors, after.Shares.HWErrors)
	between(t, "uptime", stats["uptime"].(float64), float64(int64(before.UptimeS)), after.UptimeS)
}

// With GPUs: bus_numbers carries each device's PCI bus in decimal (Hive
// matches devices to its GPU list by bus), temperature and fan come from
// NVML where it has them and are null elsewhere; an api-listen on all
// interfaces with a token, set in the flight sheet's extra config, is read
// on loopback with the token.
func TestHiveStatsGPUsAndToken(t *testing.T) {
	status := `{"version":"v1","uptime_s":61.7,"hashrate_60s":3e9,
	  "devices":[
	    {"id":"opencl:0:0","pci_bus_id":"0000:0a:00.0","hashrate_60s":2e9},
	    {"id":"opencl:0:1","pci_bus_id":"00000000:81:00.0","hashrate_60s":1e9},
	    {"id":"cpu","hashrate_60s":5e6}],
	  "shares":{"accepted":7,"rejected":2,"hw_errors":1},
	  "gpus":[{"device":"opencl:0:0","sensors":{"temperature_c":65,"fan_percent":40}},{"device":"opencl:0:1","sensors":{"power_w":200}}]}`
	var auth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = r.Header.Get("Authorization")
		if auth != "Bearer t0k#en" || r.URL.Path != "/api/v1/status" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		_, _ = w.Write([]byte(status))
	}))
	defer srv.Close()
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	require.NoError(t, err)
	config := writeConfig(t, "pools: []\napi-listen: 0.0.0.0:"+port+"   # to the LAN\napi-token: 't0k#en'\n")
	khs, stats := hiveStats(t, config)
	assert.Equal(t, "Bearer t0k#en", auth)
	assert.InDelta(t, 3e6, khs, 1e-6)
	assert.Equal(t, []any{2e6, 1e6, 5e3}, stats["hs"])
	assert.Equal(t, []any{10.0, 129.0, nil}, stats["bus_numbers"])
	assert.Equal(t, []any{65.0, nil, nil}, stats["temp"])
	assert.Equal(t, []any{40.0, nil, nil}, stats["fan"])
	assert.Equal(t, []any{7.0, 2.0, 1.0}, stats["ar"])
	assert.Equal(t, 61.0, stats["uptime"])
	assert.Equal(t, "v1", stats["ver"])

	// The API down: Hive gets 0 and null, and its agent, which sourced the
	// script, goes on.
	srv.Close()
	bash := requireTool(t, "bash")
	cmd := exec.Command(bash, "-c", `. "$1"; echo "still here: $khs $stats"`, "agent", hiveScript(t, "h-stats.sh"))
	cmd.Env = hiveEnv(manifestEnv(t, config)...)
	out, _ := cmd.CombinedOutput()
	assert.Contains(t, string(out), "still here: 0 null")
	assert.Contains(t, string(out), "not answering")
}

// runHiveConfig runs h-config.sh as Hive's miner-run does (sourced) and
// returns its output, whether the sourcing shell went on, and the status.
func runHiveConfig(t *testing.T, config string, vars ...string) (string, int) {
	t.Helper()
	bash := requireTool(t, "bash")
	cmd := exec.Command(bash, "-c", `. "$1"; rc=$?; echo "miner-run goes on"; exit $rc`, "miner-run", hiveScript(t, "h-config.sh"))
	cmd.Env = hiveEnv(append(manifestEnv(t, config), vars...)...)
	out, err := cmd.CombinedOutput()
	require.Contains(t, string(out), "miner-run goes on", "h-config.sh must return, not exit, when sourced: %s", out)
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return string(out), exit.ExitCode()
	}
	require.NoError(t, err)
	return string(out), 0
}

// h-config.sh turns a flight sheet into a config that `mine` accepts:
// every pool with the worker and password kept whole, the APIs on
// loopback, the log file Hive rotates, and the extra settings applied; it
// succeeds (status 0) with the extra config empty too.
func TestHiveConfig(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "clminer.yaml")
	out, rc := runHiveConfig(t, cfg,
		"CUSTOM_URL=stratum+tcp://pool.example:3333 backup.example:443", "CUSTOM_TEMPLATE=bc1qwallet.rig7",
		"CUSTOM_PASS=d=1024,c=BTC 'x'", "CUSTOM_USER_CONFIG=temp-target: 75\r\nnotify-url: https://hooks.example/x\r\n")
	require.Equal(t, 0, rc, out)
	r, err := runApp(t, "mine", "-c", cfg)
	require.NoError(t, err)
	pools := r.setup.pools
	require.Len(t, pools, 2)
	assert.Equal(t, "stratum+tcp://pool.example:3333", pools[0].URL)
	assert.Equal(t, "stratum+tcp://backup.example:443", pools[1].URL)
	for _, p := range pools {
		assert.Equal(t, "bc1qwallet.rig7", p.User)
		assert.Equal(t, "d=1024,c=BTC 'x'", p.Pass)
	}
	assert.Equal(t, "127.0.0.1:4048", r.setup.api.listen)
	assert.Equal(t, "127.0.0.1:4028", r.setup.fleet.cgAPI)
	assert.Equal(t, 75.0, r.setup.fleet.limits.Target)
	assert.Equal(t, "https://hooks.example/x", r.setup.fleet.notifyURL)
	assert.Equal(t, filepath.Join(filepath.Dir(cfg), "clminer.log"), r.c.String("log-file"), "the log Hive rotates and shows")

	out, rc = runHiveConfig(t, cfg, "CUSTOM_URL=pool.example:3333", "CUSTOM_TEMPLATE=w", "CUSTOM_USER_CONFIG=")
	require.Equal(t, 0, rc, "empty extra config: %s", out)
	_, err = runApp(t, "mine", "-c", cfg)
	require.NoError(t, err)

	out, rc = runHiveConfig(t, cfg, "CUSTOM_URL=", "CUSTOM_TEMPLATE=w")
	assert.Equal(t, 1, rc)
	assert.Contains(t, out, "no pool URL")
	assert.NoFileExists(t, cfg, "no stale config left to mine on")
}

// A key in the flight sheet's extra config replaces the one h-config.sh
// would write: the config has no key twice (YAML refuses that) and mine
// takes the operator's value.
func TestHiveExtraConfigOverrides(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "clminer.yaml")
	extra := strings.Join([]string{
		"api-listen: 0.0.0.0:4048",
		"api-token: s3cret",
		"cgminer-api : 0.0.0.0:4028",
		"cgminer-api-allow: 192.168.1.0/24",
		"log-file: " + filepath.Join(filepath.Dir(cfg), "mine.log"),
	}, "\n")
	out, rc := runHiveConfig(t, cfg, "CUSTOM_URL=pool.example:3333", "CUSTOM_TEMPLATE=w", "CUSTOM_USER_CONFIG="+extra)
	require.Equal(t, 0, rc, out)
	r, err := runApp(t, "mine", "-c", cfg)
	require.NoError(t, err, "config:\n%s", readFile(t, cfg))
	assert.Equal(t, "0.0.0.0:4048", r.setup.api.listen)
	assert.Equal(t, "0.0.0.0:4028", r.setup.fleet.cgAPI)
	assert.Equal(t, filepath.Join(filepath.Dir(cfg), "mine.log"), r.c.String("log-file"))

	// Pools from the extra config: the flight sheet's pool fields may be
	// left empty.
	extra = "pools:\n  - url: stratum+tls://pool.example:443\n    user: w.rig\n"
	out, rc = runHiveConfig(t, cfg, "CUSTOM_URL=", "CUSTOM_TEMPLATE=", "CUSTOM_USER_CONFIG="+extra)
	require.Equal(t, 0, rc, out)
	r, err = runApp(t, "mine", "-c", cfg)
	require.NoError(t, err, "config:\n%s", readFile(t, cfg))
	require.Len(t, r.setup.pools, 1)
	assert.Equal(t, "stratum+tls://pool.example:443", r.setup.pools[0].URL)
}

// fakeHive installs the package's scripts under root as Hive's installer
// does (/hive/miners/custom/clminer, logs under /var/log/miner/custom), with
// clminer being this test binary.
func fakeHive(t *testing.T, root string) string {
	t.Helper()
	dir := filepath.Join(root, "hive", "miners", "custom", "clminer")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	for _, s := range []string{"h-config.sh", "h-run.sh", "h-stats.sh"} {
		b, err := os.ReadFile(hiveScript(t, s))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, s), b, 0o755))
	}
	m, err := os.ReadFile(hiveScript(t, "h-manifest.conf"))
	require.NoError(t, err)
	manifest := strings.NewReplacer("@VERSION@", "test", "/hive/", root+"/hive/", "/var/log/", root+"/var/log/").Replace(string(m))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "h-manifest.conf"), []byte(manifest), 0o644))
	require.NoError(t, os.Symlink(clminerExe(t), filepath.Join(dir, "clminer")))
	return dir
}

// A stop from Hive: `miner stop` sends Ctrl+C to the miner's screen window,
// so SIGINT reaches every process in it. clminer, started the way Hive's
// miner-run starts it (manifest and h-config.sh sourced, then h-run.sh),
// drains and writes its summary to the log file Hive shows.
func TestHiveStopDrainsAndLogsSummary(t *testing.T) {
	bash := requireTool(t, "bash")
	pool := pooltest.Start(t, pooltest.Config{Difficulty: 0.0002})
	root := t.TempDir()
	dir := fakeHive(t, root)
	// miner-run, as far as a custom miner sees it.
	minerRun := `
MINER_DIR=$(dirname "$1")
source "$MINER_DIR/$CUSTOM_MINER/h-manifest.conf"
source "$MINER_DIR/$CUSTOM_MINER/h-config.sh"
cd "$MINER_DIR/$CUSTOM_MINER"
"$MINER_DIR/$CUSTOM_MINER/h-run.sh"
`
	cmd := exec.Command(bash, "-c", minerRun, "miner-run", dir)
	cmd.Env = hiveEnv("CUSTOM_MINER=clminer", mainEnv+"=1", "XDG_CACHE_HOME="+filepath.Join(root, "cache"),
		"CUSTOM_URL="+pool.URL(), "CUSTOM_TEMPLATE=wallet.rig1", "CUSTOM_PASS=x",
		"CUSTOM_USER_CONFIG=device: cpu\nthreads: 1\ndrain-timeout: 2s\napi-listen: 127.0.0.1:0\ncgminer-api: 127.0.0.1:0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // the screen window's process group
	p := startProc(t, cmd)
	p.waitCount(t, "share.accepted", 2)

	require.NoError(t, syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)) // Ctrl+C
	err := p.wait(t)
	logFile := filepath.Join(root, "var", "log", "miner", "custom", "clminer.log")
	log := readFile(t, logFile)
	require.NoError(t, err, "the window's script ends cleanly; log:\n%s", log)
	assert.Contains(t, log, "share.accepted")
	assert.Contains(t, log, "miner.summary", "the summary reaches the log file Hive shows")
	assert.Contains(t, p.output(), "miner.summary", "and the screen window")
}
