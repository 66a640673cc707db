package thermal

import (
	"fmt"
	"sync"
)

// Limits are the thermal settings in °C; 0 turns a limit off.
type Limits struct {
	Target float64
	Cutoff float64
	// Hysteresis is how far below Cutoff a GPU must cool to resume, and
	// how far below Target before it speeds up again.
	Hysteresis float64
}

// Validate checks the limits are usable; errors are one line.
func (l Limits) Validate() error {
	for _, v := range []struct {
		name string
		c    float64
	}{{"--temp-target", l.Target}, {"--temp-cutoff", l.Cutoff}} {
		if v.c < 0 || v.c > 0 && (v.c < 30 || v.c > 110) {
			return fmt.Errorf("%s %g: want a GPU temperature in °C between 30 and 110 (or 0 for none)", v.name, v.c)
		}
	}
	if l.Target > 0 && l.Cutoff > 0 && l.Cutoff <= l.Target {
		return fmt.Errorf("--temp-cutoff %g must be above --temp-target %g: the target slows the GPU first, the cutoff stops it", l.Cutoff, l.Target)
	}
	return nil
}

// Active reports whether any limit is set.
func (l Limits) Active() bool { return l.Target > 0 || l.Cutoff > 0 }

// Steering constants: each °C over the target takes 5% off the speed per
// reading, and a GPU under the target gains 5% a reading, so a reading
// every 2 s moves the speed from 100% to the 10% floor in about a minute
// when far too hot, and back in about 40 s.
const (
	gainPerC = 0.05
	recovery = 0.05
	minScale = 0.10
)

// Throttle is one GPU's allowed speed.
type Throttle struct {
	mu     sync.Mutex
	lim    Limits
	scale  float64
	idle   bool
	logged float64       // scale at the last reported change
	wake   chan struct{} // closed and replaced when the state changes
}

// NewThrottle starts at full speed.
func NewThrottle(lim Limits) *Throttle {
	if lim.Hysteresis <= 0 {
		lim.Hysteresis = 5
	}
	return &Throttle{lim: lim, scale: 1, logged: 1, wake: make(chan struct{})}
}

// Change is what one reading did to the throttle, for the log.
type Change string

// Changes worth a log line; the speed is reported in steps of 10 points,
// so a GPU hovering at its target does not flood the log.
const (
	None     Change = ""
	Idled    Change = "idle"    // reached the cutoff
	Resumed  Change = "resume"  // cooled below cutoff - hysteresis
	Slowed   Change = "slowed"  // speed down by 10 points or more since the last report
	SpedUp   Change = "sped_up" // speed up by 10 points or more
	FullBack Change = "full"    // back to full speed
)

// Update applies one temperature reading.
func (t *Throttle) Update(tempC float64) Change {
	t.mu.Lock()
	defer t.mu.Unlock()
	ch := None
	if t.lim.Cutoff > 0 {
		switch {
		case !t.idle && tempC >= t.lim.Cutoff:
			t.idle, ch = true, Idled
		case t.idle && tempC <= t.lim.Cutoff-t.lim.Hysteresis:
			t.idle, ch = false, Resumed
		}
	}
	if t.lim.Target > 0 {
		old := t.scale
		switch over := tempC - t.lim.Target; {
		case over > 0:
			t.scale = max(minScale, t.scale*(1-gainPerC*over))
		case over < -1: // a degree of dead band: hold near the target
			t.scale = min(1, t.scale+recovery)
		}
		if ch == None {
			switch {
			case t.scale == 1 && old < 1:
				ch = FullBack
			case t.scale <= t.logged-0.1:
				ch = Slowed
			case t.scale >= t.logged+0.1:
				ch = SpedUp
			}
		}
		if ch == Slowed || ch == SpedUp || ch == FullBack {
			t.logged = t.scale
		}
	}
	if ch != None || t.scale != 1 {
		close(t.wake)
		t.wake = make(chan struct{})
	}
	return ch
}

// State is the throttle now: the fraction of full speed allowed, whether
// the GPU idles at the cutoff, and a channel closed at the next change.
func (t *Throttle) State() (scale float64, idle bool, changed <-chan struct{}) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.scale, t.idle, t.wake
}
