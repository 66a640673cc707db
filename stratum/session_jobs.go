package stratum

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"clminer/work"
	"clminer/work/ledger"
	"clminer/work/source"
)

func (s *session) applySubscribe(r SubscribeResult) {
	s.mu.Lock()
	s.subscribed = true
	s.en1, s.en2size = r.Extranonce1, r.Extranonce2Size
	s.sessionID = r.SessionID
	queued := s.queued
	s.queued = nil
	s.mu.Unlock()
	for _, q := range queued {
		s.onNotify(q)
	}
}

// jobIDRoundTrips reports whether a job id survives being echoed back: a
// JSON string that held invalid UTF-8 or a lone surrogate decodes to U+FFFD
// and would be sent back rewritten, so every share for it is rejected.
func jobIDRoundTrips(id string) bool {
	return utf8.ValidString(id) && !strings.ContainsRune(id, utf8.RuneError)
}

func (s *session) onNotify(raw json.RawMessage) {
	p, err := ParseNotify(raw)
	if err != nil {
		s.logJob.Warn(s.log, "ignoring bad mining.notify", "event", "pool.job_refused", "err", err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.subscribed {
		if len(s.queued) >= 8 {
			s.queued = s.queued[1:]
		}
		s.queued = append(s.queued, raw)
		return
	}
	if s.pendingEN != nil {
		s.en1, s.en2size = s.pendingEN.en1, s.pendingEN.size
		s.pendingEN = nil
	}
	// A prevhash change is a new block whatever the flag says (cgminer does
	// the same): hashing on the old one only makes stale shares.
	clean := p.CleanJobs || s.prevHash != "" && !strings.EqualFold(s.prevHash, p.PrevHash)
	refuse := func(msg string, kv ...any) {
		s.logJob.Warn(s.log, msg, append(kv, "event", "pool.job_refused", "job", fmt.Sprintf("%q", clip(p.JobID)))...)
		if clean && !s.probe {
			// The pool moved on to a job we cannot mine: everything we hold
			// is stale, so stop rather than hash for rejects.
			s.prevHash = p.PrevHash
			s.led.Reset()
			s.latest = nil
			if s.authorized && !s.retired {
				s.c.noWork("the pool's new job is unusable: " + msg)
			}
		}
	}
	if !jobIDRoundTrips(p.JobID) {
		refuse("refusing a job whose id cannot be sent back unchanged (not valid UTF-8)")
		return
	}
	space := s.en1 + "/" + fmt.Sprint(s.en2size)
	var known *ledger.Entry
	if !s.probe {
		known = s.led.Lookup(space, p.JobID)
	}
	// The difficulty this notify is judged at: the highest in force since
	// the previous notify (stratum/PROTOCOL.md#difficulty). A lowering therefore applies
	// from the second job after it, which is what ckpool enforces; a raise
	// applies at once (onDifficulty). A job the pool sends again keeps what
	// it was judged at, and does not count as the next job: only a new job
	// moves the window on.
	judged := math.Max(s.accDiff, s.diff)
	if known != nil {
		judged = math.Max(judged, known.Difficulty())
	}
	p.Extranonce1, p.Extranonce2Size, p.Difficulty = s.en1, s.en2size, judged
	wj, err := work.NewJob(p)
	if err != nil {
		refuse("ignoring invalid job from pool", "err", err)
		return
	}
	s.notifies++
	if known == nil {
		s.accDiff = s.diff
	}
	if s.probe {
		return
	}
	entry, err := s.led.Job(space, p.JobID, s.en2size, judged)
	if err != nil {
		refuse("ignoring job the ledger cannot hold", "err", err)
		return
	}
	s.prevHash = p.PrevHash
	if clean {
		s.led.Retain(p.JobID)
	}
	j := s.newJobLocked(wj, entry, clean)
	s.latest = j
	if s.authorized {
		s.emitLocked(j)
	}
}

func (s *session) newJobLocked(wj *work.Job, entry *ledger.Entry, clean bool) *source.Job {
	var mask uint32
	if s.rolling {
		mask = s.mask
	}
	return &source.Job{Job: wj, Entry: entry, Pool: s.pool, PoolURL: s.url.String(), Session: s.id, Worker: s.worker,
		RollingMask: mask, Clean: clean, Received: s.c.now()}
}

// emitLocked hands a job to the consumer. The first job of a session says
// Clean: work from another connection cannot be submitted here (its
// ledger entries stay, so a resumed session continues where it stopped).
func (s *session) emitLocked(j *source.Job) {
	if s.retired {
		return
	}
	if !s.emittedAny {
		j.Clean = true
		s.emittedAny = true
	}
	s.c.emitJob(j)
}

// onDifficulty stamps the new value on later jobs. A raise also applies to
// every job the pool holds (public-pool enforces it at once): their ledger
// entries are raised and the latest job is re-issued with the harder target,
// continuing from the same position. A lowering changes nothing already sent:
// the pool may judge current and next jobs at the old value (ckpool does).
func (s *session) onDifficulty(d float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.notifies == 0 {
		s.accDiff = d // nothing judged yet: the value before any job does not count
	} else {
		s.accDiff = math.Max(s.accDiff, d)
	}
	s.diff = d
	if s.probe {
		return
	}
	s.led.RaiseDifficulty(d)
	if s.latest == nil || d <= s.latest.Difficulty || !s.latest.Entry.Live() {
		return
	}
	// Re-issue by copy: the header fields are the job's, only the target
	// changes, so a stream of set_difficulty costs no re-parse of the job.
	wj := *s.latest.Job
	wj.Difficulty = s.latest.Entry.Difficulty()
	t, err := work.TargetForDifficulty(wj.Difficulty)
	if err != nil {
		return
	}
	wj.ShareTarget = t
	j := s.newJobLocked(&wj, s.latest.Entry, false)
	j.RollingMask = s.latest.RollingMask
	s.latest = j
	if s.authorized {
		s.emitLocked(j)
	}
}

// setMask applies a granted mask at once and re-issues the latest job with
// it; the ledger moves that job to a fresh extranonce2, so no version is
// hashed twice.
func (s *session) setMask(granted uint32, rolling bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !rolling {
		s.log.Debug("set_version_mask without negotiated rolling; ignored", "event", "pool.bad_message", "mask", fmt.Sprintf("%08x", granted))
		return
	}
	s.rolling = true
	s.mask = work.RollingMask(granted)
	if s.latest != nil && s.latest.RollingMask != s.mask {
		j := *s.latest
		j.RollingMask = s.mask
		j.Clean = false
		j.Received = s.c.now()
		s.latest = &j
		if s.authorized {
			s.emitLocked(&j)
		}
	}
}

func (s *session) currentDiff() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.diff
}
