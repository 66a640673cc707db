package connlimit

import (
	"container/list"
	"sync"
	"time"
)

// Buckets are token buckets, one per peer key, in a table of at most max
// peers. Only peers in debt are kept (a refilled bucket is the same as
// none); when the table is full of them, a new peer is refused rather than
// one of them forgotten, which would hand it a fresh burst: an attacker
// with more addresses than the table holds (an IPv6 /48) gets no more
// tries by cycling through them.
type Buckets struct {
	rate  float64 // tokens per second
	burst float64
	max   int
	now   func() time.Time

	mu  sync.Mutex
	m   map[string]*list.Element
	lru *list.List // *bucket, least recently used first
}

type bucket struct {
	key    string
	tokens float64
	at     time.Time
}

// NewBuckets gives each peer burst tokens, refilled at rate per second.
func NewBuckets(rate float64, burst, max int) *Buckets {
	return &Buckets{rate: rate, burst: float64(burst), max: max, now: time.Now, m: map[string]*list.Element{}, lru: list.New()}
}

// get returns key's bucket refilled to now, or nil when it would be full
// (a full bucket is the same as none, and is dropped).
func (b *Buckets) get(key string) *bucket {
	e := b.m[key]
	if e == nil {
		return nil
	}
	k := e.Value.(*bucket)
	now := b.now()
	k.tokens = min(b.burst, k.tokens+now.Sub(k.at).Seconds()*b.rate)
	k.at = now
	if k.tokens >= b.burst {
		b.lru.Remove(e)
		delete(b.m, key)
		return nil
	}
	b.lru.MoveToBack(e)
	return k
}

// Allow reports whether key has a token, without taking it.
func (b *Buckets) Allow(key string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	k := b.get(key)
	return k == nil || k.tokens >= 1
}

// Take takes one of key's tokens; false when it has none.
func (b *Buckets) Take(key string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	k := b.get(key)
	if k == nil {
		if b.burst < 1 {
			return false
		}
		for len(b.m) >= b.max {
			// The least recently used may have refilled since: get drops
			// it then. One still in debt stays, and the newcomer waits.
			f := b.lru.Front()
			if f == nil || b.get(f.Value.(*bucket).key) != nil {
				return false
			}
		}
		b.m[key] = b.lru.PushBack(&bucket{key: key, tokens: b.burst - 1, at: b.now()})
		return true
	}
	if k.tokens < 1 {
		return false
	}
	k.tokens--
	return true
}

// Len is the number of peers remembered.
func (b *Buckets) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.m)
}
