package ledger

import (
	"errors"
	"math"
	"sync"

	"clminer/work"
)

// Limits. Both are far above what a real pool needs and exist so that a
// hostile pool cannot grow memory: a pool keeps a handful of jobs, and a
// device's shares on one job are found at most a few per second.
const (
	// DefaultMaxJobs is how many jobs one ledger remembers.
	DefaultMaxJobs = 64
	// MaxKeys bounds the duplicate sets of all jobs of one ledger together.
	// Units are never handed out twice, so a key is only ever seen again when
	// a device reports the same nonce twice; the oldest keys go first.
	MaxKeys = 1 << 16
)

// Errors of Entry.Next.
var (
	// ErrExhausted: every extranonce2 and version of the job was handed out.
	ErrExhausted = errors.New("work space of the job exhausted; waiting for the next job")
	// ErrForgotten: the pool dropped the job; nothing more may be mined on it.
	ErrForgotten = errors.New("job is no longer held by the pool")
)

// Key identifies a share within one job, as the pool compares them.
type Key struct {
	En2     [work.MaxExtranonce2Size]byte
	En2Len  uint8
	NTime   uint32
	Nonce   uint32
	Version uint32
}

// ShareKey is the key of a share found on u.
func ShareKey(u *work.Unit, nonce uint32) Key {
	k := Key{NTime: u.NTime, Nonce: nonce, Version: u.Version, En2Len: uint8(len(u.Extranonce2))}
	copy(k.En2[:], u.Extranonce2)
	return k
}

// Ledger is the memory of one upstream's share space. Safe for concurrent use.
type Ledger struct {
	mu      sync.Mutex
	space   string // extranonce1 (or the equivalent) the entries belong to
	jobs    map[string]*Entry
	order   []*Entry // oldest first
	maxJobs int
	keys    []keyRef // ring of claimed keys, for MaxKeys
	keyNext int
	// deadKeys: references in keys to forgotten entries, dropped from the
	// ring once they are half of it (compactKeysLocked).
	deadKeys int
}

type keyRef struct {
	e *Entry
	k Key
}

// New returns an empty ledger remembering at most maxJobs jobs (0: the
// default).
func New(maxJobs int) *Ledger {
	if maxJobs <= 0 {
		maxJobs = DefaultMaxJobs
	}
	return &Ledger{jobs: map[string]*Entry{}, maxJobs: maxJobs}
}

// Entry is one job of the pool's job set.
type Entry struct {
	l  *Ledger
	id string

	// guarded by l.mu
	live      bool
	en2size   int
	en2       *work.Extranonce2Counter
	base      *work.Unit // current extranonce2, unrolled
	baseJob   *work.Job  // the job base was built from
	baseMask  uint32     // the mask base's versions are rolled under
	nextRoll  uint64
	exhausted bool
	diff      float64
	target    work.Target
	submitted map[Key]struct{}
	units     uint64
}

// Job returns the entry for job id in share space space (a Stratum
// extranonce1), creating it when the pool has not sent it before. A new space
// means a new extranonce1: every older entry is forgotten. diff is the
// difficulty the pool will judge this notify of the job at; an entry that
// exists keeps the higher of its own and diff, since a re-issue never makes
// the pool more lenient about shares already found.
func (l *Ledger) Job(space, id string, en2size int, diff float64) (*Entry, error) {
	if diff <= 0 || math.IsNaN(diff) || math.IsInf(diff, 0) {
		diff = 1
	}
	return l.job(space, id, en2size, diff, nil)
}

// JobAtTarget is Job for an upstream that judges by an exact target rather
// than a difficulty: a node, whose block target a float difficulty can only
// approximate. The entry's target is t; its difficulty is for reporting.
func (l *Ledger) JobAtTarget(space, id string, en2size int, t work.Target) (*Entry, error) {
	return l.job(space, id, en2size, work.TargetDifficulty(t), &t)
}

