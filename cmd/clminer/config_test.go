package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"

	"clminer/stratum"
)

// result is what a command would have run with.
type result struct {
	setup          *runSetup
	c              *cli.Context
	stdout, stderr string
}

// runApp runs clminer with args (without the program name) up to the point
// where `mine` would start mining, and returns what it would mine with.
func runApp(t *testing.T, args ...string) (*result, error) {
	t.Helper()
	return runAppWith(t, hooks{}, args...)
}

// runAppWith is runApp with h's pieces (its mine is runApp's).
func runAppWith(t *testing.T, h hooks, args ...string) (*result, error) {
	t.Helper()
	r := &result{}
	h.mine = func(c *cli.Context, s *runSetup, _ stratum.Options) error {
		r.setup, r.c = s, c
		return nil
	}
	app := newAppWith(h)
	var out, errOut bytes.Buffer
	app.Writer, app.ErrWriter = &out, &errOut
	err := app.RunContext(context.Background(), append([]string{"clminer"}, args...))
	r.stdout, r.stderr = out.String(), errOut.String()
	return r, err
}

// parseMine runs `clminer mine` with args, capturing the pools and settings
// it would mine with instead of mining.
func parseMine(t *testing.T, args ...string) ([]stratum.PoolConfig, *cli.Context, error) {
	t.Helper()
	r, err := runApp(t, append([]string{"mine"}, args...)...)
	if err != nil || r.setup == nil {
		return nil, r.c, err
	}
	return r.setup.pools, r.c, nil
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "clminer.yaml")
	require.NoError(t, os.WriteFile(p, []byte(text), 0o600))
	return p
}

func TestPoolsFromFlagsInOrder(t *testing.T) {
	pools, _, err := parseMine(t, "-o", "stratum+tcp://a:3333", "-u", "w.1", "-p", "secret",
		"-o", "stratum+tls://b:443", "-u", "w.2", "--tls-fingerprint", fpB)
	require.NoError(t, err)
	require.Len(t, pools, 2)
	assert.Equal(t, "stratum+tcp://a:3333", pools[0].URL)
	assert.Equal(t, "secret", pools[0].Pass)
	assert.Equal(t, "x", pools[1].Pass, "a missing -p defaults to x")
	assert.Empty(t, pools[0].Fingerprint)
	assert.Equal(t, fpB, pools[1].Fingerprint)
	assert.True(t, pools[0].VersionRolling)
}

func TestBadFlagsGiveOneLineErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, "no pool"},
		{[]string{"-o", "stratum+tcp://a:1", "-o", "stratum+tcp://b:1", "-u", "w"}, "give one -u after each -o"},
		{[]string{"-o", "stratum+tcp://a:1", "-u", "w", "--threads", "-2"}, "--threads"},
		{[]string{"-o", "stratum+tcp://a:1", "-u", "w", "--intensity", "40"}, "--intensity 40"},
		{[]string{"-o", "stratum+tcp://a:1", "-u", "w", "--intensity", "9"}, "must be 10..31"},
		{[]string{"-o", "stratum+tcp://a:1", "-u", "w", "--intensity", "32"}, "must be 10..31"},
		{[]string{"-o", "stratum+tcp://a:1", "-u", "w", "--vector-width", "3"}, "--vector-width 3"},
		{[]string{"-o", "stratum+tcp://a:1", "-u", "w", "--kernel-ms", "0"}, "--kernel-ms"},
	}
	for _, tc := range tests {
		_, _, err := parseMine(t, tc.args...)
		require.Error(t, err, tc.args)
		assert.Contains(t, err.Error(), tc.want)
		assert.NotContains(t, err.Error(), "\n", "one line")
	}
	for _, n := range []string{"10", "31", "0"} {
		_, _, err := parseMine(t, "-o", "stratum+tcp://a:1", "-u", "w", "--intensity", n)
		assert.NoError(t, err, "--intensity %s is inside the OpenCL range", n)
	}
}

