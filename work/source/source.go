package source

import (
	"context"
	"fmt"
	"time"

	"clminer/work"
	"clminer/work/ledger"
)

// Job is one unit of upstream work as the miner core sees it.
type Job struct {
	*work.Job
	// Entry is the job's ledger entry: the work position, the difficulty
	// shares are judged at, the shares already sent, and whether the
	// upstream still holds the job.
	Entry *ledger.Entry
	// RollingMask is the version-rolling mask in force (0: no rolling).
	RollingMask uint32
	// Clean: the source has dropped every older job (their entries are no
	// longer live). Informational: liveness is what decides.
	Clean bool
	// Received is when the upstream sent the job, for notify-to-work latency.
	Received time.Time

	Pool    int    // index in the upstream list
	PoolURL string // where it came from, without credentials
	Session uint64 // the connection that sent it; shares go only there
	Worker  string

	// TargetAtOnce: the upstream applies a change of target to every job
	// it holds at once, in both directions (Stratum V2's SetTarget), and
	// the job is re-issued with it. Otherwise Difficulty is what this job
	// is judged at for its whole life, stamped per job (Stratum v1: a
	// lowering applies from the second job after it, a raise re-issues).
	// A proxy that serves Stratum v1 miners tells them a V2 lowering under
	// the v1 rule.
	TargetAtOnce bool
	// BlocksOnly: the upstream takes only candidates that meet the job's
	// target, which is the network's (a node mined solo): what it is sent
	// is a block. Shares below it are the consumer's own business (a proxy
	// judges its miners' shares at difficulties of its own).
	BlocksOnly bool
}

// Share is a host-verified candidate to send upstream.
type Share struct {
	Job   *Job
	Unit  *work.Unit
	Nonce uint32
	// Device is the id of the device that found it, for a source that
	// credits devices separately (Stratum's worker per device).
	Device string
	// Worker is the sub-worker key to credit it to (Workers.AddWorker), for
	// a proxy that credits each downstream miner; it takes precedence over
	// Device. Sources without sub-workers ignore it.
	Worker string
}

// ReplyKind is what became of a share handed to Send.
type ReplyKind int

// Reply kinds.
const (
	// Accepted: the upstream credited the share.
	Accepted ReplyKind = iota
	// Rejected: the upstream refused it (Reason says why).
	Rejected
	// NotSent: the connection that issued the job is gone; nothing was sent.
	NotSent
	// Throttled: too many shares already await a verdict; nothing was sent.
	Throttled
	// NoReply: sent, but no verdict came (timeout, connection lost).
	NoReply
)

func (k ReplyKind) String() string {
	names := [...]string{"accepted", "rejected", "not-sent", "throttled", "no-reply"}
	if k < 0 || int(k) >= len(names) {
		return fmt.Sprintf("reply(%d)", int(k))
	}
	return names[k]
}

// Reply is the verdict on one share.
type Reply struct {
	Kind   ReplyKind
	Reason string
	// Code is the upstream's numeric reject code where its protocol has one
	// (Stratum v1's error code), for a proxy that passes it on.
	Code int
	RTT  time.Duration
	// Submitted are the wire fields as sent, for the share log.
	Extranonce2, NTime, VersionBits string
}

// Sink receives what a source produces, in order, from one goroutine.
type Sink interface {
	// Job makes j the current job.
	Job(j *Job)
	// NoWork: no upstream has a live job; stop hashing until the next Job.
	NoWork(reason string)
	// Event reports a change of an upstream's state.
	Event(e Event)
}

// Source is an upstream of work: a pool list, a node, a V2 channel.
type Source interface {
	// Run produces jobs into sink until ctx ends, then returns ctx's error
	// once every goroutine it started has finished.
	Run(ctx context.Context, sink Sink) error
	// Send submits a share of a job this source issued. It does not block;
	// done is called exactly once, possibly before Send returns.
	Send(sh Share, done func(Reply))
	// Upstreams is a snapshot of every upstream, for status and metrics.
	Upstreams() []UpstreamStatus
}

// Workers is what a source adds whose upstream credits shares to
// sub-accounts (a Stratum v1 pool's sub-workers): a proxy authorizes each
// downstream worker name as one and sends its shares under it
// (Share.Worker). Stratum V2 and nodes have no such accounts.
type Workers interface {
	// AddWorker registers sub-worker key on every session (the live one at
	// once). Adding a key twice is a no-op.
	AddWorker(key string) error
	// RemoveWorker forgets key: its shares go under the main account.
	RemoveWorker(key string)
	// WaitWorker waits up to d for the live session's verdict on key and
	// returns the name it has upstream and its state (WorkerStatus.State).
	WaitWorker(key string, d time.Duration) (name, state string)
	// Workers is a snapshot of every sub-worker.
	Workers() []WorkerStatus
}

