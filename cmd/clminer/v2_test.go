package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"clminer/stratum/pooltest"
	"clminer/stratum/v2/v2peer"
)

// About one hash in 2^20 meets it: a few shares a second on the CPU device.
const peerTarget = "00000fffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"

// `clminer mine -o stratum2+tcp://127.0.0.1:PORT/KEY` against the
// independent Node.js pool, which re-checks every share it accepts: a
// standard channel, and an extended one when the pool requires it.
func TestMineStratumV2(t *testing.T) {
	for _, kind := range []string{"standard", "extended"} {
		t.Run(kind, func(t *testing.T) {
			args := []string{"--target", peerTarget}
			if kind == "extended" {
				args = append(args, "--extended")
			}
			p := v2peer.Start(t, args...)
			accepted := 0
			lines, err := runMine(t, []string{"-o", p.URL(), "-u", "acct.rig1", "--device", "cpu", "--status-interval", "0"},
				func(ev map[string]any, cancel func()) {
					if ev["event"] == "share.accepted" && ev["pool"] == p.URL() {
						if accepted++; accepted == 3 {
							cancel()
						}
					}
				})
			require.NoError(t, err)
			acc, rej := p.Counts()
			assert.GreaterOrEqual(t, acc, 3, "the peer accepted what the miner counted")
			assert.Zero(t, rej)
			log := strings.Join(lines, "\n")
			assert.Contains(t, log, `"event":"pool.channel_open"`)
			assert.Contains(t, log, `"kind":"`+kind+`"`)
			assert.Contains(t, log, p.Key, "logs name the pinned key")
		})
	}
}

// One list, two protocols: the miner fails over from a V2 pool to a V1
// pool when the V2 pool dies, and from V1 to V2 the other way round.
func TestFailoverAcrossProtocols(t *testing.T) {
	for _, v2first := range []bool{true, false} {
		name := map[bool]string{true: "v2 to v1", false: "v1 to v2"}[v2first]
		t.Run(name, func(t *testing.T) {
			p := v2peer.Start(t, "--target", peerTarget)
			pool := pooltest.Start(t, pooltest.Config{Difficulty: 0.0001})
			first, second := p.URL(), pool.URL()
			kill := func() { p.Stop() }
			if !v2first {
				first, second = second, first
				kill = func() { pool.Close() }
			}
			onFirst, onSecond, killed := 0, 0, false
			_, err := runMine(t, []string{"-o", first, "-u", "w", "-p", "x", "-o", second, "-u", "w", "-p", "x", "--device", "cpu", "--status-interval", "0"},
				func(ev map[string]any, cancel func()) {
					if ev["event"] != "share.accepted" {
						return
					}
					switch ev["pool"] {
					case first:
						if onFirst++; onFirst == 3 && !killed {
							killed = true
							go kill()
						}
					case second:
						if killed {
							if onSecond++; onSecond == 3 {
								cancel()
							}
						}
					}
				})
			require.NoError(t, err)
			assert.GreaterOrEqual(t, onFirst, 3)
			assert.GreaterOrEqual(t, onSecond, 3)
			_, rej := p.Counts()
			assert.Zero(t, rej)
			assert.Zero(t, pool.Stats().Rejected)
		})
	}
}

func TestV2Settings(t *testing.T) {
	const key = "9bXiEd8boQVhq7WddEcERUL5tyyJVFYdU8th3HfbNXK3Yw6GRXh"
	r, err := runApp(t, "mine", "-o", "stratum2+tcp://pool.example:34254/"+key, "-u", "w", "-o", "stratum+tcp://pool:3333", "-u", "w")
	require.NoError(t, err)
	require.Len(t, r.setup.pools, 2)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-o", "stratum2+tcp://pool.example:34254", "-u", "w"}, "no authority key"},
		{[]string{"-o", "stratum2+tcp://pool.example:34254/" + key[:40], "-u", "w"}, "authority key"},
		{[]string{"-o", "stratum2+tcp://pool.example/" + key, "-u", "w"}, "host and port"},
		{[]string{"-o", "stratum2+tcp://pool.example:34254/" + key, "-u", "w", "--tls-fingerprint", strings.Repeat("ab", 32)}, "no pool is stratum+tls"},
	} {
		_, err := runApp(t, append([]string{"mine"}, tc.args...)...)
		require.ErrorContains(t, err, tc.want, tc.args)
		require.NotContains(t, err.Error(), "\n", "one line")
	}
}
