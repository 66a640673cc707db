package work

import (
	"errors"
	"fmt"
)

// ErrExtranonce2Exhausted means every extranonce2 value of the pool's size has
// been handed out for this job; hashing on would repeat work.
var ErrExtranonce2Exhausted = errors.New("extranonce2 space exhausted")

// Extranonce2Counter hands out extranonce2 values of a fixed size as a
// little-endian counter (as cgminer does: 01000000, 02000000, ...), and
// reports exhaustion instead of wrapping. It is not safe for concurrent use.
type Extranonce2Counter struct {
	cur  [MaxExtranonce2Size]byte
	size int
	done bool
}

// NewExtranonce2Counter starts a counter at zero.
func NewExtranonce2Counter(size int) (*Extranonce2Counter, error) {
	if size < MinExtranonce2Size || size > MaxExtranonce2Size {
		return nil, fmt.Errorf("extranonce2_size %d is outside %d..%d", size, MinExtranonce2Size, MaxExtranonce2Size)
	}
	return &Extranonce2Counter{size: size}, nil
}

// NewHeaderOnlyCounter is the counter of a header-only job (a Stratum V2
// standard channel: the merkle root is fixed): one empty extranonce2, then
// exhausted, so the job's space is its rolled versions and nothing repeats.
func NewHeaderOnlyCounter() *Extranonce2Counter { return &Extranonce2Counter{} }

// Size is the byte length of the values handed out.
func (c *Extranonce2Counter) Size() int { return c.size }

// Next returns a fresh value, or ErrExtranonce2Exhausted.
func (c *Extranonce2Counter) Next() ([]byte, error) {
	if c.done {
		return nil, ErrExtranonce2Exhausted
	}
	out := append([]byte(nil), c.cur[:c.size]...)
	c.done = true
	for i := 0; i < c.size; i++ {
		c.cur[i]++
		if c.cur[i] != 0 {
			c.done = false
			break
		}
	}
	return out, nil
}
