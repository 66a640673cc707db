package ledger

import (
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"clminer/work"
)

func testJob(t *testing.T, id string, en2size int, ntime string, diff float64) *work.Job {
	t.Helper()
	j, err := work.NewJob(work.JobParams{
		JobID:    id,
		PrevHash: "0100000000000000000000000000000000000000000000000000000000000000",
		Coinb1:   "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff0c",
		Coinb2:   "ffffffff0100f2052a01000000016a00000000",
		Version:  "20000000", NBits: "1d00ffff", NTime: ntime,
		Extranonce1: "01020304", Extranonce2Size: en2size, Difficulty: diff,
	})
	require.NoError(t, err)
	return j
}

func unitKey(u *work.Unit) string {
	return hex.EncodeToString(u.Extranonce2) + fmt.Sprintf("/%08x/%08x", u.Version, u.NTime)
}

func TestReissueContinuesAndKeepsTheHigherDifficulty(t *testing.T) {
	l := New(0)
	e, err := l.Job("en1", "a", 4, 0.5)
	require.NoError(t, err)
	j := testJob(t, "a", 4, "5b906723", 0.5)
	seen := map[string]bool{}
	for i := 0; i < 3; i++ {
		u, err := e.Next(j, 0)
		require.NoError(t, err)
		seen[unitKey(u)] = true
	}
	// vardiff down: the same job again, at a lower value
	e2, err := l.Job("en1", "a", 4, 0.01)
	require.NoError(t, err)
	require.Same(t, e, e2)
	assert.Equal(t, 0.5, e.Difficulty(), "a re-issue never lowers what shares already found are judged at")
	j2 := testJob(t, "a", 4, "5b906723", 0.01)
	u, err := e.Next(j2, 0)
	require.NoError(t, err)
	assert.False(t, seen[unitKey(u)])
	assert.Equal(t, "03000000", hex.EncodeToString(u.Extranonce2))
	assert.Equal(t, j2.ShareTarget, u.Target, "the unit carries the re-issued job's target")

	l.RaiseDifficulty(2)
	assert.Equal(t, 2.0, e.Difficulty())
	l.RaiseDifficulty(1)
	assert.Equal(t, 2.0, e.Difficulty(), "RaiseDifficulty only raises")
}

func TestReissueWithinAnExtranonce2KeepsTheRollPosition(t *testing.T) {
	l := New(0)
	e, err := l.Job("en1", "a", 4, 1)
	require.NoError(t, err)
	const mask = 0x18000000
	u, err := e.Next(testJob(t, "a", 4, "5b906723", 1), mask)
	require.NoError(t, err)
	assert.Equal(t, uint32(0x20000000), u.Version)
	// a raise re-issues the job with the same header fields
	u, err = e.Next(testJob(t, "a", 4, "5b906723", 4), mask)
	require.NoError(t, err)
	assert.Equal(t, "00000000", hex.EncodeToString(u.Extranonce2))
	assert.Equal(t, uint32(0x28000000), u.Version, "next version, not the first again")
	assert.Equal(t, testJob(t, "a", 4, "5b906723", 4).ShareTarget, u.Target)
	// other header fields (a new ntime under the same id) start a new extranonce2
	u, err = e.Next(testJob(t, "a", 4, "5b906724", 4), mask)
	require.NoError(t, err)
	assert.Equal(t, "01000000", hex.EncodeToString(u.Extranonce2))
	// a new mask too
	u, err = e.Next(testJob(t, "a", 4, "5b906724", 4), 0x1fffe000)
	require.NoError(t, err)
	assert.Equal(t, "02000000", hex.EncodeToString(u.Extranonce2))
}

func TestANewSpaceOrCleanJobsForgetsOlderJobs(t *testing.T) {
	l := New(0)
	a, _ := l.Job("en1", "a", 4, 1)
	b, _ := l.Job("en1", "b", 4, 1)
	l.Retain("b")
	assert.False(t, a.Live())
	assert.True(t, b.Live())
	_, err := a.Next(testJob(t, "a", 4, "5b906723", 1), 0)
	assert.ErrorIs(t, err, ErrForgotten)
	assert.False(t, a.Claim(Key{Nonce: 1}), "nothing is claimed for a forgotten job")

	// same job id under a new extranonce1: a new share space, a new entry
	b2, _ := l.Job("en1-new", "b", 4, 1)
	assert.NotSame(t, b, b2)
	assert.False(t, b.Live())
	assert.Equal(t, 1, l.Len())

	// same id and space but another extranonce2 size: a new entry
	b3, _ := l.Job("en1-new", "b", 8, 1)
	assert.NotSame(t, b2, b3)
	assert.False(t, b2.Live())
}

func TestHistoryIsBounded(t *testing.T) {
	l := New(4)
	var es []*Entry
	for i := 0; i < 10; i++ {
		e, err := l.Job("en1", fmt.Sprint(i), 4, 1)
		require.NoError(t, err)
		es = append(es, e)
	}
	assert.Equal(t, 4, l.Len())
	assert.False(t, es[5].Live())
	assert.True(t, es[6].Live())
}

