package observe_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"clminer/work/miner"
	"clminer/work/observe"
)

// Reopen starts a new file at the path once the old one was moved away
// (logrotate without copytruncate); when the path cannot be opened it
// keeps writing the old file, losing no line.
func TestShareLogReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "shares.jsonl")
	sl, err := observe.OpenShareLog(path)
	require.NoError(t, err)
	defer sl.Close()
	assert.Equal(t, path, sl.Path())
	sl.Share(miner.ShareEvent{Device: "one"})
	require.NoError(t, os.Rename(path, path+".1"))
	sl.Share(miner.ShareEvent{Device: "two"}) // still the moved file
	require.NoError(t, sl.Reopen())
	sl.Share(miner.ShareEvent{Device: "three"})

	lines := func(p string) string {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		return string(b)
	}
	old, cur := lines(path+".1"), lines(path)
	assert.Equal(t, 2, strings.Count(old, "\n"))
	assert.Contains(t, old, `"two"`)
	assert.Equal(t, 1, strings.Count(cur, "\n"))
	assert.Contains(t, cur, `"three"`)

	// The path's directory gone: the reopen fails, the file in use stays.
	moved := filepath.Join(t.TempDir(), "moved.jsonl")
	require.NoError(t, os.Rename(path, moved))
	require.NoError(t, os.Remove(path+".1"))
	require.NoError(t, os.Remove(dir))
	assert.Error(t, sl.Reopen())
	sl.Share(miner.ShareEvent{Device: "four"})
	assert.Contains(t, lines(moved), `"four"`)
}
