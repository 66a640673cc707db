package observe_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/log"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"clminer/gpu/gputest"
	"clminer/internal/testkit"
	"clminer/stratum"
	"clminer/stratum/pooltest"
	"clminer/work/device"
	"clminer/work/miner"
	"clminer/work/observe"
	"clminer/work/retry"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const token = "s3cret"

type rig struct {
	pool  *pooltest.Server
	m     *miner.Miner
	srv   *observe.Server
	share string
	base  string
}

func startRig(t *testing.T, behavior pooltest.Behavior) *rig {
	t.Helper()
	pool := pooltest.Start(t, pooltest.Config{Behavior: behavior})

	r := &rig{pool: pool, share: filepath.Join(t.TempDir(), "shares.jsonl")}
	var m *miner.Miner
	metrics := observe.NewMetrics("test", "abc123", func() miner.Snapshot { return m.Snapshot() })
	sl, err := observe.OpenShareLog(r.share)
	require.NoError(t, err)
	client, err := stratum.NewClient([]stratum.PoolConfig{{URL: pool.URL(), User: "w", Pass: "x"}},
		stratum.Options{Retry: retry.Backoff{Initial: 50 * time.Millisecond, Max: 100 * time.Millisecond}, ReadTimeout: 2 * time.Second})
	require.NoError(t, err)
	m, err = miner.New(miner.Config{
		Source:  client,
		Devices: []device.Device{&gputest.Device{}}, Logger: log.New(io.Discard),
		Observer: observe.Observers{metrics, sl},
	})
	require.NoError(t, err)
	r.m = m
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := observe.NewServer(ln, token, observe.MinerHandlers("test", "abc123", metrics, m.Snapshot, func() any { return m.History() }))
	r.srv, r.base = srv, "http://"+srv.Addr()
	serveCtx, stopServing := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Run(serveCtx) }()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		stopServing()
		<-served
		_ = sl.Close()
	})
	return r
}

