package vectors_test

import (
	"encoding/binary"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"clminer/internal/testkit"
	"clminer/work"
	"clminer/work/vectors"
)

func loadAll(t *testing.T) []vectors.Vector {
	t.Helper()
	vs, err := vectors.Builtin()
	require.NoError(t, err)
	require.Len(t, vs, 7, "six block and session files, the sessions file with two cases")
	return vs
}

// TestBuiltinVectors rebuilds every pinned value of every vector from its
// Stratum fields alone.
func TestBuiltinVectors(t *testing.T) {
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

// TestBuiltinMatchesShared cross-checks the repository's copies against the
// project's vector folder (testkit.VectorsDir, which CI names): same files,
// same bytes. Nothing else needs that folder.
func TestBuiltinMatchesShared(t *testing.T) {
	sharedDir := testkit.VectorsDir(t, ".")
	shared, err := filepath.Glob(filepath.Join(sharedDir, "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, shared)
	var names []string
	for _, p := range shared {
		names = append(names, filepath.Base(p))
		want, err := os.ReadFile(p)
		require.NoError(t, err)
		got, err := fs.ReadFile(vectors.BuiltinFiles(), filepath.Base(p))
		require.NoError(t, err, "%s is in %s but not built in", filepath.Base(p), sharedDir)
		assert.Equal(t, string(want), string(got), filepath.Base(p))
	}
	builtin, err := fs.Glob(vectors.BuiltinFiles(), "*.json")
	require.NoError(t, err)
	assert.ElementsMatch(t, names, builtin, "the built-in set is the whole of %s", sharedDir)
}

// LoadDir reads the same schema from a folder (`selftest --vectors DIR`).
func TestLoadDirMatchesBuiltin(t *testing.T) {
	dir := t.TempDir()
	names, err := fs.Glob(vectors.BuiltinFiles(), "*.json")
	require.NoError(t, err)
	for _, n := range names {
		b, err := fs.ReadFile(vectors.BuiltinFiles(), n)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, n), b, 0o644))
	}
	fromDir, err := vectors.LoadDir(dir)
	require.NoError(t, err)
	assert.Equal(t, loadAll(t), fromDir)
}

func TestLoadDirErrors(t *testing.T) {
	_, err := vectors.LoadDir(t.TempDir())
	require.ErrorContains(t, err, "no *.json")
	_, err = vectors.LoadDir("/nonexistent/vectors")
	require.Error(t, err)
}
