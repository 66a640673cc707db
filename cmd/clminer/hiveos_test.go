package main

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const hiveDir = "../../deploy/hiveos"

// hiveStats sources h-stats.sh as Hive's agent does (its manifest already
// loaded) against the API at addr and returns $khs and $stats.
func hiveStats(t *testing.T, addr string) (float64, map[string]any) {
	t.Helper()
	bash := requireTool(t, "bash")
	requireTool(t, "jq")
	requireTool(t, "curl")
	host, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	script, err := filepath.Abs(filepath.Join(hiveDir, "h-stats.sh"))
	require.NoError(t, err)
	cmd := exec.Command(bash, "-c", `. "$1"; printf '%s\n%s\n' "$khs" "$stats"`, "h-stats", script)
	cmd.Env = append(os.Environ(), "CUSTOM_NAME=clminer", "CUSTOM_ALGO=sha256d", "CLMINER_API_HOST="+host, "CLMINER_API_PORT="+port)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	lines := strings.SplitN(strings.TrimSpace(string(out)), "\n", 2)
	require.Len(t, lines, 2, "%s", out)
	khs, err := strconv.ParseFloat(lines[0], 64)
	require.NoError(t, err, "khs %q", lines[0])
	var stats map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[1]), &stats), "stats %q", lines[1])
	return khs, stats
}

// h-stats.sh against a live demo prints the fields Hive reads, agreeing
// with /api/v1/status read before and after it.
func TestHiveStatsLive(t *testing.T) {
	requireTool(t, "jq")
	r := startDemo(t, "--api-listen", "127.0.0.1:0")
	api := r.addr(t, "api.listening")
	r.waitFor(t, "2 accepted shares", func(r *liveRun) bool { return r.accepted >= 2 })
	before := getStatus(t, api)
	khs, stats := hiveStats(t, api)
	after := getStatus(t, api)

	for _, k := range []string{"hs", "hs_units", "temp", "fan", "uptime", "ar", "algo", "ver"} {
		assert.Contains(t, stats, k)
	}
	assert.Equal(t, "khs", stats["hs_units"])
	assert.Equal(t, "sha256d", stats["algo"])
	hs := stats["hs"].([]any)
	require.Len(t, hs, len(after.Devices))
	assert.Len(t, stats["temp"], len(hs))
	assert.Len(t, stats["fan"], len(hs))
	assert.Equal(t, 0.0, stats["temp"].([]any)[0], "no NVML for the CPU")
	assert.Positive(t, khs)
	assert.InDelta(t, hs[0].(float64), khs, 1e-6*khs, "one device: its rate is the total")
	ar := stats["ar"].([]any)
	between(t, "ar accepted", ar[0].(float64), before.Shares.Accepted, after.Shares.Accepted)
	between(t, "ar rejected", ar[1].(float64), before.Shares.Rejected, after.Shares.Rejected)
	between(t, "uptime", stats["uptime"].(float64), float64(int64(before.UptimeS)), after.UptimeS)
}

// h-config.sh turns a flight sheet into a config that `mine` accepts:
// every pool with the worker and password kept whole, the APIs on
// loopback, and the extra settings applied.
func TestHiveConfig(t *testing.T) {
	bash := requireTool(t, "bash")
	cfg := filepath.Join(t.TempDir(), "clminer.yaml")
	cmd := exec.Command(bash, filepath.Join(hiveDir, "h-config.sh"))
	cmd.Env = append(os.Environ(), "CUSTOM_NAME=clminer", "CUSTOM_CONFIG_FILENAME="+cfg,
		"CUSTOM_URL=stratum+tcp://pool.example:3333 backup.example:443", "CUSTOM_TEMPLATE=bc1qwallet.rig7",
		"CUSTOM_PASS=d=1024,c=BTC 'x'", "CUSTOM_USER_CONFIG=temp-target: 75\nnotify-url: https://hooks.example/x")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
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

	cmd = exec.Command(bash, filepath.Join(hiveDir, "h-config.sh"))
	cmd.Env = append(os.Environ(), "CUSTOM_NAME=clminer", "CUSTOM_CONFIG_FILENAME="+cfg, "CUSTOM_URL=", "CUSTOM_TEMPLATE=w")
	out, err = cmd.CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(out), "no pool URL")
}
