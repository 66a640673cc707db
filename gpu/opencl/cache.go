package opencl

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
)

// cacheKey names a compiled program: a binary is only valid for the exact
// device, driver, build options and source it was built from.
func cacheKey(platform, device, driver, version, options, source string) string {
	h := sha256.New()
	for _, s := range []string{platform, device, driver, version, options, source} {
		// Length-prefix each field so that no two tuples hash alike.
		var n [8]byte
		l := uint64(len(s))
		for i := range n {
			n[i] = byte(l >> (8 * i))
		}
		h.Write(n[:])
		h.Write([]byte(s))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// resolveCacheDir maps Options.CacheDir to a directory, or "" when caching
// is off ("-", or no user cache directory on this system).
func resolveCacheDir(opt string) string {
	switch opt {
	case "-":
		return ""
	case "":
		base, err := os.UserCacheDir()
		if err != nil {
			return ""
		}
		return filepath.Join(base, "clminer", "kernels")
	default:
		return opt
	}
}

func cachePath(dir, key string) string { return filepath.Join(dir, key+".bin") }

func readCache(dir, key string) []byte {
	if dir == "" {
		return nil
	}
	b, err := os.ReadFile(cachePath(dir, key))
	if err != nil || len(b) == 0 {
		return nil
	}
	return b
}

// writeCache stores a binary atomically, so that a miner killed mid-write
// or two miners starting together never leave a truncated program behind.
func writeCache(dir, key string, bin []byte) error {
	if dir == "" || len(bin) == 0 {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, key+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, werr := f.Write(bin)
	cerr := f.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, cachePath(dir, key))
	}
	if werr != nil {
		os.Remove(tmp)
	}
	return werr
}
