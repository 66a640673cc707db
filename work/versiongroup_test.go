package work_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"clminer/work"
	"clminer/work/vectors"
)

// builtinVector is a real block with its nonce, so that the roll has a
// job version to roll from.
func builtinVector(t *testing.T) *vectors.Vector {
	vs, err := vectors.Builtin()
	require.NoError(t, err)
	return &vs[1]
}

func TestVersionGroupPutsTheUnitAtItsIndex(t *testing.T) {
	sol, err := builtinVector(t).Solution()
	require.NoError(t, err)
	for k := 1; k <= 4; k++ {
		for at := 0; at < k; at++ {
			us, err := work.VersionGroup(sol.Unit, k, at)
			require.NoError(t, err)
			require.Len(t, us, k)
			assert.Same(t, sol.Unit, us[at])
			seen := map[uint32]bool{}
			for _, u := range us {
				assert.False(t, seen[u.Version], "versions repeat")
				seen[u.Version] = true
				assert.Equal(t, sol.Unit.Version&^0x1fffe000, u.Version&^0x1fffe000, "only the BIP 320 bits roll")
				assert.Equal(t, sol.Unit.Tail, u.Tail)
			}
		}
	}
	_, err = work.VersionGroup(sol.Unit, 2, 2)
	require.Error(t, err)
}
