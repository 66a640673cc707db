package main

import (
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"clminer/stratum/pooltest"
)

// --worker-per-device with a config file naming the CPU's worker: its
// shares reach the pool as USER.<name> on the one connection, and the
// status API and metrics show the worker.
func TestWorkerPerDeviceEndToEnd(t *testing.T) {
	pool := pooltest.Start(t, pooltest.Config{Difficulty: 0.0001})
	cfg := writeConfig(t, "worker-per-device: true\nworkers:\n  cpu: rig1-cpu\n")
	var once sync.Once
	var status []byte
	var metrics string
	var api string
	_, err := runMine(t, []string{"-c", cfg, "-o", pool.URL(), "-u", "wallet", "--device", "cpu", "--threads", "1",
		"--status-interval", "0", "--drain-timeout", "1s", "--api-listen", "127.0.0.1:0"}, func(ev map[string]any, stop func()) {
		if ev["event"] == "api.listening" {
			api, _ = ev["addr"].(string)
		}
		named := false
		for _, sh := range pool.Shares() {
			named = named || sh.Worker == "wallet.rig1-cpu"
		}
		// The first shares may precede the pool's answer to the worker's
		// authorize; they go under the pool user.
		if ev["event"] == "share.accepted" && named {
			once.Do(func() {
				resp, err := http.Get("http://" + api + "/api/v1/status")
				if err == nil {
					var b map[string]json.RawMessage
					_ = json.NewDecoder(resp.Body).Decode(&b)
					resp.Body.Close()
					status = b["pools"]
				}
				if resp, err := http.Get("http://" + api + "/metrics"); err == nil {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					metrics = string(b)
				}
				stop()
			})
		}
	})
	require.NoError(t, err)
	for _, sh := range pool.Shares() {
		assert.Contains(t, []string{"wallet.rig1-cpu", "wallet"}, sh.Worker)
	}
	var pools []struct {
		Workers []struct {
			Name     string `json:"name"`
			State    string `json:"state"`
			Accepted uint64 `json:"accepted"`
		} `json:"workers"`
	}
	require.NoError(t, json.Unmarshal(status, &pools), string(status))
	require.Len(t, pools, 1)
	require.Len(t, pools[0].Workers, 1)
	assert.Equal(t, "wallet.rig1-cpu", pools[0].Workers[0].Name)
	assert.Equal(t, "authorized", pools[0].Workers[0].State)
	assert.Contains(t, metrics, `clminer_worker_authorized{worker="wallet.rig1-cpu"} 1`)
}

func TestWorkersNeedWorkerPerDevice(t *testing.T) {
	cfg := writeConfig(t, "workers:\n  cpu: rig1-cpu\n")
	r, err := runApp(t, "mine", "-c", cfg, "-o", "stratum+tcp://127.0.0.1:1", "-u", "wallet")
	assertOneLine(t, r, err, "--worker-per-device is off")
	cfg = writeConfig(t, "workers:\n  cpu: [a]\n")
	r, err = runApp(t, "mine", "-c", cfg, "-o", "stratum+tcp://127.0.0.1:1", "-u", "wallet")
	assertOneLine(t, r, err, "workers: want a mapping")
}
