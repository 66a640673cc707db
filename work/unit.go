package work

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
)

// Unit is one sweepable piece of work: a job with its extranonce2, version
// and ntime fixed, so that only the nonce varies. Devices need just Midstate,
// Tail and Target; the rest lets the host re-verify candidates and submit them.
type Unit struct {
	Job         *Job
	Extranonce2 []byte
	Version     uint32 // the version actually hashed (rolled when rolling)
	NTime       uint32 // the ntime actually hashed
	Header      [80]byte
	// Midstate is the SHA-256 state after header bytes 0..63.
	Midstate [8]uint32
	// Tail holds message words 16..18 of the header as SHA-256 reads them
	// (big-endian): the last 4 bytes of the merkle root, ntime and nbits.
	// Word 19 is the nonce.
	Tail [3]uint32
	// Target is the share target the candidates must meet.
	Target Target
}

// NewUnit builds the unit for one extranonce2, version and ntime.
func (j *Job) NewUnit(extranonce2 []byte, version, ntime uint32) (*Unit, error) {
	root, err := j.MerkleRoot(extranonce2)
	if err != nil {
		return nil, err
	}
	en2 := append([]byte(nil), extranonce2...)
	return j.unitFor(root, en2, version, ntime), nil
}

func (j *Job) unitFor(root [32]byte, en2 []byte, version, ntime uint32) *Unit {
	u := &Unit{Job: j, Extranonce2: en2, Version: version, NTime: ntime, Target: j.ShareTarget}
	u.Header = j.Header(root, version, ntime, 0)
	u.Midstate = Midstate(&u.Header)
	for i := range u.Tail {
		u.Tail[i] = binary.BigEndian.Uint32(u.Header[64+4*i:])
	}
	return u
}

// WithVersion returns a copy of u hashing another (rolled) version; the
// merkle root does not depend on the version, so it is not recomputed.
func (u *Unit) WithVersion(version uint32) *Unit {
	var root [32]byte
	copy(root[:], u.Header[36:68])
	return u.Job.unitFor(root, u.Extranonce2, version, u.NTime)
}

// Rebase returns u as a unit of j, a re-issue of u's job whose header fields
// are the same (only the target may differ), keeping u's extranonce2,
// version and ntime.
func (j *Job) Rebase(u *Unit) *Unit {
	var root [32]byte
	copy(root[:], u.Header[36:68])
	return j.unitFor(root, u.Extranonce2, u.Version, u.NTime)
}

// HeaderFor returns the full header with the nonce filled in.
func (u *Unit) HeaderFor(nonce uint32) [80]byte {
	h := u.Header
	putHeaderUint32(h[76:], nonce)
	return h
}

// Hash returns sha256d of the header with this nonce, in internal byte order.
// It uses no shortcut shared with any device, so it can judge their results.
func (u *Unit) Hash(nonce uint32) [32]byte {
	h := u.HeaderFor(nonce)
	return Sha256d(h[:])
}

// Check is the host's verdict on a candidate nonce.
type Check struct {
	Nonce        uint32
	Hash         [32]byte
	Difficulty   float64
	MeetsShare   bool
	MeetsNetwork bool
}

// Check re-hashes a candidate from scratch and judges it against the unit's
// share target and the job's network target. Devices are never trusted: a
// candidate that does not meet the share target is a hardware error.
func (u *Unit) Check(nonce uint32) Check {
	h := u.Hash(nonce)
	return Check{
		Nonce:        nonce,
		Hash:         h,
		Difficulty:   HashDifficulty(h),
		MeetsShare:   u.Target.Met(h),
		MeetsNetwork: u.Job.NetworkTarget.Met(h),
	}
}

// Submit holds the mining.submit params for a found nonce.
type Submit struct {
	Worker      string
	JobID       string
	Extranonce2 string
	NTime       string
	Nonce       string
	// VersionBits is set only when version rolling was negotiated.
	VersionBits string
}

// Params returns the JSON params array: five entries, or six when version
// rolling was negotiated.
func (s Submit) Params() []any {
	p := []any{s.Worker, s.JobID, s.Extranonce2, s.NTime, s.Nonce}
	if s.VersionBits != "" {
		p = append(p, s.VersionBits)
	}
	return p
}

// Submit builds the submit params for nonce. rollingMask is the negotiated
// version-rolling mask, or 0 when rolling is off; the sixth param is then
// left out, as pools that never negotiated rolling reject it.
func (u *Unit) Submit(worker string, nonce uint32, rollingMask uint32) (Submit, error) {
	if len(u.Extranonce2) != u.Job.Extranonce2Size {
		return Submit{}, fmt.Errorf("%w: %d bytes, pool wants %d", ErrExtranonce2Size, len(u.Extranonce2), u.Job.Extranonce2Size)
	}
	s := Submit{
		Worker:      worker,
		JobID:       u.Job.ID,
		Extranonce2: hex.EncodeToString(u.Extranonce2),
		NTime:       FormatUint32Hex(u.NTime),
		Nonce:       FormatUint32Hex(nonce),
	}
	if rollingMask != 0 {
		s.VersionBits = FormatUint32Hex(VersionBits(u.Version, rollingMask))
	} else if u.Version != u.Job.Version {
		return Submit{}, fmt.Errorf("version %08x differs from the job's %08x but no rolling was negotiated", u.Version, u.Job.Version)
	}
	return s, nil
}
