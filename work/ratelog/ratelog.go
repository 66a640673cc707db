// Package ratelog bounds how often one kind of log line is written. Text and
// events that a pool controls (show_message, garbage lines, refused jobs,
// shares throttled at an absurd difficulty) must not be able to flood an
// operator's log or disk, but the first lines and a count of the rest must
// still reach them.
package ratelog

import (
	"sync"
	"time"

	"github.com/charmbracelet/log"
)

// Log lets through at most burst lines per interval and counts the rest,
// so that text a pool controls (show_message, garbage lines, refused jobs)
// cannot flood the operator's log or disk: 25k show_message lines in 5 s
// become a few lines and one "suppressed N" note.
type Log struct {
	mu         sync.Mutex
	interval   time.Duration
	burst      int
	start      time.Time
	n          int
	suppressed int
}

// New lets burst lines through per interval.
func New(interval time.Duration, burst int) *Log {
	return &Log{interval: interval, burst: burst}
}

// Allow reports whether a line may be logged now, and how many were
// suppressed since the last one that was.
func (r *Log) Allow(now time.Time) (bool, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now.Sub(r.start) >= r.interval {
		r.start, r.n = now, 0
	}
	if r.n >= r.burst {
		r.suppressed++
		return false, 0
	}
	r.n++
	s := r.suppressed
	r.suppressed = 0
	return true, s
}

// Warn logs at WARN through the limiter.
func (r *Log) Warn(l *log.Logger, msg string, kv ...any) {
	if ok, s := r.Allow(time.Now()); ok {
		if s > 0 {
			kv = append(kv, "suppressed_since_last", s)
		}
		l.Warn(msg, kv...)
	}
}

// Info logs at INFO through the limiter.
func (r *Log) Info(l *log.Logger, msg string, kv ...any) {
	if ok, s := r.Allow(time.Now()); ok {
		if s > 0 {
			kv = append(kv, "suppressed_since_last", s)
		}
		l.Info(msg, kv...)
	}
}
