package stratum

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"clminer/internal/testkit"
	"clminer/stratum/pooltest"
	"clminer/work"
	"clminer/work/source"
)

func sendDeviceShare(t *testing.T, c *Client, j *source.Job, b byte, device string) source.Reply {
	t.Helper()
	sub := mine(t, j, en2(j, b), j.Version)
	u, err := j.NewUnit(en2(j, b), j.Version, j.NTime)
	require.NoError(t, err)
	n, err := parseNonce(sub.Nonce)
	require.NoError(t, err)
	ch := make(chan source.Reply, 1)
	c.Send(source.Share{Job: j, Unit: u, Nonce: n, Device: device}, func(r source.Reply) { ch <- r })
	return <-ch
}

// Each device's shares go under its own worker on the one connection; a
// worker the pool refuses is reported and its device's shares go under
// the pool user; a worker added while connected is authorized at once.
func TestWorkerPerDevice(t *testing.T) {
	srv := pooltest.Start(t, pooltest.Config{Difficulty: 0.00001, Behavior: pooltest.Behavior{RefuseWorkers: []string{"worker.1.bad"}}})
	r := newRecorder()
	opts := testOptions(r)
	opts.DeviceWorkers = map[string]string{"gpu0": "gpu0", "cpu": "bad"}
	c := runClient(t, []PoolConfig{pool(srv)}, opts, r)
	j := r.nextJob(t, nil)
	testkit.Eventually(t, func() bool {
		for _, w := range c.Workers() {
			if w.State == WorkerPending {
				return false
			}
		}
		return true
	}, "both sub-workers answered")
	assert.Equal(t, source.Accepted, sendDeviceShare(t, c, j, 1, "gpu0").Kind)
	assert.Equal(t, source.Accepted, sendDeviceShare(t, c, j, 2, "cpu").Kind)
	assert.Equal(t, source.Accepted, sendDeviceShare(t, c, j, 3, "").Kind)
	var workers []string
	for _, s := range srv.Shares() {
		workers = append(workers, s.Worker)
	}
	assert.Equal(t, []string{"worker.1.gpu0", "worker.1", "worker.1"}, workers, "the refused worker's share went under the pool user")
	ws := c.Workers()
	require.Len(t, ws, 2)
	require.Equal(t, []string{"bad", "gpu0"}, []string{ws[0].Key, ws[1].Key}, "in device order (cpu, gpu0)")
	assert.Equal(t, source.WorkerStatus{Key: "gpu0", Name: "worker.1.gpu0", State: WorkerAuthorized, Accepted: 1}, ws[1])
	assert.Equal(t, WorkerRefused, ws[0].State)
	assert.Contains(t, ws[0].Reason, "Unauthorized worker")
	assert.Zero(t, ws[0].Accepted, "counted under the pool user, not the refused worker")
	assert.Equal(t, 1, srv.Stats().Connections, "one connection for every worker")

	require.NoError(t, c.AddWorker("late"))
	testkit.Eventually(t, func() bool { return c.Workers()[2].State == WorkerAuthorized }, "the late worker authorized on the live session")
	assert.Error(t, c.AddWorker(""))
}

func parseNonce(s string) (uint32, error) { return work.ParseUint32Hex("nonce", s) }