func TestConfigFile(t *testing.T) {
	path := writeConfig(t, `
pools:
  - url: stratum+tcp://pool.example:3333
    user: wallet.rig1
    pass: hunter2
  - url: stratum+tls://backup.example:443
    user: wallet.rig1
    version-rolling: false
device: cpu
threads: 3
kernel-ms: 30
`)
	pools, c, err := parseMine(t, "--config", path, "--threads", "1")
	require.NoError(t, err)
	require.Len(t, pools, 2)
	assert.Equal(t, "hunter2", pools[0].Pass)
	assert.True(t, pools[0].VersionRolling)
	assert.False(t, pools[1].VersionRolling)
	assert.Equal(t, "cpu", c.String("device"))
	assert.Equal(t, 30.0, c.Float64("kernel-ms"))
	assert.Equal(t, 1, c.Int("threads"), "a flag wins over the file")
}

func TestConfigFlagsWinOverFilePools(t *testing.T) {
	path := writeConfig(t, "pools:\n  - url: stratum+tcp://file:1\n    user: f\n")
	pools, _, err := parseMine(t, "--config", path, "-o", "stratum+tcp://flag:1", "-u", "u")
	require.NoError(t, err)
	require.Len(t, pools, 1)
	assert.Equal(t, "stratum+tcp://flag:1", pools[0].URL)
}

func TestEnvironmentOverridesFile(t *testing.T) {
	t.Setenv("CLMINER_KERNEL_MS", "20")
	path := writeConfig(t, "kernel-ms: 30\npools:\n  - url: stratum+tcp://a:1\n    user: u\n")
	_, c, err := parseMine(t, "--config", path)
	require.NoError(t, err)
	assert.Equal(t, 20.0, c.Float64("kernel-ms"))
}

func TestBadConfigFiles(t *testing.T) {
	tests := []struct {
		text string
		want string
	}{
		{"kernelms: 30\n", `unknown setting "kernelms"`},
		{"pools:\n  - url: stratum+tcp://a:1\n    usr: u\n", "pools:"},
		{"pools:\n  - url: stratum+tcp://a:1\n", "needs a url and a user"},
		{"threads: many\npools:\n  - url: stratum+tcp://a:1\n    user: u\n", "threads"},
		{"device: [cpu, gpu]\n", "takes one value"},
		{"pools: [\n", "config"},
		{"drain-timeout: 5\n", "drain-timeout: 5: a duration needs a unit: write 5s"},
		{"version-rolling: maybe\npools:\n  - url: stratum+tcp://a:1\n    user: u\n", `version-rolling: "maybe": not a boolean`},
	}
	for _, tc := range tests {
		_, _, err := parseMine(t, "--config", writeConfig(t, tc.text))
		require.Error(t, err, tc.text)
		assert.Contains(t, err.Error(), tc.want, tc.text)
		assert.False(t, strings.Contains(err.Error(), "\n"), "one line: %q", err.Error())
	}
	_, _, err := parseMine(t, "--config", "/nonexistent/clminer.yaml")
	require.ErrorContains(t, err, "config file")
}