func TestClaimRefusesDuplicatesAndStaysBounded(t *testing.T) {
	l := New(0)
	e, _ := l.Job("en1", "a", 4, 1)
	k := Key{NTime: 1, Nonce: 2, Version: 3, En2Len: 4}
	assert.True(t, e.Claim(k))
	assert.False(t, e.Claim(k))
	k2 := k
	k2.Version = 4
	assert.True(t, e.Claim(k2), "another version is another share")
	for i := 0; i < MaxKeys+10; i++ {
		e.Claim(Key{Nonce: uint32(i), NTime: 9})
	}
	total := 0
	for _, x := range l.order {
		total += len(x.submitted)
	}
	assert.LessOrEqual(t, total, MaxKeys, "duplicate sets are bounded")
	assert.Len(t, l.keys, MaxKeys)
}

func TestExhaustion(t *testing.T) {
	l := New(0)
	e, _ := l.Job("en1", "a", 1, 1)
	j := testJob(t, "a", 1, "5b906723", 1)
	for i := 0; i < 256; i++ {
		_, err := e.Next(j, 0)
		require.NoError(t, err)
	}
	_, err := e.Next(j, 0)
	assert.ErrorIs(t, err, ErrExhausted)
	assert.Equal(t, uint64(256), e.Units())
}

func TestAbsurdDifficultiesAreHeld(t *testing.T) {
	l := New(0)
	for _, d := range []float64{1e-9, 1e-300, 5e-324} {
		e, err := l.Job("en1", fmt.Sprint(d), 4, d)
		require.NoError(t, err)
		ok, judged := e.Judge([32]byte{0xff, 0xff, 0xff, 0xff})
		assert.True(t, ok, "every hash meets difficulty %g", d)
		assert.Equal(t, d, judged)
	}
}

// The duplicate-key ring may point at a dropped entry for days: it must not
// keep the job (two coinbase parts of up to 64 KiB) alive through it.
func TestForgottenEntriesReleaseTheirJob(t *testing.T) {
	l := New(0)
	e, _ := l.Job("en1", "a", 4, 1)
	_, err := e.Next(testJob(t, "a", 4, "5b906723", 1), 0)
	require.NoError(t, err)
	require.True(t, e.Claim(Key{Nonce: 1}))
	l.Retain("b")
	l.mu.Lock()
	defer l.mu.Unlock()
	assert.Nil(t, e.baseJob)
	assert.Nil(t, e.base)
	assert.Nil(t, e.en2)
	assert.Nil(t, e.submitted)
}

// Jobs the pool forgot take their keys out of the ring too, and the ring's
// memory goes with them: the ledger's memory follows the jobs the pool still
// holds, rather than staying at MaxKeys references to dead entries after any
// long enough run (issue 28).
func TestForgottenJobsLeaveTheKeyRing(t *testing.T) {
	l := New(4)
	a, _ := l.Job("en1", "a", 4, 1)
	for i := 0; i < MaxKeys; i++ {
		require.True(t, a.Claim(Key{Nonce: uint32(i)}))
	}
	b, _ := l.Job("en1", "b", 4, 1)
	for i := 0; i < 10; i++ {
		require.True(t, b.Claim(Key{Nonce: uint32(i)}), "the ring is full: a's oldest keys make room")
	}
	l.Retain("b") // clean jobs: a goes
	l.mu.Lock()
	assert.Equal(t, 10, len(l.keys), "only b's keys stay")
	assert.Less(t, cap(l.keys), MaxKeys/2, "the ring's memory is given back")
	l.mu.Unlock()
	assert.False(t, b.Claim(Key{Nonce: 0}), "b's keys are still duplicates")

	// Oldest first still: filling the ring again evicts b's first keys.
	for i := 10; i < MaxKeys+3; i++ {
		require.True(t, b.Claim(Key{Nonce: uint32(i)}))
	}
	assert.True(t, b.Claim(Key{Nonce: 0}), "the oldest key was evicted")
	assert.False(t, b.Claim(Key{Nonce: 4}), "later keys are still held")

	// A job pushed out of the history goes from the ring as well.
	for _, id := range []string{"c", "d", "e", "f"} {
		e, _ := l.Job("en1", id, 4, 1)
		require.True(t, e.Claim(Key{Nonce: 1}))
	}
	assert.False(t, b.Live())
	l.mu.Lock()
	defer l.mu.Unlock()
	assert.Equal(t, 4, len(l.keys), "only the live jobs' keys stay")
}

// The count of dead references stays exact when the ring overwrites them
// (a job dropped while its keys are still below half the ring).
func TestDeadKeyCountStaysExact(t *testing.T) {
	l := New(2)
	for round := 0; round < 6; round++ {
		e, _ := l.Job("en1", fmt.Sprint(round), 4, 1)
		for i := 0; i < 2*MaxKeys/3; i++ {
			require.True(t, e.Claim(Key{Nonce: uint32(i)}))
		}
		l.mu.Lock()
		dead := 0
		for _, r := range l.keys {
			if !r.e.live {
				dead++
			}
		}
		require.Equal(t, dead, l.deadKeys, "round %d", round)
		require.LessOrEqual(t, len(l.keys), MaxKeys)
		l.mu.Unlock()
	}
}
