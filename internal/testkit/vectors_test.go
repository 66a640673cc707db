package testkit

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestVectorsDirFindsTheNamedFolder(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(root, "bip324"), 0o755))
	t.Setenv(VectorsEnv, root)
	require.Equal(t, filepath.Join(root, "bip324"), VectorsDir(t, "bip324"))
}

func TestVectorsDirSkipsWithoutTheFolder(t *testing.T) {
	t.Setenv(VectorsEnv, "")
	t.Setenv(RequireVectorsEnv, "")
	skipped := false
	t.Run("inner", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		VectorsDir(t, "bip324")
	})
	require.True(t, skipped)
}
