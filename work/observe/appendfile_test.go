package observe

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A rotation moves the file away and signals: the next lines go to a new
// file at the path. A reopen that lands after Close (a SIGHUP during
// shutdown) opens nothing and closes nothing twice.
func TestAppendFileReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.log")
	f, err := OpenAppendFile(path)
	require.NoError(t, err)
	_, err = f.Write([]byte("one\n"))
	require.NoError(t, err)
	require.NoError(t, os.Rename(path, path+".1"))
	require.NoError(t, f.Reopen())
	_, err = f.Write([]byte("two\n"))
	require.NoError(t, err)
	require.NoError(t, f.Close())
	require.NoError(t, f.Close(), "twice is harmless")
	require.NoError(t, os.Remove(path))
	assert.ErrorIs(t, f.Reopen(), errClosed)
	_, err = os.Stat(path)
	assert.True(t, os.IsNotExist(err), "no file opened after Close")
	_, err = f.Write([]byte("three\n"))
	assert.ErrorIs(t, err, errClosed)
	old, _ := os.ReadFile(path + ".1")
	assert.Equal(t, "one\n", string(old))
}
