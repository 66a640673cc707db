package work

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Limits on what a pool may send. They are far above anything real (the
// largest blocks need about 14 merkle branches, coinbases are a few KB) and
// exist so a hostile pool cannot make the miner hash megabytes per unit.
const (
	MaxJobIDLen        = 256
	MaxCoinbasePart    = 64 << 10
	MaxMerkleBranches  = 32
	MaxExtranonce1Len  = 64
	MinExtranonce2Size = 1
	MaxExtranonce2Size = 16
)

// JobParams are the nine mining.notify params, as the pool sent them, plus the
// session state a job depends on: extranonce1 and extranonce2_size from
// subscribe (or set_extranonce), and the difficulty in force at notify time.
type JobParams struct {
	JobID           string
	PrevHash        string
	Coinb1          string
	Coinb2          string
	MerkleBranch    []string
	Version         string
	NBits           string
	NTime           string
	CleanJobs       bool
	Extranonce1     string
	Extranonce2Size int
	// Difficulty is the pool difficulty stamped on the job; 0 means none was
	// set, which pools treat as 1.
	Difficulty float64
}

// Job is a validated mining.notify, decoded into header byte order.
type Job struct {
	ID              string
	PrevHash        [32]byte // header byte order
	Coinb1          []byte
	Extranonce1     []byte
	Coinb2          []byte
	Branch          [][32]byte // internal byte order, as sent
	Version         uint32
	NBits           uint32
	NTime           uint32
	Extranonce2Size int
	Difficulty      float64
	ShareTarget     Target
	NetworkTarget   Target
	// Root is set for a header-only job (a Stratum V2 standard channel):
	// the upstream fixed the merkle root, there is no coinbase and no
	// extranonce2 (Extranonce2Size 0).
	Root *[32]byte
}

// NewJob validates every field and builds a Job. Errors name the field.
func NewJob(p JobParams) (*Job, error) {
	if p.JobID == "" {
		return nil, fieldErr("job_id", "empty")
	}
	if len(p.JobID) > MaxJobIDLen {
		return nil, fieldErr("job_id", "%d chars is over the limit of %d", len(p.JobID), MaxJobIDLen)
	}
	j := &Job{ID: p.JobID, Extranonce2Size: p.Extranonce2Size}
	var err error
	if j.PrevHash, err = prevHashToHeader(p.PrevHash); err != nil {
		return nil, err
	}
	if j.Coinb1, err = decodeHex("coinb1", p.Coinb1, -1, MaxCoinbasePart); err != nil {
		return nil, err
	}
	if j.Coinb2, err = decodeHex("coinb2", p.Coinb2, -1, MaxCoinbasePart); err != nil {
		return nil, err
	}
	if len(p.MerkleBranch) > MaxMerkleBranches {
		return nil, fieldErr("merkle_branch", "%d entries is over the limit of %d", len(p.MerkleBranch), MaxMerkleBranches)
	}
	j.Branch = make([][32]byte, len(p.MerkleBranch))
	for i, s := range p.MerkleBranch {
		b, err := decodeHex(fmt.Sprintf("merkle_branch[%d]", i), s, 32, 32)
		if err != nil {
			return nil, err
		}
		copy(j.Branch[i][:], b)
	}
	if j.Version, err = ParseUint32Hex("version", p.Version); err != nil {
		return nil, err
	}
	if j.NBits, err = ParseUint32Hex("nbits", p.NBits); err != nil {
		return nil, err
	}
	if j.NTime, err = ParseUint32Hex("ntime", p.NTime); err != nil {
		return nil, err
	}
	if j.Extranonce1, err = decodeHex("extranonce1", p.Extranonce1, -1, MaxExtranonce1Len); err != nil {
		return nil, err
	}
	if p.Extranonce2Size < MinExtranonce2Size || p.Extranonce2Size > MaxExtranonce2Size {
		return nil, fieldErr("extranonce2_size", "%d is outside %d..%d", p.Extranonce2Size, MinExtranonce2Size, MaxExtranonce2Size)
	}
	j.Difficulty = p.Difficulty
	if j.Difficulty == 0 {
		j.Difficulty = 1
	}
	if j.ShareTarget, err = TargetForDifficulty(j.Difficulty); err != nil {
		return nil, fieldErr("difficulty", "%v", err)
	}
	if j.NetworkTarget, err = NBitsTarget(j.NBits); err != nil {
		return nil, fieldErr("nbits", "%v", err)
	}
	return j, nil
}

// ErrExtranonce2Size is returned when an extranonce2 does not have the size
// the pool asked for; pools reject such shares.
var ErrExtranonce2Size = errors.New("extranonce2 has the wrong size")

// Coinbase returns coinb1 || extranonce1 || extranonce2 || coinb2.
func (j *Job) Coinbase(extranonce2 []byte) ([]byte, error) {
	if j.Root != nil {
		return nil, errors.New("a header-only job has no coinbase")
	}
	if len(extranonce2) != j.Extranonce2Size {
		return nil, fmt.Errorf("%w: %d bytes, pool wants %d", ErrExtranonce2Size, len(extranonce2), j.Extranonce2Size)
	}
	cb := make([]byte, 0, len(j.Coinb1)+len(j.Extranonce1)+len(extranonce2)+len(j.Coinb2))
	cb = append(cb, j.Coinb1...)
	cb = append(cb, j.Extranonce1...)
	cb = append(cb, extranonce2...)
	return append(cb, j.Coinb2...), nil
}

// MerkleRoot folds the branch over the coinbase txid. The coinbase is always
// the leftmost leaf, so each step hashes (root || branch).
func (j *Job) MerkleRoot(extranonce2 []byte) ([32]byte, error) {
	if j.Root != nil {
		if len(extranonce2) != 0 {
			return [32]byte{}, fmt.Errorf("%w: a header-only job takes none", ErrExtranonce2Size)
		}
		return *j.Root, nil
	}
	cb, err := j.Coinbase(extranonce2)
	if err != nil {
		return [32]byte{}, err
	}
	root := Sha256d(cb)
	var pair [64]byte
	for _, b := range j.Branch {
		copy(pair[:32], root[:])
		copy(pair[32:], b[:])
		root = Sha256d(pair[:])
	}
	return root, nil
}

// Header builds the 80-byte block header for the given merkle root, version,
// ntime and nonce (all as the uint32 values Stratum writes in hex).
func (j *Job) Header(root [32]byte, version, ntime, nonce uint32) [80]byte {
	var h [80]byte
	putHeaderUint32(h[0:], version)
	copy(h[4:36], j.PrevHash[:])
	copy(h[36:68], root[:])
	putHeaderUint32(h[68:], ntime)
	putHeaderUint32(h[72:], j.NBits)
	putHeaderUint32(h[76:], nonce)
	return h
}

// PrevHashHex returns the prevhash in the Stratum wire encoding.
func (j *Job) PrevHashHex() string { return prevHashToStratum(j.PrevHash) }

// HeaderNonce reads the nonce back out of a header.
func HeaderNonce(h *[80]byte) uint32 { return binary.LittleEndian.Uint32(h[76:]) }
