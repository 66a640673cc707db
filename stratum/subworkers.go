package stratum

import (
	"errors"
	"fmt"
	"time"

	"clminer/stratum/wire"
	"clminer/work/source"
)

// subWorker is one sub-worker's authorize on one connection.
type subWorker struct {
	name   string
	state  string
	reason string
	done   chan struct{} // closed once the pool answered (or did not in time)
}

// authorizeWorkers sends mining.authorize for each key not yet asked on this
// connection. Nobody waits: the reply (or the timeout) sets the state, and
// until it is authorized the key's shares go under the pool user.
func (s *session) authorizeWorkers(keys []string) {
	for _, key := range keys {
		name := s.c.opts.WorkerName(s.pc.User, key)
		s.mu.Lock()
		if s.subWorkers == nil {
			s.subWorkers = map[string]*subWorker{}
		}
		if s.subWorkers[key] != nil {
			s.mu.Unlock()
			continue
		}
		w := &subWorker{name: name, state: WorkerPending, done: make(chan struct{})}
		s.subWorkers[key] = w
		s.mu.Unlock()
		now := s.c.now()
		cl := &call{method: wire.MethodAuthorize, sent: now, deadline: now.Add(s.c.opts.HandshakeTimeout)}
		cl.cb = func(m *wire.Message, err error) {
			reason := ""
			switch {
			case err != nil:
				reason = err.Error()
			case !IsTrue(m.Result):
				reason = "result is not true"
				if e := ParseError(m.Error, m.RejectReason); e != nil {
					reason = e.Error()
				}
			}
			s.mu.Lock()
			if reason == "" {
				w.state = WorkerAuthorized
			} else {
				w.state, w.reason = WorkerRefused, reason
			}
			close(w.done)
			s.mu.Unlock()
			if reason != "" && !errors.Is(err, ErrSessionClosed) {
				s.log.Warn("pool refused a sub-worker; its shares go under the pool user", "event", "pool.worker_refused",
					"worker", name, "user", s.pc.User, "err", reason)
			} else if reason == "" {
				s.log.Debug("sub-worker authorized", "event", "pool.worker_authorized", "worker", name)
			}
		}
		if _, _, err := s.sendCall(cl, AuthorizeParams(name, s.pc.Pass)); err != nil {
			return
		}
	}
}

// workerName is the name to submit key's shares under on this connection:
// only once the pool accepted it.
func (s *session) workerName(key string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w := s.subWorkers[key]; w != nil && w.state == WorkerAuthorized {
		return w.name, true
	}
	return "", false
}

// forgetWorker drops key from this connection: its shares go under the
// pool user. (The pool keeps it authorized; Stratum has no way back.)
func (s *session) forgetWorker(key string) {
	s.mu.Lock()
	delete(s.subWorkers, key)
	s.mu.Unlock()
}

// workerDone is closed once the pool answered key's authorize here; nil
// when it was never asked on this connection.
func (s *session) workerDone(key string) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w := s.subWorkers[key]; w != nil {
		return w.done
	}
	return nil
}

func (s *session) workerStatus(key string) (string, string, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w := s.subWorkers[key]; w != nil {
		return w.name, w.state, w.reason
	}
	return s.c.opts.WorkerName(s.pc.User, key), WorkerPending, ""
}

// MaxWorkers bounds the sub-workers one client authorizes on each session:
// a proxy adds one per downstream worker name, and a pool is not asked to
// authorize an unbounded list on every reconnect.
const MaxWorkers = 4096

// ErrTooManyWorkers is returned by AddWorker past MaxWorkers.
var ErrTooManyWorkers = errors.New("stratum: too many sub-workers")

// workerRec is one sub-worker's counters across sessions and pools.
type workerRec struct {
	key      string
	accepted uint64
	rejected uint64
}

// Sub-worker states (WorkerStatus.State).
const (
	WorkerPending    = "pending"    // authorize sent, no answer yet (or no live session)
	WorkerAuthorized = "authorized" // its shares go under its own name
	WorkerRefused    = "refused"    // the pool said no: its shares go under the pool user
)

