package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const secret = "S3CRET"

// Every URL a user gives may carry a password (a pool's, a node's, a SOCKS5
// proxy's, a webhook's), and it must not be printed even where the URL is
// refused: "unknown scheme", "has no scheme: write ..." and a malformed
// stratum2+tcp:// URL used to echo it. Each shape goes in by flag, by
// CLMINER_* variable and by config file, in text and JSON log format, to
// `mine` and (for pool URLs) `proxy`; the secret may be in no error and no
// output.
func TestURLSecretsNeverShown(t *testing.T) {
	const key = "9bXiEd8boQVhq7WddEcERUL5tyyJVFYdU8th3HfbNXK3Yw6GRXh"
	pools := []string{
		"stratum+tcpx://u:S3CRET@host:3333",
		"u:S3CRET@host:3333",
		"S3CRET@host:3333",
		"stratum+tcp://u:S3CRET@host:3333",
		"stratum+tcp://u:S3CRET@host",
		"stratum+tcp://u:S3CRET@host:3333/path",
		"stratum+tcp://u:S3CRET@host:99999",
		"stratum+tcp://u:S3CRET@host:x",
		"stratum+tcp://u:S3CRET@[::1",
		"stratum+tcp://u:S3CRET@host:3333,stratum+tcp://backup:3333",
		"stratum+tls://u:pa/S3CRET@host:443",
		"stratum2+tcp://u:S3CRET@host:x/" + key,
		"stratum2+tcp://u:S3CRET@host:3336",
		"stratum2+tcp://u:S3CRET@host:3336/" + key,
		"stratum2+tcp://u:S3CRET@host:3336/notakey",
		"http://u:S3CRET@127.0.0.1:8332",
		"http://u:S3CRET@127.0.0.1:x",
		"https://u:S3CRET@[::1",
		"http://u:S3CRET@",
		"ftp://u:S3CRET@host:21",
	}
	proxies := []string{
		"socks5h://u:S3CRET@proxy",
		"socks5h://u:S3CRET@proxy:1080/x",
		"http://u:S3CRET@proxy:3128",
		"socks5h://u:S3CRET@proxy:x",
		"socks5h://u:S3CRET@[::1",
		"u:S3CRET@proxy:1080",
	}
	hooks := []string{
		"ftp://u:S3CRET@hooks.example/x",
		"https://u:S3CRET@",
		"https://u:S3CRET@hooks.example:x/",
		"u:S3CRET@hooks.example",
	}
	const okPool = "stratum+tcp://pool:3333"
	type tc struct {
		name string
		cmd  string
		args []string
		env  map[string]string
		file string
	}
	var cases []tc
	for _, u := range pools {
		user := []string{"-u", "w", "-p", "x", "--coinbase-addr", "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"}
		cases = append(cases,
			tc{name: "flag " + u, cmd: "mine", args: append([]string{"-o", u}, user...)},
			tc{name: "env " + u, cmd: "mine", env: map[string]string{"CLMINER_URL": u, "CLMINER_USER": "w"}},
			tc{name: "file " + u, cmd: "mine", file: "pools:\n  - url: '" + u + "'\n    user: w\n"},
			tc{name: "proxy flag " + u, cmd: "proxy", args: []string{"-o", u, "-u", "w"}},
			tc{name: "proxy env " + u, cmd: "proxy", env: map[string]string{"CLMINER_URL": u, "CLMINER_USER": "w"}},
		)
	}
	for _, p := range proxies {
		for _, pool := range []string{okPool, "stratum2+tcp://v2:3336/" + key, "http://127.0.0.1:8332"} {
			user := []string{"-u", "w", "--coinbase-addr", "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"}
			cases = append(cases,
				tc{name: "socks flag " + p + " " + pool, cmd: "mine", args: append([]string{"-o", pool, "--proxy", p}, user...)},
				tc{name: "socks env " + p + " " + pool, cmd: "mine", args: append([]string{"-o", pool}, user...), env: map[string]string{"CLMINER_PROXY": p}},
				tc{name: "socks file " + p + " " + pool, cmd: "mine", file: "coinbase-addr: bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080\npools:\n  - url: " + pool + "\n    user: w\n    proxy: '" + p + "'\n"},
				tc{name: "socks file top " + p + " " + pool, cmd: "mine", file: "coinbase-addr: bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080\nproxy: '" + p + "'\npools:\n  - url: " + pool + "\n    user: w\n"},
			)
		}
	}
	for _, h := range hooks {
		cases = append(cases,
			tc{name: "hook flag " + h, cmd: "mine", args: []string{"-o", okPool, "-u", "w", "--notify-url", h}},
			tc{name: "hook env " + h, cmd: "mine", args: []string{"-o", okPool, "-u", "w"}, env: map[string]string{"CLMINER_NOTIFY_URL": h}},
			tc{name: "hook file " + h, cmd: "mine", file: "notify-url: '" + h + "'\npools:\n  - url: " + okPool + "\n    user: w\n"},
		)
	}
	for _, c := range cases {
		for _, format := range []string{"text", "json"} {
			t.Run(format+" "+c.name, func(t *testing.T) {
				for k, v := range c.env {
					t.Setenv(k, v)
				}
				args := append([]string{"--log-format", format, c.cmd}, c.args...)
				if c.file != "" {
					args = append(args, "--config", writeConfig(t, c.file))
				}
				r, err := runApp(t, args...)
				require.Error(t, err, "every case is refused")
				for what, out := range map[string]string{"error": err.Error(), "stdout": r.stdout, "stderr": r.stderr} {
					assert.NotContains(t, out, secret, "%s: %s", what, out)
				}
				assert.False(t, strings.Contains(err.Error(), "\n"), "one line: %s", err)
			})
		}
	}
}
