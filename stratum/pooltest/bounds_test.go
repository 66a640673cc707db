package pooltest

import (
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// checkSeenLocked verifies the duplicate-set accounting and bounds.
func checkSeenLocked(t *testing.T, s *Server, window int) {
	t.Helper()
	total := 0
	for id, j := range s.jobs {
		total += len(j.seen)
		assert.LessOrEqual(t, len(j.seen), s.maxJobKeys+window, "job %s", id)
	}
	assert.Equal(t, total, s.seenKeys, "seenKeys counts every set")
	assert.LessOrEqual(t, s.seenKeys, s.maxKeys, "duplicate sets bounded by count")
	assert.LessOrEqual(t, len(s.jobs), keptOldJobs+1, "jobs bounded")
	assert.Contains(t, s.jobs, s.current)
}

// A client that submits for ever on the job it was given, the pool never
// sending another on its own schedule: the pool moves it to fresh jobs as
// each job's set fills, forgets the oldest jobs whole to stay within its
// key bound, and judges every share right on the way (issue 28).
func TestDuplicateSetsStayBoundedWithoutNewJobs(t *testing.T) {
	s := New(Config{Difficulty: 1e-12, Records: 16})
	s.maxKeys, s.maxJobKeys = 512, 128
	require.NoError(t, s.Start())
	defer s.Close()
	const window = 8
	f, err := DialFlood(s.Addr(), "w", window)
	require.NoError(t, err)
	defer f.Close()
	for i := 0; i < 10; i++ {
		require.NoError(t, f.Submit(500))
		s.mu.Lock()
		checkSeenLocked(t, s, window)
		assert.LessOrEqual(t, len(s.shares), 32, "records bounded by Config.Records")
		assert.LessOrEqual(t, len(s.requests), 32)
		s.mu.Unlock()
	}
	c := f.Counts()
	assert.Equal(t, 5000, c.Accepted, "no share on a job the pool still knows is refused: %+v", c)
	assert.GreaterOrEqual(t, c.Jobs, 5000/(128+window), "the pool sent a fresh job each time one filled")
	assert.Equal(t, 5000, s.Stats().Accepted)
	assert.Equal(t, 5000, s.AcceptedBy("w"))
}

// submitRaw sends one share and returns the reply's error ("" if accepted).
func submitRaw(t *testing.T, r *rawClient, params ...any) string {
	t.Helper()
	id := r.call("mining.submit", params...)
	rep, _ := r.until(id)
	if string(rep.Result) == "true" {
		return ""
	}
	require.NotEmpty(t, rep.Error, "a reject carries its reason")
	return string(rep.Error)
}

// The verdicts stay those of a real pool while the sets are bounded: a
// duplicate on any job still known is a duplicate, a share on a job the
// pool forgot is "Job not found", one on a job before a clean job is stale.
func TestVerdictsUnderTheBounds(t *testing.T) {
	s := New(Config{Difficulty: 1e-12})
	s.maxKeys, s.maxJobKeys = 64, 16
	require.NoError(t, s.Start())
	defer s.Close()
	r := dialRaw(t, s)
	en1, size, job1, _ := handshake(t, r)
	e2 := hex.EncodeToString(make([]byte, size))
	share := func(job NotifyParams, nonce uint32) []any {
		return []any{"w", job.JobID, e2, job.NTime, fmt.Sprintf("%08x", nonce)}
	}
	require.Empty(t, submitRaw(t, r, share(job1, 1)...))
	assert.Contains(t, submitRaw(t, r, share(job1, 1)...), "Duplicate", "on the current job")

	job2ID := s.PushJob(false)
	job2 := s.CurrentJob()
	require.Equal(t, job2ID, job2.JobID)
	require.Empty(t, submitRaw(t, r, share(job2, 1)...), "another job, another share")
	assert.Contains(t, submitRaw(t, r, share(job1, 1)...), "Duplicate", "on a job still known but not current")

	// Another connection (another extranonce1) sending the same fields
	// sends another header: not a duplicate.
	r2 := dialRaw(t, s)
	en1b, _, _, _ := handshake(t, r2)
	require.NotEqual(t, en1, en1b)
	assert.Empty(t, submitRaw(t, r2, share(job2, 1)...))

	// Fill the sets until job1 is forgotten for the count bound.
	for n := uint32(2); ; n++ {
		s.mu.Lock()
		_, known := s.jobs[job1.JobID]
		s.mu.Unlock()
		if !known {
			break
		}
		require.Less(t, n, uint32(1000), "job1 never forgotten")
		cur := s.CurrentJob()
		require.Empty(t, submitRaw(t, r, share(cur, n)...))
	}
	st := s.Stats()
	rej := submitRaw(t, r, share(job1, 1)...)
	assert.Contains(t, rej, "Job not found", "a forgotten job's share")
	assert.Equal(t, st.Duplicate, s.Stats().Duplicate, "not counted as a duplicate")
	s.mu.Lock()
	checkSeenLocked(t, s, 1)
	s.mu.Unlock()

	// A clean job: shares on every earlier job are stale (before any
	// duplicate check), and the dropped sets are out of the count.
	cur := s.CurrentJob()
	s.PushJob(true)
	assert.Contains(t, submitRaw(t, r, share(cur, 1)...), "Stale")
	s.mu.Lock()
	assert.Zero(t, s.seenKeys, "the sets of jobs before a clean job are dropped")
	checkSeenLocked(t, s, 1)
	s.mu.Unlock()
	assert.Equal(t, 1, s.Stats().Stale)
}

// A job re-sent under its id is the same work: the shares the pool has on
// it stay duplicates.
func TestReissuedJobKeepsItsShares(t *testing.T) {
	s := New(Config{Difficulty: 1e-12})
	require.NoError(t, s.Start())
	defer s.Close()
	r := dialRaw(t, s)
	_, size, job, _ := handshake(t, r)
	p := []any{"w", job.JobID, hex.EncodeToString(make([]byte, size)), job.NTime, "00000007"}
	require.Empty(t, submitRaw(t, r, p...))
	again := job
	again.CleanJobs = false
	s.PushJobParams(again)
	assert.Contains(t, submitRaw(t, r, p...), "Duplicate")
}

// Session ids kept for resuming are bounded however many connections come
// and go.
func TestResumeIDsBounded(t *testing.T) {
	s := New(Config{})
	for i := 0; i < 3*maxResume; i++ {
		s.keepResumeLocked(fmt.Sprintf("sid%d", i), "en1")
	}
	assert.Len(t, s.resume, maxResume)
	assert.Contains(t, s.resume, fmt.Sprintf("sid%d", 3*maxResume-1), "the newest stay")
	assert.NotContains(t, s.resume, "sid0")
	s.keepResumeLocked(fmt.Sprintf("sid%d", 3*maxResume-1), "en1b")
	assert.Len(t, s.resume, maxResume, "a session id kept again is not counted twice")
}

// AcceptedBy counts the first maxWorkerCounts names and no more.
func TestWorkerCountsBounded(t *testing.T) {
	s := New(Config{Difficulty: 1e-12})
	require.NoError(t, s.Start())
	defer s.Close()
	r := dialRaw(t, s)
	_, size, job, _ := handshake(t, r)
	e2 := hex.EncodeToString(make([]byte, size))
	for i := 0; i < maxWorkerCounts+5; i++ {
		id := r.call("mining.submit", fmt.Sprintf("w%d", i), job.JobID, e2, job.NTime, fmt.Sprintf("%08x", i))
		rep, _ := r.until(id)
		require.Equal(t, "true", string(rep.Result), string(rep.Error))
	}
	assert.Equal(t, 1, s.AcceptedBy("w0"))
	assert.Zero(t, s.AcceptedBy(fmt.Sprintf("w%d", maxWorkerCounts+1)))
	s.mu.Lock()
	assert.Len(t, s.byWorker, maxWorkerCounts)
	s.mu.Unlock()
	assert.Equal(t, maxWorkerCounts+5, s.Stats().Accepted)
}
