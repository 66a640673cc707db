package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"clminer/stratum/pooltest"
)

// logWatch collects JSON log lines and calls on for each as it is written,
// so a test can act on events rather than sleep.
type logWatch struct {
	mu      sync.Mutex
	partial []byte
	lines   []string
	on      func(ev map[string]any)
}

func (w *logWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.partial = append(w.partial, p...)
	var complete []string
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		complete = append(complete, string(w.partial[:i]))
		w.partial = w.partial[i+1:]
	}
	w.lines = append(w.lines, complete...)
	on := w.on
	w.mu.Unlock()
	for _, l := range complete {
		var ev map[string]any
		if json.Unmarshal([]byte(l), &ev) == nil && on != nil {
			on(ev)
		}
	}
	return len(p), nil
}

func (w *logWatch) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := slices.Clone(w.lines)
	if len(w.partial) > 0 {
		out = append(out, string(w.partial))
	}
	return out
}

// runMine runs the real `clminer --log-format json mine` in process until
// stop returns true for a log event (or 60 s pass), and returns its log.
func runMine(t *testing.T, args []string, stop func(ev map[string]any, cancel func())) ([]string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	w := &logWatch{on: func(ev map[string]any) { stop(ev, cancel) }}
	app := newApp()
	var out bytes.Buffer
	app.Writer, app.ErrWriter = &out, w
	err := app.RunContext(ctx, append([]string{"clminer", "--log-format", "json", "mine"}, args...))
	if ctx.Err() == context.DeadlineExceeded {
		t.Fatalf("mine did not reach the expected events in 60 s; log:\n%s", strings.Join(w.all(), "\n"))
	}
	return w.all(), err
}

func parseLines(t *testing.T, lines []string) []map[string]any {
	t.Helper()
	var evs []map[string]any
	for _, l := range lines {
		var ev map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &ev), "not JSON: %q", l)
		evs = append(evs, ev)
	}
	return evs
}

// A short run against the in-process pool, over TLS pinned by fingerprint,
// with the API and the share log on, through a pool that goes away: every
// JSON line carries an event, numbers are numbers, and no event is logged
// twice.
func TestJSONLogLinesCarryEvent(t *testing.T) {
	pool := pooltest.Start(t, pooltest.Config{TLS: true, Difficulty: 0.0001})
	var once sync.Once
	var mu sync.Mutex
	accepted, status, failed := false, false, false
	lines, err := runMine(t, []string{
		"-o", pool.URL(), "-u", "wallet.rig1", "-p", "hunter2,d=1024", "--tls-fingerprint", pool.Fingerprint(),
		"--device", "cpu", "--threads", "1", "--status-interval", "100ms", "--drain-timeout", "1s",
		"--api-listen", "127.0.0.1:0", "--api-token", "s3cret", "--share-log", filepath.Join(t.TempDir(), "shares.jsonl"),
		"--log-level", "debug",
	}, func(ev map[string]any, cancel func()) {
		mu.Lock()
		defer mu.Unlock()
		switch ev["event"] {
		case "share.accepted":
			accepted = true
		case "miner.status":
			status = true
		case "pool.connect_failed":
			failed = true
		case "pool.retry":
			if failed {
				cancel()
			}
		}
		if accepted && status {
			once.Do(func() { go pool.Close() })
		}
	})
	require.NoError(t, err)
	evs := parseLines(t, lines)
	count := map[string]int{}
	for i, ev := range evs {
		name, _ := ev["event"].(string)
		assert.NotEmpty(t, name, "line without an event: %s", lines[i])
		count[name]++
	}
	for _, want := range []string{"device.ready", "api.listening", "pool.connecting", "pool.connected", "share.accepted",
		"miner.status", "pool.disconnected", "pool.connect_failed", "pool.retry", "miner.summary", "miner.summary.pool"} {
		assert.Positive(t, count[want], "event %s missing", want)
	}
	assert.Equal(t, 1, count["pool.connected"], "one session, one pool.connected")
	assert.Equal(t, 1, count["pool.disconnected"], "one disconnect, one line")
	assert.Equal(t, 1, count["miner.summary"])
	assert.Equal(t, count["pool.disconnected"]+count["pool.connect_failed"], count["pool.retry"], "each failure, one retry line")

	for _, ev := range evs {
		switch ev["event"] {
		case "miner.status":
			for _, k := range []string{"hashrate_5s", "hashrate_60s", "hashrate_avg", "uptime_s", "best_share", "accepted"} {
				assert.IsType(t, float64(0), ev[k], "miner.status %s is a number", k)
			}
			assert.NotContains(t, ev["msg"], "(60s)", "a rate window longer than the uptime is labelled by the uptime")
		case "miner.summary":
			for _, k := range []string{"hashrate_avg", "hashrate_effective", "uptime_s", "best_share", "accepted", "hashes"} {
				assert.IsType(t, float64(0), ev[k], "miner.summary %s is a number", k)
			}
		case "pool.retry":
			assert.IsType(t, float64(0), ev["retry_in_s"])
			assert.Contains(t, ev["msg"], "retrying in")
		case "pool.connecting":
			assert.Equal(t, "info", ev["level"])
		}
	}
	all := strings.Join(lines, "\n")
	t.Log(all)
	assert.NotContains(t, all, "hunter2", "no password in the log")
	assert.NotContains(t, all, "s3cret", "no API token in the log")
}

