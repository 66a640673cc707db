package gbt

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"clminer/work/miner"
	"clminer/work/observe"
	"clminer/work/source"
)

// A node's submitblock reason is text it chose: cut at a byte offset it
// became a label value that is not UTF-8, and every later scrape failed. It
// must come back, in the reply, the status and /metrics, as valid UTF-8 of
// at most 80 bytes.
func TestNodeRejectReasonKeepsMetricsServed(t *testing.T) {
	for _, reason := range []string{strings.Repeat("x", 79) + "été", strings.Repeat("拒绝", 30)} {
		f := &fakeNode{user: "u", pass: "secret-pass", chain: "regtest", template: func() any { return coreTemplate(1, true) }, submitRes: reason}
		s, sink := startSource(t, f, regtestP2WPKH, Options{})
		j := sink.waitJob(t)
		u, err := j.Entry.Next(j.Job, j.RollingMask)
		require.NoError(t, err)
		r := wait(t, send(s, j, u, blockNonces(u, 1)[0]))
		require.Equal(t, source.Rejected, r.Kind)
		assert.True(t, utf8.ValidString(r.Reason), "%q", r.Reason)
		assert.LessOrEqual(t, len(r.Reason), 80)

		up := s.Upstreams()
		for k := range up[0].Node.RejectReasons {
			assert.True(t, utf8.ValidString(k), "%q", k)
		}
		snap := miner.Snapshot{Pools: []miner.PoolStats{{PoolStats: source.NewPoolStats(up[0])}}}
		m := observe.NewMetrics("test", "abc", func() miner.Snapshot { return snap })
		_, err = m.Registry().Gather()
		require.NoError(t, err, "/metrics would answer 500")
	}
}
