package work

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// block100000 is the notify of mainnet block 100000 (work/vectors/builtin).
func block100000() JobParams {
	return JobParams{
		JobID:    "b100k",
		PrevHash: "1901125004612a1701c3a621d930d31d36b607df1fccc2160002d01c00000000",
		Coinb1:   "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff08",
		Coinb2:   "ffffffff0100f2052a010000004341041b0e8c2567c12536aa13357b79a073dc4444acb83c4ec7a0e2f99dd7457516c5817242da796924ca4e99947d087fedf9ce467cb9f7c6287078f801df276fdf84ac00000000",
		MerkleBranch: []string{
			"c40297f730dd7b5a99567eb8d27b78758f607507c52292d02d4031895b52f2ff",
			"49aef42d78e3e9999c9e6ec9e1dddd6cb880bf3b076a03be1318ca789089308e",
		},
		Version: "00000001", NBits: "1b04864c", NTime: "4d1b2237", CleanJobs: true,
		Extranonce1: "044c8604", Extranonce2Size: 4, Difficulty: 1,
	}
}

func TestNewJobRejectsBadFields(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*JobParams)
		field  string
	}{
		{"empty job id", func(p *JobParams) { p.JobID = "" }, "job_id"},
		{"huge job id", func(p *JobParams) { p.JobID = strings.Repeat("x", MaxJobIDLen+1) }, "job_id"},
		{"short prevhash", func(p *JobParams) { p.PrevHash = p.PrevHash[:62] }, "prevhash"},
		{"non-hex prevhash", func(p *JobParams) { p.PrevHash = "zz" + p.PrevHash[2:] }, "prevhash"},
		{"odd coinb1", func(p *JobParams) { p.Coinb1 += "0" }, "coinb1"},
		{"non-hex coinb2", func(p *JobParams) { p.Coinb2 = "gg" }, "coinb2"},
		{"huge coinb2", func(p *JobParams) { p.Coinb2 = strings.Repeat("00", MaxCoinbasePart+1) }, "coinb2"},
		{"short branch", func(p *JobParams) { p.MerkleBranch[1] = "00" }, "merkle_branch[1]"},
		{"too many branches", func(p *JobParams) { p.MerkleBranch = make([]string, MaxMerkleBranches+1) }, "merkle_branch"},
		{"version without leading zeros", func(p *JobParams) { p.Version = "1" }, "version"},
		{"nbits too long", func(p *JobParams) { p.NBits = "1b04864c00" }, "nbits"},
		{"negative nbits", func(p *JobParams) { p.NBits = "1b84864c" }, "nbits"},
		{"non-hex ntime", func(p *JobParams) { p.NTime = "4d1b223x" }, "ntime"},
		{"odd extranonce1", func(p *JobParams) { p.Extranonce1 = "044" }, "extranonce1"},
		{"huge extranonce1", func(p *JobParams) { p.Extranonce1 = strings.Repeat("00", MaxExtranonce1Len+1) }, "extranonce1"},
		{"extranonce2 size 0", func(p *JobParams) { p.Extranonce2Size = 0 }, "extranonce2_size"},
		{"extranonce2 size 17", func(p *JobParams) { p.Extranonce2Size = 17 }, "extranonce2_size"},
		{"negative difficulty", func(p *JobParams) { p.Difficulty = -1 }, "difficulty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := block100000()
			p.MerkleBranch = append([]string(nil), p.MerkleBranch...)
			tc.mutate(&p)
			_, err := NewJob(p)
			require.Error(t, err)
			var fe *FieldError
			require.True(t, errors.As(err, &fe), "error %v names no field", err)
			assert.Equal(t, tc.field, fe.Field)
		})
	}
}

func TestEmptyExtranonce1IsValid(t *testing.T) {
	// p2pool sends "" as extranonce1.
	p := block100000()
	p.Extranonce1 = ""
	p.Extranonce2Size = 8
	j, err := NewJob(p)
	require.NoError(t, err)
	cb, err := j.Coinbase([]byte{1, 2, 3, 4, 5, 6, 7, 8})
	require.NoError(t, err)
	assert.Len(t, cb, len(j.Coinb1)+8+len(j.Coinb2))
}

func TestDefaultDifficultyIsOne(t *testing.T) {
	p := block100000()
	p.Difficulty = 0
	j, err := NewJob(p)
	require.NoError(t, err)
	assert.Equal(t, 1.0, j.Difficulty)
	assert.Equal(t, Diff1Target, j.ShareTarget)
}

func TestWrongExtranonce2Size(t *testing.T) {
	j, err := NewJob(block100000())
	require.NoError(t, err)
	_, err = j.NewUnit([]byte{1, 2, 3}, j.Version, j.NTime)
	require.ErrorIs(t, err, ErrExtranonce2Size)
}

func TestPrevHashRoundTrip(t *testing.T) {
	p := block100000()
	j, err := NewJob(p)
	require.NoError(t, err)
	assert.Equal(t, p.PrevHash, j.PrevHashHex())
}

func TestUnitWithVersionKeepsRoot(t *testing.T) {
	j, err := NewJob(block100000())
	require.NoError(t, err)
	u, err := j.NewUnit([]byte{0x1b, 0x02, 0x06, 0x02}, j.Version, j.NTime)
	require.NoError(t, err)
	r := u.WithVersion(0x20002000)
	assert.Equal(t, u.Header[4:76], r.Header[4:76])
	assert.Equal(t, []byte{0x00, 0x20, 0x00, 0x20}, r.Header[0:4])
	assert.NotEqual(t, u.Midstate, r.Midstate)
	assert.Equal(t, Midstate(&r.Header), r.Midstate)
}

func TestSubmitParams(t *testing.T) {
	j, err := NewJob(block100000())
	require.NoError(t, err)
	u, err := j.NewUnit([]byte{0x1b, 0x02, 0x06, 0x02}, j.Version, j.NTime)
	require.NoError(t, err)

	s, err := u.Submit("wallet.rig1", 0x00000abc, 0)
	require.NoError(t, err)
	assert.Equal(t, []any{"wallet.rig1", "b100k", "1b020602", "4d1b2237", "00000abc"}, s.Params(),
		"nonce is always 8 hex chars: dropping leading zeros loses shares")

	rolled, err := RollVersion(0x20000004, 0x1fffe000, 3)
	require.NoError(t, err)
	ur := u.WithVersion(rolled)
	s, err = ur.Submit("w", 1, 0x1fffe000)
	require.NoError(t, err)
	require.Len(t, s.Params(), 6)
	assert.Equal(t, "00006000", s.VersionBits, "submit rolled & mask, never the full version")

	_, err = ur.Submit("w", 1, 0)
	require.Error(t, err, "a rolled version without negotiated rolling cannot be submitted")
}
