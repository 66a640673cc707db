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
