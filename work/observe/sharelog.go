package observe

import (
	"encoding/json"
	"fmt"
	"time"

	"clminer/work/miner"
	"clminer/work/source"
)

// ShareLog appends one JSON line per candidate outcome to a file, for
// operators who audit shares or feed them to other tools.
type ShareLog struct {
	*AppendFile
}

// OpenShareLog opens path for appending, creating it if needed.
func OpenShareLog(path string) (*ShareLog, error) {
	f, err := OpenAppendFile(path)
	if err != nil {
		return nil, fmt.Errorf("--share-log: %w", err)
	}
	return &ShareLog{AppendFile: f}, nil
}

// Share implements miner.Observer.
func (l *ShareLog) Share(ev miner.ShareEvent) {
	b, err := json.Marshal(ev)
	if err != nil {
		return
	}
	_, _ = l.Write(append(b, '\n')) // one write: lines never interleave
}

// NotifyLatency implements miner.Observer.
func (l *ShareLog) NotifyLatency(string, time.Duration) {}

// PoolEvent implements miner.Observer.
func (l *ShareLog) PoolEvent(source.Event) {}

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