// MaxWorkerKeyLen bounds a worker key PoolSafe makes: short enough for any
// pool once the pool user and a '.' come before it.
const MaxWorkerKeyLen = 32

// PoolSafe is name in the characters every pool takes in a worker name
// (ASCII letters, digits, '-' and '_'), at most MaxWorkerKeyLen bytes: each
// other byte is written as sub, or dropped when sub is 0. It is the one
// filter for sub-worker keys, whether made from a device id or from a
// downstream miner's name.
func PoolSafe(name string, sub byte) string {
	out := make([]byte, 0, min(len(name), MaxWorkerKeyLen))
	for i := 0; i < len(name) && len(out) < MaxWorkerKeyLen; i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_':
			out = append(out, c)
		case sub != 0:
			out = append(out, sub)
		}
	}
	return string(out)
}

// AddWorker registers sub-worker key: every session, the live one at once,
// authorizes WorkerName(pool user, key) after the pool user, and shares
// submitted under key (Send with Share.Worker, or a device of DeviceWorkers) carry that
// name once the pool accepted it. Adding a key twice is a no-op.
func (c *Client) AddWorker(key string) error {
	if key == "" || len(key) > MaxWorkerLen {
		return fmt.Errorf("stratum: sub-worker key %q: want 1..%d bytes", clip(key), MaxWorkerLen)
	}
	c.mu.Lock()
	if c.workers == nil {
		c.workers = map[string]*workerRec{}
	}
	if c.workers[key] != nil {
		c.mu.Unlock()
		return nil
	}
	if len(c.workers) >= MaxWorkers {
		c.mu.Unlock()
		return fmt.Errorf("%w: %d already", ErrTooManyWorkers, MaxWorkers)
	}
	c.workers[key] = &workerRec{key: key}
	c.workerSeq = append(c.workerSeq, key)
	s := c.live
	c.mu.Unlock()
	if s != nil {
		s.authorizeWorkers([]string{key})
	}
	return nil
}

// RemoveWorker forgets sub-worker key: later sessions do not authorize it,
// and its shares go under the pool user. A proxy removes the name of a
// miner that left, so that a reconnect does not authorize every name ever
// seen.
func (c *Client) RemoveWorker(key string) {
	c.mu.Lock()
	if c.workers[key] == nil {
		c.mu.Unlock()
		return
	}
	delete(c.workers, key)
	for i, k := range c.workerSeq {
		if k == key {
			c.workerSeq = append(c.workerSeq[:i], c.workerSeq[i+1:]...)
			break
		}
	}
	s := c.live
	c.mu.Unlock()
	if s != nil {
		s.forgetWorker(key)
	}
}

// WaitWorker waits up to d for the live session's verdict on sub-worker
// key (AddWorker first) and returns its state: a proxy answers a miner's
// authorize once the pool has, so that the miner's first share already
// goes under its own name.
func (c *Client) WaitWorker(key string, d time.Duration) (name, state string) {
	c.mu.Lock()
	s := c.live
	c.mu.Unlock()
	if s == nil {
		return "", WorkerPending
	}
	if ch := s.workerDone(key); ch != nil {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ch:
		case <-t.C:
		case <-s.done:
		}
	}
	name, state, _ = s.workerStatus(key)
	return name, state
}

func (c *Client) workerKeys() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.workerSeq...)
}

// Workers returns every sub-worker, in the order added, with its standing
// on the live session.
func (c *Client) Workers() []source.WorkerStatus {
	c.mu.Lock()
	live := c.live
	out := make([]source.WorkerStatus, 0, len(c.workerSeq))
	for _, k := range c.workerSeq {
		w := c.workers[k]
		out = append(out, source.WorkerStatus{Key: k, State: WorkerPending, Accepted: w.accepted, Rejected: w.rejected})
	}
	c.mu.Unlock()
	for i := range out {
		if live != nil {
			out[i].Name, out[i].State, out[i].Reason = live.workerStatus(out[i].Key)
		}
	}
	return out
}
