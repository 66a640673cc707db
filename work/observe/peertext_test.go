package observe_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"clminer/internal/testkit"
	"clminer/stratum/pooltest"
)

// A pool's reject reason is any bytes: cut in the middle of a rune ("x"*79
// + "été" at 80 bytes, a CJK message over 80 bytes) or not UTF-8 at all
// (raw \xff in the result), it became a label value client_golang refuses,
// and every later scrape answered HTTP 500 until a restart. The reasons
// must reach /metrics and the status API as valid UTF-8, whole or clipped.
func TestPoolRejectTextKeepsMetricsServed(t *testing.T) {
	for name, bh := range map[string]pooltest.Behavior{
		"accent at the cut": {RejectAll: true, RejectReason: strings.Repeat("x", 79) + "été"},
		"CJK over 80 bytes": {RejectAll: true, RejectReason: strings.Repeat("拒绝", 30)},
		"raw bytes":         {RejectAll: true, RejectResult: "\"\xff\xfe bad \xff\""},
	} {
		t.Run(name, func(t *testing.T) {
			r := startRig(t, bh)
			testkit.EventuallyWithin(t, 30*time.Second, func() bool { return len(r.m.Snapshot().Shares.RejectReasons) > 0 }, "a reject counted by reason")
			code, body := r.get(t, "/metrics", token)
			require.Equal(t, http.StatusOK, code, body)
			reasons := regexp.MustCompile(`clminer_share_rejects_total\{reason="((?:[^"\\]|\\.)*)"\}`).FindAllStringSubmatch(body, -1)
			require.NotEmpty(t, reasons)
			for _, m := range reasons {
				assert.True(t, utf8.ValidString(m[1]), "%q", m[1])
				assert.LessOrEqual(t, len(m[1]), 80, m[1])
			}
			code, body = r.get(t, "/api/v1/status", token)
			require.Equal(t, http.StatusOK, code)
			assert.True(t, json.Valid([]byte(body)))
			for reason := range r.m.Snapshot().Shares.RejectReasons {
				assert.True(t, utf8.ValidString(reason), "%q", reason)
			}
		})
	}
}
