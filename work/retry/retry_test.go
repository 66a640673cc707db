package retry

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The V1 client's rule, as it was tested there: 1 s doubling to 60 s, ±20%.
func TestBackoffGrowsAndIsCapped(t *testing.T) {
	b := Backoff{Initial: time.Second, Max: 60 * time.Second}
	max := b.Max
	assert.Equal(t, time.Duration(0), b.DelayAt(0, 0.5))
	prev := time.Duration(0)
	for n := 1; n <= 7; n++ {
		d := b.DelayAt(n, 0.5) // no jitter at 0.5
		assert.Greater(t, d, prev, "n=%d", n)
		prev = d
	}
	assert.Equal(t, time.Second, b.DelayAt(1, 0.5))
	assert.Equal(t, 32*time.Second, b.DelayAt(6, 0.5))
	for n := 7; n < 100; n++ {
		for _, j := range []float64{0, 0.5, 0.999} {
			assert.LessOrEqual(t, b.DelayAt(n, j), max)
			assert.GreaterOrEqual(t, b.DelayAt(n, j), 48*time.Second)
		}
	}
	// jitter spreads the delay by ±20%
	assert.Equal(t, 800*time.Millisecond, b.DelayAt(1, 0))
	assert.InDelta(t, float64(1200*time.Millisecond), float64(b.DelayAt(1, 1)), float64(time.Millisecond))
}

func TestDefaults(t *testing.T) {
	for _, c := range []struct {
		name string
		in   Backoff
		want Backoff
	}{
		{"zero: 1 s doubling to 60 s, ±20%", Backoff{}, Backoff{time.Second, time.Minute, 2, 0.2}},
		{"a short Max alone also starts there", Backoff{Max: 50 * time.Millisecond}, Backoff{50 * time.Millisecond, 50 * time.Millisecond, 2, 0.2}},
		{"a long Max alone starts at 1 s", Backoff{Max: 5 * time.Minute}, Backoff{time.Second, 5 * time.Minute, 2, 0.2}},
		{"a short Initial alone caps at 60 s", Backoff{Initial: 20 * time.Millisecond}, Backoff{20 * time.Millisecond, time.Minute, 2, 0.2}},
		{"a long Initial alone also caps there", Backoff{Initial: 2 * time.Minute}, Backoff{2 * time.Minute, 2 * time.Minute, 2, 0.2}},
		{"Max below Initial is raised to it", Backoff{Initial: time.Second, Max: time.Millisecond}, Backoff{time.Second, time.Second, 2, 0.2}},
		{"a multiplier below 1 is the default", Backoff{Multiplier: 0.5}, Backoff{time.Second, time.Minute, 2, 0.2}},
		{"a multiplier of 1 is kept (a fixed delay)", Backoff{Multiplier: 1}, Backoff{time.Second, time.Minute, 1, 0.2}},
		{"NaN multiplier and jitter are the defaults", Backoff{Multiplier: math.NaN(), Jitter: math.NaN()}, Backoff{time.Second, time.Minute, 2, 0.2}},
		{"jitter above 1 is 1", Backoff{Jitter: 3}, Backoff{time.Second, time.Minute, 2, 1}},
	} {
		assert.Equal(t, c.want, c.in.WithDefaults(), c.name)
	}
}

func TestDelayTable(t *testing.T) {
	ms := time.Millisecond
	for _, c := range []struct {
		b     Backoff
		fails int
		u     float64
		want  time.Duration
	}{
		{Backoff{}, 0, 0.5, 0},
		{Backoff{}, -3, 0.5, 0},
		{Backoff{}, 1, 0.5, time.Second},
		{Backoff{}, 2, 0.5, 2 * time.Second},
		{Backoff{}, 7, 0.5, time.Minute},
		{Backoff{}, 7, 0, 48 * time.Second},
		{Backoff{}, 7, 1, time.Minute}, // never above Max
		{Backoff{}, math.MaxInt, 0.5, time.Minute},
		{Backoff{Max: 50 * ms}, 1, 0.5, 50 * ms},
		{Backoff{Initial: 20 * ms, Max: 160 * ms}, 3, 0.5, 80 * ms},
		{Backoff{Initial: 20 * ms, Max: 160 * ms}, 5, 0.5, 160 * ms},
		{Backoff{Initial: 100 * ms, Multiplier: 3, Jitter: 0.5}, 2, 0, 150 * ms},
		{Backoff{Initial: 100 * ms, Multiplier: 1}, 1000, 0.5, 100 * ms},
		{Backoff{}, 1, math.NaN(), time.Second},
		{Backoff{}, 1, -4, 800 * ms},
		{Backoff{Initial: time.Duration(math.MaxInt64)}, 3, 1, time.Duration(math.MaxInt64)},
		{Backoff{Initial: time.Hour, Max: time.Duration(math.MaxInt64), Multiplier: 1e300}, 3, 1, time.Duration(math.MaxInt64)},
	} {
		assert.Equal(t, c.want, c.b.DelayAt(c.fails, c.u), "%+v fails=%d u=%v", c.b, c.fails, c.u)
	}
}

