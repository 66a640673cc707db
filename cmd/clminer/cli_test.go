package main

import (
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"clminer/stratum"
)

const (
	fpA = "9f:86:d0:81:88:4c:7d:65:9a:2f:ea:a0:c5:5a:d0:15:a3:bf:4f:1b:2b:0b:82:2c:d1:5d:6c:15:b0:f0:0a:08"
	fpB = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"
)

// assertOneLine checks an error is one line that says what to fix, with no
// help text printed around it.
func assertOneLine(t *testing.T, r *result, err error, want string, msgAndArgs ...any) {
	t.Helper()
	require.Error(t, err, msgAndArgs...)
	assert.Contains(t, err.Error(), want, msgAndArgs...)
	assert.NotContains(t, err.Error(), "\n", msgAndArgs...)
	if r != nil {
		assert.NotContains(t, r.stdout+r.stderr, "USAGE", "no help text with a usage error")
	}
}

func TestCommasStayInOneValue(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		pools []stratum.PoolConfig // URL, User, Pass, Fingerprint compared
		err   string
	}{
		{
			name: "password with commas on the command line",
			args: []string{"-o", "stratum+tcp://a:1", "-u", "w1", "-p", "c=BTC,d=1024", "-o", "stratum+tcp://b:1", "-u", "w2"},
			pools: []stratum.PoolConfig{
				{URL: "stratum+tcp://a:1", User: "w1", Pass: "c=BTC,d=1024"},
				{URL: "stratum+tcp://b:1", User: "w2", Pass: "x"},
			},
		},
		{
			name:  "password with commas and spaces in CLMINER_PASS",
			env:   map[string]string{"CLMINER_URL": "stratum+tcp://a:1", "CLMINER_USER": "w1", "CLMINER_PASS": " d=1024, c=BTC"},
			pools: []stratum.PoolConfig{{URL: "stratum+tcp://a:1", User: "w1", Pass: " d=1024, c=BTC"}},
		},
		{
			name:  "worker name with a comma in CLMINER_USER",
			env:   map[string]string{"CLMINER_URL": "stratum+tcp://a:1", "CLMINER_USER": "wallet,rig1"},
			pools: []stratum.PoolConfig{{URL: "stratum+tcp://a:1", User: "wallet,rig1", Pass: "x"}},
		},
		{
			name:  "the -p flag wins over CLMINER_PASS, whole",
			args:  []string{"-o", "stratum+tcp://a:1", "-u", "w1", "-p", "a,b"},
			env:   map[string]string{"CLMINER_PASS": "c,d"},
			pools: []stratum.PoolConfig{{URL: "stratum+tcp://a:1", User: "w1", Pass: "a,b"}},
		},
		{
			name: "a comma in CLMINER_URL is refused, not split",
			env:  map[string]string{"CLMINER_URL": "stratum+tcp://a:1,stratum+tcp://b:1", "CLMINER_USER": "w"},
			err:  "holds a comma",
		},
		{
			name: "a comma in CLMINER_TLS_FINGERPRINT is one (bad) value",
			env:  map[string]string{"CLMINER_URL": "stratum+tls://a:1", "CLMINER_USER": "w", "CLMINER_TLS_FINGERPRINT": fpA + "," + fpB},
			err:  "want 64 hex chars",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			r, err := runApp(t, append([]string{"mine"}, tc.args...)...)
			if tc.err != "" {
				assertOneLine(t, r, err, tc.err)
				assert.NotContains(t, err.Error(), "c=BTC", "no password in errors")
				return
			}
			require.NoError(t, err)
			require.Len(t, r.setup.pools, len(tc.pools))
			for i, want := range tc.pools {
				got := r.setup.pools[i]
				assert.Equal(t, want.URL, got.URL)
				assert.Equal(t, want.User, got.User)
				assert.Equal(t, want.Pass, got.Pass)
				assert.Equal(t, want.Fingerprint, got.Fingerprint)
			}
		})
	}
}