func (r *rig) get(t *testing.T, path, tok string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, r.base+path, nil)
	require.NoError(t, err)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func metricValue(t *testing.T, body, series string) float64 {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`)
	m := re.FindStringSubmatch(body)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(m[1], 64)
	require.NoError(t, err)
	return v
}

func TestMetricsMoveWithShares(t *testing.T) {
	r := startRig(t, pooltest.Behavior{})
	testkit.EventuallyWithin(t, 30*time.Second, func() bool { return r.pool.Stats().Accepted >= 2 }, "2 accepted shares")
	code, body := r.get(t, "/metrics", token)
	require.Equal(t, http.StatusOK, code)
	first := metricValue(t, body, `clminer_shares_total{device="test",result="accepted"}`)
	assert.GreaterOrEqual(t, first, 2.0)
	assert.Contains(t, body, `clminer_build_info{commit="abc123"`)
	assert.Contains(t, body, `clminer_pool_up{pool="0",url="`+r.pool.URL()+`"} 1`)
	assert.Contains(t, body, `clminer_pool_info{channel="",pool="0",protocol="stratum",url="`+r.pool.URL()+`"} 1`)
	assert.Contains(t, body, "clminer_submit_rtt_seconds_bucket")
	assert.Contains(t, body, "clminer_notify_to_work_seconds_bucket")
	assert.Positive(t, metricValue(t, body, `clminer_device_hashes_total{device="test"}`))

	testkit.EventuallyWithin(t, 30*time.Second, func() bool { return r.pool.Stats().Accepted >= int(first)+2 }, "more accepted shares")
	_, body = r.get(t, "/metrics", token)
	assert.Greater(t, metricValue(t, body, `clminer_shares_total{device="test",result="accepted"}`), first)
	assert.Zero(t, metricValue(t, body, `clminer_shares_total{device="test",result="rejected"}`))
}

func TestRejectsCountedByReason(t *testing.T) {
	r := startRig(t, pooltest.Behavior{RejectAll: true})
	testkit.EventuallyWithin(t, 30*time.Second, func() bool { return r.pool.Stats().Rejected >= 2 }, "rejected shares")
	testkit.EventuallyWithin(t, 30*time.Second, func() bool {
		_, body := r.get(t, "/metrics", token)
		return metricValue(t, body, `clminer_shares_total{device="test",result="rejected"}`) >= 2 &&
			strings.Contains(body, `clminer_share_rejects_total{reason=`)
	}, "rejects in metrics")
}

func TestStatusMatchesAccounting(t *testing.T) {
	r := startRig(t, pooltest.Behavior{})
	testkit.EventuallyWithin(t, 30*time.Second, func() bool { return r.m.Snapshot().Shares.Accepted >= 2 }, "accepted shares")
	code, body := r.get(t, "/api/v1/status", token)
	require.Equal(t, http.StatusOK, code)
	var st observe.Status
	require.NoError(t, json.Unmarshal([]byte(body), &st))
	snap := r.m.Snapshot()
	assert.Equal(t, "test", st.Version)
	assert.True(t, st.Healthy)
	assert.LessOrEqual(t, st.Shares.Accepted, snap.Shares.Accepted)
	assert.GreaterOrEqual(t, st.Shares.Accepted, uint64(2))
	require.Len(t, st.Devices, 1)
	assert.Equal(t, "test", st.Devices[0].ID)
	require.NotNil(t, st.Job)
	require.Len(t, st.Pools, 1)
	assert.Equal(t, "active", st.Pools[0].State)

	// The share log has one line per outcome.
	b, err := os.ReadFile(r.share)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	require.NotEmpty(t, lines)
	var ev miner.ShareEvent
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &ev))
	assert.Equal(t, miner.Accepted, ev.Outcome)
	assert.Len(t, ev.Nonce, 8)
}

func (r *rig) getAuth(t *testing.T, path, authorization string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, r.base+path, nil)
	require.NoError(t, err)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// The token guards /metrics and /api/v1/status; /healthz never asks for it
// (liveness probes carry no credentials), and the Bearer scheme is matched
// in any case.
func TestAPITokenRules(t *testing.T) {
	r := startRig(t, pooltest.Behavior{})
	testkit.EventuallyWithin(t, 30*time.Second, func() bool { return r.getAuth(t, "/healthz", "") == http.StatusOK }, "healthy")
	tests := []struct {
		path, auth string
		want       int
	}{
		{"/metrics", "", http.StatusUnauthorized},
		{"/metrics", "Bearer wrong", http.StatusUnauthorized},
		{"/metrics", "Basic " + token, http.StatusUnauthorized},
		{"/metrics", token, http.StatusUnauthorized},
		{"/metrics", "Bearer " + token, http.StatusOK},
		{"/metrics", "bearer " + token, http.StatusOK},
		{"/metrics", "BEARER " + token, http.StatusOK},
		{"/api/v1/status", "", http.StatusUnauthorized},
		{"/api/v1/status", "Bearer " + token + "x", http.StatusUnauthorized},
		{"/api/v1/status", "bearer " + token, http.StatusOK},
		// Health itself may flip on a loaded machine (a 5-second rate of
		// 0 is 503): what matters here is that no token is asked for.
		{"/healthz", "", anyButUnauthorized},
		{"/healthz", "Bearer wrong", anyButUnauthorized},
		{"/api/v1/history", "", http.StatusUnauthorized},
		{"/api/v1/history", "Bearer " + token, http.StatusOK},
		// The page holds no data: it asks for the token and sends it on
		// its requests for the status.
		{"/", "", http.StatusOK},
		{"/index.html", "", http.StatusNotFound},
		{"/nothing", "Bearer " + token, http.StatusNotFound},
	}
	for _, tc := range tests {
		got := r.getAuth(t, tc.path, tc.auth)
		if tc.want == anyButUnauthorized {
			assert.Contains(t, []int{http.StatusOK, http.StatusServiceUnavailable}, got, "%s with %q", tc.path, tc.auth)
			continue
		}
		assert.Equal(t, tc.want, got, "%s with %q", tc.path, tc.auth)
	}
}

// anyButUnauthorized in a want column: served without credentials,
// whatever the answer.
const anyButUnauthorized = -1

func TestHealthzTurns503WhenPoolDies(t *testing.T) {
	r := startRig(t, pooltest.Behavior{})
	testkit.EventuallyWithin(t, 30*time.Second, func() bool { code, _ := r.get(t, "/healthz", token); return code == http.StatusOK }, "healthy")
	r.pool.Close()
	testkit.EventuallyWithin(t, 30*time.Second, func() bool { code, _ := r.get(t, "/healthz", token); return code == http.StatusServiceUnavailable }, "unhealthy")
}

// The status page is one self-contained file: nothing loaded from
// elsewhere (no src= or href= but data: and the page's own paths), its one
// inline script allowed by hash and nothing else, and no token or other
// data in it; /api/v1/history is the hour of rates per device.
func TestStatusPage(t *testing.T) {
	r := startRig(t, pooltest.Behavior{})
	resp, err := http.Get(r.base + "/")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	csp := resp.Header.Get("Content-Security-Policy")
	assert.Contains(t, csp, "default-src 'none'")
	assert.Contains(t, csp, "connect-src 'self'")
	assert.NotContains(t, csp, "unsafe-eval")
	assert.NotContains(t, csp, "script-src 'unsafe-inline'")
	html := string(body)
	for _, m := range regexp.MustCompile(`(?i)(?:src|href)\s*=\s*"([^"]*)"`).FindAllStringSubmatch(html, -1) {
		assert.True(t, strings.HasPrefix(m[1], "data:"), "the page loads %q", m[1])
	}
	assert.NotRegexp(t, `(?i)https?://`, html, "nothing from elsewhere")
	assert.Equal(t, 1, strings.Count(html, "<script>"))
	assert.NotContains(t, html, token)
	assert.Contains(t, html, `"Authorization": "Bearer " + token`, "the token goes in a header")
	assert.NotContains(t, html, "?token=")

	testkit.EventuallyWithin(t, 30*time.Second, func() bool {
		code, b := r.get(t, "/api/v1/history", token)
		return code == http.StatusOK && strings.Contains(b, `"hashrate":[`) && !strings.Contains(b, `"hashrate":[]`)
	}, "a sample an hour can hold")
	_, b := r.get(t, "/api/v1/history", token)
	var h miner.History
	require.NoError(t, json.Unmarshal([]byte(b), &h))
	assert.Equal(t, 10.0, h.StepS)
	require.Len(t, h.Devices, 1)
	assert.NotEmpty(t, h.Devices[0].Hashrate)
	assert.LessOrEqual(t, len(h.Devices[0].Hashrate), 360)
}
