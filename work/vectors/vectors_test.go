package vectors_test

import (
	"encoding/binary"
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"clminer/work"
	"clminer/work/vectors"
)

// sharedDir is ../shared/vectors as seen from the repository root.
const sharedDir = "../../../shared/vectors"

func loadAll(t *testing.T) []vectors.Vector {
	t.Helper()
	vs, err := vectors.LoadDir(sharedDir)
	require.NoError(t, err, "the shared vectors must be beside the repository")
	require.GreaterOrEqual(t, len(vs), 7)
	return vs
}

// TestSharedVectors rebuilds every pinned value of every shared vector from
// its Stratum fields alone.
func TestSharedVectors(t *testing.T) {
	for _, v := range loadAll(t) {
		t.Run(v.Label(), func(t *testing.T) {
			sol, err := v.Solution()
			require.NoError(t, err)
			e := v.Expected
			en2, err := hex.DecodeString(v.SubmitParams[2].(string))
			require.NoError(t, err)
			cb, err := sol.Job.Coinbase(en2)
			require.NoError(t, err)
			if e.Coinbase != "" {
				assert.Equal(t, e.Coinbase, hex.EncodeToString(cb), "coinbase")
			}
			root, err := sol.Job.MerkleRoot(en2)
			require.NoError(t, err)
			assert.Equal(t, e.MerkleRoot, hex.EncodeToString(root[:]), "merkle root")
			header := sol.Unit.HeaderFor(sol.Nonce)
			assert.Equal(t, e.Header, hex.EncodeToString(header[:]), "header")
			if e.MidstateLE != "" {
				var le [32]byte
				for i, w := range sol.Unit.Midstate {
					binary.LittleEndian.PutUint32(le[4*i:], w)
				}
				assert.Equal(t, e.MidstateLE, hex.EncodeToString(le[:]), "midstate")
			}
			if !v.HasNonce() {
				return
			}
			c := sol.Unit.Check(sol.Nonce)
			assert.Equal(t, e.Hash(), work.HashDisplay(c.Hash), "block hash")
			assert.True(t, c.MeetsNetwork, "a real block meets its nbits target")
			assert.True(t, c.MeetsShare, "and the pool's share target")
			if e.ShareDifficulty != 0 {
				assert.InEpsilon(t, e.ShareDifficulty, c.Difficulty, 1e-12, "share difficulty")
			}
			if e.NBitsTarget != "" {
				assert.Equal(t, e.NBitsTarget, sol.Job.NetworkTarget.String(), "nbits target")
			}
			// One nonce off must not meet the network target: the check is real.
			assert.False(t, sol.Unit.Check(sol.Nonce+1).MeetsNetwork)
			// Submit params round-trip to what the pool was sent.
			s, err := sol.Unit.Submit("w", sol.Nonce, 0)
			require.NoError(t, err)
			assert.Equal(t, v.SubmitParams[2], s.Extranonce2)
			assert.Equal(t, v.SubmitParams[3], s.NTime)
			assert.Equal(t, v.SubmitParams[4], s.Nonce)
			assert.Len(t, s.Params(), 5)
		})
	}
}

// TestBuiltinVectorsMatchShared guards the copies embedded in the binary.
func TestBuiltinVectorsMatchShared(t *testing.T) {
	shared := map[string]vectors.Vector{}
	for _, v := range loadAll(t) {
		shared[v.Name] = v
	}
	builtin, err := vectors.Builtin()
	require.NoError(t, err)
	require.NotEmpty(t, builtin)
	for _, b := range builtin {
		s, ok := shared[b.Name]
		require.True(t, ok, b.Name)
		assert.Equal(t, s.Expected, b.Expected, b.Name)
		assert.Equal(t, s.NotifyParams, b.NotifyParams, b.Name)
	}
}

func TestLoadDirErrors(t *testing.T) {
	_, err := vectors.LoadDir(t.TempDir())
	require.ErrorContains(t, err, "no *.json")
	_, err = vectors.LoadDir("/nonexistent/vectors")
	require.Error(t, err)
}