func (l *Ledger) job(space, id string, en2size int, diff float64, exact *work.Target) (*Entry, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if space != l.space {
		l.forgetAllLocked()
		l.space = space
	}
	if e := l.jobs[id]; e != nil && e.live && e.en2size == en2size {
		if exact == nil && diff > e.diff {
			if err := e.setDiffLocked(diff); err != nil {
				return nil, err
			}
		}
		return e, nil
	}
	var en2 *work.Extranonce2Counter
	if en2size == 0 {
		en2 = work.NewHeaderOnlyCounter()
	} else {
		var err error
		if en2, err = work.NewExtranonce2Counter(en2size); err != nil {
			return nil, err
		}
	}
	e := &Entry{l: l, id: id, live: true, en2size: en2size, en2: en2, submitted: map[Key]struct{}{}}
	if exact != nil {
		e.diff, e.target = diff, *exact
	} else if err := e.setDiffLocked(diff); err != nil {
		return nil, err
	}
	if old := l.jobs[id]; old != nil {
		l.dropLocked(old)
	}
	l.jobs[id] = e
	l.order = append(l.order, e)
	for len(l.order) > l.maxJobs {
		l.dropLocked(l.order[0])
	}
	l.compactKeysLocked()
	return e, nil
}

// Lookup returns the live entry for job id in share space space, or nil.
func (l *Ledger) Lookup(space, id string) *Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	if space != l.space {
		return nil
	}
	if e := l.jobs[id]; e != nil && e.live {
		return e
	}
	return nil
}

// Retain forgets every job but id: the pool said clean_jobs (or a new block).
func (l *Ledger) Retain(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range append([]*Entry(nil), l.order...) {
		if e.id != id {
			l.dropLocked(e)
		}
	}
	l.compactKeysLocked()
}

// Reset forgets every job (a new share space, or none at all).
func (l *Ledger) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.forgetAllLocked()
	l.space = ""
}

// RaiseDifficulty makes every live job judged at d or more: the pool may
// enforce a raise at once on jobs it already sent (public-pool does).
func (l *Ledger) RaiseDifficulty(d float64) {
	if d <= 0 || math.IsNaN(d) || math.IsInf(d, 0) {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.order {
		if d > e.diff {
			_ = e.setDiffLocked(d)
		}
	}
}

// SetTarget judges every live job at exactly t from now on: a Stratum V2
// SetTarget applies to the whole channel at once, in both directions.
func (l *Ledger) SetTarget(t work.Target) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.order {
		e.target, e.diff = t, work.TargetDifficulty(t)
	}
}

// Len is the number of live jobs.
func (l *Ledger) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.order)
}

func (l *Ledger) forgetAllLocked() {
	for _, e := range l.order {
		e.forgetLocked()
	}
	l.order = nil
	l.jobs = map[string]*Entry{} // a new map: a cleared one keeps its buckets
	l.keys, l.keyNext, l.deadKeys = nil, 0, 0
}

// forgetLocked drops everything a dead entry holds but its identity: the
// key ring may point at it for a long time, and must not keep its job (up
// to two 64 KiB coinbase parts) alive.
func (e *Entry) forgetLocked() {
	e.live, e.submitted, e.base, e.baseJob, e.en2 = false, nil, nil, nil, nil
}

func (l *Ledger) dropLocked(e *Entry) {
	l.deadKeys += len(e.submitted)
	e.forgetLocked()
	if l.jobs[e.id] == e {
		delete(l.jobs, e.id)
	}
	for i, o := range l.order {
		if o == e {
			l.order = append(l.order[:i], l.order[i+1:]...)
			break
		}
	}
}

// compactKeysLocked drops the ring's references to forgotten entries once
// they are half of it, into a ring of the live keys' size, oldest first: the
// ring's memory follows the jobs the pool still holds (a clean job frees it
// all) instead of staying at MaxKeys references after any long run. The
// copy costs O(ring) once per that many keys dropped.
func (l *Ledger) compactKeysLocked() {
	if l.deadKeys == 0 || 2*l.deadKeys < len(l.keys) {
		return
	}
	n := len(l.keys)
	keys := make([]keyRef, 0, n-l.deadKeys)
	for i := 0; i < n; i++ {
		// Oldest first: from keyNext once the ring has wrapped (0 before).
		if r := l.keys[(l.keyNext+i)%n]; r.e.live {
			keys = append(keys, r)
		}
	}
	l.keys, l.keyNext, l.deadKeys = keys, 0, 0
}

func (e *Entry) setDiffLocked(d float64) error {
	t, err := work.TargetForDifficulty(d)
	if err != nil {
		return err
	}
	e.diff, e.target = d, t
	return nil
}

// ID is the job id.
func (e *Entry) ID() string { return e.id }

