package testkit

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// fatalTB records a Fatalf instead of ending the test, so the failure path
// can be checked.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic(f)
}

func TestEventuallyReturnsOnceTheConditionHolds(t *testing.T) {
	var n atomic.Int32
	Eventually(t, func() bool { return n.Add(1) >= 3 }, "three checks")
	if got := n.Load(); got != 3 {
		t.Fatalf("checked %d times, want 3", got)
	}
}

func TestEventuallyWithinFailsNamingWhat(t *testing.T) {
	f := &fatalTB{TB: t}
	func() {
		defer func() {
			if r := recover(); r != f {
				panic(r)
			}
		}()
		EventuallyWithin(f, 30*time.Millisecond, func() bool { return false }, "the impossible")
		t.Fatal("EventuallyWithin returned on a condition that never held")
	}()
	if want := "timed out after 30ms waiting for the impossible"; f.msg != want {
		t.Fatalf("message %q, want %q", f.msg, want)
	}
}
