package vectors_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"clminer/work"
	"clminer/work/ledger"
)

// A real block mined as a Stratum V2 standard channel would send it: the
// header fields of the solved block, the merkle root fixed. The header-only
// job must rebuild the same header and hash, and the ledger must hand out
// exactly one unit per version, then report the space exhausted.
func TestHeaderOnlyJobFromRealBlocks(t *testing.T) {
	for _, v := range loadAll(t) {
		if !v.HasNonce() {
			continue
		}
		t.Run(v.Label(), func(t *testing.T) {
			sol, err := v.Solution()
			require.NoError(t, err)
			var root [32]byte
			copy(root[:], sol.Unit.Header[36:68])
			j, err := work.NewHeaderJob(work.HeaderParams{
				ID: "1", PrevHash: sol.Job.PrevHash, MerkleRoot: root,
				Version: sol.Unit.Version, NBits: sol.Job.NBits, NTime: sol.Unit.NTime,
				Target: work.U256FromTarget(sol.Job.NetworkTarget),
			})
			require.NoError(t, err)
			_, err = j.Coinbase(nil)
			require.Error(t, err)
			l := ledger.New(0)
			e, err := l.JobAtTarget("chan", j.ID, 0, j.ShareTarget)
			require.NoError(t, err)
			u, err := e.Next(j, 0)
			require.NoError(t, err)
			require.Equal(t, sol.Unit.HeaderFor(sol.Nonce), u.HeaderFor(sol.Nonce))
			c := u.Check(sol.Nonce)
			require.True(t, c.MeetsShare && c.MeetsNetwork)
			_, err = e.Next(j, 0)
			require.ErrorIs(t, err, ledger.ErrExhausted, "no extranonce2 to move to: nothing may repeat")

			e2, err := l.JobAtTarget("chan", "2", 0, j.ShareTarget)
			require.NoError(t, err)
			j2 := *j
			j2.ID = "2"
			mask := uint32(0x00006000) // two bits: four versions
			seen := map[uint32]bool{}
			for range 4 {
				u, err := e2.Next(&j2, mask)
				require.NoError(t, err)
				require.False(t, seen[u.Version])
				seen[u.Version] = true
			}
			_, err = e2.Next(&j2, mask)
			require.ErrorIs(t, err, ledger.ErrExhausted)
		})
	}
	_, err := work.NewHeaderJob(work.HeaderParams{ID: "x", NBits: 0x1d00ffff})
	require.ErrorContains(t, err, "zero target")
}
