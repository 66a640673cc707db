package dispatch

import (
	"context"
	"encoding/hex"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"clminer/work"
)

func testJob(t *testing.T, id string, en2Size int, prevhash byte, clean bool) *work.Job {
	t.Helper()
	j, err := work.NewJob(work.JobParams{
		JobID:    id,
		PrevHash: fmt.Sprintf("%02x", prevhash) + "00000000000000000000000000000000000000000000000000000000000000",
		Coinb1:   "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff0c",
		Coinb2:   "ffffffff0100f2052a01000000016a00000000",
		Version:  "20000000", NBits: "1d00ffff", NTime: "5b906723", CleanJobs: clean,
		Extranonce1: "01020304", Extranonce2Size: en2Size, Difficulty: 1,
	})
	require.NoError(t, err)
	return j
}

func key(a *Assignment) string {
	return hex.EncodeToString(a.Unit.Extranonce2) + fmt.Sprintf("/%08x", a.Unit.Version)
}

func TestNextHandsOutDisjointWork(t *testing.T) {
	for _, mask := range []uint32{0, 0x1fffe000} {
		d := New()
		require.NoError(t, d.SetJob(&Job{Work: testJob(t, "a", 4, 1, true), RollingMask: mask}))
		var mu sync.Mutex
		seen := map[string]bool{}
		var wg sync.WaitGroup
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 200; i++ {
					a, err := d.Next(context.Background())
					if !assert.NoError(t, err) {
						return
					}
					mu.Lock()
					assert.False(t, seen[key(a)], "unit %s handed out twice", key(a))
					seen[key(a)] = true
					mu.Unlock()
					assert.Equal(t, a.Unit.Version&^mask, uint32(0x20000000), "only mask bits roll")
				}
			}()
		}
		wg.Wait()
		assert.Len(t, seen, 800)
	}
}

func TestVersionsRollBeforeExtranonce2Advances(t *testing.T) {
	d := New()
	require.NoError(t, d.SetJob(&Job{Work: testJob(t, "a", 4, 1, true), RollingMask: 0x18000000}))
	var en2s, versions []string
	for i := 0; i < 5; i++ {
		a, err := d.Next(context.Background())
		require.NoError(t, err)
		en2s = append(en2s, hex.EncodeToString(a.Unit.Extranonce2))
		versions = append(versions, fmt.Sprintf("%08x", a.Unit.Version))
	}
	assert.Equal(t, []string{"00000000", "00000000", "00000000", "00000000", "01000000"}, en2s)
	assert.Equal(t, []string{"20000000", "28000000", "30000000", "38000000", "20000000"}, versions)
}

func TestCleanJobsAndPrevhashStartNewGeneration(t *testing.T) {
	d := New()
	require.NoError(t, d.SetJob(&Job{Work: testJob(t, "a", 4, 1, true)}))
	a, err := d.Next(context.Background())
	require.NoError(t, err)
	changed := d.Changed()

	require.NoError(t, d.SetJob(&Job{Work: testJob(t, "b", 4, 1, false)}))
	assert.False(t, d.Stale(a), "clean_jobs=false keeps earlier results valid")
	assert.NotEqual(t, a.Seq, d.Seq(), "but devices move to the new job")
	select {
	case <-changed:
	default:
		t.Fatal("Changed not closed by a new job")
	}

	require.NoError(t, d.SetJob(&Job{Work: testJob(t, "c", 4, 2, false)}))
	assert.True(t, d.Stale(a), "a new prevhash is a new block even without clean_jobs")

	b, err := d.Next(context.Background())
	require.NoError(t, err)
	require.NoError(t, d.SetJob(&Job{Work: testJob(t, "d", 4, 2, true)}))
	assert.True(t, d.Stale(b))
	c, err := d.Next(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "d", c.Job.Work.ID)
	assert.Equal(t, []byte{0, 0, 0, 0}, c.Unit.Extranonce2, "a new job restarts extranonce2")
}

func TestExhaustionWaitsForNextJob(t *testing.T) {
	d := New()
	require.NoError(t, d.SetJob(&Job{Work: testJob(t, "a", 1, 1, true)}))
	for i := 0; i < 256; i++ {
		_, err := d.Next(context.Background())
		require.NoError(t, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := d.Next(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded, "an exhausted job hands out nothing")

	got := make(chan *Assignment)
	go func() {
		a, _ := d.Next(context.Background())
		got <- a
	}()
	time.Sleep(20 * time.Millisecond)
	require.NoError(t, d.SetJob(&Job{Work: testJob(t, "b", 1, 1, false)}))
	select {
	case a := <-got:
		assert.Equal(t, "b", a.Job.Work.ID)
	case <-time.After(2 * time.Second):
		t.Fatal("Next did not wake up on a new job")
	}
}

func TestNextWaitsForFirstJob(t *testing.T) {
	d := New()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := d.Next(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Nil(t, d.Current())
}
