package miner

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestRateMeterWindows(t *testing.T) {
	t0 := time.Unix(1000, 0)
	m := newRateMeter(t0)
	// 100 H/s for 60 s, then 1000 H/s for 5 s.
	for i := 1; i <= 60; i++ {
		m.add(100)
		m.sample(t0.Add(time.Duration(i) * time.Second))
	}
	for i := 61; i <= 65; i++ {
		m.add(1000)
		m.sample(t0.Add(time.Duration(i) * time.Second))
	}
	now := t0.Add(65 * time.Second)
	assert.InDelta(t, 1000, m.rate(now, 5*time.Second), 1)
	assert.InDelta(t, (55*100+5*1000)/60.0, m.rate(now, 60*time.Second), 1)
	assert.InDelta(t, (60*100+5*1000)/65.0, m.average(now), 1)
}

func TestRateMeterYoungerThanWindow(t *testing.T) {
	t0 := time.Unix(1000, 0)
	m := newRateMeter(t0)
	m.add(300)
	m.sample(t0.Add(3 * time.Second))
	assert.InDelta(t, 100, m.rate(t0.Add(3*time.Second), 60*time.Second), 0.01)
	assert.Zero(t, newRateMeter(t0).rate(t0, time.Second))
}

// The coarse ring keeps an hour at one sample per historyStep: the 5 and
// 15 minute rates come from it, and the history is the rate between its
// samples, bounded however long the meter runs.
func TestRateMeterHistory(t *testing.T) {
	t0 := time.Unix(1000, 0)
	m := newRateMeter(t0)
	rates, _ := m.history()
	assert.Empty(t, rates)
	// 2 hours: 100 H/s, then the last 10 minutes at 400 H/s.
	var now time.Time
	for i := 1; i <= 7200; i++ {
		if i > 7200-600 {
			m.add(400)
		} else {
			m.add(100)
		}
		now = t0.Add(time.Duration(i) * time.Second)
		m.sample(now)
	}
	rates, end := m.history()
	assert.Equal(t, now, end)
	assert.Len(t, rates, historySamples-1, "an hour, not two")
	assert.InDelta(t, 100, rates[0], 1e-9)
	assert.InDelta(t, 400, rates[len(rates)-1], 1e-9)
	assert.InDelta(t, 400, m.rate(now, 5*time.Minute), 1e-9)
	assert.InDelta(t, (5*100+10*400)/15.0, m.rate(now, 15*time.Minute), 1e-9)
	assert.InDelta(t, 400, m.rate(now, 60*time.Second), 1e-9)
}
