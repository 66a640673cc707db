package sourcetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"clminer/work"
	"clminer/work/ledger"
	"clminer/work/source"
)

// Worker is the name shares are sent under.
const Worker = "wallet.rig1"

// Verdict decides the reply to a share. Always makes one that answers every
// share alike; a test may script any other.
type Verdict func(source.Share) source.Reply

// Always answers every share with kind and reason. A pool's stale verdict
// is Rejected with its reason ("Stale", "Job not found"); NotSent is the
// client's own stale (the job's session is gone); NoReply is a timeout.
func Always(kind source.ReplyKind, reason string) Verdict {
	return func(source.Share) source.Reply { return source.Reply{Kind: kind, Reason: reason} }
}

// Sent is one share the consumer sent, with what became of it.
type Sent struct {
	Share source.Share
	// Valid: its hash meets the target its job is judged at, as a pool
	// checks; Duplicate: the same share of the same job was sent before.
	Valid, Duplicate bool
	// Answered is set once done was called, with Reply.
	Answered bool
	Reply    source.Reply
}

// JobSpec is what a job is like. The zero value is a job of upstream 0 at
// difficulty 1 with a 4-byte extranonce2 and no version rolling.
type JobSpec struct {
	Pool       int
	Difficulty float64
	// Clean: the upstream drops its other jobs (their entries die).
	Clean bool
	// Block is the block the job builds on: jobs of one Block name the same
	// previous-block hash.
	Block           byte
	RollingMask     uint32
	Extranonce2Size int
}

type upstream struct {
	status  source.UpstreamStatus
	led     *ledger.Ledger
	session uint64
	space   string
}

type pending struct {
	i     int // index in Source.sent
	pool  int
	done  func(source.Reply)
	reply source.Reply
	timer *time.Timer
}

// Source is a scripted source.Source. Create it with New.
type Source struct {
	mu        sync.Mutex
	ups       []*upstream
	issued    map[*source.Job]bool
	queue     []func(source.Sink)
	wake      chan struct{}
	running   bool
	stopped   bool // Run returned: no share will be answered later
	verdict   Verdict
	delay     time.Duration
	hold      bool
	sent      []Sent
	keys      map[string]map[ledger.Key]bool // by job ID
	pending   map[int]*pending
	timers    sync.WaitGroup
	jobs      int
	sessionID uint64
}

// New returns a source of n upstreams (at least one), all active, that
// accepts every share at once until told otherwise.
func New(n int) *Source {
	s := &Source{issued: map[*source.Job]bool{}, wake: make(chan struct{}, 1), verdict: Always(source.Accepted, ""),
		keys: map[string]map[ledger.Key]bool{}, pending: map[int]*pending{}}
	for i := range max(n, 1) {
		s.sessionID++
		u := &upstream{led: ledger.New(0), session: s.sessionID, space: fmt.Sprintf("en1-%d-%d", i, s.sessionID)}
		u.status = source.UpstreamStatus{Index: i, URL: fmt.Sprintf("scripted://pool%d", i), Protocol: "scripted",
			State: source.StateActive, Connects: 1}
		s.ups = append(s.ups, u)
	}
	return s
}

// Script makes v decide the replies to shares sent from now on.
func (s *Source) Script(v Verdict) {
	s.mu.Lock()
	s.verdict = v
	s.mu.Unlock()
}

// Delay makes replies to shares sent from now on come d after Send (0: at
// once), as a pool's verdicts take a round trip.
func (s *Source) Delay(d time.Duration) {
	s.mu.Lock()
	s.delay = d
	s.mu.Unlock()
}

// Hold keeps the replies to shares sent from now on until Release.
func (s *Source) Hold() {
	s.mu.Lock()
	s.hold = true
	s.mu.Unlock()
}

// Release stops holding and answers every share held so far.
func (s *Source) Release() {
	s.mu.Lock()
	s.hold = false
	var ps []*pending
	for _, p := range s.pending {
		if p.timer == nil {
			ps = append(ps, p)
		}
	}
	s.mu.Unlock()
	for _, p := range ps {
		s.answer(p, p.reply)
	}
}