func TestConfigPoolsInheritGlobals(t *testing.T) {
	const twoPools = `
pools:
  - url: stratum+tls://a.example:443
    user: w1
  - url: stratum+tls://b.example:443
    user: w2
    version-rolling: false
    extranonce-subscribe: false
    suggest-difficulty: 64
    tls-insecure: false
`
	tests := []struct {
		name string
		file string
		args []string
		env  map[string]string
		want [2]stratum.PoolConfig // the inherited fields only
	}{
		{
			name: "defaults",
			file: twoPools,
			want: [2]stratum.PoolConfig{{VersionRolling: true}, {SuggestDifficulty: 64}},
		},
		{
			name: "top-level settings of the file",
			file: "extranonce-subscribe: true\nsuggest-difficulty: 8\nallow-reconnect-any-domain: true\ntls-insecure: true\n" + twoPools,
			want: [2]stratum.PoolConfig{
				{VersionRolling: true, ExtranonceSubscribe: true, SuggestDifficulty: 8, AllowReconnectAnyDomain: true, TLSInsecure: true},
				{SuggestDifficulty: 64, AllowReconnectAnyDomain: true},
			},
		},
		{
			name: "command-line flags",
			file: twoPools,
			args: []string{"--extranonce-subscribe", "--suggest-difficulty", "2", "--allow-reconnect-any-domain", "--tls-insecure", "--version-rolling=false"},
			want: [2]stratum.PoolConfig{
				{ExtranonceSubscribe: true, SuggestDifficulty: 2, AllowReconnectAnyDomain: true, TLSInsecure: true},
				{SuggestDifficulty: 64, AllowReconnectAnyDomain: true},
			},
		},
		{
			name: "environment over the file's top level",
			file: "suggest-difficulty: 8\n" + twoPools,
			env:  map[string]string{"CLMINER_SUGGEST_DIFFICULTY": "16", "CLMINER_EXTRANONCE_SUBSCRIBE": "true"},
			want: [2]stratum.PoolConfig{
				{VersionRolling: true, ExtranonceSubscribe: true, SuggestDifficulty: 16},
				{SuggestDifficulty: 64},
			},
		},
		{
			name: "a global fingerprint goes to the TLS pool without its own",
			file: "pools:\n  - url: stratum+tls://a.example:443\n    user: w1\n    tls-fingerprint: " + fpA + "\n  - url: stratum+tls://b.example:443\n    user: w2\n",
			args: []string{"--tls-fingerprint", fpB},
			want: [2]stratum.PoolConfig{{VersionRolling: true, Fingerprint: fpA}, {VersionRolling: true, Fingerprint: fpB}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			pools, _, err := parseMine(t, append([]string{"--config", writeConfig(t, tc.file)}, tc.args...)...)
			require.NoError(t, err)
			require.Len(t, pools, 2)
			for i, want := range tc.want {
				got := pools[i]
				got.URL, got.User, got.Pass = "", "", ""
				assert.Equal(t, want, got, "pool %d", i+1)
			}
		})
	}
}

func TestStrayArgumentsRefused(t *testing.T) {
	pool := []string{"-o", "stratum+tcp://a:1", "-u", "w"}
	tests := []struct {
		args []string
		want string
	}{
		{append([]string{"mine", "--version-rolling", "false"}, pool...), `unexpected argument "false": a boolean flag takes its value with =, e.g. --version-rolling=false`},
		{append(append([]string{"mine"}, pool...), "--tls-insecure", "true"), `unexpected argument "true"`},
		{append(append([]string{"mine"}, pool...), "extra"), `unexpected argument "extra"`},
		{[]string{"devices", "now"}, `unexpected argument "now"`},
		{[]string{"bench", "cpu"}, `unexpected argument "cpu"`},
		{[]string{"selftest", "x"}, `unexpected argument "x"`},
		{[]string{"demo", "0"}, `unexpected argument "0"`},
	}
	for _, tc := range tests {
		r, err := runApp(t, tc.args...)
		assertOneLine(t, r, err, tc.want, tc.args)
		assert.Nil(t, r.setup, "nothing runs: %v", tc.args)
	}
	pools, _, err := parseMine(t, append([]string{"--version-rolling=false"}, pool...)...)
	require.NoError(t, err)
	assert.False(t, pools[0].VersionRolling)
}