// SubWorkers returns src's sub-workers, or nil when none of its upstreams
// has them. A source that may or may not have them, depending on what it
// is made of (a failover chain), says so with a SubWorkers method.
func SubWorkers(src Source) Workers {
	if s, ok := src.(interface{ SubWorkers() Workers }); ok {
		return s.SubWorkers()
	}
	if w, ok := src.(Workers); ok {
		return w
	}
	return nil
}

// EventKind names an upstream event.
type EventKind int

// Upstream events.
const (
	EventConnecting EventKind = iota
	EventConnected
	EventAuthorized
	EventAuthFailed
	EventDisconnected
	EventFailover
	EventReconnectRequested
	// EventSick: the upstream was left because it stopped answering or
	// rejected host-verified shares in a streak (Err says which).
	EventSick
)

func (k EventKind) String() string {
	names := [...]string{"connecting", "connected", "authorized", "auth-failed", "disconnected", "failover", "reconnect-requested", "sick"}
	if k < 0 || int(k) >= len(names) {
		return fmt.Sprintf("event(%d)", int(k))
	}
	return names[k]
}

// Event reports a change of an upstream's connection.
type Event struct {
	Kind    EventKind
	Pool    int
	URL     string
	Session uint64
	From    int // for EventFailover
	To      int // for EventFailover
	Err     error
	Time    time.Time
}

// Event is an event of this upstream in a source that has no other (a
// Stratum V2 pool, a node mined solo: Pool 0), stamped now. One
// constructor, so such sources cannot disagree on what their events carry.
func (st *UpstreamStatus) Event(k EventKind, session uint64, err error) Event {
	return Event{Kind: k, Pool: 0, URL: st.URL, Session: session, Err: err, Time: time.Now()}
}

// State is the state of one upstream.
type State int

// Upstream states.
const (
	StateIdle State = iota
	StateConnecting
	StateActive
	StateDown
	// StateSick: left for its behaviour, held down before it is tried again.
	StateSick
)

func (s State) String() string {
	names := [...]string{"idle", "connecting", "active", "down", "sick"}
	if s < 0 || int(s) >= len(names) {
		return fmt.Sprintf("state(%d)", int(s))
	}
	return names[s]
}

// UpstreamStatus is a snapshot of one upstream.
type UpstreamStatus struct {
	Index int
	URL   string
	// Protocol is how the upstream is spoken to: stratum, stratum2,
	// getblocktemplate.
	Protocol        string
	State           State
	Connects        uint64 // successful connects
	Failovers       uint64 // times the source left this upstream for another
	Failures        int    // consecutive failures (drives the backoff)
	LastError       string
	SickReason      string // why it was last marked sick, while it is
	Difficulty      float64
	RollingMask     uint32
	Extranonce1     string
	Extranonce2Size int
	Accepted        uint64
	Rejected        uint64
	InFlight        int    // shares awaiting a verdict
	Throttled       uint64 // shares not sent because InFlight was at its bound
	// Channel names a Stratum V2 channel: its kind and id ("standard 7").
	Channel string
	// Node is set for a node mined solo.
	Node *NodeStatus
	// Workers are the sub-accounts shares are credited to on this
	// upstream (set on the live one), beside its main account.
	Workers []WorkerStatus
}

// NodeStatus is what a solo upstream adds: the chain, the template and the
// blocks sent to it.
type NodeStatus struct {
	Chain             string
	Height            int64 // of the block being mined
	TemplateTime      time.Time
	Transactions      int // in the current template
	NetworkDifficulty float64
	BlocksSubmitted   uint64
	BlocksAccepted    uint64
	BlocksRejected    uint64
	RejectReasons     map[string]uint64
	LastBlock         string // hash of the last accepted block
}

// WorkerStatus is one sub-account an upstream credits shares to: Stratum's
// worker per device, or per downstream miner of a proxy.
type WorkerStatus struct {
	Key   string `json:"key"`
	Name  string `json:"name"`
	State string `json:"state"` // pending, authorized or refused (its shares then go to the main account)
	// Reason says why it was refused.
	Reason string `json:"reason,omitempty"`
	// Accepted and Rejected count its shares since start, on any upstream.
	Accepted uint64 `json:"accepted"`
	Rejected uint64 `json:"rejected"`
}
