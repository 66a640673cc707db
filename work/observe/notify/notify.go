package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/charmbracelet/log"

	"clminer/work/miner"
	"clminer/work/retry"
	"clminer/work/source"
)

// Event is one webhook POST body.
type Event struct {
	Event      string    `json:"event"` // block_found, best_share, pool_down
	Time       time.Time `json:"time"`
	Rig        string    `json:"rig,omitempty"`
	Device     string    `json:"device,omitempty"`
	Pool       string    `json:"pool,omitempty"`
	Difficulty float64   `json:"share_difficulty,omitempty"`
	Hash       string    `json:"hash,omitempty"`
	Reason     string    `json:"reason,omitempty"`
}

// Options tune delivery; zero values get the defaults in brackets.
type Options struct {
	Rig      string        // sent in every event [hostname, set by the caller]
	Queue    int           // events held for delivery [64]
	Attempts int           // tries per event [6]
	Retry    retry.Backoff // between tries [1 s doubling to 60 s, ±20%]
	Timeout  time.Duration // per POST [10 s]
	// PoolDownEvery is the least time between two pool_down events for one
	// pool, so a pool that flaps does not become a flood [5 min].
	PoolDownEvery time.Duration
	Client        *http.Client
	Logger        *log.Logger
}

// Notifier delivers events to one URL.
type Notifier struct {
	url  string
	host string
	o    Options
	q    chan Event

	mu       sync.Mutex
	dropped  uint64
	sent     uint64
	failed   uint64
	lastDown map[int]time.Time
}

// ParseURL checks a webhook URL; the error names only its scheme and host.
func ParseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("--notify-url: want an http:// or https:// URL with a host")
	}
	return u, nil
}

// New validates raw and returns a Notifier; Run delivers.
func New(raw string, o Options) (*Notifier, error) {
	u, err := ParseURL(raw)
	if err != nil {
		return nil, err
	}
	if o.Queue <= 0 {
		o.Queue = 64
	}
	if o.Attempts <= 0 {
		o.Attempts = 6
	}
	o.Retry = o.Retry.WithDefaults()
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.PoolDownEvery <= 0 {
		o.PoolDownEvery = 5 * time.Minute
	}
	if o.Client == nil {
		o.Client = &http.Client{}
	}
	if o.Logger == nil {
		o.Logger = log.New(io.Discard)
	}
	return &Notifier{url: u.String(), host: u.Scheme + "://" + u.Host, o: o, q: make(chan Event, o.Queue), lastDown: map[int]time.Time{}}, nil
}

// Host is the URL's scheme and host, safe to log.
func (n *Notifier) Host() string { return n.host }

// Notify queues e without blocking; a full queue drops it.
func (n *Notifier) Notify(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	if e.Rig == "" {
		e.Rig = n.o.Rig
	}
	select {
	case n.q <- e:
	default:
		n.mu.Lock()
		n.dropped++
		n.mu.Unlock()
	}
}

// Stats are delivered, given-up and dropped counts.
func (n *Notifier) Stats() (sent, failed, dropped uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.sent, n.failed, n.dropped
}

// Run delivers until ctx ends; events still queued then are not sent.
func (n *Notifier) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			if k := len(n.q); k > 0 {
				n.o.Logger.Warn("webhook events not delivered at shutdown", "event", "notify.undelivered", "count", k, "host", n.host)
			}
			return
		case e := <-n.q:
			n.deliver(ctx, e)
		}
	}
}

func (n *Notifier) deliver(ctx context.Context, e Event) {
	body, _ := json.Marshal(e)
	c := retry.Counter{Backoff: n.o.Retry}
	var last string
	for attempt := 1; attempt <= n.o.Attempts; attempt++ {
		again, why := n.post(ctx, body)
		if why == "" {
			n.mu.Lock()
			n.sent++
			n.mu.Unlock()
			n.o.Logger.Debug("webhook delivered", "event", "notify.sent", "kind", e.Event, "host", n.host, "attempt", attempt)
			return
		}
		last = why
		if !again || attempt == n.o.Attempts {
			break
		}
		if retry.Sleep(ctx, c.Failed()) != nil {
			return
		}
	}
	n.o.Logger.Warn("webhook delivery failed", "event", "notify.failed", "kind", e.Event, "host", n.host, "err", last)
	n.mu.Lock()
	n.failed++
	n.mu.Unlock()
}

// post sends one attempt; why is "" on success, retry says whether another
// attempt can help (network errors, 5xx, 429; not other 4xx).
func (n *Notifier) post(ctx context.Context, body []byte) (retry bool, why string) {
	pctx, cancel := context.WithTimeout(ctx, n.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(pctx, http.MethodPost, n.url, bytes.NewReader(body))
	if err != nil {
		return false, "bad request"
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "clminer")
	resp, err := n.o.Client.Do(req)
	if err != nil {
		// The error text holds the URL, which may hold a token.
		return true, "connection failed or timed out"
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode < 300:
		return false, ""
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return true, resp.Status
	}
	return false, resp.Status
}

// Observer turns miner events into webhook events. Best shares and blocks
// come from the luck tracker (it knows the all-time best); pool_down from
// the pool events.
type Observer struct{ N *Notifier }

// Share implements miner.Observer.
func (o Observer) Share(miner.ShareEvent) {}

// NotifyLatency implements miner.Observer.
func (o Observer) NotifyLatency(string, time.Duration) {}

// PoolEvent implements miner.Observer: a pool lost, refusing the worker or
// left as sick is "down", at most once per PoolDownEvery per pool.
func (o Observer) PoolEvent(ev source.Event) {
	switch ev.Kind {
	case source.EventDisconnected, source.EventSick, source.EventAuthFailed:
	default:
		return
	}
	n := o.N
	now := ev.Time
	if now.IsZero() {
		now = time.Now()
	}
	n.mu.Lock()
	last, seen := n.lastDown[ev.Pool]
	if seen && now.Sub(last) < n.o.PoolDownEvery {
		n.mu.Unlock()
		return
	}
	if len(n.lastDown) < 1024 { // pools are a short configured list
		n.lastDown[ev.Pool] = now
	}
	n.mu.Unlock()
	reason := ev.Kind.String()
	if ev.Err != nil {
		reason += ": " + ev.Err.Error()
	}
	n.Notify(Event{Event: "pool_down", Time: now, Pool: ev.URL, Reason: reason})
}

// BlockFound and BestShare build the share events.
func BlockFound(ev miner.ShareEvent) Event {
	return Event{Event: "block_found", Time: ev.Time, Device: ev.Device, Pool: ev.PoolURL, Difficulty: ev.ShareDiff, Hash: ev.Hash}
}

// BestShare is a new all-time best share.
func BestShare(d float64, ev miner.ShareEvent) Event {
	return Event{Event: "best_share", Time: ev.Time, Device: ev.Device, Pool: ev.PoolURL, Difficulty: d, Hash: ev.Hash}
}