// Job issues a job as spec says and queues it for the sink. It returns the
// job as the consumer will get it.
func (s *Source) Job(spec JobSpec) (*source.Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if spec.Pool < 0 || spec.Pool >= len(s.ups) {
		return nil, fmt.Errorf("sourcetest: no upstream %d", spec.Pool)
	}
	u := s.ups[spec.Pool]
	if spec.Difficulty == 0 {
		spec.Difficulty = 1
	}
	if spec.Extranonce2Size == 0 {
		spec.Extranonce2Size = 4
	}
	s.jobs++
	id := fmt.Sprintf("j%d", s.jobs)
	wj, err := work.NewJob(work.JobParams{JobID: id, PrevHash: fmt.Sprintf("%02x", spec.Block) + fmt.Sprintf("%062x", 0),
		Coinb1: "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff0c",
		Coinb2: "ffffffff0100f2052a01000000016a00000000", Version: "20000000", NBits: "1d00ffff", NTime: "5b906723",
		CleanJobs: spec.Clean, Extranonce1: "01020304", Extranonce2Size: spec.Extranonce2Size, Difficulty: spec.Difficulty})
	if err != nil {
		return nil, err
	}
	e, err := u.led.Job(u.space, id, spec.Extranonce2Size, spec.Difficulty)
	if err != nil {
		return nil, err
	}
	if spec.Clean {
		u.led.Retain(id)
	}
	u.status.Difficulty, u.status.RollingMask = spec.Difficulty, spec.RollingMask
	j := &source.Job{Job: wj, Entry: e, RollingMask: spec.RollingMask, Clean: spec.Clean, Pool: spec.Pool,
		PoolURL: u.status.URL, Session: u.session, Worker: Worker}
	s.issued[j] = true
	s.enqueueLocked(func(sink source.Sink) {
		j.Received = time.Now()
		sink.Job(j)
	})
	return j, nil
}

// MustJob is Job for specs that cannot fail (a valid pool index).
func (s *Source) MustJob(spec JobSpec) *source.Job {
	j, err := s.Job(spec)
	if err != nil {
		panic(err)
	}
	return j
}

// Event queues e for the sink, stamped now if it has no time.
func (s *Source) Event(e source.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.enqueueLocked(func(sink source.Sink) {
		if e.Time.IsZero() {
			e.Time = time.Now()
		}
		sink.Event(e)
	})
}

// NoWork queues a NoWork for the sink.
func (s *Source) NoWork(reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.enqueueLocked(func(sink source.Sink) { sink.NoWork(reason) })
}

// Disconnect ends the session of upstream pool, as a dropped connection
// does: its jobs die, shares of them are no longer sent, the shares it
// still owes a verdict get none (NoReply), and a Disconnected event is
// queued. The next job of the upstream is of a new session.
func (s *Source) Disconnect(pool int, err error) {
	s.mu.Lock()
	u := s.ups[pool]
	old := u.session
	u.led.Reset()
	s.sessionID++
	u.session, u.space = s.sessionID, fmt.Sprintf("en1-%d-%d", pool, s.sessionID)
	var ps []*pending
	for _, p := range s.pending {
		if p.pool == pool {
			ps = append(ps, p)
		}
	}
	s.enqueueLocked(func(sink source.Sink) {
		sink.Event(source.Event{Kind: source.EventDisconnected, Pool: pool, URL: u.status.URL, Session: old, Err: err, Time: time.Now()})
	})
	s.mu.Unlock()
	for _, p := range ps {
		s.answer(p, source.Reply{Kind: source.NoReply, Reason: "connection lost"})
	}
}

func (s *Source) enqueueLocked(f func(source.Sink)) {
	s.queue = append(s.queue, f)
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run hands what the test queued to sink, in order, until ctx ends; then
// answers every share still owed a verdict (NoReply) and returns ctx's
// error.
func (s *Source) Run(ctx context.Context, sink source.Sink) error {
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return errors.New("sourcetest: Run called twice")
	}
	s.running, s.stopped = true, false
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.running = false
		s.mu.Unlock()
	}()
	for {
		s.mu.Lock()
		q := s.queue
		s.queue = nil
		s.mu.Unlock()
		for _, f := range q {
			f(sink)
		}
		select {
		case <-ctx.Done():
			s.stop()
			return ctx.Err()
		case <-s.wake:
		}
	}
}

