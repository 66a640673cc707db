package observe_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"clminer/work/miner"
	"clminer/work/observe"
)

// A command makes its metrics before the miner, which takes them as its
// observer: the snapshot's series appear once MinerHandlers hands them the
// miner's snapshot, from then on.
func TestMetricsReadTheSnapshotMinerHandlersGives(t *testing.T) {
	m := observe.NewMetrics("v", "c", nil)
	uptime := func() (float64, bool) {
		mfs, err := m.Registry().Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			if mf.GetName() == "clminer_uptime_seconds" {
				return mf.GetMetric()[0].GetGauge().GetValue(), true
			}
		}
		return 0, false
	}
	_, ok := uptime()
	assert.False(t, ok, "no snapshot yet: no snapshot series")
	h := observe.MinerHandlers("v", "c", m, func() miner.Snapshot { return miner.Snapshot{UptimeS: 42} }, nil)
	got, ok := uptime()
	require.True(t, ok)
	assert.Equal(t, 42.0, got)
	assert.Nil(t, h.History, "no history given: /api/v1/history is not served")
}
