package work

// Stratum V2 sends header fields as raw little-endian U256 and U32 values:
// prev_hash and merkle_root are the header's own bytes, a target is the
// 256-bit number little-endian, which is Target's layout. This file is the
// one place those are turned into a Job, as hex.go is for Stratum v1.

// HeaderParams are a header-only job's fields as a V2 standard channel
// gives them.
type HeaderParams struct {
	ID         string
	PrevHash   [32]byte // U256 prev_hash: header byte order
	MerkleRoot [32]byte // U256 merkle_root: header byte order
	Version    uint32
	NBits      uint32
	NTime      uint32
	// Target is the channel's share target (U256 maximum_target).
	Target [32]byte
}

// TargetFromU256 reads a V2 U256 target.
func TargetFromU256(b [32]byte) Target { return Target(b) }

// U256FromTarget writes t as a V2 U256.
func U256FromTarget(t Target) [32]byte { return [32]byte(t) }

// NewHeaderJob builds a header-only Job: the devices roll the nonce and
// the allowed version bits over a merkle root the upstream fixed.
func NewHeaderJob(p HeaderParams) (*Job, error) {
	if p.ID == "" || len(p.ID) > MaxJobIDLen {
		return nil, fieldErr("job_id", "%d chars: must be 1..%d", len(p.ID), MaxJobIDLen)
	}
	nt, err := NBitsTarget(p.NBits)
	if err != nil {
		return nil, fieldErr("nbits", "%v", err)
	}
	st := TargetFromU256(p.Target)
	if st.Big().Sign() == 0 {
		return nil, fieldErr("target", "zero target: no hash can meet it")
	}
	root := p.MerkleRoot
	j := &Job{
		ID: p.ID, PrevHash: p.PrevHash, Version: p.Version, NBits: p.NBits, NTime: p.NTime,
		ShareTarget: st, NetworkTarget: nt, Root: &root,
	}
	j.Difficulty = TargetDifficulty(st)
	return j, nil
}

// ExtendedParams are a V2 extended job's fields: the coinbase split around
// the extranonce (prefix || extranonce_prefix || extranonce || suffix) and
// the merkle path, which are V1's coinb1, extranonce1, extranonce2, coinb2
// and merkle branch in the same byte order.
type ExtendedParams struct {
	ID               string
	PrevHash         [32]byte // U256 prev_hash: header byte order
	CoinbasePrefix   []byte
	ExtranoncePrefix []byte
	CoinbaseSuffix   []byte
	MerklePath       [][32]byte
	Version          uint32
	NBits            uint32
	NTime            uint32
	ExtranonceSize   int
	Target           [32]byte // the channel's share target
}

// NewExtendedJob builds the Job of an extended channel, reusing the V1
// coinbase and merkle code; shares are judged at the channel's target.
func NewExtendedJob(p ExtendedParams) (*Job, error) {
	j, err := NewTemplateJob(TemplateParams{
		ID: p.ID, PrevHash: p.PrevHash, Coinb1: p.CoinbasePrefix, Extranonce1: p.ExtranoncePrefix, Coinb2: p.CoinbaseSuffix,
		Branch: p.MerklePath, Version: p.Version, NBits: p.NBits, NTime: p.NTime, Extranonce2Size: p.ExtranonceSize,
	})
	if err != nil {
		return nil, err
	}
	st := TargetFromU256(p.Target)
	if st.Big().Sign() == 0 {
		return nil, fieldErr("target", "zero target: no hash can meet it")
	}
	j.ShareTarget, j.Difficulty = st, TargetDifficulty(st)
	return j, nil
}
