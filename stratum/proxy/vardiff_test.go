package proxy

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// The vardiff rule on a clock of its own: a window ends after 16 shares or
// the interval, moves at most 4x either way, keeps a value within 1.5x of
// the aim, and stays within the bounds.
func TestVardiffRule(t *testing.T) {
	cfg := Config{StartDifficulty: 1, MinDifficulty: 0.01, MaxDifficulty: 100, SharesPerMinute: 6, RetargetInterval: time.Minute}
	t0 := time.Unix(1e9, 0)
	v := vardiff{diff: 1, since: t0}
	v.shares = 15
	assert.False(t, v.retarget(t0.Add(time.Second), &cfg), "15 shares and 1 s: the window is not over")
	v.shares = 16 // 16 shares in 1 s where 0.1 a second is the aim: 160x, at most 4x
	assert.True(t, v.retarget(t0.Add(time.Second), &cfg))
	assert.Equal(t, 4.0, v.diff)
	assert.Zero(t, v.shares)
	v.shares = 7 // 7 in a minute at 6 a minute: kept
	assert.False(t, v.retarget(t0.Add(61*time.Second), &cfg))
	assert.Equal(t, 4.0, v.diff)
	v.shares = 3 // half the aim: halved
	assert.True(t, v.retarget(t0.Add(121*time.Second), &cfg))
	assert.Equal(t, 2.0, v.diff)
	for i := 0; i < 10; i++ { // none at all: a quarter each interval, down to the minimum
		v.retarget(t0.Add(time.Duration(200+60*i)*time.Second), &cfg)
	}
	assert.Equal(t, 0.01, v.diff)
	v.set(1e9, t0, &cfg)
	assert.Equal(t, 100.0, v.diff, "a suggestion above the maximum")
	v.set(-1, t0, &cfg)
	assert.Equal(t, 1.0, v.diff, "a nonsense suggestion: the start value")
}
