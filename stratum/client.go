package stratum

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/charmbracelet/log"

	"clminer/work/ledger"
	"clminer/work/source"
)

// defaultUserAgent is sent when Options.UserAgent is empty: a program that
// knows its version (cmd/clminer) passes "clminer/<version>" itself.
const defaultUserAgent = "clminer/dev"

// PoolConfig is one pool of the ordered failover list.
type PoolConfig struct {
	URL         string // stratum+tcp://host:port, stratum+tls://, stratum+ssl://
	User        string
	Pass        string
	TLSInsecure bool   // skip certificate verification
	Fingerprint string // SHA-256 of the pool certificate (hex, colons allowed); checked instead of the CA chain
	// VersionRolling asks for BIP 310 version rolling with mining.configure.
	VersionRolling bool
	// ExtranonceSubscribe sends mining.extranonce.subscribe (NiceHash).
	ExtranonceSubscribe bool
	// SuggestDifficulty, when > 0, is sent with mining.suggest_difficulty
	// after authorize.
	SuggestDifficulty float64
	// AllowReconnectAnyDomain lets client.reconnect move to another domain.
	AllowReconnectAnyDomain bool
	// Proxy is a SOCKS5 proxy URL (socks5h://[user:pass@]host:port) the
	// pool is reached through; "" dials directly. It holds credentials:
	// never log it whole.
	Proxy string
}

// String prints the pool without its password, so a config can be logged.
func (p PoolConfig) String() string {
	return fmt.Sprintf("%s user=%s pass=<redacted> tls_insecure=%v pinned=%v rolling=%v", p.URL, p.User, p.TLSInsecure, p.Fingerprint != "", p.VersionRolling)
}

type poolRec struct {
	cfg         PoolConfig
	url         PoolURL
	redirect    string // client.reconnect target for the next attempt only
	resumeID    string
	ledger      *ledger.Ledger
	state       source.State
	fails       int
	sickCount   int
	sickReason  string
	nextAttempt time.Time
	connects    uint64
	failovers   uint64
	lastErr     string
	diff        float64
	mask        uint32
	en1         string
	en2size     int
	accepted    uint64
	rejected    uint64
	throttled   uint64
}

// Client keeps one live session with the best reachable pool. It is a
// source.Source.
type Client struct {
	opts Options
	log  *log.Logger

	mu      sync.Mutex
	pools   []*poolRec
	live    *session
	running bool
	rnd     *rand.Rand

	// sub-workers (AddWorker), in the order added; guarded by mu
	workers   map[string]*workerRec
	workerSeq []string

	evMu      sync.Mutex // guards sink and evQ; taken inside c.mu, never around it
	sink      source.Sink
	evQ       []queued
	evDropped uint64 // events dropped by maxQueued
	evSig     chan struct{}
}

var (
	_ source.Source  = (*Client)(nil)
	_ source.Workers = (*Client)(nil)
)

// NewClient validates the pool list; nothing connects before Run.
func NewClient(pools []PoolConfig, opts Options) (*Client, error) {
	if len(pools) == 0 {
		return nil, errors.New("stratum: no pools configured")
	}
	opts.defaults()
	c := &Client{opts: opts, log: opts.Logger, evSig: make(chan struct{}, 1),
		rnd: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0x5eed))}
	for i, p := range pools {
		u, err := ParsePoolURL(p.URL)
		if err != nil {
			return nil, fmt.Errorf("pool %d: %w", i, err)
		}
		if p.Fingerprint != "" {
			if _, err := ParseFingerprint(p.Fingerprint); err != nil {
				return nil, fmt.Errorf("pool %d: %w", i, err)
			}
		}
		if p.User == "" {
			return nil, fmt.Errorf("pool %d (%s): user (worker name) is empty", i, u)
		}
		c.pools = append(c.pools, &poolRec{cfg: p, url: u, diff: 1, ledger: ledger.New(0)})
	}
	// In device order, so the status lists workers the same way each run.
	for _, dev := range slices.Sorted(maps.Keys(opts.DeviceWorkers)) {
		if err := c.AddWorker(opts.DeviceWorkers[dev]); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Run connects, fails over and reconnects until ctx ends, handing jobs and
// events to sink from one goroutine; it returns ctx's error after every
// goroutine it started has finished.
func (c *Client) Run(ctx context.Context, sink source.Sink) error {
	if sink == nil {
		return errors.New("stratum: Run needs a sink")
	}
	c.mu.Lock()
	if c.running {
		c.mu.Unlock()
		return errors.New("stratum: Run is already running")
	}
	c.running = true
	c.mu.Unlock()
	c.evMu.Lock()
	c.sink = sink
	c.evMu.Unlock()
	defer func() {
		c.mu.Lock()
		c.running = false
		c.mu.Unlock()
	}()

	stop := make(chan struct{})
	var dwg sync.WaitGroup
	dwg.Add(1)
	go func() {
		defer dwg.Done()
		c.dispatch(stop)
	}()
	defer func() {
		close(stop)
		dwg.Wait()
	}()

	cur := -1
	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		idx, wait := c.pick()
		if wait > 0 {
			// Every pool is in its backoff: say when the next try is, after
			// the events already queued (the failure that caused the wait).
			c.enqueue(evOther, func(source.Sink) {
				c.log.Info(fmt.Sprintf("no pool reachable; retrying in %s", wait.Round(100*time.Millisecond)), "event", "pool.retry", "retry_in_s", wait.Seconds())
			})
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
			continue
		}
		if cur >= 0 && idx != cur {
			c.mu.Lock()
			c.pools[cur].failovers++
			c.mu.Unlock()
			c.event(source.Event{Kind: source.EventFailover, Pool: idx, URL: c.pools[idx].url.String(), From: cur, To: idx})
		}
		cur = idx
		c.runPool(ctx, idx)
	}
}

// Status returns a snapshot of every pool, for metrics.
func (c *Client) Status() []source.UpstreamStatus {
	c.mu.Lock()
	live := c.live
	out := make([]source.UpstreamStatus, len(c.pools))
	for i, p := range c.pools {
		out[i] = source.UpstreamStatus{Index: i, URL: p.url.String(), Protocol: "stratum", State: p.state, Connects: p.connects, Failovers: p.failovers,
			Failures: p.fails, LastError: p.lastErr, SickReason: p.sickReason, Difficulty: p.diff, RollingMask: p.mask,
			Extranonce1: p.en1, Extranonce2Size: p.en2size, Accepted: p.accepted, Rejected: p.rejected, Throttled: p.throttled}
		if p.state != source.StateSick {
			out[i].SickReason = ""
		}
	}
	c.mu.Unlock()
	if live != nil {
		d, m, e1, e2, inf := live.snapshot()
		st := &out[live.pool]
		st.Difficulty, st.RollingMask, st.Extranonce1, st.Extranonce2Size, st.InFlight = d, m, e1, e2, inf
		if ws := c.Workers(); len(ws) > 0 {
			st.Workers = ws
		}
	}
	return out
}

// Upstreams implements source.Source.
func (c *Client) Upstreams() []source.UpstreamStatus { return c.Status() }

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
