package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// An unknown command is one line that names it, with the likely command
// when there is one, and a non-zero exit; never urfave/cli's help text.
func TestUnknownCommand(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"mien"}, `unknown command "mien" (did you mean "mine"? commands: devices, bench, selftest, mine, demo, proxy, help; see ` + "`clminer --help`)"},
		{[]string{"help", "mien"}, `unknown command "mien" (did you mean "mine"?`},
		{[]string{"--log-level", "debug", "slftest", "--device", "cpu"}, `unknown command "slftest" (did you mean "selftest"?`},
		{[]string{"frobnicate"}, `unknown command "frobnicate" (commands: devices,`},
	} {
		r, err := runApp(t, tc.args...)
		assertOneLine(t, r, err, tc.want, tc.args)
		assert.NotContains(t, err.Error(), "No help topic", tc.args)
		assert.Empty(t, r.stdout, tc.args)
	}
	for _, ok := range [][]string{{"help"}, {"help", "mine"}, {"h", "proxy"}, {"--version"}} {
		_, err := runApp(t, ok...)
		assert.NoError(t, err, ok)
	}
}

// runReported runs the app as main does and returns what main prints on
// error.
func runReported(t *testing.T, args ...string) string {
	t.Helper()
	app := newApp()
	var out, errOut bytes.Buffer
	app.Writer, app.ErrWriter = &out, &errOut
	err := app.RunContext(context.Background(), append([]string{"clminer"}, args...))
	require.Error(t, err, args)
	var printed bytes.Buffer
	reportError(app, &printed, err)
	return printed.String()
}

// Under --log-format json (flag before or after the command, or
// CLMINER_LOG_FORMAT) an error that ends the run is a JSON log object with
// an event, as every other line is; text stays one plain line. (A command
// line that fails to parse after the command is read no further: there,
// the format comes from before the command or the variable.)
func TestStartupErrorsFollowTheLogFormat(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  string
		want string
	}{
		{[]string{"mine", "--log-format", "json", "-o", "bad://pool:1", "-u", "u"}, "", "unknown scheme"},
		{[]string{"--log-format", "json", "mine", "-o", "stratum+tcp://a:1", "-u", "u", "--threads", "-2"}, "", "--threads -2"},
		{[]string{"--log-format", "json", "mine", "--no-such-flag"}, "", "unknown flag --no-such-flag"},
		{[]string{"--no-such-flag"}, "json", "unknown flag --no-such-flag"},
		{[]string{"mine", "--no-such-flag"}, "json", "unknown flag --no-such-flag"},
		{[]string{"mine", "--config", "/nonexistent/clminer.yaml"}, "json", "config file"},
		{[]string{"mien"}, "json", `unknown command "mien"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Setenv("CLMINER_LOG_FORMAT", tc.env)
			out := runReported(t, tc.args...)
			lines := strings.Split(strings.TrimSpace(out), "\n")
			require.Len(t, lines, 1, out)
			var ev map[string]any
			require.NoError(t, json.Unmarshal([]byte(lines[0]), &ev), "not JSON: %q", out)
			assert.Equal(t, "startup.error", ev["event"])
			assert.Equal(t, "error", ev["level"])
			assert.Contains(t, ev["msg"], tc.want)
			assert.NotEmpty(t, ev["time"])
		})
	}
	t.Setenv("CLMINER_LOG_FORMAT", "")
	out := runReported(t, "mine", "-o", "bad://pool:1", "-u", "u")
	assert.True(t, strings.HasPrefix(out, "clminer: "), out)
	assert.Contains(t, out, "unknown scheme")
	assert.Equal(t, 1, strings.Count(out, "\n"))
}

// Once --log-file is open, the error that ends the run is in the file as
// well as on stderr: where the file is all an operator reads (Hive OS's
// miner log, h-run.sh has no pipe), a miner that stops at start-up says why.
func TestStartupErrorReachesTheLogFile(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	path := filepath.Join(t.TempDir(), "clminer.log")
	out := runReported(t, "mine", "--log-file", path, "-o", "stratum+tcp://127.0.0.1:1", "-u", "u", "--device", "cpu",
		"--api-listen", busy.Addr().String())
	assert.Contains(t, out, busy.Addr().String())
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, out, string(b), "the same line in the file")
}
