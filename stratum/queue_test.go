package stratum

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"clminer/internal/testkit"
	"clminer/stratum/pooltest"
	"clminer/work/source"
)

// A sink slower than the pool must not let the event queue grow: jobs not
// yet delivered are replaced by the next one (the consumer only mines the
// latest), and other events are capped.
func TestEventQueueIsBoundedForASlowSink(t *testing.T) {
	c, err := NewClient([]PoolConfig{{URL: "stratum+tcp://127.0.0.1:1", User: "w"}}, Options{})
	require.NoError(t, err)
	c.sink = newRecorder()
	for i := 0; i < 10000; i++ {
		c.emitJob(&source.Job{})
	}
	assert.Len(t, c.evQ, 1, "undelivered jobs coalesce")
	for i := 0; i < 5000; i++ {
		c.event(source.Event{Kind: source.EventConnecting})
		c.emitJob(&source.Job{})
	}
	assert.LessOrEqual(t, len(c.evQ), maxQueued+1)
	assert.Positive(t, c.evDropped)
	assert.Equal(t, evJob, c.evQ[len(c.evQ)-1].kind, "the latest job is kept")
}

// A clean notify the miner cannot use leaves everything it holds stale: the
// consumer is told there is no work rather than left hashing the old block.
func TestUnusableNewBlockJobStopsWork(t *testing.T) {
	srv := pooltest.Start(t, pooltest.Config{Difficulty: easy})
	r := newRecorder()
	runClient(t, []PoolConfig{pool(srv)}, testOptions(r), r)
	j := r.nextJob(t, nil)
	p := srv.CurrentJob()
	bad := fmt.Sprintf(`{"id":null,"method":"mining.notify","params":["nb","%s","zz","%s",[],"%s","%s","%s",true]}`,
		"1"+p.PrevHash[1:], p.Coinb2, p.Version, p.NBits, p.NTime)
	srv.SendRaw(bad)
	testkit.Eventually(t, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.noWork > 0
	}, "NoWork after an unusable new-block job")
	assert.False(t, j.Entry.Live(), "the old block's job is stale")
	srv.PushJob(true)
	j2 := r.nextJob(t, nil)
	assert.Equal(t, j.Session, j2.Session, "the session goes on")
	select {
	case extra := <-r.jobs:
		t.Fatalf("unexpected job %q", extra.ID)
	case <-time.After(10 * time.Millisecond):
	}
}