// FuzzDelay: whatever the options and numbers, a delay is between 0 and
// Max, at least Initial's low spread after a failure, and never shrinks
// as failures add up.
func FuzzDelay(f *testing.F) {
	f.Add(int64(0), int64(0), 0.0, 0.0, 1, 0.5)
	f.Add(int64(time.Second), int64(time.Minute), 2.0, 0.2, 7, 0.999)
	f.Add(int64(1), int64(math.MaxInt64), 1e300, 1.0, 1<<30, 0.0)
	f.Fuzz(func(t *testing.T, initial, maxD int64, mult, jitter float64, fails int, u float64) {
		b := Backoff{Initial: time.Duration(initial), Max: time.Duration(maxD), Multiplier: mult, Jitter: jitter}
		r := b.WithDefaults()
		require.Positive(t, r.Initial)
		require.GreaterOrEqual(t, r.Max, r.Initial)
		require.GreaterOrEqual(t, r.Multiplier, 1.0)
		require.True(t, r.Jitter > 0 && r.Jitter <= 1)
		fails = fails % 10000 // the loop is bounded by Max anyway; keep runs short
		d := b.DelayAt(fails, u)
		if fails <= 0 {
			require.Zero(t, d)
			return
		}
		require.GreaterOrEqual(t, d, time.Duration(0))
		require.LessOrEqual(t, d, r.Max)
		if !math.IsNaN(u) {
			low := time.Duration(float64(r.Initial) * (1 - r.Jitter))
			require.GreaterOrEqual(t, d, low-1, "below the first delay's spread")
			require.LessOrEqual(t, d, b.DelayAt(fails+1, u), "shrank with one more failure")
		}
	})
}

func TestCounterResets(t *testing.T) {
	c := Counter{Backoff: Backoff{Initial: time.Second, Max: 8 * time.Second, Jitter: 1e-9}}
	var got []time.Duration
	for range 5 {
		got = append(got, c.Failed().Round(time.Millisecond))
	}
	assert.Equal(t, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second}, got)
	c.Reset()
	assert.Equal(t, time.Second, c.Failed().Round(time.Millisecond))
}

func TestSleepEndsWithTheContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.ErrorIs(t, Sleep(ctx, time.Hour), context.Canceled, "a cancelled context ends an hour's wait at once")
	assert.ErrorIs(t, Sleep(ctx, 0), context.Canceled)
	assert.NoError(t, Sleep(context.Background(), time.Millisecond))
}

func TestCounterRandFixesTheSpread(t *testing.T) {
	for _, u := range []float64{0, 0.5, 0.999} {
		c := Counter{Backoff: Backoff{Initial: time.Second}, Rand: func() float64 { return u }}
		assert.Equal(t, c.Backoff.DelayAt(1, u), c.Failed())
		assert.Equal(t, c.Backoff.DelayAt(2, u), c.Failed())
	}
}

// Redial: failures double the wait, a try that worked starts it over, and
// the loop ends with ctx (here cancelled by the fifth try).
func TestRedial(t *testing.T) {
	ms := time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	worked := []bool{false, false, false, true, false}
	tries := 0
	var waits []time.Duration
	var errs []string
	c := Counter{Backoff: Backoff{Initial: ms, Max: 4 * ms}, Rand: func() float64 { return 0.5 }}
	err := c.Redial(ctx, func(ctx context.Context) (bool, error) {
		require.NoError(t, ctx.Err(), "a try after ctx ended")
		tries++
		if tries == len(worked) {
			cancel()
			return false, ctx.Err()
		}
		return worked[tries-1], assert.AnError
	}, func(err error, w bool, wait time.Duration) {
		assert.Equal(t, worked[len(waits)], w)
		errs = append(errs, err.Error())
		waits = append(waits, wait)
	})
	assert.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, 5, tries)
	assert.Equal(t, []time.Duration{ms, 2 * ms, 4 * ms, ms}, waits, "the end of the try that worked (the fourth) is followed by Initial")
	assert.Len(t, errs, 4, "the try cut short by ctx is not reported")
}

func TestRedialWaitEndsWithTheContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	c := Counter{Backoff: Backoff{Initial: time.Hour}}
	err := c.Redial(ctx, func(context.Context) (bool, error) { return false, assert.AnError },
		func(error, bool, time.Duration) { cancel() })
	assert.ErrorIs(t, err, context.Canceled, "an hour's wait ends with ctx")
}
