package channel

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"clminer/internal/testkit"
	"clminer/stratum/v2/codec"
	"clminer/stratum/v2/v2test"
	"clminer/work/miner"
	"clminer/work/observe"
	"clminer/work/source"
)

// A V2 error code is up to 255 bytes of the pool's choosing (STR0_255, not
// checked as UTF-8): it becomes the reject reason, so a metric label, and
// must come out valid UTF-8 of at most 80 bytes or /metrics fails.
func TestErrorCodeKeepsMetricsServed(t *testing.T) {
	p := v2test.Start(t, v2test.Config{BatchSize: 1000}) // acknowledges nothing itself
	s, sk := run(t, Config{URL: p.URL(), User: "u"}, Options{})
	c := p.Next(wait)
	j := sk.job(t)
	for _, code := range []string{strings.Repeat("x", 79) + "été", strings.Repeat("拒绝", 30), "bad \xff\xfe code"} {
		n := len(p.Shares())
		r := send(s, share(t, j))
		testkit.Eventually(t, func() bool { return len(p.Shares()) > n }, "the pool's record of the share")
		seq := p.Shares()[n].Msg.SequenceNumber
		require.NoError(t, c.Send(&codec.SubmitSharesError{ChannelID: 7, SequenceNumber: seq, ErrorCode: code}))
		got := reply(t, r)
		require.Equal(t, source.Rejected, got.Kind)
		require.True(t, utf8.ValidString(got.Reason), "%q", got.Reason)
		require.LessOrEqual(t, len(got.Reason), 80)

		var ms miner.Snapshot
		ms.Shares.RejectReasons = map[string]uint64{got.Reason: 1}
		ms.Pools = []miner.PoolStats{{PoolStats: source.NewPoolStats(s.Upstreams()[0])}}
		_, err := observe.NewMetrics("test", "abc", func() miner.Snapshot { return ms }).Registry().Gather()
		require.NoError(t, err, "/metrics would answer 500")
	}
}