// childEnv marks the test binary run as a child with a broken OpenCL.
const childEnv = "CLMINER_TEST_FALLBACK_CHILD"

// With OpenCL unusable, `mine --device auto` says at WARN what it looked
// for, what failed and that it uses the CPU; `--device gpu` fails at once
// with that reason. The ICD loader reads its configuration once per
// process, so each case runs in a child process.
func TestDeviceFallbackWithBrokenOpenCL(t *testing.T) {
	if mode := os.Getenv(childEnv); mode != "" {
		fallbackChild(t, mode)
		return
	}
	cases := map[string][]string{
		"no ICD":     {"OCL_ICD_VENDORS=" + t.TempDir(), "CLMINER_OPENCL_LIB="},
		"no runtime": {"CLMINER_OPENCL_LIB=/nonexistent/libOpenCL.so.1"},
	}
	for name, env := range cases {
		for _, mode := range []string{"auto", "gpu"} {
			t.Run(name+"/"+mode, func(t *testing.T) {
				t.Parallel()
				cmd := exec.Command(os.Args[0], "-test.run=^TestDeviceFallbackWithBrokenOpenCL$", "-test.v")
				cmd.Env = append(append(os.Environ(), childEnv+"="+mode), env...)
				out, err := cmd.CombinedOutput()
				require.NoError(t, err, "%s %v:\n%s", mode, env, out)
				require.Contains(t, string(out), "--- PASS", "%s %v:\n%s", mode, env, out)
			})
		}
	}
}

func fallbackChild(t *testing.T, mode string) {
	pool := pooltest.Start(t, pooltest.Config{Difficulty: 0.0001})
	args := []string{"-o", pool.URL(), "-u", "w", "--device", mode, "--threads", "1", "--drain-timeout", "1s"}
	lines, err := runMine(t, args, func(ev map[string]any, cancel func()) {
		if ev["event"] == "pool.connected" {
			cancel()
		}
	})
	if mode == "gpu" {
		require.Error(t, err)
		assert.Contains(t, err.Error(), "--device gpu: no OpenCL GPU found: ")
		assert.Contains(t, err.Error(), "looked for OpenCL GPUs")
		assert.NotContains(t, err.Error(), "\n")
		for _, ev := range parseLines(t, lines) {
			assert.NotEqual(t, "device.ready", ev["event"], "no device opened")
		}
		t.Log(err)
		return
	}
	require.NoError(t, err)
	var fallback map[string]any
	for _, ev := range parseLines(t, lines) {
		if ev["event"] == "device.fallback" {
			fallback = ev
		}
		if ev["event"] == "device.ready" {
			require.NotNil(t, fallback, "the fallback is said before the CPU device is used")
			assert.Equal(t, "cpu", ev["device"])
		}
	}
	require.NotNil(t, fallback, "no device.fallback line:\n%s", strings.Join(lines, "\n"))
	assert.Equal(t, "warn", fallback["level"])
	assert.Contains(t, fallback["msg"], "falling back to the CPU")
	assert.Contains(t, fallback["looked_for"], "OpenCL GPUs")
	assert.NotEmpty(t, fallback["reason"])
	if strings.HasPrefix(os.Getenv("CLMINER_OPENCL_LIB"), "/nonexistent") {
		assert.Contains(t, fallback["reason"], "OpenCL runtime not found")
	}
	t.Log(fallback)
}

// The README's flag table lists every flag `clminer mine --help` shows,
// and no flag that does not exist.
func TestREADMEFlagTableMatchesHelp(t *testing.T) {
	app := newApp()
	var out bytes.Buffer
	app.Writer, app.ErrWriter = &out, &out
	require.NoError(t, app.Run([]string{"clminer", "mine", "--help"}))
	help := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+--([a-z0-9-]+)`).FindAllStringSubmatch(out.String(), -1) {
		if m[1] != "help" {
			help[m[1]] = true
		}
	}
	require.Greater(t, len(help), 20, "parsed the help:\n%s", out.String())

	b, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	readme := string(b)
	start := strings.Index(readme, "### `clminer mine`")
	require.GreaterOrEqual(t, start, 0)
	section := readme[start:]
	if end := strings.Index(section[4:], "\n### "); end >= 0 {
		section = section[:end+4]
	}
	table := map[string]bool{}
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		first := strings.Split(line, "|")[1]
		for _, m := range regexp.MustCompile("--([a-z0-9-]+)").FindAllStringSubmatch(first, -1) {
			table[m[1]] = true
		}
	}
	for f := range help {
		assert.True(t, table[f], "README's `clminer mine` flag table lacks --%s", f)
	}
	for f := range table {
		assert.True(t, help[f], "README's flag table lists --%s, which `mine --help` does not show", f)
	}
}