// stop answers every pending share NoReply and waits for the timers of
// delayed replies.
func (s *Source) stop() {
	s.mu.Lock()
	s.stopped = true
	var ps []*pending
	for _, p := range s.pending {
		ps = append(ps, p)
	}
	s.mu.Unlock()
	for _, p := range ps {
		s.answer(p, source.Reply{Kind: source.NoReply, Reason: "source stopped"})
	}
	s.timers.Wait()
}

// Send records sh and answers it as scripted. A share of a job this source
// did not issue, or of a session that is gone, is not sent (NotSent), as
// the contract requires; so is one sent after Run returned.
func (s *Source) Send(sh source.Share, done func(source.Reply)) {
	s.mu.Lock()
	rec := Sent{Share: sh}
	var wire work.Submit
	var reply source.Reply
	issued := sh.Job != nil && s.issued[sh.Job]
	switch {
	case s.stopped:
		// Nothing would ever answer it.
		reply = source.Reply{Kind: source.NotSent, Reason: "the source has stopped"}
	case !issued || sh.Job.Session != s.ups[sh.Job.Pool].session || sh.Unit == nil:
		reply = source.Reply{Kind: source.NotSent, Reason: "the job's session is gone"}
	default:
		if ok, _ := sh.Job.Entry.Judge(sh.Unit.Hash(sh.Nonce)); ok {
			rec.Valid = true
		}
		k := ledger.ShareKey(sh.Unit, sh.Nonce)
		if s.keys[sh.Job.ID] == nil {
			s.keys[sh.Job.ID] = map[ledger.Key]bool{}
		}
		rec.Duplicate = s.keys[sh.Job.ID][k]
		s.keys[sh.Job.ID][k] = true
		wire, _ = sh.Unit.Submit(sh.Job.Worker, sh.Nonce, sh.Job.RollingMask)
		reply = s.verdict(sh)
		reply.Extranonce2, reply.NTime, reply.VersionBits = wire.Extranonce2, wire.NTime, wire.VersionBits
	}
	s.sent = append(s.sent, rec)
	i := len(s.sent) - 1
	if reply.Kind == source.NotSent {
		s.mu.Unlock()
		s.record(i, reply)
		done(reply)
		return
	}
	p := &pending{i: i, pool: sh.Job.Pool, done: done, reply: reply}
	switch {
	case s.hold:
		s.pending[i] = p
	case s.delay > 0:
		s.pending[i] = p
		s.timers.Add(1)
		p.timer = time.AfterFunc(s.delay, func() {
			defer s.timers.Done()
			s.answer(p, p.reply)
		})
	default:
		s.mu.Unlock()
		s.answer(p, reply)
		return
	}
	s.mu.Unlock()
}

// answer gives p its reply unless it has one: a delayed reply, a release
// and a stop may race for it.
func (s *Source) answer(p *pending, r source.Reply) {
	s.mu.Lock()
	if s.sent[p.i].Answered {
		s.mu.Unlock()
		return
	}
	delete(s.pending, p.i)
	if p.timer != nil && p.timer.Stop() {
		s.timers.Done() // it will not fire
	}
	s.mu.Unlock()
	s.record(p.i, r)
	p.done(r)
}

func (s *Source) record(i int, r source.Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent[i].Answered, s.sent[i].Reply = true, r
	if sh := s.sent[i].Share; sh.Job != nil && sh.Job.Pool >= 0 && sh.Job.Pool < len(s.ups) {
		st := &s.ups[sh.Job.Pool].status
		switch r.Kind {
		case source.Accepted:
			st.Accepted++
		case source.Rejected:
			st.Rejected++
		}
	}
}

// Sent is every share sent so far, in order.
func (s *Source) Sent() []Sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Sent(nil), s.sent...)
}

// Pending is how many shares await their reply.
func (s *Source) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}

// Upstreams is a snapshot of every upstream.
func (s *Source) Upstreams() []source.UpstreamStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]source.UpstreamStatus, len(s.ups))
	for i, u := range s.ups {
		out[i] = u.status
		for _, p := range s.pending {
			if p.pool == i {
				out[i].InFlight++
			}
		}
	}
	return out
}
