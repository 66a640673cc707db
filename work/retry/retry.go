package retry

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff is a retry delay that grows with the failures in a row; zero
// fields get the defaults in brackets.
type Backoff struct {
	// Initial is the delay after the first failure [1 s, or Max when only
	// Max is set and is shorter].
	Initial time.Duration
	// Max caps the delay [60 s, or Initial when Initial is longer].
	Max time.Duration
	// Multiplier grows the delay per failure in a row [2; below 1: 2].
	Multiplier float64
	// Jitter spreads each delay uniformly over ±Jitter of itself, never
	// above Max [0.2; at most 1].
	Jitter float64
}

// Defaults for the zero Backoff: 1 s doubling to 60 s, ±20%.
const (
	DefaultInitial    = time.Second
	DefaultMax        = 60 * time.Second
	DefaultMultiplier = 2
	DefaultJitter     = 0.2
)

// WithDefaults fills the zero fields. A field that is set is kept, and the
// other bound follows it: Max alone below 1 s also starts there (a test's
// "retry within 50 ms"), Initial alone above 60 s also caps there.
func (b Backoff) WithDefaults() Backoff {
	switch {
	case b.Initial <= 0 && b.Max <= 0:
		b.Initial, b.Max = DefaultInitial, DefaultMax
	case b.Initial <= 0:
		b.Initial = min(DefaultInitial, b.Max)
	case b.Max <= 0:
		b.Max = max(DefaultMax, b.Initial)
	}
	b.Max = max(b.Max, b.Initial)
	if !(b.Multiplier >= 1) { // NaN too
		b.Multiplier = DefaultMultiplier
	}
	if !(b.Jitter > 0) {
		b.Jitter = DefaultJitter
	}
	b.Jitter = min(b.Jitter, 1)
	return b
}

// Delay is the wait after the fails-th failure in a row (0 when fails is
// 0), with a random spread.
func (b Backoff) Delay(fails int) time.Duration {
	return b.DelayAt(fails, rand.Float64())
}

// DelayAt is Delay with the spread's uniform number u in [0, 1) given: 0
// is the shortest (Initial × (1 - Jitter) after one failure), 0.5 none.
func (b Backoff) DelayAt(fails int, u float64) time.Duration {
	if fails <= 0 {
		return 0
	}
	b = b.WithDefaults()
	// In float64, compared with Max before converting back: a product past
	// the int64 range converts to nonsense (a negative Duration on amd64).
	top := float64(b.Max)
	d := float64(b.Initial)
	for i := 1; i < fails && d < top; i++ {
		next := d * b.Multiplier
		if next <= d { // a multiplier of 1
			break
		}
		d = next
	}
	u = min(max(u, 0), 1) // NaN stays NaN: caught below
	f := 1 - b.Jitter + 2*b.Jitter*u
	if !(f >= 0) {
		f = 1
	}
	if d = min(d, top) * f; d >= top {
		return b.Max
	}
	return time.Duration(d)
}

// Counter is a redialing loop's failures in a row. The zero Counter with
// a Backoff set is ready; it is not safe for concurrent use.
type Counter struct {
	Backoff Backoff
	// Rand draws the spread's uniform number in [0, 1) [math/rand/v2's
	// Float64]; a test sets it to fix the delays.
	Rand  func() float64
	fails int
}

// Failed counts a failure and returns how long to wait before the next try.
func (c *Counter) Failed() time.Duration {
	c.fails++
	u := rand.Float64
	if c.Rand != nil {
		u = c.Rand
	}
	return c.Backoff.DelayAt(c.fails, u())
}

// Reset starts the doubling over: the last try did useful work.
func (c *Counter) Reset() { c.fails = 0 }

// Redial is the reconnect loop of an upstream: it runs try until ctx ends.
// After each try, ended is told why it ended and how long the loop waits
// before the next; the doubling starts over when the try did useful work
// (worked), so an upstream that drops a working session is redialed after
// Initial, and one that fails every connect no faster than the backoff
// allows. The wait is cut short by ctx. It returns ctx's error; try is
// expected to return when ctx ends.
func (c *Counter) Redial(ctx context.Context, try func(context.Context) (worked bool, err error), ended func(err error, worked bool, wait time.Duration)) error {
	for {
		worked, err := try(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if worked {
			c.Reset()
		}
		wait := c.Failed()
		ended(err, worked, wait)
		if err := Sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// Sleep waits d, or until ctx ends; it returns ctx's error then, nil after d.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
