package miner

import (
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"clminer/work/safetext"

	"github.com/stretchr/testify/assert"
)

// Each outcome lands in the counters cgminer's API reports: difficulty sums
// per verdict, diff-1 work for every verified candidate of difficulty 1 or
// more whatever became of it, the last accepted share's time, difficulty
// and pool, the last valid work. Hardware errors and outcomes without a
// candidate of their own (a device overflow) are not valid work.
func TestCountsCgminerFields(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	var c Counts
	c.record(&ShareEvent{Time: t0, Pool: 2, Outcome: Accepted, PoolDiff: 8, ShareDiff: 9.5})
	c.record(&ShareEvent{Time: t0.Add(time.Second), Pool: 1, Outcome: Rejected, Reason: "low difficulty", PoolDiff: 16, ShareDiff: 17})
	c.record(&ShareEvent{Time: t0.Add(2 * time.Second), Pool: 1, Outcome: Stale, PoolDiff: 4, ShareDiff: 0.5})
	c.record(&ShareEvent{Time: t0.Add(3 * time.Second), Outcome: BelowTarget, ShareDiff: 1.2})
	c.record(&ShareEvent{Time: t0.Add(4 * time.Second), Outcome: HWError, ShareDiff: 1e9})
	c.recordN(Lost, "device output overflow", 3)

	assert.Equal(t, 8.0, c.AcceptedDiff)
	assert.Equal(t, 16.0, c.RejectedDiff)
	assert.Equal(t, 4.0, c.StaleDiff)
	assert.Equal(t, uint64(3), c.Diff1, "accepted, rejected and below-target candidates of difficulty >= 1; not the stale one at 0.5 nor the hardware error")
	assert.Equal(t, t0, c.LastShare, "the last accepted share, not the later reject")
	assert.Equal(t, 8.0, c.LastShareDiff)
	assert.Equal(t, 2, c.LastSharePool)
	assert.Equal(t, t0.Add(3*time.Second), c.LastValid, "the hardware error is not valid work")
	assert.Equal(t, 17.0, c.BestShare)
	assert.Equal(t, uint64(3), c.Lost)
}

// The recent rejects keep the latest maxRecentRejects, newest first, with
// the pool's reason clipped as the reason counters clip it.
func TestRejectRingBounded(t *testing.T) {
	var r rejectRing
	assert.Empty(t, r.latest())
	long := strings.Repeat("é\xff", safetext.LabelMax)
	for i := range 3 * maxRecentRejects {
		r.add(ShareEvent{Time: time.Unix(int64(i), 0), Outcome: Rejected, Reason: fmt.Sprint(i) + long})
	}
	got := r.latest()
	assert.Len(t, got, maxRecentRejects)
	assert.Equal(t, int64(3*maxRecentRejects-1), got[0].Time.Unix())
	assert.Equal(t, int64(2*maxRecentRejects), got[maxRecentRejects-1].Time.Unix())
	for _, x := range got {
		assert.LessOrEqual(t, len(x.Reason), safetext.LabelMax)
		assert.True(t, utf8.ValidString(x.Reason), "a reason cut on a character boundary, made valid UTF-8")
	}
}
