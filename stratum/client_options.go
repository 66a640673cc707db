package stratum

import (
	"io"
	"time"

	"github.com/charmbracelet/log"

	"clminer/work/health"
	"clminer/work/option"
	"clminer/work/retry"
)

// Options tune the client; zero values get the defaults in brackets.
type Options struct {
	Dialer           Dialer        // [net.Dialer with DialTimeout and TCP keepalive]
	Logger           *log.Logger   // [discard]
	ReadTimeout      time.Duration // no line for this long => the pool is silent: left as failed (see doc.go) [90 s]
	DialTimeout      time.Duration // TCP connect plus TLS handshake [10 s]
	CallTimeout      time.Duration // optional calls (configure, extranonce.subscribe, ...) [5 s]
	HandshakeTimeout time.Duration // subscribe and authorize replies [30 s]
	SubmitTimeout    time.Duration // mining.submit reply; longer than UnansweredAfter, so a silent pool is left before its shares time out [60 s]
	HoldDown         time.Duration // a higher-priority pool must pass subscribe+authorize probes this long before we return to it [60 s]
	Retry            retry.Backoff // a failing pool's retry delay [1 s doubling to 60 s, ±20%]
	MaxLineSize      int           // bytes; a longer line drops the connection [1 MiB]
	UserAgent        string        // sent in mining.subscribe and client.get_version ["clminer/dev"]

	// MaxInFlight bounds the shares awaiting a verdict per connection; a
	// share found beyond it is not sent (ErrThrottled) [64].
	MaxInFlight int
	// UnansweredAfter: no submit answered for this long while some wait
	// marks the pool sick [30 s].
	UnansweredAfter time.Duration
	// UnansweredStreak: this many submit timeouts in a row mark it sick [5].
	UnansweredStreak int
	// RejectStreak: this many host-verified shares rejected in a row mark
	// it sick [5]; two or more over UnansweredAfter without an accept do too.
	RejectStreak int
	// SickHoldDown is how long a sick pool is left alone before it is
	// probed again; it doubles for each sickness in a row, up to 16x
	// [HoldDown].
	SickHoldDown time.Duration

	// DeviceWorkers maps a device id to a sub-worker key: a device's shares
	// go under that worker (see AddWorker), which every session authorizes
	// after the pool's own user. nil: every share goes under the pool user.
	DeviceWorkers map[string]string
	// WorkerName turns a pool user and a sub-worker key into the worker
	// name authorized on that pool [user + "." + key].
	WorkerName func(user, key string) string

	// Now is the clock every decision reads [time.Now]: submit and call
	// expiry, the health windows, the hold-downs and backoff schedule,
	// whether a session worked long enough to count as healthy, and
	// suggest_difficulty's share rate. A test sets it to fabricate times
	// (the shape of stratum/v2/channel's and cgapi's Now). Socket deadlines
	// (the ReadTimeout silence rule among them) and timers that only wait
	// stay on the real clock: the kernel and the runtime keep those.
	Now func() time.Time
}

// healthRule is the sick rule of the client's sessions: every clause of
// work/health, with the options' numbers.
func (o *Options) healthRule() health.Rule {
	return health.Rule{TimeoutStreak: o.UnansweredStreak, Unanswered: o.UnansweredAfter, RejectStreak: o.RejectStreak}
}

func (o *Options) defaults() {
	option.Default(&o.ReadTimeout, 90*time.Second)
	option.Default(&o.DialTimeout, 10*time.Second)
	option.Default(&o.CallTimeout, 5*time.Second)
	option.Default(&o.HandshakeTimeout, 30*time.Second)
	option.Default(&o.SubmitTimeout, 60*time.Second)
	option.Default(&o.HoldDown, 60*time.Second)
	o.Retry = o.Retry.WithDefaults()
	option.Default(&o.UnansweredAfter, 30*time.Second)
	option.Default(&o.SickHoldDown, o.HoldDown)
	option.Default(&o.MaxLineSize, DefaultMaxLineSize)
	option.Default(&o.MaxInFlight, 64)
	option.Default(&o.UnansweredStreak, 5)
	option.Default(&o.RejectStreak, 5)
	if o.UserAgent == "" {
		o.UserAgent = defaultUserAgent
	}
	if o.Logger == nil {
		o.Logger = log.New(io.Discard)
	}
	if o.Dialer == nil {
		o.Dialer = defaultDialer(o.DialTimeout)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.WorkerName == nil {
		o.WorkerName = func(user, key string) string { return user + "." + key }
	}
}

// DefaultMaxLineSize is the default line cap. It must hold the largest job
// the limits in package work allow (two 64 KiB coinbase parts are 256 KiB of
// hex, plus the branch): pools with many payout outputs send 50-100 KB
// notify lines. It still bounds what a pool that never sends a newline can
// make the miner buffer.
const DefaultMaxLineSize = 1 << 20

// now reads the client's clock (Options.Now).
func (c *Client) now() time.Time { return c.opts.Now() }
