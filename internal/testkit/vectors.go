package testkit

import (
	"os"
	"path/filepath"
	"testing"
)

// VectorsEnv names the folder of the project's published test vectors (BIP
// 324/340's files, the real blocks the repository carries a copy of). It is
// set by CI, which has the folder; a user's clone has nothing of it, and the
// tests that cross-check against it skip there.
const VectorsEnv = "CLMINER_VECTORS_DIR"

// RequireVectorsEnv set to 1 makes a missing vector folder a failure: the CI
// step that must run the cross-checks sets it.
const RequireVectorsEnv = "CLMINER_REQUIRE_VECTORS"

// VectorsDir returns the absolute path of sub inside the folder VectorsEnv
// names, skipping the test where there is none (or failing it when
// RequireVectorsEnv is 1).
func VectorsDir(t testing.TB, sub string) string {
	t.Helper()
	root := os.Getenv(VectorsEnv)
	why := VectorsEnv + " is not set"
	if root != "" {
		dir, err := filepath.Abs(filepath.Join(root, sub))
		if err == nil {
			if _, err = os.Stat(dir); err == nil {
				return dir
			}
		}
		why = err.Error()
	}
	if os.Getenv(RequireVectorsEnv) == "1" {
		t.Fatalf("%s=1: no vectors: %s", RequireVectorsEnv, why)
	}
	t.Skipf("no vector folder to cross-check against: %s", why)
	return ""
}
