package observe_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"clminer/work/miner"
	"clminer/work/observe"
	"clminer/work/source"
)

// FuzzMetricsLabels puts arbitrary text wherever a peer's text can reach a
// label (share and block reject reasons, the sick reason, the node's chain,
// a worker's name, the V2 channel) and requires the scrape to work: every
// series gathered, HTTP 200. Two reasons that differ only in bytes that are
// not UTF-8 must not become two series with one label.
func FuzzMetricsLabels(f *testing.F) {
	f.Add("x\xff", "x\xfe", "main", "rig1", "Job not found")
	f.Add("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxété", "拒绝拒绝拒绝拒绝拒绝拒绝拒绝拒绝拒绝拒绝拒绝拒绝拒绝拒绝拒绝拒绝拒绝拒绝拒绝拒绝拒绝拒绝拒绝拒绝拒绝拒绝拒绝拒绝拒绝拒绝", "regtest", "a.b", "high-hash")
	f.Add("", "\x00", "\xc3", "\xe6\x8b", "inconclusive")
	f.Fuzz(func(t *testing.T, r1, r2, chain, worker, block string) {
		snap := miner.Snapshot{
			Devices: []miner.DeviceStats{{ID: "cpu"}},
			Shares:  miner.Counts{Rejected: 2, RejectReasons: map[string]uint64{r1: 1, r2: 1}},
			Pools: []miner.PoolStats{{PoolStats: source.PoolStats{
				Index: 0, URL: "stratum+tcp://pool:3333", State: source.StateSick.String(), SickReason: r1, Protocol: "stratum2", Channel: r2,
				Node:    &source.NodeStats{Chain: chain, RejectReasons: map[string]uint64{block: 1, r1: 2, r2: 3}},
				Workers: []source.WorkerStatus{{Key: "a", Name: worker, State: "authorized"}, {Key: "b", Name: worker + "\xff", State: "refused"}},
			}}},
		}
		m := observe.NewMetrics("test", "abc", func() miner.Snapshot { return snap })
		if _, err := m.Registry().Gather(); err != nil {
			t.Fatalf("gather: %v", err)
		}
		rec := httptest.NewRecorder()
		promhttp.HandlerFor(m.Registry(), promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("/metrics answered %d: %s", rec.Code, rec.Body.String())
		}
	})
}