// Live reports whether the pool still holds the job: only then may its
// shares be sent.
func (e *Entry) Live() bool {
	e.l.mu.Lock()
	defer e.l.mu.Unlock()
	return e.live
}

// Difficulty is the difficulty the pool will judge the job's shares at now.
func (e *Entry) Difficulty() float64 {
	e.l.mu.Lock()
	defer e.l.mu.Unlock()
	return e.diff
}

// Judge reports whether hash meets the difficulty the pool judges the job at
// now, and that difficulty.
func (e *Entry) Judge(hash [32]byte) (bool, float64) {
	e.l.mu.Lock()
	defer e.l.mu.Unlock()
	return e.target.Met(hash), e.diff
}

// Units is how many units the entry has handed out.
func (e *Entry) Units() uint64 {
	e.l.mu.Lock()
	defer e.l.mu.Unlock()
	return e.units
}

// Claim records k as submitted and reports whether it was new. A false
// return means the share must not be sent: the pool already has it, or the
// job is gone.
func (e *Entry) Claim(k Key) bool {
	l := e.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if !e.live {
		return false
	}
	if _, dup := e.submitted[k]; dup {
		return false
	}
	e.submitted[k] = struct{}{}
	if len(l.keys) < MaxKeys {
		l.keys = append(l.keys, keyRef{e, k})
		return true
	}
	old := l.keys[l.keyNext]
	if old.e.submitted != nil {
		delete(old.e.submitted, old.k)
	} else {
		l.deadKeys-- // a forgotten entry's reference, overwritten
	}
	l.keys[l.keyNext] = keyRef{e, k}
	l.keyNext = (l.keyNext + 1) % MaxKeys
	return true
}

// Next hands out the next unit of job j (the entry's job as last notified)
// under the rolling mask: the next version of the current extranonce2, or
// the next extranonce2. It continues wherever the entry stopped, whatever
// re-issues of the job came in between. When the mask changes, the next
// extranonce2 starts afresh so that no (extranonce2, version) repeats.
func (e *Entry) Next(j *work.Job, mask uint32) (*work.Unit, error) {
	e.l.mu.Lock()
	defer e.l.mu.Unlock()
	if !e.live {
		return nil, ErrForgotten
	}
	if e.exhausted {
		return nil, ErrExhausted
	}
	if j.Extranonce2Size != e.en2size {
		return nil, errors.New("ledger: job's extranonce2_size differs from its entry's")
	}
	if e.base == nil || e.baseJob != j || e.baseMask != mask || e.nextRoll >= work.RolledVersions(mask) {
		// A re-issued job (new target) keeps the current extranonce2 and
		// roll position when its header fields are unchanged.
		if e.base != nil && e.baseMask == mask && e.nextRoll < work.RolledVersions(mask) && sameHeaderFields(e.baseJob, j) {
			e.base = j.Rebase(e.base)
			e.baseJob = j
		} else {
			en2, err := e.en2.Next()
			if err != nil {
				e.exhausted = true
				return nil, ErrExhausted
			}
			if e.base, err = j.NewUnit(en2, j.Version, j.NTime); err != nil {
				return nil, err
			}
			e.baseJob, e.baseMask, e.nextRoll = j, mask, 0
		}
	}
	u := e.base
	if mask != 0 {
		v, err := work.RollVersion(j.Version, mask, e.nextRoll)
		if err != nil {
			return nil, err
		}
		if v != u.Version {
			u = u.WithVersion(v)
		}
	}
	e.nextRoll++
	e.units++
	return u, nil
}

// sameHeaderFields reports whether b is a re-issue of a with the same
// coinbase, branch, version, ntime and prevhash, so a unit of a is also a
// unit of b (only the target may differ).
func sameHeaderFields(a, b *work.Job) bool {
	if a == nil || b == nil {
		return false
	}
	if (a.Root == nil) != (b.Root == nil) || (a.Root != nil && *a.Root != *b.Root) {
		return false
	}
	return a.PrevHash == b.PrevHash && a.Version == b.Version && a.NTime == b.NTime && a.NBits == b.NBits &&
		string(a.Coinb1) == string(b.Coinb1) && string(a.Coinb2) == string(b.Coinb2) &&
		string(a.Extranonce1) == string(b.Extranonce1) && branchesEqual(a.Branch, b.Branch)
}

func branchesEqual(a, b [][32]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
