package testkit

import (
	"testing"
	"time"
)

// Timeout is how long Eventually waits for its condition: generous for CI
// under -race on two loaded cores, where what takes milliseconds alone can
// take seconds. A test that waits on a slow device (shares at a difficulty
// the reference device takes a while to meet) says so with EventuallyWithin.
const Timeout = 10 * time.Second

// poll is how often a condition is checked: small beside Timeout, large
// enough that polling costs the test nothing.
const poll = 10 * time.Millisecond

// Eventually waits up to Timeout for cond to hold and fails the test,
// naming what it waited for, if it does not. It polls: use it where the
// event is a state to observe (a counter, a snapshot), and wait on a
// channel where there is one.
func Eventually(t testing.TB, cond func() bool, what string) {
	t.Helper()
	EventuallyWithin(t, Timeout, cond, what)
}

// EventuallyWithin is Eventually with a timeout of d.
func EventuallyWithin(t testing.TB, d time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		<-tick.C
	}
}