func TestBadValuesExplained(t *testing.T) {
	pool := []string{"-o", "stratum+tcp://a:1", "-u", "w"}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		file string
		want string
	}{
		{name: "flag", args: []string{"--drain-timeout", "5"}, want: "--drain-timeout 5: a duration needs a unit: write 5s"},
		{name: "flag with =", args: []string{"--status-interval=0.5"}, want: "--status-interval 0.5: a duration needs a unit: write 0.5s"},
		{name: "environment", env: map[string]string{"CLMINER_DRAIN_TIMEOUT": "5"}, want: "CLMINER_DRAIN_TIMEOUT 5: a duration needs a unit: write 5s"},
		{name: "config file", file: "drain-timeout: 5\n", want: "drain-timeout: 5: a duration needs a unit: write 5s"},
		{name: "not a duration", args: []string{"--drain-timeout", "soon"}, want: `--drain-timeout "soon": not a duration`},
		{name: "not a number", args: []string{"--threads", "two"}, want: `--threads "two": not a whole number`},
		{name: "unknown flag", args: []string{"--bogus"}, want: "unknown flag --bogus (see `clminer mine --help`)"},
		{name: "missing value", args: []string{"--device"}, want: "flag --device needs a value"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			args := append([]string{"mine"}, pool...)
			if tc.file != "" {
				args = append(args, "--config", writeConfig(t, tc.file))
			}
			r, err := runApp(t, append(args, tc.args...)...)
			assertOneLine(t, r, err, tc.want)
			assert.Nil(t, r.setup)
		})
	}
}

func TestGlobalFlagsInEitherPosition(t *testing.T) {
	pool := []string{"-o", "stratum+tcp://a:1", "-u", "w"}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		file string
		want string // log-format
	}{
		{name: "default", args: append([]string{"mine"}, pool...), want: "text"},
		{name: "before the command", args: append([]string{"--log-format", "json", "mine"}, pool...), want: "json"},
		{name: "after the command", args: append(append([]string{"mine"}, pool...), "--log-format", "json"), want: "json"},
		{name: "after wins over before", args: append(append([]string{"--log-format", "json", "mine"}, pool...), "--log-format", "text"), want: "text"},
		{name: "environment", args: append([]string{"mine"}, pool...), env: map[string]string{"CLMINER_LOG_FORMAT": "json"}, want: "json"},
		{name: "flag before the command wins over the environment", args: append([]string{"--log-format", "text", "mine"}, pool...), env: map[string]string{"CLMINER_LOG_FORMAT": "json"}, want: "text"},
		{name: "flag after the command wins over the environment", args: append(append([]string{"mine"}, pool...), "--log-format", "text"), env: map[string]string{"CLMINER_LOG_FORMAT": "json"}, want: "text"},
		{name: "config file", args: append([]string{"mine"}, pool...), file: "log-format: json\n", want: "json"},
		{name: "flag before the command wins over the config file", args: append([]string{"--log-format", "text", "mine"}, pool...), file: "log-format: json\n", want: "text"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			args := tc.args
			if tc.file != "" {
				args = append(args, "--config", writeConfig(t, tc.file))
			}
			r, err := runApp(t, args...)
			require.NoError(t, err)
			assert.Equal(t, tc.want, globalString(r.c, "log-format"))
		})
	}
	// Every command takes them after its name.
	for _, cmd := range []string{"devices", "bench", "selftest", "demo"} {
		_, err := runApp(t, cmd, "--log-level", "bogus")
		assertOneLine(t, nil, err, `--log-level "bogus"`, cmd)
	}
}

