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
	"clminer/work/ledger"
	"clminer/work/source"
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

// job wraps a work.Job with its entry in led, as a source would.
func job(t *testing.T, led *ledger.Ledger, wj *work.Job, mask uint32) *source.Job {
	t.Helper()
	e, err := led.Job("01020304", wj.ID, wj.Extranonce2Size, wj.Difficulty)
	require.NoError(t, err)
	return &source.Job{Job: wj, Entry: e, RollingMask: mask}
}

func key(a *Assignment) string {
	return hex.EncodeToString(a.Unit.Extranonce2) + fmt.Sprintf("/%08x", a.Unit.Version)
}

func TestNextHandsOutDisjointWork(t *testing.T) {
	for _, mask := range []uint32{0, 0x1fffe000} {
		d := New()
		require.NoError(t, d.SetJob(job(t, ledger.New(0), testJob(t, "a", 4, 1, true), mask)))
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
	require.NoError(t, d.SetJob(job(t, ledger.New(0), testJob(t, "a", 4, 1, true), 0x18000000)))
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

// A re-issue of the same job (vardiff, a new mask) continues where the
// ledger stopped: on today's main before the ledger, the dispatcher restarted
// extranonce2 at zero on every SetJob and re-swept units already swept.
func TestReissuedJobContinuesWhereItStopped(t *testing.T) {
	led := ledger.New(0)
	d := New()
	first := job(t, led, testJob(t, "a", 4, 1, true), 0x18000000)
	require.NoError(t, d.SetJob(first))
	seen := map[string]bool{}
	for i := 0; i < 6; i++ {
		a, err := d.Next(context.Background())
		require.NoError(t, err)
		seen[key(a)] = true
	}
	// Same job, new difficulty: same entry, same header fields.
	harder := testJob(t, "a", 4, 1, false)
	re := job(t, led, harder, 0x18000000)
	require.Same(t, first.Entry, re.Entry, "a re-issue keeps the ledger entry")
	require.NoError(t, d.SetJob(re))
	a, err := d.Next(context.Background())
	require.NoError(t, err)
	assert.False(t, seen[key(a)], "re-issue handed out %s again", key(a))
	assert.Equal(t, "01000000", hex.EncodeToString(a.Unit.Extranonce2), "continues within the current extranonce2")
	assert.Equal(t, "30000000", fmt.Sprintf("%08x", a.Unit.Version))
	seen[key(a)] = true

	// New mask: a fresh extranonce2, so no version of any earlier one repeats.
	require.NoError(t, d.SetJob(&source.Job{Job: harder, Entry: re.Entry, RollingMask: 0x1fffe000}))
	for i := 0; i < 10; i++ {
		a, err := d.Next(context.Background())
		require.NoError(t, err)
		assert.False(t, seen[key(a)], "mask change handed out %s again", key(a))
		assert.Equal(t, "02000000", hex.EncodeToString(a.Unit.Extranonce2))
		seen[key(a)] = true
	}
}

func TestStaleOnlyWhenThePoolDropsTheJob(t *testing.T) {
	led := ledger.New(0)
	d := New()
	require.NoError(t, d.SetJob(job(t, led, testJob(t, "a", 4, 1, true), 0)))
	a, err := d.Next(context.Background())
	require.NoError(t, err)
	changed := d.Changed()

	require.NoError(t, d.SetJob(job(t, led, testJob(t, "b", 4, 1, false), 0)))
	assert.False(t, d.Stale(a), "clean_jobs=false keeps earlier results valid")
	assert.NotEqual(t, a.Seq, d.Seq(), "but devices move to the new job")
	select {
	case <-changed:
	default:
		t.Fatal("Changed not closed by a new job")
	}
	led.Retain("b") // what a source does on clean_jobs or a new prevhash
	assert.True(t, d.Stale(a))
	b, err := d.Next(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "b", b.Job.ID)
	assert.Equal(t, []byte{0, 0, 0, 0}, b.Unit.Extranonce2, "a new job starts its own extranonce2")
}

func TestExhaustionWaitsForNextJob(t *testing.T) {
	led := ledger.New(0)
	d := New()
	require.NoError(t, d.SetJob(job(t, led, testJob(t, "a", 1, 1, true), 0)))
	for i := 0; i < 256; i++ {
		_, err := d.Next(context.Background())
		require.NoError(t, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := d.Next(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded, "an exhausted job hands out nothing")
	assert.NotEmpty(t, d.Idle())

	got := make(chan *Assignment)
	go func() {
		a, _ := d.Next(context.Background())
		got <- a
	}()
	require.NoError(t, d.SetJob(job(t, led, testJob(t, "b", 1, 1, false), 0)))
	select {
	case a := <-got:
		assert.Equal(t, "b", a.Job.ID)
	case <-time.After(2 * time.Second):
		t.Fatal("Next did not wake up on a new job")
	}
}

func TestClearIdlesUntilTheNextJob(t *testing.T) {
	led := ledger.New(0)
	d := New()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := d.Next(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Nil(t, d.Current())

	require.NoError(t, d.SetJob(job(t, led, testJob(t, "a", 4, 1, true), 0)))
	changed := d.Changed()
	d.Clear("no live pool")
	select {
	case <-changed:
	default:
		t.Fatal("Clear must wake devices so they stop sweeping")
	}
	assert.Equal(t, "no live pool", d.Idle())
	ctx2, cancel2 := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel2()
	_, err = d.Next(ctx2)
	require.ErrorIs(t, err, context.DeadlineExceeded, "no work while no pool is live")
}

// An assignment handed out at the end of a wait for work must not look
// changed already: the SetJob that ended the wait is the one it is for.
func TestAssignmentChangedIsItsOwn(t *testing.T) {
	d := New()
	led := ledger.New(0)
	got := make(chan *Assignment, 1)
	go func() {
		a, err := d.Next(context.Background())
		assert.NoError(t, err)
		got <- a
	}()
	require.NoError(t, d.SetJob(job(t, led, testJob(t, "a", 4, 1, true), 0)))
	a := <-got
	select {
	case <-a.Changed:
		t.Fatal("the assignment's change signal fired for its own job")
	default:
	}
	require.NoError(t, d.SetJob(job(t, led, testJob(t, "b", 4, 1, false), 0)))
	select {
	case <-a.Changed:
	case <-time.After(time.Second):
		t.Fatal("the next SetJob did not signal the assignment")
	}
}

func TestNextVersionsHandsOutRolledGroups(t *testing.T) {
	d := New()
	require.NoError(t, d.SetJob(job(t, ledger.New(0), testJob(t, "a", 4, 1, true), 0x1fffe000)))
	seen := map[string]bool{}
	for i := 0; i < 5; i++ {
		a, err := d.NextVersions(context.Background(), 4)
		require.NoError(t, err)
		require.Len(t, a.Units, 4)
		require.Same(t, a.Unit, a.Units[0])
		for _, u := range a.Units {
			k := hex.EncodeToString(u.Extranonce2) + fmt.Sprintf("/%08x", u.Version)
			require.False(t, seen[k], "unit %s handed out twice", k)
			seen[k] = true
			require.Equal(t, a.Unit.Tail, u.Tail, "the versions of a group share the second chunk")
		}
	}

	// Without rolling a group is one unit.
	require.NoError(t, d.SetJob(job(t, ledger.New(0), testJob(t, "b", 4, 2, true), 0)))
	a, err := d.NextVersions(context.Background(), 4)
	require.NoError(t, err)
	require.Len(t, a.Units, 1)
}

func TestNextVersionsStopsAtExhaustion(t *testing.T) {
	// 1-byte extranonce2 and a 2-bit mask: 256 x 4 units, then nothing.
	d := New()
	require.NoError(t, d.SetJob(job(t, ledger.New(0), testJob(t, "a", 1, 1, true), 0x18000000)))
	seen := map[string]bool{}
	for len(seen) < 1024 {
		a, err := d.NextVersions(context.Background(), 3)
		require.NoError(t, err)
		require.NotEmpty(t, a.Units)
		for _, u := range a.Units {
			k := hex.EncodeToString(u.Extranonce2) + fmt.Sprintf("/%08x", u.Version)
			require.False(t, seen[k], "unit %s handed out twice", k)
			seen[k] = true
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := d.NextVersions(ctx, 3)
	require.ErrorIs(t, err, context.DeadlineExceeded, "an exhausted job waits for the next")
	require.Contains(t, d.Idle(), "exhausted")
}
