package work

// A node's getblocktemplate writes hashes the way block explorers print
// them: the 32 bytes reversed relative to the header and the merkle tree.
// This file is the one place those are turned into header byte order, as
// hex.go is for Stratum's encodings.

// DisplayHashToInternal decodes a 64-hex-digit hash in display order
// (previousblockhash, txid) into internal (header, merkle) byte order.
func DisplayHashToInternal(field, s string) ([32]byte, error) {
	var out [32]byte
	b, err := decodeHex(field, s, 32, 32)
	if err != nil {
		return out, err
	}
	for i := range out {
		out[i] = b[31-i]
	}
	return out, nil
}

// TemplateParams are the parts of a block a solo source has already built:
// the coinbase split around its extranonce, the merkle branch of the
// template's transactions, and the header fields as numbers.
type TemplateParams struct {
	ID              string
	PrevHash        [32]byte // internal byte order
	Coinb1          []byte
	Extranonce1     []byte
	Coinb2          []byte
	Branch          [][32]byte
	Version         uint32
	NBits           uint32
	NTime           uint32
	Extranonce2Size int
}

// NewTemplateJob builds a Job whose share target is the network target
// itself: in solo mining only a block is worth anything, and a float
// difficulty rounded from nbits could pass a hash the node rejects or, worse,
// drop a block.
func NewTemplateJob(p TemplateParams) (*Job, error) {
	if p.ID == "" || len(p.ID) > MaxJobIDLen {
		return nil, fieldErr("job_id", "%d chars: must be 1..%d", len(p.ID), MaxJobIDLen)
	}
	if len(p.Coinb1)+len(p.Coinb2) > 2*MaxCoinbasePart {
		return nil, fieldErr("coinbase", "%d bytes is over the limit", len(p.Coinb1)+len(p.Coinb2))
	}
	if len(p.Branch) > MaxMerkleBranches {
		return nil, fieldErr("merkle_branch", "%d entries is over the limit of %d", len(p.Branch), MaxMerkleBranches)
	}
	if len(p.Extranonce1) > MaxExtranonce1Len {
		return nil, fieldErr("extranonce1", "%d bytes is over the limit of %d", len(p.Extranonce1), MaxExtranonce1Len)
	}
	if p.Extranonce2Size < MinExtranonce2Size || p.Extranonce2Size > MaxExtranonce2Size {
		return nil, fieldErr("extranonce2_size", "%d is outside %d..%d", p.Extranonce2Size, MinExtranonce2Size, MaxExtranonce2Size)
	}
	t, err := NBitsTarget(p.NBits)
	if err != nil {
		return nil, fieldErr("bits", "%v", err)
	}
	if t.Big().Sign() == 0 {
		return nil, fieldErr("bits", "%08x is a zero target", p.NBits)
	}
	j := &Job{
		ID: p.ID, PrevHash: p.PrevHash,
		Coinb1:      append([]byte(nil), p.Coinb1...),
		Extranonce1: append([]byte(nil), p.Extranonce1...),
		Coinb2:      append([]byte(nil), p.Coinb2...),
		Branch:      append([][32]byte(nil), p.Branch...),
		Version:     p.Version, NBits: p.NBits, NTime: p.NTime,
		Extranonce2Size: p.Extranonce2Size,
		ShareTarget:     t, NetworkTarget: t,
	}
	j.Difficulty = TargetDifficulty(t)
	return j, nil
}

// TargetDifficulty is diff1 / target, for reporting (network difficulty,
// expected time to a block); decisions compare targets.
func TargetDifficulty(t Target) float64 { return HashDifficulty(t) }

// ExpectedSeconds is the mean time to a hash of difficulty d at rate
// hashes per second (d x 2^32 / rate), or 0 while the rate is unknown.
func ExpectedSeconds(d, rate float64) float64 {
	if rate <= 0 {
		return 0
	}
	return d * (1 << 32) / rate
}

// MerkleBranch returns the branch that folds a coinbase txid (the leftmost
// leaf) into the root of a tree whose other leaves are txids, in order: what
// a pool sends as merkle_branch.
func MerkleBranch(txids [][32]byte) [][32]byte {
	var branch [][32]byte
	// level holds the row being reduced, with a placeholder for the
	// coinbase's subtree at index 0 whose value the branch does not need.
	level := make([][32]byte, 1+len(txids))
	copy(level[1:], txids)
	for len(level) > 1 {
		branch = append(branch, level[1])
		if len(level)%2 == 1 {
			level = append(level, level[len(level)-1])
		}
		next := make([][32]byte, len(level)/2)
		for i := 1; i < len(next); i++ {
			next[i] = hashPair(level[2*i], level[2*i+1])
		}
		level = next
	}
	return branch
}

// MerkleRoot returns the root of leaves, duplicating the last leaf of an
// odd row as Bitcoin does. It is used for the witness root, whose first leaf
// (the coinbase's wtxid) is all zeros.
func MerkleRoot(leaves [][32]byte) [32]byte {
	if len(leaves) == 0 {
		return [32]byte{}
	}
	level := append([][32]byte(nil), leaves...)
	for len(level) > 1 {
		if len(level)%2 == 1 {
			level = append(level, level[len(level)-1])
		}
		next := make([][32]byte, len(level)/2)
		for i := range next {
			next[i] = hashPair(level[2*i], level[2*i+1])
		}
		level = next
	}
	return level[0]
}

func hashPair(a, b [32]byte) [32]byte {
	var pair [64]byte
	copy(pair[:32], a[:])
	copy(pair[32:], b[:])
	return Sha256d(pair[:])
}

// ParseTarget decodes a 64-hex-digit big-endian target (BIP 22's target).
func ParseTarget(field, s string) (Target, error) {
	b, err := decodeHex(field, s, 32, 32)
	if err != nil {
		return Target{}, err
	}
	var t Target
	for i := range t {
		t[i] = b[31-i]
	}
	return t, nil
}

// HexBytes decodes hex of any even length up to maxLen bytes, naming the
// field in its error.
func HexBytes(field, s string, maxLen int) ([]byte, error) {
	return decodeHex(field, s, -1, maxLen)
}
