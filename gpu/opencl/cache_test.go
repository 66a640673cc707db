package opencl

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCacheKey(t *testing.T) {
	base := []string{"Portable Computing Language", "cpu-haswell", "6.0", "OpenCL 3.0 PoCL", "-D VECSIZE=8 -D NVER=2", "kernel"}
	key := func(f []string) string { return cacheKey(f[0], f[1], f[2], f[3], f[4], f[5]) }
	k := key(base)
	assert.Regexp(t, `^[0-9a-f]{64}$`, k)
	assert.Equal(t, k, key(base), "deterministic")
	// A binary is valid only for what it was built from: any field changes
	// the key.
	for i := range base {
		f := append([]string(nil), base...)
		f[i] += "x"
		assert.NotEqual(t, k, key(f), "field %d", i)
	}
	// Moving text across a field boundary is another tuple.
	assert.NotEqual(t, cacheKey("ab", "c", "", "", "", ""), cacheKey("a", "bc", "", "", "", ""))
	assert.NotEqual(t, cacheKey("", "", "", "", "-D A", ""), cacheKey("", "", "", "", "", "-D A"))
	// The build options resolve picks are part of the key.
	a, err := resolve(Options{}, poclAVX2, poclPlatform)
	require.NoError(t, err)
	b, err := resolve(Options{VectorWidth: 4}, poclAVX2, poclPlatform)
	require.NoError(t, err)
	assert.NotEqual(t, cacheKey("p", "d", "v", "v", a.build, "s"), cacheKey("p", "d", "v", "v", b.build, "s"))
}

func TestResolveCacheDir(t *testing.T) {
	assert.Equal(t, "", resolveCacheDir("-"), "off")
	assert.Equal(t, "/some/dir", resolveCacheDir("/some/dir"))
	if base, err := os.UserCacheDir(); err == nil {
		assert.Equal(t, filepath.Join(base, "clminer", "kernels"), resolveCacheDir(""))
	} else {
		assert.Equal(t, "", resolveCacheDir(""), "no user cache directory: off")
	}
}

func TestCacheReadWrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "made", "on", "demand")
	const key = "k"
	assert.Nil(t, readCache(dir, key), "nothing cached yet")
	require.NoError(t, writeCache(dir, key, []byte("binary")))
	assert.Equal(t, []byte("binary"), readCache(dir, key))
	require.NoError(t, writeCache(dir, key, []byte("newer")), "overwrites")
	assert.Equal(t, []byte("newer"), readCache(dir, key))
	left, err := filepath.Glob(filepath.Join(dir, "*.tmp"))
	require.NoError(t, err)
	assert.Empty(t, left, "no temporary file left behind")

	require.NoError(t, writeCache(dir, "empty", nil))
	assert.NoFileExists(t, cachePath(dir, "empty"), "an empty binary is not stored")
	require.NoError(t, os.WriteFile(cachePath(dir, "truncated"), nil, 0o644))
	assert.Nil(t, readCache(dir, "truncated"), "an empty file is a miss")

	require.NoError(t, writeCache("", key, []byte("binary")), "caching off")
	assert.Nil(t, readCache("", key))
}
