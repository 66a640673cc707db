package observe

import (
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"

	"clminer/work/miner"
	"clminer/work/source"
)

// ShareLog appends one JSON line per candidate outcome to a file, for
// operators who audit shares or feed them to other tools.
type ShareLog struct {
	path string
	mu   sync.Mutex
	f    *os.File
	enc  *json.Encoder
}

// OpenShareLog opens path for appending, creating it if needed.
func OpenShareLog(path string) (*ShareLog, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("--share-log: %w", err)
	}
	return &ShareLog{path: path, f: f, enc: json.NewEncoder(f)}, nil
}

// Path is the file's name.
func (l *ShareLog) Path() string { return l.path }

// Reopen opens the path afresh and then closes the old file, so that a
// log rotation that moved the file away needs no copytruncate (SIGHUP). On
// failure the old file stays in use.
func (l *ShareLog) Reopen() error {
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	l.mu.Lock()
	old := l.f
	l.f, l.enc = f, json.NewEncoder(f)
	l.mu.Unlock()
	return old.Close()
}

// Share implements miner.Observer.
func (l *ShareLog) Share(ev miner.ShareEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	_ = l.enc.Encode(ev)
}

// NotifyLatency implements miner.Observer.
func (l *ShareLog) NotifyLatency(string, time.Duration) {}

// PoolEvent implements miner.Observer.
func (l *ShareLog) PoolEvent(source.Event) {}

// Close closes the file.
func (l *ShareLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}

// Observers fans events out to several observers.
type Observers []miner.Observer

// Share implements miner.Observer.
func (o Observers) Share(ev miner.ShareEvent) {
	for _, x := range o {
		x.Share(ev)
	}
}

// NotifyLatency implements miner.Observer.
func (o Observers) NotifyLatency(dev string, d time.Duration) {
	for _, x := range o {
		x.NotifyLatency(dev, d)
	}
}

// PoolEvent implements miner.Observer.
func (o Observers) PoolEvent(e source.Event) {
	for _, x := range o {
		x.PoolEvent(e)
	}
}