func TestFingerprintPerTLSPool(t *testing.T) {
	tcp := []string{"-o", "stratum+tcp://primary:3333", "-u", "w"}
	tlsA := []string{"-o", "stratum+tls://a:443", "-u", "w"}
	tlsB := []string{"-o", "stratum+ssl://b:443", "-u", "w"}
	cat := func(parts ...[]string) []string {
		var out []string
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	fp := func(v string) []string { return []string{"--tls-fingerprint", v} }
	tests := []struct {
		name string
		args []string
		file string
		want []string // fingerprint per pool
		err  string
	}{
		{name: "plain primary, TLS backup: the pin goes to the TLS pool", args: cat(tcp, tlsA, fp(fpA)), want: []string{"", fpA}},
		{name: "two TLS pools in order", args: cat(tlsA, tcp, tlsB, fp(fpA), fp(fpB)), want: []string{fpA, "", fpB}},
		{name: "'' leaves one unpinned", args: cat(tlsA, tlsB, fp(""), fp(fpB)), want: []string{"", fpB}},
		{name: "no TLS pool", args: cat(tcp, fp(fpA)), err: "no pool is stratum+tls:// or stratum+ssl://"},
		{name: "too many", args: cat(tcp, tlsA, fp(fpA), fp(fpB)), err: "2 --tls-fingerprint values for 1 TLS pools (stratum+tls://a:443)"},
		{name: "too few", args: cat(tlsA, tlsB, fp(fpA)), err: "1 --tls-fingerprint values for 2 TLS pools"},
		{name: "bad format, before any device opens", args: cat(tlsA, fp("ab:cd")), err: "pool 1 (stratum+tls://a:443): certificate fingerprint \"ab:cd\": want 64 hex chars"},
		{name: "config: per pool", file: "pools:\n  - url: stratum+tcp://p:1\n    user: w\n  - url: stratum+tls://a:443\n    user: w\n    tls-fingerprint: " + fpB + "\n", want: []string{"", fpB}},
		{name: "config: on a plain pool", file: "pools:\n  - url: stratum+tcp://p:1\n    user: w\n    tls-fingerprint: " + fpB + "\n", err: "pool 1 (stratum+tcp://p:1): tls-fingerprint is set but the pool is not TLS"},
		{name: "config: tls-insecure on a plain pool", file: "pools:\n  - url: stratum+tcp://p:1\n    user: w\n    tls-insecure: true\n", err: "tls-insecure is set but the pool is not TLS"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.file != "" {
				args = append(args, "--config", writeConfig(t, tc.file))
			}
			pools, _, err := parseMine(t, args...)
			if tc.err != "" {
				assertOneLine(t, nil, err, tc.err)
				return
			}
			require.NoError(t, err)
			var got []string
			for _, p := range pools {
				got = append(got, p.Fingerprint)
			}
			assert.Equal(t, tc.want, got)
		})
	}
	// --tls-insecure applies to TLS pools only.
	pools, _, err := parseMine(t, cat(tcp, tlsA, []string{"--tls-insecure"})...)
	require.NoError(t, err)
	assert.False(t, pools[0].TLSInsecure)
	assert.True(t, pools[1].TLSInsecure)
}

func TestAPIExposureRules(t *testing.T) {
	pool := []string{"-o", "stratum+tcp://a:1", "-u", "w"}
	tests := []struct {
		args    []string
		env     map[string]string
		err     string
		exposed bool
	}{
		{args: []string{"--api-listen", "127.0.0.1:4048"}},
		{args: []string{"--api-listen", "localhost:4048"}},
		{args: []string{"--api-listen", "[::1]:4048"}},
		{args: []string{"--api-listen", "0.0.0.0:4048"}, err: "--api-listen 0.0.0.0:4048 reaches beyond loopback: set --api-token (or --api-allow-unauthenticated"},
		{args: []string{"--api-listen", ":4048"}, err: "reaches beyond loopback"},
		{args: []string{"--api-listen", "rig1.lan:4048"}, err: "reaches beyond loopback"},
		{args: []string{"--api-listen", "0.0.0.0:4048", "--api-token", "s3cret"}},
		{args: []string{"--api-listen", "0.0.0.0:4048"}, env: map[string]string{"CLMINER_API_TOKEN": "s3cret"}},
		{args: []string{"--api-listen", "0.0.0.0:4048", "--api-allow-unauthenticated"}, exposed: true},
		{args: []string{"--api-token", "s3cret"}, err: "--api-token is set but --api-listen is not"},
		{args: []string{"--api-allow-unauthenticated"}, err: "--api-allow-unauthenticated is set but --api-listen is not"},
		{args: []string{"--api-listen", "4048"}, err: `--api-listen "4048": want host:port`},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			r, err := runApp(t, append(append([]string{"mine"}, pool...), tc.args...)...)
			if tc.err != "" {
				assertOneLine(t, r, err, tc.err)
				assert.NotContains(t, err.Error(), "s3cret")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.exposed, r.setup.api.unauthExposed)
		})
	}
}

// A busy API port fails before any device is opened: the device named here
// does not exist, so reaching the devices would give another error.
func TestAPIPortCheckedBeforeDevices(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	app := newApp()
	var sink strings.Builder
	app.Writer, app.ErrWriter = &sink, &sink
	err = app.Run([]string{"clminer", "mine", "-o", "stratum+tcp://127.0.0.1:1", "-u", "w", "--device", "opencl:99:0", "--api-listen", ln.Addr().String()})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--api-listen "+ln.Addr().String())
	assert.NotContains(t, err.Error(), "opencl:99:0")
}