// A mistake inside the pools: list is reported on its own line of the file,
// by its key and value, never as a decoder's message about Go types.
func TestBadPoolEntriesNameTheirLine(t *testing.T) {
	const head = "device: cpu\nthreads: 1\npools:\n  - url: stratum+tcp://a:1\n    user: u\n" // pool 1 on lines 4-5
	tests := []struct {
		text string
		want string
	}{
		{head + "  - url: stratum+tcp://b:1\n    usr: u\n",
			`line 7: pools: pool 2: unknown key "usr" (did you mean "user"? each pool takes url, user, pass,`},
		{head + "  - url: stratum+tcp://b:1\n    user: u\n    version-rolling: maybe\n",
			`line 8: pools: pool 2: version-rolling: "maybe" is not true or false`},
		{head + "  - url: stratum+tcp://b:1\n    user: u\n    suggest-difficulty: high\n",
			`line 8: pools: pool 2: suggest-difficulty: "high" is not a number`},
		{head + "  - url: stratum+tcp://b:1\n    user: [u, v]\n",
			`line 7: pools: pool 2: user: a list is not a single value (text)`},
		{head + "  - stratum+tcp://b:1\n",
			`line 6: pools: pool 2: want keys (url: ..., user: ...), not "stratum+tcp://b:1"`},
		{"pools: stratum+tcp://a:1\n", "line 1: pools: want a list of pools"},
		{"pools:\n  - url: stratum+tcp://a:1\n    frobnicate: 1\n", `line 3: pools: pool 1: unknown key "frobnicate" (each pool takes url,`},
	}
	for _, tc := range tests {
		_, _, err := parseMine(t, "--config", writeConfig(t, tc.text))
		require.Error(t, err, tc.text)
		assert.Contains(t, err.Error(), tc.want, tc.text)
		assert.NotContains(t, err.Error(), "main.", "no Go type names")
		assert.NotContains(t, err.Error(), "unmarshal", "no decoder messages")
		assert.NotContains(t, err.Error(), "\n", "one line")
	}
	// YAML's anchors and merge keys work as before; the entry's own keys win.
	pools, _, err := parseMine(t, "--config", writeConfig(t, `
pools:
  - &first
    url: stratum+tcp://a:1
    user: wallet.rig1
    pass: hunter2
    version-rolling: false
  - <<: *first
    url: stratum+tcp://b:1
    pass: other
    version-rolling: true
`))
	require.NoError(t, err)
	require.Len(t, pools, 2)
	assert.Equal(t, "wallet.rig1", pools[1].User)
	assert.Equal(t, "other", pools[1].Pass)
	assert.True(t, pools[1].VersionRolling)
	assert.False(t, pools[0].VersionRolling)
	assert.Equal(t, "hunter2", pools[0].Pass)

	// Of several merged mappings the first wins; merges cannot multiply.
	pools, _, err = parseMine(t, "--config", writeConfig(t, `
pools:
  - &a
    url: stratum+tcp://a:1
    user: from-a
  - &b
    url: stratum+tcp://b:1
    user: from-b
    pass: pass-b
  - <<: [*a, *b]
`))
	require.NoError(t, err)
	require.Len(t, pools, 3)
	assert.Equal(t, "from-a", pools[2].User)
	assert.Equal(t, "pass-b", pools[2].Pass)
	_, _, err = parseMine(t, "--config", writeConfig(t, `
pools:
  - &a {url: "stratum+tcp://a:1", user: u}
  - &b {<<: [*a, *a, *a, *a, *a, *a, *a, *a]}
  - &c {<<: [*b, *b, *b, *b, *b, *b, *b, *b]}
  - {<<: [*c, *c, *c, *c, *c, *c, *c, *c]}
`))
	require.ErrorContains(t, err, "pools: pool 3: more than 16 merged mappings")

	// Empty values still mean "inherit the global setting".
	pools, _, err = parseMine(t, "--config", writeConfig(t, "pools:\n  - url: stratum+tcp://a:1\n    user: u\n    pass:\n"))
	require.NoError(t, err)
	require.Len(t, pools, 1)
	assert.Equal(t, "x", pools[0].Pass)
}

func TestUserOrPassWithoutURLRefused(t *testing.T) {
	path := writeConfig(t, "pools:\n  - url: stratum+tcp://a:1\n    user: u\n")
	for _, args := range [][]string{{"-p", "secret"}, {"-u", "w"}} {
		_, _, err := parseMine(t, append([]string{"--config", path}, args...)...)
		require.ErrorContains(t, err, "-u/-p given without -o", args)
		assert.NotContains(t, err.Error(), "secret")
	}
}
