package proxy

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"clminer/work/gbt"
	"clminer/work/retry"
)

// regtestAddr is a regtest P2WPKH address (BIP 173's test vector's
// program on regtest).
const regtestAddr = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"

// fakeNode answers the RPCs the node source uses with one template at a
// hard target (bits 1d00ffff: no test share is a block), so the proxy's
// own difficulty and share path can be tested and measured without
// consensus; blocks go to btcd in node_test.go.
type fakeNode struct {
	mu        sync.Mutex
	height    int64
	submitted int
}

func (f *fakeNode) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ID     any    `json:"id"`
		Method string `json:"method"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var result any
	switch req.Method {
	case "getblockchaininfo":
		result = map[string]any{"chain": "regtest", "blocks": f.height, "initialblockdownload": false}
	case "getblocktemplate":
		result = map[string]any{
			"version": 0x20000000, "previousblockhash": strings.Repeat("00", 31) + "01", "transactions": []any{},
			"coinbasevalue": 5000000000, "bits": "1d00ffff", "height": f.height + 1,
			"curtime": time.Now().Unix(), "mintime": time.Now().Unix() - 600, "rules": []string{"segwit"},
		}
	case "getbestblockhash":
		result = strings.Repeat("00", 31) + "01"
	case "submitblock":
		f.submitted++
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"result": result, "error": nil, "id": req.ID})
}

// startFakeNode serves a fakeNode and returns a node source on it;
// refresh is how often the source asks for a template again (each one a
// new job for the miners).
func startFakeNode(t testing.TB, refresh time.Duration) *gbt.Source {
	t.Helper()
	f := &fakeNode{height: 100}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	src, err := gbt.New(gbt.Config{Endpoint: gbt.Endpoint{URL: srv.URL, User: "u", Pass: "p"}, Address: regtestAddr, VersionRolling: true},
		gbt.Options{Extranonce2Size: 8, RefreshInterval: refresh, PollInterval: time.Second, Retry: retry.Backoff{Max: 100 * time.Millisecond}})
	require.NoError(t, err)
	return src
}
